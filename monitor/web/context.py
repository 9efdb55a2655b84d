"""What the web layer (JSON API, /metrics, /healthz, dashboard) reads, and nothing more.

The composition root builds one `WebContext` and hands it to `create_app`; routes and dashboard
callbacks find it with `current_context()`. Every part is an interface: the latest snapshot, the
history reader, the alert service, the serialised metrics, the settings the pages need, and a
clock. Nothing here calls Kafka or Spark.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.models import Snapshot
from monitor.storage.reader import HistoryReader

CONTEXT_KEY = "streamscope.web"


class LatestSnapshot(Protocol):
    def latest(self) -> Snapshot | None:
        """The latest published snapshot; None before the first collection cycle."""


class MetricsText(Protocol):
    def latest(self) -> bytes:
        """The metrics in the Prometheus text format, serialised once per cycle."""

    def latest_gzip(self) -> bytes:
        """`latest()` gzip-compressed, compressed at most once per cycle."""


class AlertService(Protocol):
    """The alert engine as the API and the Alerts page see it (`alerts.service.AlertingService`).
    Lists are JSON-ready dicts; silence errors raise `alerts.silences.SilenceError` (400) or
    `SilenceNotFound` (404)."""

    @property
    def receiver_names(self) -> tuple[str, ...]: ...
    def list_alerts(self, state: str | None = None) -> list[dict[str, Any]]: ...
    def alert_history(self) -> list[dict[str, Any]]: ...
    def list_silences(self, state: str | None = None) -> list[dict[str, Any]]: ...
    def create_silence(self, data: Mapping[str, Any]) -> dict[str, Any]: ...
    def expire_silence(self, silence_id: str) -> dict[str, Any]: ...
    def list_notifications(self, limit: int = 100, receiver: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class WebSettings:
    interval_seconds: float  # between collection cycles: the dashboard's refresh period
    stale_after_seconds: float  # a collector whose last success is older is stale
    # streamscope's own topics (the progress topic, the probe topics): hidden in the topology and the
    # overview's produce rate
    internal_topics: frozenset[str] = frozenset()
    spark_configured: bool = False  # a Spark target or progress topic is configured
    # Without an alert service: where alerts are evaluated instead (`serve`: the fleet's replicas)
    alerts_elsewhere: str | None = None


@dataclass(frozen=True)
class WebContext:
    snapshots: LatestSnapshot
    settings: WebSettings
    history: HistoryReader | None = None  # None: no history (series are empty)
    alerts: AlertService | None = None  # None: alert evaluation is turned off
    metrics: MetricsText | None = None
    clock: Callable[[], float] = field(default=time.time)

    def latest(self) -> Snapshot | None:
        return self.snapshots.latest()

    def now(self) -> float:
        return float(self.clock())


def current_context() -> WebContext:
    """The context of the Flask app serving this request."""
    from flask import current_app

    return current_app.extensions[CONTEXT_KEY]
