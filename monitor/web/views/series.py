"""History ranges for the charts, through the `HistoryReader`: an unreadable or absent history
gives empty series (the page still renders)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from monitor.storage.reader import HistoryReader
from monitor.web.context import WebContext

log = logging.getLogger(__name__)


def _read(ctx: WebContext, what: str, read: Callable[[HistoryReader], list]) -> list:
    if ctx.history is None:
        return []
    try:
        return list(read(ctx.history))
    except Exception:
        log.warning("history %s failed", what, exc_info=True)
        return []


# What a page says where only the embedded history has the data (Prometheus without the
# per-partition families the replicas export with `exporter.partition_metrics: true`).
EMBEDDED_ONLY_PARTITIONS = ("Per-partition history is in the embedded history only: this dashboard reads "
                            "Prometheus, where it needs exporter.partition_metrics: true on the replicas")


def partition_empty_text(ctx: WebContext, default: str) -> str:
    """`default`, or why there cannot be per-partition history at all."""
    if ctx.history is not None and not getattr(ctx.history, "per_partition_history", True):
        return EMBEDDED_ONLY_PARTITIONS
    return default


def after(rows: list[dict], since: float | None) -> list[dict]:
    return rows if since is None else [r for r in rows if (r.get("at") or 0) > since]


def group_series(ctx: WebContext, cluster, group, start, end, max_points=300) -> list[dict]:
    return _read(ctx, "group_series", lambda h: h.group_series(cluster, group, start, end, max_points=max_points))


def partition_lag_series(ctx: WebContext, cluster, group, start, end, max_points=120) -> list[dict]:
    return _read(ctx, "partition_lag_series",
                 lambda h: h.partition_lag_series(cluster, group, start, end, max_points=max_points))


def topic_series(ctx: WebContext, cluster, topic, start, end, max_points=300) -> list[dict]:
    return _read(ctx, "topic_series", lambda h: h.topic_series(cluster, topic, start, end, max_points=max_points))


def partition_rate_series(ctx: WebContext, cluster, topic, start, end, max_points=120) -> list[dict]:
    return _read(ctx, "partition_rate_series",
                 lambda h: h.partition_rate_series(cluster, topic, start, end, max_points=max_points))


def cluster_series(ctx: WebContext, cluster, start, end, max_points=300) -> list[dict]:
    return _read(ctx, "cluster_series", lambda h: h.cluster_series(cluster, start, end, max_points=max_points))


def points_per_series(series: int, budget: int = 6000, low: int = 30, high: int = 200) -> int:
    """max_points per series so a chart of `series` lines/rows stays near `budget` points."""
    if series <= 0:
        return high
    return max(low, min(high, budget // series))


def topic_throughput(ctx: WebContext, cluster, topics: list[str], start, end, since=None,
                     max_points=300) -> dict[str, list[dict]]:
    return {t: after(topic_series(ctx, cluster, t, since if since is not None else start, end,
                                  max_points), since) for t in topics}
