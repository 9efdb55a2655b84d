"""The status rules and the consume rate, for every partition of a cycle at once (numpy).

The same rules as :mod:`collectors.kafka.rules`, whose functions and test table stay their
specification: ``tests/unit/test_rules.py`` runs that table against both, and a randomised test
compares them window by window. Derive evaluates 100,000 (group, partition) windows a cycle at
10,000 groups; one function call per window cost ~3.5 us of Python, these cost a few numpy
passes over the whole batch.

Input layout: one row per window, the observations right-aligned (the newest in the last
column), ``n`` of them valid per row; the columns left of them hold anything (``t`` NaN, by
convention). ``lag`` is -1 where unknown.
"""
from __future__ import annotations

import numpy as np

from collectors.models import Status

__all__ = ["STATUS_BY_CODE", "commit_rates", "partition_statuses"]

STATUS_BY_CODE: tuple[Status, ...] = tuple(Status)  # code = position in Status declaration order
_OK, _WARN, _STALL, _STOP, _REWIND = (STATUS_BY_CODE.index(s) for s in
                                      (Status.OK, Status.WARN, Status.STALL, Status.STOP, Status.REWIND))


def _valid(n: np.ndarray, width: int) -> np.ndarray:
    """Mask of the valid cells: the last ``n`` columns of each row."""
    return np.arange(width) >= (width - n)[:, None]


def partition_statuses(
    t: np.ndarray,
    o: np.ndarray,
    lag: np.ndarray,
    n: np.ndarray,
    now: float,
    changed_at: np.ndarray,
    current_lag: np.ndarray,
    connected: np.ndarray,
    window_size: int,
) -> np.ndarray:
    """Status code per row (``STATUS_BY_CODE`` gives the Status) of :func:`rules.partition_status`.

    ``t``, ``o``, ``lag``: (rows, k) windows, right-aligned, ``n`` valid observations per row
    (at most k). ``changed_at``: when the current committed value was first seen, NaN where
    unknown (then found in the window, as the scalar rule does). ``current_lag``: -1 unknown.
    """
    rows, width = o.shape
    codes = np.zeros(rows, np.int8)
    if rows == 0 or width == 0:
        return codes
    valid = _valid(n, width)
    steps = valid[:, 1:] & valid[:, :-1]  # pairs of consecutive observations
    first = np.clip(width - n, 0, width - 1)  # column of the oldest observation
    at_first = t[np.arange(rows), first]
    lagging = (current_lag > 0) & (n > 0)
    # Rule 1 - lag zero at some point in the window
    nonzero = ~np.any(valid & (lag == 0), axis=1)
    # Rule 4 - unchanged for longer than the window's span (needs 2 observations)
    unknown = np.isnan(changed_at)
    if unknown.any():  # the oldest observation of the run of the current value
        breaks = valid & (o != o[:, -1:])
        last_break = np.where(breaks, np.arange(width), -1).max(axis=1)
        run_start = np.maximum(last_break + 1, first)
        changed_at = np.where(unknown, t[np.arange(rows), run_start], changed_at)
    stopped = (n >= 2) & (now - changed_at > t[:, -1] - at_first)
    # Rule 2 - the committed offset decreases between two observations
    rewind = np.any(steps & (o[:, 1:] < o[:, :-1]), axis=1)
    full = n >= window_size
    # Rule 3 - the committed offset never changes over the window
    stalled = (n >= 2) & np.all(~valid | (o == o[np.arange(rows), first][:, None]), axis=1)
    # Rule 5 - lag known everywhere and strictly increasing at every step
    known = ~valid | (lag >= 0)
    increasing = (n >= 2) & np.all(known, axis=1) & np.all(~steps | (lag[:, 1:] > lag[:, :-1]), axis=1)
    # evaluation order of rules.partition_status: later assignments only where nothing earlier applied
    judged = lagging & nonzero
    codes[judged & full & increasing] = _WARN
    codes[judged & full & stalled] = _STALL
    codes[judged & rewind] = _REWIND
    codes[judged & ~connected & stopped] = _STOP
    return codes


def commit_rates(t: np.ndarray, o: np.ndarray, n: np.ndarray, now: float, window: float) -> np.ndarray:
    """Consume rate per row over ``[now - window, now]`` (NaN where unknown), as
    ``OffsetWindows.rate_of_committed``: only observations at or before ``now`` and after the
    most recent decrease (a rate across a rewind means nothing); the base is the newest of them at
    or before ``now - window``, or the oldest of them when history is shorter than the window."""
    rows, width = o.shape
    out = np.full(rows, np.nan)
    if rows == 0 or width == 0:
        return out
    cols = np.arange(width)
    valid = _valid(n, width) & (t <= now)  # t increases: a prefix of the valid columns
    usable = valid.sum(axis=1)
    first_valid = width - n
    last = first_valid + usable - 1
    decrease = np.zeros_like(valid)
    decrease[:, 1:] = valid[:, 1:] & valid[:, :-1] & (o[:, 1:] < o[:, :-1])
    first = np.maximum(np.where(decrease, cols, -1).max(axis=1), first_valid)
    in_run = (cols >= first[:, None]) & (cols <= last[:, None])
    base = np.where(in_run & (t <= now - window), cols, -1).max(axis=1)
    base = np.maximum(base, first)
    ok = (usable - (first - first_valid) >= 2) & (base < last)
    idx = np.arange(rows)
    last_c = np.clip(last, 0, width - 1)  # rows that are not ok index anything in range
    base_c = np.clip(base, 0, width - 1)
    dt = t[idx, last_c] - t[idx, base_c]
    ok &= dt > 0
    out[ok] = (o[idx, last_c] - o[idx, base_c])[ok] / dt[ok]
    return out
