"""The greatest value per key over a sliding window of cycles, kept per time bucket between calls.

`KafkaStore.window_peaks` is asked each cycle for the greatest value of a field per topic over
the last `seconds` (TopicProduceStopped: 1 h by default, so 240 cycles x every topic at 15 s).
Grouping all of those rows in SQLite each time cost ~68 ms a call after an hour with 1,000 topics.

Here the window's cycles are split into buckets of `seconds / BUCKETS_PER_WINDOW` by their time.
A bucket's maxima are kept together with the exact cycles, (id, at), they came from, and reused
while the window holds exactly those cycles of that bucket:

- a bucket whose cycles are the kept ones plus newer ones (the newest bucket, as cycles arrive)
  reads only the new cycles' rows and folds them in;
- any other change (the oldest bucket, which cycles leave; a bucket thinned by downsampling or
  given a cycle late) reads the bucket's rows again.

So the answer is always the greatest value over exactly the window's rows, whatever wrote or
pruned the file in between, and a call reads about one bucket of rows instead of the window.

Memory: a value per key and bucket, 13 buckets (12 and a partial one) per window kept: 0.75 MB
for 1,000 topics (tracemalloc, `bench/bench_alert_eval.py`). The built-in rule keeps one window
per cluster; past `KEPT_WINDOWS`, the least recently asked window is read whole when next asked.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

BUCKETS_PER_WINDOW = 12
KEPT_WINDOWS = 16  # (cluster, field, window) combinations kept; the least recently asked goes first

Cycle = tuple[int, float]  # (cycle id, at)
# the greatest value per key over the rows of these cycle ids (keys without a value left out)
ReadMaxima = Callable[[Sequence[int]], dict[int, float]]


def bucket_width(seconds: float) -> float:
    """The width of a window's buckets: one bucket for a window of no or unbounded length."""
    return seconds / BUCKETS_PER_WINDOW if 0.0 < seconds < math.inf else math.inf


def merge_maxima(into: dict[int, float], other: dict[int, float]) -> None:
    """`into` becomes the greatest value per key of both."""
    for key, value in other.items():
        current = into.get(key)
        if current is None or value > current:
            into[key] = value


class PeakBuckets:
    """Bucket maxima kept from one call to the next, per window (see the module). Thread-safe:
    concurrent calls each compute an exact answer; the last one's buckets are kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, dict[int, tuple[tuple[Cycle, ...], dict[int, float]]]] = OrderedDict()

    def peaks(self, window: Hashable, cycles: Sequence[Cycle], width: float, read: ReadMaxima) -> dict[int, float]:
        """The greatest value per key over the rows of `cycles` (the window's, ordered by at),
        reusing what was kept for `window` where a bucket's cycles allow it."""
        buckets: dict[int, list[Cycle]] = {}
        for cycle in cycles:
            k = math.floor(cycle[1] / width) if width < math.inf else 0
            members = buckets.get(k)
            if members is None:
                buckets[k] = [cycle]
            else:
                members.append(cycle)
        with self._lock:
            kept = self._kept.pop(window, {})
        fresh: dict[int, tuple[tuple[Cycle, ...], dict[int, float]]] = {}
        out: dict[int, float] = {}
        for k, members in buckets.items():
            now_in = tuple(members)
            before = kept.get(k)
            if before is not None and before[0] == now_in:
                maxima = before[1]
            elif before is not None and now_in[:len(before[0])] == before[0]:
                maxima = dict(before[1])
                merge_maxima(maxima, read([cid for cid, _ in now_in[len(before[0]):]]))
            else:
                maxima = read([cid for cid, _ in now_in])
            fresh[k] = (now_in, maxima)
            merge_maxima(out, maxima)
        with self._lock:
            self._kept[window] = fresh
            while len(self._kept) > KEPT_WINDOWS:
                self._kept.popitem(last=False)
        return out
