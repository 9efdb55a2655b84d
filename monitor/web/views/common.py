"""What every page reads: the context (latest snapshot, history, settings, clock), clusters,
time ranges, status levels and per-snapshot memoisation.

Nothing in `data/` imports Dash or calls Kafka or Spark: page callbacks call these functions,
then hand the result to `figures` (pure figure builders), so all of it is unit tested with
hand-built snapshots and a real History on a temporary SQLite file.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Iterable
from enum import Enum
from typing import Any

from collectors.models import ClusterState, Snapshot, Status
from monitor.web.context import WebContext

log = logging.getLogger(__name__)

# The time ranges a page can show (the range picker, the `range` URL parameter).
RANGES: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0}
DEFAULT_RANGE = "1h"

# Status levels drive colours everywhere: ok (green), warn (amber), err (red), stale (grey).
LEVELS = ("ok", "warn", "err", "stale", "unknown")
_LEVEL_OF_STATUS = {
    Status.OK: "ok", Status.WARN: "warn", Status.STALL: "err", Status.STOP: "err",
    Status.REWIND: "err", Status.ERR: "err",
}
LEVEL_RANK = {"ok": 0, "unknown": 1, "stale": 1, "warn": 2, "err": 3}


def snapshot_at(snap: Snapshot | None) -> float | None:
    return None if snap is None else snap.at


def window(range_key: str | None, at: float) -> tuple[float, float]:
    """(start, end) of a time range ending at `at`."""
    seconds = RANGES.get(range_key or DEFAULT_RANGE, RANGES[DEFAULT_RANGE])
    return at - seconds, at


def cluster_names(ctx: WebContext, snap: Snapshot | None = None) -> list[str]:
    snap = snap if snap is not None else ctx.latest()
    names = [c.raw.cluster for c in (snap.clusters if snap else ())]
    if names or ctx.history is None:
        return names
    try:
        return list(ctx.history.clusters())
    except Exception:  # history closed or unreadable: the page still renders
        log.debug("history.clusters() failed", exc_info=True)
        return []


def resolve_cluster(ctx: WebContext, requested: str | None, snap: Snapshot | None = None) -> str | None:
    """The requested cluster if known, else the first one (None when there is none)."""
    names = cluster_names(ctx, snap)
    if requested in names:
        return requested
    return names[0] if names else None


def cluster_state(snap: Snapshot | None, cluster: str | None) -> ClusterState | None:
    for state in (snap.clusters if snap else ()):
        if state.raw.cluster == cluster:
            return state
    return None


def status_level(status: Status | str | None) -> str:
    """The colour level of a Burrow status (or its text, as history rows carry it)."""
    if isinstance(status, Status):
        return _LEVEL_OF_STATUS[status]
    try:
        return _LEVEL_OF_STATUS[Status(str(status or "").upper())]
    except ValueError:
        return "unknown"


def worst_level(levels: Iterable[str]) -> str:
    out = "ok"
    for level in levels:
        if LEVEL_RANK.get(level, 1) > LEVEL_RANK.get(out, 0):
            out = level
    return out


_memo_lock = threading.Lock()
_memo: "collections.OrderedDict[tuple[int, str], tuple[Any, Any]]" = collections.OrderedDict()
_MEMO_SIZE = 64


def per_snapshot(snap: Any, key: str, compute):
    """`compute()` once per (snapshot, key): snapshots are immutable, and every callback of a
    tick (and every open browser tab) reads the same one. Keeps the last few entries."""
    if snap is None:
        return compute()
    k = (id(snap), key)
    with _memo_lock:
        hit = _memo.get(k)
        if hit is not None and hit[0] is snap:
            _memo.move_to_end(k)
            return hit[1]
    value = compute()
    with _memo_lock:
        _memo[k] = (snap, value)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return value


def enum_text(value: Enum | str | None) -> str:
    """An enum's value (a status, a time-lag method) as text; "" for None."""
    if value is None:
        return ""
    return str(value.value if isinstance(value, Enum) else value)


def row_id(*parts: str | None) -> str:
    """A table row id that survives any name (JSON)."""
    return json.dumps(list(parts), ensure_ascii=False)


def parse_row_id(value: str | None) -> list | None:
    try:
        out = json.loads(value) if value else None
    except (TypeError, ValueError):
        return None
    return out if isinstance(out, list) else None
