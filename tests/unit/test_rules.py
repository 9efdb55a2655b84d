"""Burrow-style status rules: this table is their specification. Pure, no I/O, no clock."""
from __future__ import annotations

import math

import numpy as np
import pytest

from collectors.kafka.rules import (
    catch_up_eta,
    empty_group_expired,
    group_status,
    lag_always_nonzero,
    lag_increasing,
    offsets_rewind,
    offsets_stalled,
    offsets_stopped,
    partition_status,
)
from collectors.kafka.vector_rules import STATUS_BY_CODE, partition_statuses
from collectors.models import Status

T0 = 1_000.0
DT = 30.0
FULL = 10


def win(offsets, lags, t0=T0, dt=DT):
    """Window of observations (at, committed, lag), one every `dt` seconds from `t0`."""
    assert len(offsets) == len(lags)
    return [(t0 + i * dt, o, lag) for i, (o, lag) in enumerate(zip(offsets, lags))]


def last_at(points):
    return points[-1][0]


MOVING = [100 + 10 * i for i in range(FULL)]
CONST = [500] * FULL
INCREASING_LAG = [50 + 5 * i for i in range(FULL)]
FLUCTUATING_LAG = [40, 55, 30, 60, 45, 35, 50, 42, 38, 41]

# (points, now, last_changed_at, connected, expected)
CASES = [
    # -- Rule 1
    pytest.param(win(CONST, [5, 5, 0, 5, 5, 5, 5, 5, 5, 5]), None, T0, True, Status.OK,
                 id="Rule 1 - lag zero at some point in window -> OK (even though offset never moves)"),
    pytest.param(win(CONST, [5] * 9 + [0]), None, T0, False, Status.OK,
                 id="Rule 1 - current lag zero -> OK"),
    pytest.param(win([100, 90, 80, 70, 60, 50, 40, 30, 20, 10], [9, 9, 9, 9, 9, 9, 9, 9, 9, 0]), None, None, False,
                 Status.OK, id="Rule 1 - current lag zero beats a rewind -> OK"),
    pytest.param(win(CONST, [0] + [7] * 9), T0 + 3600, T0 - 3600, False, Status.OK,
                 id="Rule 1 - zero lag in window shields STOP (Burrow's recent-lag-zero) -> OK"),
    # -- Rule 2
    pytest.param(win([100, 110, 120, 90, 100, 110, 120, 130, 140, 150], FLUCTUATING_LAG), None, None, True,
                 Status.REWIND, id="Rule 2 - offset decreases -> REWIND"),
    pytest.param(win([100, 90], [5, 15]), None, None, True, Status.REWIND,
                 id="Rule 2 - offset decreases, window not full -> REWIND (a decrease is certain)"),
    pytest.param(win([100, 90] + [90] * 8, [5] * 10), None, T0 + DT, True, Status.REWIND,
                 id="Rule 2 - REWIND checked before STALL"),
    # -- Rule 3
    pytest.param(win(CONST, [7] * FULL), None, T0, True, Status.STALL,
                 id="Rule 3 - offset constant over full window, lag non-zero, member owns it -> STALL"),
    pytest.param(win(CONST, [7] * FULL), None, T0 - 3600, True, Status.STALL,
                 id="Rule 3 - connected consumer is never STOP, however long the stall -> STALL"),
    pytest.param(win([500] * 5, [7] * 5), None, T0, True, Status.OK,
                 id="Rule 3 - offset constant but window not full -> OK"),
    pytest.param(win(CONST, [7] * FULL), None, T0, False, Status.STALL,
                 id="Rule 3 - constant since the window began, now = last observation -> STALL (silence == span, not >)"),
    # -- Rule 4
    pytest.param(win(CONST, [7] * FULL), None, T0 - DT, False, Status.STOP,
                 id="Rule 4 - no owner, unchanged for longer than window span -> STOP"),
    pytest.param(win(CONST, [7] * FULL), T0 + 9 * DT + 1, T0, False, Status.STOP,
                 id="Rule 4 - no owner, silence just over the span -> STOP"),
    pytest.param(win([100, 100, 100], [7, 7, 7]), None, T0 - 3600, False, Status.STOP,
                 id="Rule 4 - window not full but silence already exceeds it (history) -> STOP"),
    pytest.param(win([100] * 5 + [90] * 5, [7] * 10), T0 + 3600, None, False, Status.STOP,
                 id="Rule 4 - STOP checked before REWIND"),
    pytest.param(win(MOVING, FLUCTUATING_LAG), T0 + 9 * DT, T0 + 9 * DT, False, Status.OK,
                 id="Rule 4 - no owner but offset keeps changing -> OK"),
    pytest.param(win([100], [7]), T0 + 3600, T0 - 3600, False, Status.OK,
                 id="Rule 4 - single observation -> OK (no span to compare)"),
    # -- Rule 5
    pytest.param(win(MOVING, INCREASING_LAG), None, T0 + 9 * DT, True, Status.WARN,
                 id="Rule 5 - offsets move, lag increases at every step over full window -> WARN"),
    pytest.param(win(MOVING[:5], INCREASING_LAG[:5]), None, T0 + 4 * DT, True, Status.OK,
                 id="Rule 5 - lag increasing but window not full -> OK"),
    pytest.param(win(MOVING, [50] * FULL), None, T0 + 9 * DT, True, Status.OK,
                 id="Rule 5 - lag constant while offsets move -> OK (strict; Burrow would WARN)"),
    pytest.param(win(MOVING, INCREASING_LAG[:5] + [40] + INCREASING_LAG[6:]), None, T0 + 9 * DT, True, Status.OK,
                 id="Rule 5 - lag decreases once -> OK"),
    pytest.param(win(MOVING, INCREASING_LAG[:5] + [None] + INCREASING_LAG[6:]), None, T0 + 9 * DT, True, Status.OK,
                 id="Rule 5 - unknown lag in window -> OK"),
    # -- otherwise
    pytest.param(win(MOVING, FLUCTUATING_LAG), None, T0 + 9 * DT, True, Status.OK,
                 id="healthy - offsets move, lag fluctuates -> OK"),
    pytest.param([], T0, None, True, Status.OK, id="empty window -> OK"),
    pytest.param(win(CONST, [7] * 9 + [None]), None, T0 - 3600, False, Status.OK,
                 id="current lag unknown -> OK"),
]


