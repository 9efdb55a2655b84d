"""In-memory offset history: the windows behind rates, time-lag interpolation and status.

Pure data structure: no I/O, no clock. Every method that needs "now" takes it as an argument.
History (SQLite, elsewhere) replays past observations through :meth:`OffsetWindows.record` at
startup, so rates, interpolation and status continue across a restart.

Two kinds of series:

* **End offsets** per ``(topic, partition)``: ``(at, end_offset)`` points spanning
  ``end_offset_horizon`` seconds (24 h by default) with at most ``max_points`` points (256).
  Used for produce rates and to answer "when did the log end reach offset X?" (time lag).
* **Committed offsets** per ``(group, topic, partition)``: the last ``status_window`` points
  ``(at, committed_offset, lag)`` plus ``last_changed_at``, the first time the current committed
  value was observed. Used for consume rates and the Burrow-style status rules.

Memory: every end-offset point lives in typed ``array`` columns (``d`` times, offsets as
deltas from a base per series, ``I`` sample numbers). The times and sample numbers are shared by
the series sampled together (a cluster's partitions: one array for all of them, see
``_SharedArrays``), so a point costs its offset delta, plus a few hundred bytes per series. A
delta takes the fewest bytes that hold the records the window spans: 1 byte under 256 (an idle
partition), 2 under 65,536, 4 under 2**32, else 8 (see ``_store_offsets``). Committed
points live in numpy columns, a row per series (``collectors.kafka.commit_columns``): 24 bytes a
point, ~250 bytes per series at 10 points; a cycle's rows are judged at once
(:meth:`OffsetWindows.judge_commits`, ``collectors.kafka.vector_rules``).

Measured by ``bench/bench_signals.py``: 10,000 partitions with 24 h of
30-s samples plus 10,000 committed series (1,000 groups x 10) hold ~15 MB (~23 MB with 8-byte
offsets, ~49 MB with a time array per series).

Thinning and its error bound
----------------------------
When an end-offset series is full it is thinned so that recent data stays dense and old data
sparse. Naive "drop every other point of the older half whenever full" was measured and rejected:
old points get halved again at every pass, so density decays exponentially with age (with 30-s
samples only 2 points were left for 4-12 h ago and none older). Instead every point carries its
sample number ``s`` (count of appends to that series) and a pass keeps a point of sample-age
``a = s_newest - s`` only if ``s`` is a multiple of ``2**k`` with ``k = bit_length(a // m)``.
Each pass therefore drops every other point of the older levels, the levels nest (a point kept
at level k+1 was kept at level k), and no region is thinned twice for the same age. The
resolution parameter ``m`` starts at ``max_points // 4`` and is lowered (x 3/4) until a pass
leaves at most ``3/4 * max_points`` points, which makes the cap hard whatever the sampling rate.
The oldest point is always kept so the series keeps spanning the horizon, and the newest ``m``
samples (48 with the defaults: the last 24 minutes at 30 s) are always at full resolution.

Bound: the true time at which the log end reached offset ``X`` lies in ``(t[j-1], t[j]]`` for
the two retained samples around ``X`` (end offsets never decrease), so the interpolation error is
at most that gap. With regular sampling every ``dt`` seconds the gap at sample-age ``a`` is at
most ``max(dt, 2 * a * dt / m)``, i.e. about ``2 / m`` of the age being estimated: the error of
an interpolated time lag is proportional to the time lag itself. With the defaults (256 points,
30-s samples, 24 h) ``m`` settles at 48: measured worst gaps are 120 s for ages below 1 h,
240 s at 1-3 h, 480 s at 3-6 h, 960 s at 6-12 h and 1920 s (32 min) at 12-24 h, i.e. at most
max(2 samples, 4.5 % of the age) (asserted in ``tests/unit/test_windows.py``). Irregular sampling
(collector outages) adds its own gaps: the bound is always the bracket, see
:meth:`OffsetWindows.offset_time_bracket`. A linear (constant-rate) log is interpolated exactly
whatever the thinning. An offset older than the oldest retained sample yields that sample's time as a
*lower bound* on the time lag (flagged, see :class:`OffsetTime`).
"""
from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from collectors.kafka.commit_columns import CommitColumns
from collectors.kafka.vector_rules import STATUS_BY_CODE, commit_rates, partition_statuses

