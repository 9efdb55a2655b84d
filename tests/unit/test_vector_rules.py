"""The vectorised status rules and consume rates agree with the scalar rules, window by window.

The table of ``test_rules.py`` runs against both implementations; here thousands of random
windows (moving, stuck, rewinding, with zero and unknown lags, short and full, `now` before,
at and after the newest observation) are judged in one batch each way and compared row by row.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from collectors.kafka.rules import partition_status
from collectors.kafka.vector_rules import STATUS_BY_CODE, commit_rates, partition_statuses
from collectors.kafka.windows import OffsetWindows
from collectors.models import Status

WIDTH = 12


def random_window(rng: random.Random) -> list[tuple[float, int, int | None]]:
    """A committed-offset window (at, offset, lag): oldest first, times strictly increasing."""
    size = rng.choice([0, 1, 2, 3, 5, 9, 10, 10, 11, 12, 12])
    at, offset, lag = 1_000.0, rng.randrange(0, 1_000), rng.randrange(0, 50)
    style = rng.choice(["moving", "stuck", "rewinding", "falling-behind", "mixed"])
    points = []
    for _ in range(size):
        points.append((at, offset, None if rng.random() < 0.04 else lag))
        at += rng.choice([1.0, 15.0, 30.0, 30.0, 45.5])
        if style == "moving":
            offset += rng.randrange(1, 20)
            lag = max(0, lag + rng.randrange(-10, 10))
        elif style == "stuck":
            lag += rng.randrange(0, 3)
        elif style == "rewinding":
            offset += rng.choice([-30, 5, 10])
        elif style == "falling-behind":
            offset += rng.randrange(1, 5)
            lag += rng.randrange(1, 10)
        else:
            offset += rng.choice([0, 0, 3, -2])
            lag = rng.choice([0, lag + 1, lag, max(0, lag - 1)])
    return points


def as_columns(windows: list[list[tuple[float, int, int | None]]]):
    """Right-aligned (rows, WIDTH) columns of the windows, with padding that must not count."""
    rows = len(windows)
    t = np.full((rows, WIDTH), np.nan)
    o = np.full((rows, WIDTH), -5, np.int64)
    lag = np.zeros((rows, WIDTH), np.int64)
    for i, points in enumerate(windows):
        for j, (at, offset, lg) in enumerate(points, start=WIDTH - len(points)):
            t[i, j], o[i, j], lag[i, j] = at, offset, -1 if lg is None else lg
    return t, o, lag, np.array([len(p) for p in windows])


def test_random_windows_get_the_scalar_rules_status() -> None:
    rng = random.Random(14)
    windows, nows, changed, connected, current = [], [], [], [], []
    for _ in range(5_000):
        points = random_window(rng)
        windows.append(points)
        newest = points[-1][0] if points else 1_000.0
        nows.append(newest + rng.choice([0.0, 0.0, 10.0, 100.0, 1_000.0]))
        changed.append(rng.choice([None, None, newest, 1_000.0, 500.0]))
        connected.append(rng.random() < 0.5)
        current.append(rng.choice([None, None, 0, 7]))
    expected = [
        partition_status(points, now, last, window_size=10, connected=conn, current_lag=cur)
        for points, now, last, conn, cur in zip(windows, nows, changed, connected, current)
    ]
    t, o, lag, n = as_columns(windows)
    current_lags = [cur if cur is not None else (p[-1][2] if p and p[-1][2] is not None else -1)
                    for p, cur in zip(windows, current)]
    got = []
    for now in sorted(set(nows)):  # `now` is one value per call: judge the rows of each `now` at once
        rows = [i for i, x in enumerate(nows) if x == now]
        codes = partition_statuses(
            t[rows], o[rows], lag[rows], n[rows], now,
            np.array([math.nan if changed[i] is None else changed[i] for i in rows]),
            np.array([current_lags[i] for i in rows]), np.array([connected[i] for i in rows]), 10)
        got.extend(zip(rows, codes.tolist()))
    got = [STATUS_BY_CODE[code] for _, code in sorted(got)]
    mismatches = [i for i, (a, b) in enumerate(zip(expected, got)) if a is not b]
    assert not mismatches, [(windows[i], nows[i], expected[i], got[i]) for i in mismatches[:3]]
    assert {s for s in expected} >= {Status.OK, Status.WARN, Status.STALL, Status.STOP, Status.REWIND}


def reference_commit_rate(points, now: float, window: float) -> float | None:
    """The consume rate as docs/metrics.md defines it, written plainly: observations at or before
    `now`, after the most recent decrease; base = the newest at or before `now - window` (the
    oldest of them when history is shorter); None with fewer than two or no time between them."""
    usable = [p for p in points if p[0] <= now]
    start = 0
    for i in range(1, len(usable)):
        if usable[i][1] < usable[i - 1][1]:
            start = i
    usable = usable[start:]
    if len(usable) < 2:
        return None
    older = [p for p in usable if p[0] <= now - window]
    base = older[-1] if older else usable[0]
    last = usable[-1]
    if base is last or last[0] - base[0] <= 0:
        return None
    return (last[1] - base[1]) / (last[0] - base[0])


@pytest.mark.parametrize("window", [30.0, 100.0, 300.0])
def test_random_windows_get_the_reference_consume_rate(window: float) -> None:
    rng = random.Random(int(window))
    windows = [random_window(rng) for _ in range(3_000)]
    for now_offset in (-50.0, 0.0, 60.0):
        nows = [(p[-1][0] if p else 1_000.0) + now_offset for p in windows]
        t, o, _lag, n = as_columns(windows)
        for now in sorted(set(nows)):
            rows = [i for i, x in enumerate(nows) if x == now]
            got = commit_rates(t[rows], o[rows], n[rows], now, window).tolist()
            for i, rate in zip(rows, got):
                expected = reference_commit_rate(windows[i], now, window)
                if expected is None:
                    assert math.isnan(rate), (windows[i], now)
                else:
                    assert rate == expected, (windows[i], now)


def test_offset_windows_judge_as_the_scalar_rules_over_the_last_status_window() -> None:
    """Through OffsetWindows: a series longer than the status window is judged on its last
    observations only (a rewind 12 observations ago has left a 10-observation window)."""
    w = OffsetWindows(status_window=15)
    offsets = [100, 50] + [50] * 13  # rewind at the 2nd observation, then stuck
    for i, offset in enumerate(offsets):
        w.record_committed("g", 1_000.0 + 30 * i, [(("t", 0), offset, 7)])
    (row,) = w._group_series("g").values()
    now = 1_000.0 + 30 * 14
    points = [tuple(p) for p in w.committed_series("g", "t", 0)]
    for status_window, connected in ((15, True), (10, True), (10, False)):
        rates, statuses = w.judge_commits([row], [7], [connected], now, 300.0, status_window)
        expected = partition_status(points[-status_window:], now, w.last_changed_at("g", "t", 0),
                                    window_size=status_window, connected=connected, current_lag=7)
        assert statuses == [expected]
        assert rates == [w.rate_of_committed("g", "t", 0, now, 300.0)]
    assert w.judge_commits([row], [7], [True], now, 300.0, 15)[1] == [Status.REWIND]
    assert w.judge_commits([row], [7], [True], now, 300.0, 10)[1] == [Status.STALL]


def test_commit_columns_grow_reuse_released_rows_and_keep_series_apart() -> None:
    """Thousands of series: rows are added past the first capacity, a forgotten group's rows are
    handed to new series empty, and every series keeps its own observations."""
    w = OffsetWindows(status_window=4)
    for cycle in range(6):
        w._record_commits((f"g{g}", 100.0 + cycle, [(("t", p), 10 * cycle + g + p, p) for p in range(3)])
                          for g in range(400))
    assert w.committed_series("g7", "t", 2) == [(102.0 + i, 10 * (2 + i) + 9, 2) for i in range(4)]
    w.forget_group("g7")
    w.record_committed("new", 200.0, [(("t", 0), 5, 1)])
    assert w.committed_series("new", "t", 0) == [(200.0, 5, 1)]  # a reused row starts empty
    assert w.last_changed_at("new", "t", 0) == 200.0
    assert w.committed_series("g8", "t", 0) == [(102.0 + i, 10 * (2 + i) + 8, 0) for i in range(4)]
    assert w.stats()["committed_series"] == 399 * 3 + 1


def test_one_series_twice_in_a_batch_is_recorded_in_order() -> None:
    w = OffsetWindows()
    w._record_commits([("g", 10.0, [(("t", 0), 5, 1)]), ("g", 20.0, [(("t", 0), 6, 1)]),
                       ("g", 15.0, [(("t", 0), 9, 1)])])  # older than the newest: dropped
    assert w.committed_series("g", "t", 0) == [(10.0, 5, 1), (20.0, 6, 1)]
    assert w.out_of_order_dropped == 1
    assert w.last_changed_at("g", "t", 0) == 20.0


def test_recording_commits_leaves_numpy_ma_unimported() -> None:
    """`np.unique` imports numpy.ma: ~2 MB of the monitor's process that nothing else uses. The
    check for a series twice in a batch sorts and compares instead (a fresh interpreter, as the
    monitor's process starts)."""
    from tests.helpers import fresh_interpreter_lines

    probe = ("import sys\n"
             "from collectors.kafka.windows import OffsetWindows\n"
             "w = OffsetWindows()\n"
             "w._record_commits([('g', 10.0, [(('t', 0), 5, 1), (('t', 1), 3, 0)]),\n"
             "                   ('g', 20.0, [(('t', 0), 6, 1)])])\n"
             "print('numpy.ma' in sys.modules, [tuple(p) for p in w.committed_series('g', 't', 0)])\n")
    assert fresh_interpreter_lines(probe) == ["False [(10.0, 5, 1), (20.0, 6, 1)]"]
