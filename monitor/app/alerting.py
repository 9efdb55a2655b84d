"""The alert engine in the monitor: built from the `alerting:` section, evaluated after each
published snapshot, delivering in its own threads.

The built-in rules are evaluated unless `alerting.enabled: false`, with or without an
`alerting:` section: the Alerts page and API show what fires even with no receiver (then nothing
is sent).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alerts.engine import AlertScope
from alerts.inputs import HistoryInputs
from alerts.service import AlertingService
from collectors.models import Snapshot
from monitor.app.config import Config
from monitor.storage.reader import HistoryReader


def alert_store_path(config: Config) -> Path | str:
    """Where the alert state lives unless `alerting.store_path` says: beside the history."""
    history = str(config.history.path)
    if history == ":memory:":
        return ":memory:"
    return Path(history).with_suffix(".alerts.db")


def build_alerting(config: Config, latest: Callable[[], Snapshot | None], history: HistoryReader,
                   clock: Callable[[], float], scope: AlertScope | None = None) -> AlertingService | None:
    """The alert service over the latest snapshot and the history's windows (in a fleet, over
    the alerts of this replica's units: `scope`); None when evaluation is turned off."""
    alerting = config.alerts
    if not alerting.enabled:
        return None
    return AlertingService(alerting, alerting.store_path or alert_store_path(config),
                           HistoryInputs(latest, history.window, history_peaks=getattr(history, "window_peaks", None)),
                           clock=clock, scope=scope)


class AlertDelivery:
    """The alert service's threads as a `Service`: delivery to receivers and group timers.
    Evaluation is not among them: the monitor evaluates after each published snapshot."""

    def __init__(self, service: AlertingService) -> None:
        self._service = service

    def start(self) -> None:
        self._service.start(evaluate=False)

    def stop(self) -> None:
        self._service.stop()