def vectorised_status(points, now, last_changed_at=None, *, window_size=10, connected=False, current_lag=None):
    """``partition_status`` through the vectorised rules (collectors.kafka.vector_rules): the
    window as one row, right-aligned in columns wider than it (the padding must not count)."""
    width = max(len(points), window_size) + 2
    t = np.full((1, width), np.nan)
    o = np.full((1, width), 999_999, np.int64)  # padding that would look like a rewind if it counted
    lag = np.zeros((1, width), np.int64)  # padding that would look like a zero lag if it counted
    for j, (at, offset, lg) in enumerate(points, start=width - len(points)):
        t[0, j], o[0, j], lag[0, j] = at, offset, -1 if lg is None else lg
    if current_lag is None:
        current_lag = points[-1][2] if points else None
    (code,) = partition_statuses(
        t, o, lag, np.array([len(points)]), now, np.array([math.nan if last_changed_at is None else last_changed_at]),
        np.array([-1 if current_lag is None else current_lag]), np.array([connected]), window_size)
    return STATUS_BY_CODE[code]


BOTH = pytest.mark.parametrize("status_of", [partition_status, vectorised_status], ids=["scalar", "vectorised"])


@BOTH
@pytest.mark.parametrize("points, now, last_changed_at, connected, expected", CASES)
def test_partition_status(status_of, points, now, last_changed_at, connected, expected):
    if now is None:
        now = last_at(points)
    got = status_of(points, now, last_changed_at, window_size=FULL, connected=connected)
    assert got is expected


@BOTH
def test_current_lag_argument_overrides_last_observation(status_of):
    points = win(CONST, [7] * FULL)
    assert status_of(points, last_at(points), T0, window_size=FULL, connected=True, current_lag=0) is Status.OK
    assert status_of(points, last_at(points), T0, window_size=FULL, connected=True, current_lag=7) is Status.STALL