if TYPE_CHECKING:  # pragma: no cover
    from collectors.models import KafkaClusterSnapshot

__all__ = ["CommitPoint", "OffsetTime", "OffsetWindows"]

_SEQ_LIMIT = 2**32 - 2  # sample numbers are stored as array('I'); renumbered before overflow
# End offsets are stored as deltas from a base, in the first of these array types whose largest
# number holds the window's span: 1, 2, 4 bytes unsigned, else 8 (offsets are below 2**63).
# A day of an idle partition's points (256) takes 256 bytes, not 1 KiB.
_DELTA_TYPES = tuple((code, 2 ** (8 * array(code).itemsize) - 1) for code in ("B", "H", "I")) + (("q", 2**63 - 1),)
_NARROWEST = _DELTA_TYPES[0][0]
# Series judged per numpy pass: bounds the temporary arrays (a few MB; glibc keeps freed heap)
_JUDGED_AT_ONCE = 8192
# The rate of a series that did not move: one float object for all of them, kept in the cycle's
# view (an idle topic's partitions, a still group's; ~32 bytes each otherwise).
_NO_RATE = 0.0


class CommitPoint(NamedTuple):
    """One observation of a group's committed offset for one partition."""

    at: float  # when the committed offset was fetched
    offset: int  # committed offset
    lag: int | None  # end offset known at that time - committed (>= 0); None when unknown


class OffsetTime(NamedTuple):
    """Answer of :meth:`OffsetWindows.offset_time`.

    ``at`` is None when there is no history for the partition or the offset is newer than the
    newest sample. ``within_history`` is True when ``at`` is interpolated between two samples
    (or is a sample); False when the offset is at or before the oldest sample, in which case
    ``at`` is that oldest sample's time: the log end reached the offset *at or before* ``at``,
    so ``now - at`` is a LOWER bound on the time lag.
    """

    at: float | None
    within_history: bool


class _EndSeries:
    __slots__ = ("key", "t", "o", "b", "s", "seq", "m")

    def __init__(self, key: tuple[str, int], m: int, base: int) -> None:
        self.key = key  # the (topic, partition) tuple this series is filed under: groups' series share it
        # ``t`` and ``s`` are shared (see _SharedArrays): never changed in place, only replaced.
        self.t = _NO_TIMES  # fetch times, strictly increasing
        # end offsets, non-decreasing, this series' own: stored as ``o[i] + b``, deltas as narrow
        # as the window's span allows (_DELTA_TYPES): widened when one does not fit (OverflowError),
        # narrowed again by thinning (see _store_offsets)
        self.o = array(_NARROWEST)
        self.b = base
        # sample numbers of the first len(s) points (those kept by the last thinning pass); the
        # points appended since are consecutive: point i >= len(s) has number seq - (len(t) - i).
        # Saves an append per sample on the hot path.
        self.s = _NO_NUMBERS
        self.seq = 0  # number of the next sample
        self.m = m  # thinning resolution (see module docstring)

    def numbers(self) -> list[int]:
        n, k = len(self.t), len(self.s)
        return list(self.s) + list(range(self.seq - (n - k), self.seq))

    def offsets(self) -> list[int]:
        b = self.b
        return [b + d for d in self.o]

    def restart(self, base: int) -> None:
        self.t, self.s = _NO_TIMES, _NO_NUMBERS
        self.o = array(_NARROWEST)
        self.b = base


