"""Burrow-style consumer status rules: small pure functions, no I/O, explicit ``now``.

Modelled on Burrow's evaluator (linkedin/Burrow, ``core/internal/evaluator``). The input of a
partition is its committed-offset *window*: the last ``status_window`` observations
``(at, committed_offset, lag)`` in time order (see ``OffsetWindows.committed_series``), plus
``now`` and ``last_changed_at`` (first time the current committed value was observed).
A lag of ``None`` (or negative) means "unknown at that observation".

The rules (numbered as in our spec; each function's docstring quotes its rule):

* Rule 1 - lag is zero at any point in the window -> OK.
* Rule 2 - committed offset decreases from one observation to the next -> REWIND.
* Rule 3 - committed offset does not change over the whole window, lag non-zero -> STALL.
* Rule 4 - time since the committed offset last changed is greater than the window's time span,
  lag non-zero -> STOP.
* Rule 5 - committed offset moves but lag increases at every step over a full window -> WARN
  (strictly; Burrow uses "never decreases", see :func:`lag_increasing`).
* otherwise OK.

STALL vs STOP. Burrow tells them apart by commit timestamps read from ``__consumer_offsets``:
STALL = the consumer keeps committing the *same* offset (alive, not progressing), STOP = it
stopped committing at all. streamscope polls OffsetFetch, which carries no commit time, so the
two are indistinguishable from offsets alone (a constant value over a full window always
satisfies Rule 4's time condition as well). The observable difference is group membership:

* **STALL** - a live member of the group owns the partition (``connected=True``): the consumer
  is connected, heartbeating and assigned, but its committed position does not advance (stuck
  processing, poison record, paused, deadlock).
* **STOP** - nobody owns the partition (``connected=False``: group Empty, or the partition is in
  no member's assignment) and the committed offset has not moved for longer than the window
  covers: the consumer is gone. Groups that commit without membership (manual assign, e.g. a
  Spark listener committing processed offsets) are judged by time alone, as Burrow does.

Evaluation order (Burrow's ``calculatePartitionStatus``, the STOP-first version):

1. current lag 0 -> OK (a partition with no lag is never in error);
2. STOP (Rule 4), unless the lag was zero somewhere in the window. Burrow guards STOP with
   ``checkIfRecentLagZero`` over recent *broker* offsets, separately from Rule 1 over the
   *commit* history; our window's lags are measured against fresh end offsets every cycle, so
   the two checks are the same one here;
3. if the lag was never zero in the window (Rule 1): REWIND (Rule 2), STALL (Rule 3), WARN (Rule 5);
4. OK.

Windows that are not full yet (startup without history, new group, fewer than ``window_size``
observations): STALL and WARN are claims about a *whole* window and are not reported; REWIND (a
decrease is a fact however short the window) and STOP (the silence already exceeds what the window
covers) are, from 2 observations on. With a single observation the status is OK.

Known limitation kept from Burrow's ordering: a consumer that had zero lag within the window and
then rewinds is reported OK until the zero-lag observations leave the window.

Group status (Burrow's mapping): ERR if any partition is STOP, STALL or REWIND; else WARN if any
partition is WARN; else OK. :func:`group_status` also returns the worst partition status
(``Status`` declaration order, later is worse: REWIND > STOP > STALL > WARN > OK).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from collectors.models import Status

__all__ = [
    "Point",
    "catch_up_eta",
    "empty_group_expired",
    "group_status",
    "lag_always_nonzero",
    "lag_increasing",
    "offsets_rewind",
    "offsets_stalled",
    "offsets_stopped",
    "partition_status",
]

Point = tuple[float, int, "int | None"]  # (at, committed_offset, lag)

_STATUS_ORDER = {s: i for i, s in enumerate(Status)}
_GROUP_ERR = frozenset({Status.STOP, Status.STALL, Status.REWIND})


def _known(lag: int | None) -> bool:
    return lag is not None and lag >= 0


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def lag_always_nonzero(points: Sequence[Point]) -> bool:
    """Rule 1 - "If the lag is zero at any point in the window, the partition is OK."

    Returns True when no observation has a lag of zero (unknown lags are not zero).
    """
    for p in points:
        if p[2] == 0:
            return False
    return True


def offsets_rewind(points: Sequence[Point]) -> bool:
    """Rule 2 - "If the committed offset decreases from one observation to the next, the
    partition is REWIND."
    """
    for i in range(1, len(points)):
        if points[i][1] < points[i - 1][1]:
            return True
    return False


def offsets_stalled(points: Sequence[Point]) -> bool:
    """Rule 3 - "If the committed offset does not change over the whole window and the lag is
    non-zero, the partition is STALL" (consumer connected but not making progress).

    The lag part is established by the caller (current lag > 0, Rule 1 already failed); this
    checks that every observation has the same committed offset (at least 2 observations).
    """
    if len(points) < 2:
        return False
    first = points[0][1]
    for p in points:
        if p[1] != first:
            return False
    return True


def offsets_stopped(points: Sequence[Point], now: float, last_changed_at: float | None) -> bool:
    """Rule 4 - "If the time since the committed offset last changed is greater than the
    window's time span and the lag is non-zero, the partition is STOP" (consumer stopped
    committing).

    Window span = time of the last observation - time of the first. Burrow compares the time
    since the last *commit* with the span of the commit history; without commit times the last
    *change* of the committed value stands in for it. ``last_changed_at=None`` (unknown) falls
    back to the first observation of the current value found in the window. Needs 2 points.
    """
    if len(points) < 2:
        return False
    span = points[-1][0] - points[0][0]
    if last_changed_at is None:
        last_changed_at = points[-1][0]
        current = points[-1][1]
        for p in reversed(points):
            if p[1] != current:
                break
            last_changed_at = p[0]
    return now - last_changed_at > span


def lag_increasing(points: Sequence[Point]) -> bool:
    """Rule 5 - "If the committed offset moves but the lag increases at every step over a full
    window, the partition is WARN" (consumer too slow, falling behind).

    Strict, as the rule says: lag[i] > lag[i-1] at every step. Burrow reads it as *never
    decreases* (>=); we do not, because a backlog that stays exactly constant while offsets move
    is a consumer keeping pace (e.g. one record per poll interval on a quiet topic), and polling
    makes an exactly constant lag common there. Any unknown lag in the window makes the rule not
    apply. "Offset moves" is guaranteed by the ordering (Rule 3, no movement at all, comes first).
    """
    if len(points) < 2:
        return False
    prev = points[0][2]
    if not _known(prev):
        return False
    for p in points[1:]:
        lag = p[2]
        if not _known(lag) or lag <= prev:
            return False
        prev = lag
    return True


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def partition_status(
    points: Sequence[Point],
    now: float,
    last_changed_at: float | None = None,
    *,
    window_size: int = 10,
    connected: bool = False,
    current_lag: int | None = None,
) -> Status:
    """Status of one partition from its committed-offset window (oldest first).

    ``window_size``: number of observations that makes a full window (the status window).
    ``connected``: a live group member owns the partition (see module docstring, STALL vs STOP).
    ``current_lag``: lag now; defaults to the last observation's lag.
    """
    if not points:
        return Status.OK
    if current_lag is None:
        current_lag = points[-1][2]
    if not _known(current_lag) or current_lag == 0:
        return Status.OK
    nonzero = lag_always_nonzero(points)
    if nonzero and not connected and offsets_stopped(points, now, last_changed_at):
        return Status.STOP
    if nonzero:
        if offsets_rewind(points):
            return Status.REWIND
        if len(points) >= window_size:
            if offsets_stalled(points):
                return Status.STALL
            if lag_increasing(points):
                return Status.WARN
    return Status.OK


def group_status(statuses: Iterable[Status]) -> tuple[Status, Status]:
    """(group status, worst partition status) from partition statuses.

    Group: ERR if any STOP/STALL/REWIND, else WARN if any WARN, else OK (no partitions -> OK).
    Worst: the latest in ``Status`` declaration order (OK when there are none).
    """
    worst = Status.OK
    rank = _STATUS_ORDER
    for s in statuses:
        if rank[s] > rank[worst]:
            worst = s
    if worst in _GROUP_ERR or worst is Status.ERR:
        return Status.ERR, worst
    if worst is Status.WARN:
        return Status.WARN, worst
    return Status.OK, worst


def catch_up_eta(lag: int, consume_rate: float | None, produce_rate: float | None) -> float | None:
    """Seconds until the backlog is consumed: ``lag / (consume_rate - produce_rate)``.

    0 when there is no lag (whatever the rates); None when a rate is unknown or the consumer is
    not catching up (consume_rate <= produce_rate).
    """
    if lag <= 0:
        return 0.0
    if consume_rate is None or produce_rate is None:
        return None
    net = consume_rate - produce_rate
    if net <= 0:
        return None
    return lag / net


def empty_group_expired(empty_since: float | None, now: float, ttl: float) -> bool:
    """True when a group has been Empty for longer than ``ttl`` seconds (None = not empty)."""
    return empty_since is not None and now - empty_since > ttl
