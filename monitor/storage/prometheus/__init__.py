"""Prometheus (or anything speaking its HTTP API: Thanos, Mimir, VictoriaMetrics) as the history
the dashboard and the API read: `PrometheusHistory` is a `HistoryReader`, `PrometheusSnapshots`
the latest values as a `Snapshot`, both over one `PrometheusClient`."""
from monitor.storage.prometheus.client import PrometheusClient, PrometheusError
from monitor.storage.prometheus.history import PrometheusHistory
from monitor.storage.prometheus.latest import PrometheusSnapshots

__all__ = ["PrometheusClient", "PrometheusError", "PrometheusHistory", "PrometheusSnapshots"]
