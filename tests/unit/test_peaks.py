"""`monitor.storage.peaks`: bucket maxima kept between calls. The table of cases is the
specification of what a call reads again; every case also checks the answer against the maximum
over all the window's rows.

Rows here: cycle id -> {key: value}. Buckets are 100 s wide (a 1,200 s window), so cycles at
0-99 s share bucket 0, 100-199 s bucket 1, and so on.
"""
from __future__ import annotations

import math

import pytest

from monitor.storage.peaks import BUCKETS_PER_WINDOW, KEPT_WINDOWS, PeakBuckets, bucket_width, merge_maxima

WIDTH = bucket_width(1200.0)


def rows_of(cid: int) -> dict[int, float]:
    """Cycle `cid`'s rows: keys 1-3, values that differ per cycle and key (key 3 only in odd cycles)."""
    out = {1: float(cid % 7), 2: float((cid * 5) % 11)}
    if cid % 2:
        out[3] = float(cid)
    return out


class Reads:
    """`read` as the store passes it, recording which cycle ids each call asked for."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def __call__(self, ids) -> dict[int, float]:
        self.asked.append(list(ids))
        out: dict[int, float] = {}
        for cid in ids:
            merge_maxima(out, rows_of(cid))
        return out

    def ids(self) -> set[int]:
        return {cid for call in self.asked for cid in call}


def brute(cycles) -> dict[int, float]:
    out: dict[int, float] = {}
    for cid, _ in cycles:
        merge_maxima(out, rows_of(cid))
    return out


def cycles_at(*pairs: tuple[int, float]) -> list[tuple[int, float]]:
    return sorted(pairs, key=lambda c: (c[1], c[0]))


BEFORE = cycles_at((1, 10.0), (2, 50.0), (3, 110.0), (4, 150.0), (5, 210.0))

# (rule, the window's cycles on the second call, the ids the second call reads)
CASES = [
    ("Rule 1 - a bucket whose cycles are unchanged is not read again",
     BEFORE, set()),
    ("Rule 2 - a bucket that gained newer cycles reads only those",
     BEFORE + [(6, 250.0), (7, 260.0)], {6, 7}),
    ("Rule 3 - a cycle in a new bucket is read alone",
     BEFORE + [(6, 320.0)], {6}),
    ("Rule 4 - a bucket that lost its oldest cycle (the window moved on) is read again",
     BEFORE[1:], {2}),
    ("Rule 5 - a bucket that lost a cycle in the middle (downsampling) is read again",
     cycles_at((1, 10.0), (2, 50.0), (4, 150.0), (5, 210.0)), {4}),
    ("Rule 6 - a bucket given an older cycle late is read again",
     cycles_at(*BEFORE, (9, 105.0)), {3, 4, 9}),
    ("Rule 7 - a cycle id seen before at another time is another cycle",
     cycles_at((1, 10.0), (2, 50.0), (3, 110.0), (4, 150.0), (5, 215.0)), {5}),
    ("Rule 8 - a bucket gone from the window is not read and not kept",
     cycles_at((3, 110.0), (4, 150.0), (5, 210.0)), set()),
]


@pytest.mark.parametrize("rule, after, read_again", CASES, ids=[c[0] for c in CASES])
def test_a_call_reads_only_the_buckets_whose_cycles_changed(rule, after, read_again) -> None:
    buckets, reads = PeakBuckets(), Reads()
    assert buckets.peaks("w", BEFORE, WIDTH, reads) == brute(BEFORE)
    assert reads.ids() == {1, 2, 3, 4, 5}
    reads.asked.clear()
    assert buckets.peaks("w", after, WIDTH, reads) == brute(after), rule
    assert reads.ids() == read_again, rule


def test_windows_are_kept_apart_and_bounded() -> None:
    buckets, reads = PeakBuckets(), Reads()
    buckets.peaks("a", BEFORE, WIDTH, reads)
    other = cycles_at((11, 10.0), (12, 20.0))
    assert buckets.peaks("b", other, WIDTH, reads) == brute(other)
    reads.asked.clear()
    assert buckets.peaks("a", BEFORE, WIDTH, reads) == brute(BEFORE)
    assert reads.asked == []  # "b" did not displace "a"
    for i in range(KEPT_WINDOWS):
        buckets.peaks(("more", i), BEFORE, WIDTH, reads)
    reads.asked.clear()
    buckets.peaks("a", BEFORE, WIDTH, reads)
    assert reads.ids() == {1, 2, 3, 4, 5}  # the least recently asked window went


def test_a_long_run_reads_about_a_bucket_a_call_and_stays_exact() -> None:
    """A cycle every 15 s for 3 h against a 1 h window: each call equals the maximum over the
    window's rows, and reads the new cycle plus at most the oldest bucket again."""
    buckets, reads = PeakBuckets(), Reads()
    window, step = 3600.0, 15.0
    width = bucket_width(window)
    per_bucket = width / step
    for i in range(3 * 240):
        now = i * step
        cycles = [(cid, cid * step) for cid in range(i + 1) if cid * step >= now - window]
        reads.asked.clear()
        assert buckets.peaks("w", cycles, width, reads) == brute(cycles), i
        if i > 0:
            assert len(reads.ids()) <= 1 + per_bucket, i


def test_bucket_width() -> None:
    assert bucket_width(3600.0) == 3600.0 / BUCKETS_PER_WINDOW
    assert bucket_width(0.0) == math.inf  # the window is one instant: one bucket
    assert bucket_width(math.inf) == math.inf
    one = PeakBuckets()
    assert one.peaks("w", BEFORE, math.inf, Reads()) == brute(BEFORE)