# --------------------------------------------------------------------------------------------
# the rule functions one by one
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, points, expected",
    [
        pytest.param(lag_always_nonzero, win([1, 2], [3, 4]), True, id="Rule 1 fn - no zero -> lag always non-zero"),
        pytest.param(lag_always_nonzero, win([1, 2], [0, 4]), False, id="Rule 1 fn - a zero -> False"),
        pytest.param(lag_always_nonzero, win([1, 2], [None, 4]), True, id="Rule 1 fn - unknown is not zero"),
        pytest.param(offsets_rewind, win([1, 2, 1], [1, 1, 1]), True, id="Rule 2 fn - decrease -> True"),
        pytest.param(offsets_rewind, win([1, 1, 2], [1, 1, 1]), False, id="Rule 2 fn - non-decreasing -> False"),
        pytest.param(offsets_stalled, win([3, 3, 3], [1, 1, 1]), True, id="Rule 3 fn - all equal -> True"),
        pytest.param(offsets_stalled, win([3, 3, 4], [1, 1, 1]), False, id="Rule 3 fn - a change -> False"),
        pytest.param(offsets_stalled, win([3], [1]), False, id="Rule 3 fn - one observation -> False"),
        pytest.param(lag_increasing, win([1, 2, 3], [1, 2, 3]), True, id="Rule 5 fn - strictly increasing -> True"),
        pytest.param(lag_increasing, win([1, 2, 3], [1, 2, 2]), False, id="Rule 5 fn - flat step -> False"),
        pytest.param(lag_increasing, win([1, 2, 3], [-1, 2, 3]), False, id="Rule 5 fn - negative lag means unknown"),
    ],
)
def test_rule_functions(fn, points, expected):
    assert fn(points) is expected


@pytest.mark.parametrize(
    "now, last_changed_at, expected",
    [
        pytest.param(T0 + 60, T0, False, id="Rule 4 fn - silence == span -> not stopped"),
        pytest.param(T0 + 61, T0, True, id="Rule 4 fn - silence > span -> stopped"),
        pytest.param(T0 + 60, T0 - 1, True, id="Rule 4 fn - value older than window -> stopped"),
        pytest.param(T0 + 61, None, True, id="Rule 4 fn - unknown last change: found in window"),
    ],
)
def test_offsets_stopped(now, last_changed_at, expected):
    assert offsets_stopped(win([5, 5, 5], [1, 1, 1]), now, last_changed_at) is expected


def test_offsets_stopped_unknown_last_change_uses_latest_value_run():
    points = win([1, 5, 5], [1, 1, 1])  # current value first seen at T0 + 30
    assert offsets_stopped(points, T0 + 90, None) is False  # 60 == span
    assert offsets_stopped(points, T0 + 91, None) is True


# --------------------------------------------------------------------------------------------
# group status
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statuses, expected",
    [
        pytest.param([], (Status.OK, Status.OK), id="no partitions -> OK"),
        pytest.param([Status.OK, Status.OK], (Status.OK, Status.OK), id="all OK -> OK"),
        pytest.param([Status.OK, Status.WARN], (Status.WARN, Status.WARN), id="any WARN -> WARN"),
        pytest.param([Status.WARN, Status.STALL], (Status.ERR, Status.STALL), id="any STALL -> ERR"),
        pytest.param([Status.OK, Status.STOP], (Status.ERR, Status.STOP), id="any STOP -> ERR"),
        pytest.param([Status.REWIND, Status.OK], (Status.ERR, Status.REWIND), id="any REWIND -> ERR"),
        pytest.param([Status.STALL, Status.STOP, Status.REWIND], (Status.ERR, Status.REWIND),
                     id="worst partition = latest in Status order (REWIND > STOP > STALL)"),
    ],
)
def test_group_status(statuses, expected):
    assert group_status(statuses) == expected


# --------------------------------------------------------------------------------------------
# catch-up ETA and empty-group TTL
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lag, consume, produce, expected",
    [
        pytest.param(0, None, None, 0.0, id="zero lag -> 0 even with unknown rates"),
        pytest.param(0, 1.0, 5.0, 0.0, id="zero lag -> 0 even when not catching up"),
        pytest.param(100, 10.0, 5.0, 20.0, id="catching up -> lag / (consume - produce)"),
        pytest.param(100, 10.0, 0.0, 10.0, id="no production -> lag / consume"),
        pytest.param(100, 5.0, 5.0, None, id="consume == produce -> not catching up"),
        pytest.param(100, 4.0, 5.0, None, id="consume < produce -> not catching up"),
        pytest.param(100, None, 5.0, None, id="consume rate unknown"),
        pytest.param(100, 10.0, None, None, id="produce rate unknown"),
    ],
)
def test_catch_up_eta(lag, consume, produce, expected):
    got = catch_up_eta(lag, consume, produce)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    "empty_since, now, ttl, expected",
    [
        pytest.param(None, 1e9, 10.0, False, id="not empty -> never expired"),
        pytest.param(100.0, 105.0, 10.0, False, id="empty for less than TTL -> kept"),
        pytest.param(100.0, 110.0, 10.0, False, id="empty for exactly TTL -> kept"),
        pytest.param(100.0, 110.5, 10.0, True, id="empty for longer than TTL -> expired"),
    ],
)
def test_empty_group_expired(empty_since, now, ttl, expected):
    assert empty_group_expired(empty_since, now, ttl) is expected