def _delta_type(span: int) -> str:
    """The narrowest array type of `_DELTA_TYPES` whose numbers reach `span`."""
    for code, largest in _DELTA_TYPES:
        if span <= largest:
            return code
    raise OverflowError(f"an end-offset window spanning {span} records")


def _store_offsets(se: _EndSeries, offsets: list[int]) -> None:
    """Store a series' absolute ``offsets`` as deltas from the smallest, in the narrowest type that
    holds their span (a window of a day of an idle partition: 1 byte a point; of all but the
    busiest partitions: 4 or fewer). Called when a delta no longer fits (or would be negative),
    and by thinning to narrow again."""
    b = min(offsets)
    se.b = b
    se.o = array(_delta_type(max(offsets) - b), [x - b for x in offsets])


def _replace_last_offset(se: _EndSeries, offset: int) -> None:
    try:
        se.o[-1] = offset - se.b
    except OverflowError:
        offsets = se.offsets()
        offsets[-1] = offset
        _store_offsets(se, offsets)


_NO_TIMES = array("d")
_NO_NUMBERS = array("I")


class _SharedArrays:
    """The time and sample-number arrays of the series changed in one pass, shared.

    A cluster's partitions are sampled together: their series have equal times, sample numbers
    and so thinning, and differ only in offsets. So series that shared an array before a change
    share its successor after it: one array per distinct history (usually one per cluster)
    instead of one per partition, 12 of the 20 bytes a point. Arrays are never changed in place;
    each successor is made once per pass, keyed by the identity of what it replaces (kept
    referenced here, so an identity cannot be reused within the pass).
    """

    __slots__ = ("_made",)

    def __init__(self) -> None:
        self._made: dict[tuple, tuple] = {}

    def appended(self, t: array, at: float) -> array:
        key = (id(t), at)
        made = self._made.get(key)
        if made is None:
            new = array("d", t)
            new.append(at)
            made = self._made[key] = (t, new)
        return made[1]

    def trimmed(self, t: array, s: array, i: int) -> tuple[array, array]:
        """``t`` and ``s`` without their first ``i`` points (fewer than i numbers stored in
        ``s``: the rest are the consecutive tail)."""
        key = ("trim", id(t), id(s), i)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = (t, s, t[i:], s[i:])
        return made[2], made[3]

    def thinned(self, se: _EndSeries, target: int) -> tuple[list[int], array, array, int, int]:
        """(indices kept, times, sample numbers, resolution m, next sample number) of a thinning
        pass over ``se`` (see the module docstring): a function of its times, numbers, count and
        resolution alone, so made once for the series that share them."""
        key = ("thin", id(se.t), id(se.s), se.seq, se.m)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = (se.t, se.s, *_thinning(se, target))
        return made[2:]


