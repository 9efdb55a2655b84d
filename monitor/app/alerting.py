"""Wires the alerting service into the monitor: evaluation after each collection cycle,
delivery in the service's dispatcher thread, alert metrics on /metrics, the JSON API."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.config import AlertingConfig, parse_alerting_config
from alerts.inputs import HistoryInputs
from alerts.service import AlertingService
from collectors.models import Snapshot
from monitor.app.config import Config

if TYPE_CHECKING:
    from monitor.app.root import Monitor

log = logging.getLogger(__name__)


def alert_store_path(config: Config) -> Path | str:
    history = str(config.history.path)
    if history == ":memory:":
        return ":memory:"
    return Path(history).with_suffix(".alerts.db")


def alerting_config(config: Config) -> AlertingConfig:
    """The `alerting:` section, validated; its defaults (built-in rules, no receivers) when absent."""
    return parse_alerting_config(config.alerting or {}, source="config", prefix="alerting")


class AlertingWiring:
    """Lifecycle adapter: `start()` begins delivery, `on_snapshot()` evaluates, `stop()` ends it."""

    def __init__(self, config: Config, monitor: "Monitor", alerting: AlertingConfig | None = None):
        alerting = alerting or alerting_config(config)
        self.receivers = tuple(r.name for _, r in alerting.receivers.all())
        inputs = HistoryInputs(monitor.store.latest, monitor.history.kafka.window)
        self.service = AlertingService(alerting, alerting.store_path or alert_store_path(config), inputs,
                                       clock=monitor.clock)
        monitor.exporter.add_source(self.service.metric_families)

    def start(self) -> None:
        self.service.start(evaluate=False)

    def on_snapshot(self, snapshot: Snapshot, now: float) -> None:
        self.service.evaluate_once(now)

    def stop(self) -> None:
        self.service.close()

    # The dashboard and JSON API read through these.
    def list_alerts(self, state: str | None = None):
        return self.service.list_alerts(state)

    def list_silences(self, state: str | None = None):
        return self.service.list_silences(state)

    def list_notifications(self, limit: int = 100):
        return self.service.list_notifications(limit)
