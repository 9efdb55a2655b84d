"""Live-update bookkeeping shared by page callbacks.

Each live chart keeps a small `dcc.Store` "meta" next to it: the selection it was built for
(`sig`), the snapshot time it shows (`snap_at`), the newest sample time (`last_at`), its trace
keys and point count. On an interval tick with the same selection the callback appends only what
is new (a `dash.Patch`); anything else (range or selection change, new traces, too many points)
rebuilds the figure.
"""
from __future__ import annotations

from dash import ctx

from . import ids


def is_tick() -> bool:
    """True when the interval (and nothing else) triggered the running callback."""
    return ctx.triggered_id == ids.INTERVAL


def same_selection(meta: dict | None, sig: list) -> bool:
    return bool(meta) and meta.get("sig") == sig


def nothing_new(meta: dict | None, sig: list, snap_at: float | None) -> bool:
    """An interval tick that would redraw exactly what is shown."""
    return is_tick() and same_selection(meta, sig) and meta.get("snap_at") == snap_at


def can_extend(meta: dict | None, sig: list, limit: int) -> bool:
    """Append instead of rebuild: a tick, same selection, a figure with data, not too long."""
    return (is_tick() and same_selection(meta, sig) and meta.get("last_at") is not None
            and bool(meta.get("keys")) and (meta.get("n") or 0) < limit)


def make_meta(sig: list, snap_at: float | None, last_at: float | None, keys: list,
              n: int, **extra) -> dict:
    return {"sig": sig, "snap_at": snap_at, "last_at": last_at, "keys": keys, "n": n, **extra}


def last_time(rows) -> float | None:
    return max((r["at"] for r in rows), default=None)
