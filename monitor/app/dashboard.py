"""`streamscope serve`: the dashboard and the JSON API over Prometheus, without collectors.

A fleet's replicas each export their share of the work (docs/scaling.md); one `serve` shows all
of it: the latest values (`PrometheusSnapshots`) and the history (`PrometheusHistory`) come from
Prometheus or anything speaking its HTTP API. Alerts are the replicas' (or Alertmanager's): the
Alerts page says evaluation is not done here. Its /metrics carries only `streamscope_build_info`.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from monitor.app.config import Config
from monitor.app.lifecycle import Services
from monitor.settings import ConfigError
from monitor.storage.prometheus import PrometheusClient, PrometheusHistory, PrometheusSnapshots
from monitor.web.context import WebContext, WebSettings
from monitor.web.metrics import snapshot_metrics
from monitor.web.server import WebServer


ALERTS_ELSEWHERE = ("this dashboard reads Prometheus and evaluates no alerts: each replica of the fleet "
                    "evaluates the alerts of its own share of the work (its own /alerts page and receivers), "
                    "or Alertmanager routes them (docs/scaling.md).")


def prometheus_reader(config: Config, clock: Callable[[], float] = time.time
                      ) -> tuple[PrometheusClient, PrometheusHistory, PrometheusSnapshots]:
    """The client, history reader and latest-values reader of `history.prometheus`."""
    prom = config.history.prometheus
    if prom is None:
        raise ConfigError("history.prometheus.url: required to read Prometheus (history.backend: prometheus)")
    client = PrometheusClient(prom)
    return (client, PrometheusHistory(client, clock=clock),
            PrometheusSnapshots(client, refresh_seconds=prom.refresh_seconds, clock=clock))


class FleetDashboard:
    """The composition of `serve`: one web server over a Prometheus-backed `WebContext`."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.client, self.history, self.snapshots = prometheus_reader(config, clock)
        _, self.metrics = snapshot_metrics(lambda: None, partition_metrics=False)
        self.web: WebServer | None = None
        self._services = Services()

    def web_context(self) -> WebContext:
        prom = self.config.history.prometheus
        settings = WebSettings(
            interval_seconds=prom.refresh_seconds,
            # a replica's data is stale when Prometheus has not seen it for a few scrapes
            stale_after_seconds=max(3 * prom.scrape_interval_seconds, self.config.stale_after_seconds),
            spark_configured=False,
            alerts_elsewhere=ALERTS_ELSEWHERE,
        )
        return WebContext(snapshots=self.snapshots, settings=settings, history=self.history, alerts=None,
                          metrics=self.metrics, clock=self.clock)

    def start(self) -> FleetDashboard:
        web = WebServer(self.web_context(), self.config.web)  # the port first, as `Monitor.start`
        try:
            self.metrics.refresh()
            # the first answer before the first request (bounded by the client's timeout; a
            # failure is logged and the pages say there is no data yet)
            self.snapshots.refresh()
            self._services.start(self.snapshots)
        except BaseException:
            web.stop()
            raise
        self.web = web
        self._services.start(web)
        return self

    def stop(self) -> None:
        self._services.stop_all()
        self.client.close()

    def __enter__(self) -> FleetDashboard:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