def _thinning(se: _EndSeries, target: int) -> tuple[list[int], array, array, int, int]:
    s = se.numbers()
    seq = se.seq
    if seq >= _SEQ_LIMIT:  # renumber (after ~4e9 samples)
        base = s[0]
        s = [q - base for q in s]
        seq = s[-1] + 1
    newest = s[-1]
    m = se.m
    while True:
        keep = [
            i
            for i, q in enumerate(s)
            if (a := newest - q) < m or not q & ((1 << (a // m).bit_length()) - 1) or i == 0
        ]
        if len(keep) <= target or m <= 1:
            break
        m = max(1, (m * 3) // 4)
    t = se.t
    return keep, array("d", [t[i] for i in keep]), array("I", [s[i] for i in keep]), m, seq


def _rate_span(t: array, n: int, now: float, window: float) -> tuple[int, int, float] | None:
    """(last, base, seconds between them): the points a rate over ``[now - window, now]`` is taken
    between, of the first ``n`` (those at or before now); None when the rate is unknown.

    The base point is the newest one at or before ``now - window`` (so the whole window is
    covered); when history is shorter than the window, the oldest point.
    """
    if n < 2:
        return None
    last = n - 1
    base = max(bisect_right(t, now - window, 0, n) - 1, 0)
    if base >= last:
        return None
    dt = t[last] - t[base]
    if dt <= 0:
        return None
    return last, base, dt


class OffsetWindows:
    """Compact offset history for rates, time-lag interpolation and status windows.

    Not thread-safe: one collector loop records and derives; others read the derived view.
    """

    def __init__(
        self,
        *,
        end_offset_horizon: float = 86400.0,
        max_points: int = 256,
        status_window: int = 10,
    ) -> None:
        if end_offset_horizon <= 0:
            raise ValueError("end_offset_horizon must be > 0")
        if max_points < 8:
            raise ValueError("max_points must be >= 8")
        if status_window < 2:
            raise ValueError("status_window must be >= 2")
        self.end_offset_horizon = float(end_offset_horizon)
        self.max_points = int(max_points)
        self.status_window = int(status_window)
        self._ends: dict[tuple[str, int], _EndSeries] = {}
        self._commits: dict[str, dict[tuple[str, int], int]] = {}  # group -> partition -> row
        self._columns = CommitColumns(self.status_window)
        self._topic_ids: dict[str, str] = {}  # topic -> id of the life its series belong to
        self.out_of_order_dropped = 0  # points older than the newest one of their series

    # ----------------------------------------------------------------------------------------
    # recording
    # ----------------------------------------------------------------------------------------

    def record(
        self,
        at: float,
        end_offsets: Mapping[tuple[str, int], int],
        committed: Mapping[tuple[str, str, int], int],
        topic_ids: Mapping[str, str | None] | None = None,
    ) -> None:
        """Record one cycle: end offsets keyed (topic, partition), commits keyed (group, topic, partition).

        End offsets are recorded first, so the lag stored with each commit uses this cycle's end
        offset (the collector fetches end offsets after commits). A topic whose id differs from
        the one its series were recorded under was re-created: its series start afresh.
        """
        if topic_ids:
            self.note_topic_ids(topic_ids)
        self.record_end_offsets(at, end_offsets)
        by_group: dict[str, list[tuple[tuple[str, int], int]]] = {}
        for (group, topic, partition), offset in committed.items():
            by_group.setdefault(group, []).append(((topic, partition), offset))
        self._record_commits((group, at, items) for group, items in by_group.items())

    def record_snapshot(self, raw: KafkaClusterSnapshot) -> None:
        """Record a raw snapshot: end offsets at ``raw.end_offsets_fetched_at``, each group's
        commits at its ``offsets_fetched_at``. Groups with ``error`` set and partitions whose
        offsets are unknown (None, or a negative "no committed offset" sentinel) or uncommitted
        are skipped. The lag kept with each commit is its readable lag where the collector knows
        it (status rules judge what is left to read). Series of re-created topics restart, and
        series of groups and partitions gone from the cluster are forgotten (a group that comes
        back starts afresh: no REWIND from its old life)."""
        if raw.error is not None:
            return
        self.note_topic_ids({t.name: t.topic_id for t in raw.topics})
        partitions: set[tuple[str, int]] = set()
        ends: dict[tuple[str, int], int] = {}
        for topic in raw.topics:
            for p in topic.partitions:
                key = (p.topic, p.partition)
                partitions.add(key)
                if p.latest_offset is not None and p.latest_offset >= 0:
                    ends[key] = p.latest_offset
        self.forget_absent({g.name for g in raw.groups} if raw.groups_complete else None, partitions)
        if ends:
            self.record_end_offsets(raw.end_offsets_fetched_at, ends)
        self._record_commits(
            (group.name, group.offsets_fetched_at,
             [((c.topic, c.partition), c.offset, c.readable_lag) for c in group.offsets if c.offset >= 0 and c.committed])
            for group in raw.groups if group.error is None
        )

    def record_end_offsets(self, at: float, end_offsets: Mapping[tuple[str, int], int]) -> None:
        """Append one end-offset sample per partition.

        A sample not newer than the partition's newest one replaces it when at the same time and
        is dropped otherwise. An end offset lower than the previous one means the partition was
        recreated (or truncated): its series restarts.
        """
        at = float(at)
        ends = self._ends
        cap = self.max_points
        cutoff = at - self.end_offset_horizon
        m0 = max(1, cap // 4)
        shared = _SharedArrays()
        # the series of a cluster share one time array: its successor is looked up once, not
        # once per partition
        before = after = None
        for key, offset in end_offsets.items():
            se = ends.get(key)
            if se is None:
                se = ends[key] = _EndSeries(key, m0, offset)
            t = se.t
            if t:
                last = t[-1]
                if at <= last:
                    if at == last and (len(t) == 1 or offset - se.b >= se.o[-2]):
                        _replace_last_offset(se, offset)
                    else:
                        self.out_of_order_dropped += 1
                    continue
                if offset - se.b < se.o[-1]:
                    se.restart(offset)
                    t = se.t
            if t is not before:
                before, after = t, shared.appended(t, at)
            se.t = t = after
            try:
                se.o.append(offset - se.b)
            except OverflowError:  # the window's offsets now span 2**31 or more
                _store_offsets(se, [*se.offsets(), offset])
            se.seq += 1
            n = len(t)
            if n > cap or se.seq >= _SEQ_LIMIT:
                self._thin(se, shared)
            elif n > 2 and t[1] <= cutoff:
                self._trim(se, cutoff, shared)

    def record_committed(self, group: str, at: float, offsets) -> None:
        """Append one committed-offset observation per partition of ``group``.

        ``offsets``: iterable of ((topic, partition), committed_offset) or
        ((topic, partition), committed_offset, lag), or a mapping (topic, partition) ->
        committed_offset. The stored lag is the given one (readable lag) when not None, else uses
        the newest end offset known for the partition at that moment (-> None when none is known).
        An observation older than the series' newest is dropped; one at the same time replaces it.
        """
        self._record_commits(((group, at, offsets),))

    def _record_commits(self, observations) -> None:
        """``record_committed`` for many groups at once: ``(group, at, offsets)`` each."""
        rows: list[int] = []
        times: list[float] = []
        values: list[int] = []
        lags: list[int] = []
        ends = self._ends
        allocate = self._columns.allocate
        for group, at, offsets in observations:
            at = float(at)
            items = offsets.items() if isinstance(offsets, Mapping) else offsets
            gd = self._commits.get(group)
            if gd is None:
                gd = self._commits[group] = {}
            for item in items:
                key, offset = item[0], item[1]
                known_lag = item[2] if len(item) > 2 else None
                row = gd.get(key)
                if row is None:
                    key = self.partition_key(key)
                    row = gd[key] = allocate()
                if known_lag is not None:
                    lag = known_lag if known_lag >= 0 else 0
                else:
                    se = ends.get(key)
                    if se is not None and se.o:
                        lag = se.b + se.o[-1] - offset
                        if lag < 0:
                            lag = 0
                    else:
                        lag = -1
                rows.append(row)
                times.append(at)
                values.append(offset)
                lags.append(lag)
            if not gd:
                del self._commits[group]
        self.out_of_order_dropped += self._columns.append(rows, times, values, lags)

    def restore_committed(self, group: str, key: tuple[str, int], points, changed_at: float) -> None:
        """Set a group's committed series on one partition to ``points`` ((at, offset, lag),
        oldest first, lag None when unknown) and the time its current value was first seen: the
        series another replica kept, handed over with the group (docs/scaling.md). Points out of
        time order are dropped; only the last ``status_window`` are kept."""
        kept: list[tuple[float, int, int]] = []
        for at, offset, lag in points:
            if kept and at <= kept[-1][0]:
                continue
            kept.append((float(at), int(offset), -1 if lag is None else max(0, int(lag))))
        if not kept:
            return
        gd = self._commits.setdefault(group, {})
        row = gd.get(key)
        if row is None:
            key = self.partition_key(key)
            row = gd[key] = self._columns.allocate()
        self._columns.set(row, kept[-self.status_window:], float(changed_at))

    def partition_key(self, key: tuple[str, int]) -> tuple[str, int]:
        """The key a new series is filed under: the end series' own tuple when the partition has
        one, so the groups reading a partition (and derive's topic shapes) share one tuple with it
        (one per series was ~64 bytes a (group, partition), made by each snapshot)."""
        se = self._ends.get(key)
        return key if se is None else se.key

    @staticmethod
    def _trim(se: _EndSeries, cutoff: float, shared: _SharedArrays) -> None:
        """Drop points older than ``cutoff`` but keep the newest one at or before it."""
        i = bisect_right(se.t, cutoff) - 1
        if i > 0:
            se.t, se.s = shared.trimmed(se.t, se.s, i)
            del se.o[:i]

    def _thin(self, se: _EndSeries, shared: _SharedArrays) -> None:
        keep, se.t, se.s, se.m, se.seq = shared.thinned(se, (self.max_points * 3) // 4)
        o, b = se.o, se.b
        _store_offsets(se, [b + o[i] for i in keep])  # the kept points may span less: narrowed to fit
        self._trim(se, se.t[-1] - self.end_offset_horizon, shared)

    # ----------------------------------------------------------------------------------------
    # forgetting
    # ----------------------------------------------------------------------------------------

    def note_topic_ids(self, topic_ids: Mapping[str, str | None]) -> None:
        """Topic ids of this cycle; a topic whose id changed was re-created: forget its series."""
        known = self._topic_ids
        for topic, topic_id in topic_ids.items():
            if topic_id is None:
                continue
            old = known.get(topic)
            if old is not None and old != topic_id:
                self.forget_topic(topic)
            known[topic] = topic_id

    def forget_topic(self, topic: str) -> None:
        """Drop the end-offset series of every partition of ``topic`` and the groups' series on it."""
        for key in [k for k in self._ends if k[0] == topic]:
            del self._ends[key]
        self._forget_commits(lambda key, _row: key[0] == topic)

    def _forget_commits(self, gone) -> None:
        """Drop every group's committed series for which ``gone(key, row)`` is true."""
        release = self._columns.release
        for group, gd in list(self._commits.items()):
            for key in [k for k, row in gd.items() if gone(k, row)]:
                release(gd.pop(key))
            if not gd:
                del self._commits[group]

    def forget_absent(self, groups: set[str] | None, partitions: set[tuple[str, int]]) -> None:
        """Forget what is gone: groups not in ``groups`` (None: the listing was incomplete, keep
        all), partitions not in ``partitions`` (with every group's series on them)."""
        if groups is not None:
            for group in [g for g in self._commits if g not in groups]:
                self.forget_group(group)
        gone = self._ends.keys() - partitions
        for key in gone:
            del self._ends[key]
        if gone or not all(gd.keys() <= partitions for gd in self._commits.values()):
            self._forget_commits(lambda key, _row: key not in partitions)
        topics = {t for t, _ in partitions}
        for topic in [t for t in self._topic_ids if t not in topics]:
            del self._topic_ids[topic]

    def forget_group(self, group: str) -> None:
        """Drop every committed series of a group (deleted, or expired from the view)."""
        for row in self._commits.pop(group, {}).values():
            self._columns.release(row)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a partition's end-offset series and every group's committed series for it."""
        key = (topic, partition)
        self._ends.pop(key, None)
        self._forget_commits(lambda k, _row: k == key)

    def prune(self, now: float) -> None:
        """Drop points older than the horizon, and series with no point within it."""
        cutoff = now - self.end_offset_horizon
        for key in [k for k, se in self._ends.items() if not se.t or se.t[-1] < cutoff]:
            del self._ends[key]
        shared = _SharedArrays()
        for se in self._ends.values():
            if len(se.t) > 1 and se.t[1] <= cutoff:
                self._trim(se, cutoff, shared)
        newest = self._columns.t[:, -1].tolist()  # NaN for a row without observations
        self._forget_commits(lambda _key, row: not newest[row] >= cutoff)

    # ----------------------------------------------------------------------------------------
    # queries
    # ----------------------------------------------------------------------------------------

    def groups(self) -> Iterator[str]:
        return iter(list(self._commits))

    def partitions(self) -> Iterator[tuple[str, int]]:
        return iter(list(self._ends))

    def end_offset_series(self, topic: str, partition: int) -> list[tuple[float, int]]:
        se = self._ends.get((topic, partition))
        return list(zip(se.t, se.offsets())) if se is not None else []

    def _row(self, group: str, topic: str, partition: int) -> int | None:
        gd = self._commits.get(group)
        return gd.get((topic, partition)) if gd is not None else None

    def committed_series(self, group: str, topic: str, partition: int) -> list[CommitPoint]:
        row = self._row(group, topic, partition)
        if row is None:
            return []
        return [CommitPoint(t, o, lag if lag >= 0 else None) for t, o, lag in self._columns.points(row)]

    def last_changed_at(self, group: str, topic: str, partition: int) -> float | None:
        """First time the current committed value was observed (None without history)."""
        row = self._row(group, topic, partition)
        if row is None or not self._columns.n[row]:
            return None
        return float(self._columns.changed_at[row])

    def rate_of_end_offsets(self, topic: str, partition: int, now: float, window: float) -> float | None:
        """Produce rate (messages/s) over ``[now - window, now]``; None with fewer than 2 points.

        The base sample is the newest one at or before ``now - window`` (or the oldest one when
        history is shorter than the window), the end sample the newest one at or before ``now``.
        """
        return self.end_offset_rates_of(((topic, partition),), now, window)[0]

    def end_offset_rates_of(self, keys: Iterable[tuple[str, int]], now: float, window: float) -> list[float | None]:
        """``rate_of_end_offsets`` of every (topic, partition) of ``keys``, in their order: a
        cycle's, in one call. A cluster's series share their time arrays (`_SharedArrays`), so
        where the window starts and ends is looked up once per shared array rather than once per
        partition."""
        ends = self._ends.get
        # id(times) -> (times, span): the times are held, so no other array takes their id meanwhile
        spans: dict[int, tuple[array, tuple[int, int, float] | None]] = {}
        rates: list[float | None] = []
        for key in keys:
            se = ends(key)
            if se is None:
                rates.append(None)
                continue
            t = se.t
            known = spans.get(id(t))
            if known is None:
                known = spans[id(t)] = (t, _rate_span(t, bisect_right(t, now), now, window))
            span = known[1]
            if span is None:
                rates.append(None)
            else:
                o = se.o
                moved = o[span[0]] - o[span[1]]
                rates.append(moved / span[2] if moved else _NO_RATE)
        return rates

    def rate_of_committed(
        self, group: str, topic: str, partition: int, now: float, window: float
    ) -> float | None:
        """Consume rate (messages/s) from the committed series, same rules as produce rate.

        Only points after the most recent decrease (rewind) are used: a rate across a rewind is
        meaningless. Limited to the ``status_window`` points kept.
        """
        row = self._row(group, topic, partition)
        if row is None:
            return None
        t, o, _lag, n = self._columns.window([row])
        (rate,) = commit_rates(t, o, n, now, window).tolist()
        return None if rate != rate else rate  # NaN: unknown

    def offset_time(self, topic: str, partition: int, offset: int) -> OffsetTime:
        """Interpolated time at which the partition's end offset reached ``offset``.

        Linear between the two samples around it (exact at a sample whose predecessor is lower).
        If the oldest sample already had an end offset >= ``offset``, returns that sample's time
        with ``within_history=False``: a LOWER bound on the time lag. ``at`` is None without
        history or when ``offset`` is beyond the newest sample.

        Note for time lag: the record at committed offset ``c`` (the oldest unconsumed one) was
        appended when the end offset went from ``c`` to ``c + 1``; ask for ``c + 1``.
        """
        return OffsetTime._make(self._offset_time((topic, partition), offset))

    def _offset_time(self, key: tuple[str, int], offset: int) -> tuple[float | None, bool]:
        se = self._ends.get(key)
        if se is None or not se.t:
            return None, False
        t, o = se.t, se.o
        offset -= se.b  # as stored: a delta from the series' base
        j = bisect_left(o, offset)
        if j == 0:
            return t[0], False
        if j == len(o):
            return None, False
        o0 = o[j - 1]
        t0 = t[j - 1]
        return t0 + (offset - o0) * (t[j] - t0) / (o[j] - o0), True

    def offset_time_bracket(self, topic: str, partition: int, offset: int) -> tuple[float, float] | None:
        """The two retained samples' times around ``offset``: the true time lies in ``(lo, hi]``.

        ``hi - lo`` is the interpolation error bound for that offset. None outside history.
        """
        se = self._ends.get((topic, partition))
        if se is None or not se.t:
            return None
        j = bisect_left(se.o, offset - se.b)
        if j == 0 or j == len(se.o):
            return None
        return se.t[j - 1], se.t[j]

    # ----------------------------------------------------------------------------------------
    # fast paths for collectors.kafka.signals (same package; not for other callers)
    # ----------------------------------------------------------------------------------------

    def _group_series(self, group: str) -> dict[tuple[str, int], int] | None:
        """A group's series: partition -> row, for :meth:`judge_commits`."""
        return self._commits.get(group)

    def judge_commits(self, rows, current_lags, connected, now: float, rate_window: float, status_window: int
                      ) -> tuple[list[float | None], list]:
        """Consume rate and status of many committed series at once: the rules of
        ``collectors.kafka.rules.partition_status`` over each row's last ``status_window``
        observations (``current_lags``: the lag now, ``connected``: a member owns the partition),
        the rate as :meth:`rate_of_committed`. Returns (rates, statuses), None where a rate is unknown."""
        rows = np.asarray(rows, np.intp)
        current_lags = np.asarray(current_lags, np.int64)
        connected = np.asarray(connected, bool)
        k = min(status_window, self._columns.width)
        rates: list[float | None] = []
        statuses: list = []
        for start in range(0, len(rows), _JUDGED_AT_ONCE):
            part = slice(start, start + _JUDGED_AT_ONCE)
            t, o, lag, n = self._columns.window(rows[part])
            rates += [None if r != r else _NO_RATE if r == 0.0 else r
                      for r in commit_rates(t, o, n, now, rate_window).tolist()]
            codes = partition_statuses(t[:, -k:], o[:, -k:], lag[:, -k:], np.minimum(n, k), now,
                                       self._columns.changed_at[rows[part]], current_lags[part], connected[part],
                                       status_window)
            statuses += [STATUS_BY_CODE[c] for c in codes.tolist()]
        return rates, statuses

    def stats(self) -> dict[str, int]:
        """Sizes for logging/benchmarks."""
        return {
            "partitions": len(self._ends),
            "end_points": sum(len(se.t) for se in self._ends.values()),
            "end_time_arrays": len({id(se.t) for se in self._ends.values()}),  # shared by series sampled together
            "end_offset_bytes": sum(len(se.o) * se.o.itemsize for se in self._ends.values()),
            "groups": len(self._commits),
            "committed_series": sum(len(gd) for gd in self._commits.values()),
            "partition_keys": len({id(k) for k in self._ends} | {id(k) for gd in self._commits.values() for k in gd}),
        }
