"""The Spark collector's defaults that the configuration names: here, so that validating the
`spark` section does not load the collector (a monitor without Spark never imports it)."""
from __future__ import annotations

DEFAULT_TIMEOUT = (2.0, 5.0)  # connect, read (seconds)
FEED_HEALTH_NAME = "spark:progress-feed"
DEFAULT_MAX_BATCHES = 50  # batches kept per query
DEFAULT_DOWN_APP_TTL = 900.0  # seconds an app that stopped answering is still shown, down
