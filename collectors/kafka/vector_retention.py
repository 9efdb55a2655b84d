"""Lag against retention for every partition of a cycle at once (numpy).

The same rules as :mod:`collectors.kafka.retention`, whose functions (`partition_retention`,
`topic_risk`) and test tables stay their specification: ``tests/unit/test_retention.py`` runs the
partition table through both, and compares them on thousands of random cycles. Derive judges
every (group, partition) of a cycle: one call per partition cost ~1.5 us of Python.

A module of its own, as `vector_rules` is to `rules`: the collector's child process imports
`retention` (the log-start rule) and never numpy.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter

import numpy as np

from collectors.kafka.retention import (
    BASES,
    CAUGHT_UP,
    LOST,
    SIZE,
    TIME,
    UNKNOWN,
    UNLIMITED,
    Limits,
    limits,
)
from collectors.column_records import ColumnRecords
from collectors.lag_columns import lag_fields
from collectors.models import GroupLag, KafkaClusterSnapshot, PartitionRetention, RetentionRisk, TopicRates

__all__ = ["LaggingPartitions", "retention_risks"]

_INF = float("inf")


def retention_risks(raw: KafkaClusterSnapshot, groups: Iterable[GroupLag],
                    topics: Iterable[TopicRates]) -> tuple[RetentionRisk, ...]:
    """Every (group, topic) with a committed position, against the topic's retention: what
    `topic_risk` makes of `partition_retention` for each of the group's positions on the topic,
    groups in their order, a group's topics by name."""
    rows = _Rows.of(groups)
    if rows is None:
        return ()
    return _risks(rows, _PerPartition.judge(rows, _Inputs.of(raw, topics, rows)))


class _Rows:
    """The committed positions of every group, in group order and, within a group, by topic name
    (stable: each topic's partitions keep the group's order): one array entry per position."""

    __slots__ = ("groups", "group", "topic", "partition", "committed", "end", "readable", "age", "lower",
                 "topic_names", "topic_index")

    @classmethod
    def of(cls, groups: Iterable[GroupLag]) -> _Rows | None:
        groups = list(groups)
        fields = lag_fields(groups)  # derive's columns, not a record per position
        if fields is None:
            return None
        (_, topic, partition, committed, end, _, age, _, _, _, _, lower, readable, _) = fields
        count = len(topic)
        names = sorted(set(topic))
        index = {name: i for i, name in enumerate(names)}
        group = np.repeat(np.arange(len(groups)), [len(g.partitions) for g in groups])
        topic_index = np.fromiter(map(index.__getitem__, topic), np.intp, count)
        order = np.lexsort((topic_index, group))  # stable: a topic's partitions keep their order
        if None in committed:  # no committed offset: nothing unread yet
            order = order[np.fromiter((committed[i] is not None for i in order.tolist()), bool, len(order))]
            if not len(order):
                return None
        rows = cls()
        rows.groups, rows.topic_names = groups, names
        if len(order) == count and (order[1:] > order[:-1]).all():  # as derive makes them: in order
            rows.group, rows.topic_index = group, topic_index
            rows.topic, rows.partition = topic, partition
            rows.committed = np.array(committed, np.int64)
        else:
            rows.group, rows.topic_index = group[order], topic_index[order]
            rows.topic, rows.partition = _items_at(order, topic), _items_at(order, partition)
            rows.committed = np.array(_items_at(order, committed), np.int64)
        rows.end = np.array(end, np.int64)[order]
        rows.readable = np.array(readable, np.int64)[order]
        rows.age = np.array(age, float)[order]  # time lag; None -> NaN
        rows.lower = np.array(lower, bool)[order]
        return rows


class _Inputs:
    """Per position: the log start offset and size of its partition, its topic's limits and the
    partition's produce rate (NaN where not known), from the snapshot and the topic rates."""

    __slots__ = ("earliest", "earliest_known", "size", "applies", "seconds", "bytes", "rate")

    @classmethod
    def of(cls, raw: KafkaClusterSnapshot, topics: Iterable[TopicRates], rows: _Rows) -> _Inputs:
        described = {t.name: t for t in raw.topics}  # a name listed twice: the last, as a dict
        metas = [p for t in described.values() for p in t.partitions]
        # PartitionMetadata's fields: topic, partition, leader, replicas, isr, earliest, latest, stable, size
        _, partitions, _, _, _, earliest, _, _, size = zip(*metas) if metas else ((),) * 9
        partition = np.array(rows.partition, np.int64)
        meta = _described_at(described, partitions, rows, partition)
        inputs = cls()
        earliest, known = _ints(earliest)
        # index -1: not described (appended here: a None among them would take _ints' slow path)
        inputs.earliest, inputs.earliest_known = np.append(earliest, 0)[meta], np.append(known, False)[meta]
        inputs.size = np.array([*size, None], float)[meta]

        # per topic (by index into rows.topic_names), then per position
        worked_out: dict[tuple | None, Limits] = {}  # topics mostly share their settings
        by_topic = []
        for name in rows.topic_names:
            t = described.get(name)
            config = t.config if t is not None else None
            key = _LIMIT_FIELDS(config) if config is not None else None
            lim = worked_out.get(key)
            if lim is None:
                lim = worked_out[key] = limits(config)
            by_topic.append(lim)
        ti = rows.topic_index
        inputs.applies = np.array([-1 if lim.applies is None else _CODE[lim.applies] for lim in by_topic], np.int8)[ti]
        inputs.seconds = np.array([lim.seconds for lim in by_topic], float)[ti]
        inputs.bytes = np.array([lim.bytes for lim in by_topic], float)[ti]

        rates_of = {t.topic: t.partition_produce_rates for t in topics if t.topic in described}
        rates: list[float | None] = []
        starts, lengths = [], []
        for name in rows.topic_names:
            of_topic = rates_of.get(name, ())
            starts.append(len(rates))
            lengths.append(len(of_topic))
            rates.extend(of_topic)
        rates.append(None)  # index -1: not known
        inputs.rate = np.array(rates, float)[_at_topic_start(starts, lengths, rows, partition)]
        return inputs


def _at_topic_start(starts: Sequence[int], lengths: Sequence[int], rows: _Rows, partition: np.ndarray) -> np.ndarray:
    """Each position's index into values laid out topic by topic, partition 0 first: its topic's
    start plus its partition (``starts`` and ``lengths`` per name of ``rows.topic_names``), -1 where
    the partition is not among its topic's."""
    ti = rows.topic_index
    within = (partition >= 0) & (partition < np.array(lengths, np.int64)[ti])
    return np.where(within, np.array(starts, np.int64)[ti] + partition, -1)


def _described_at(described: dict, partitions: tuple, rows: _Rows, partition: np.ndarray) -> np.ndarray:
    """Each position's index into the described partitions (``partitions``, topic by topic in
    ``described`` order), -1 where its partition is not described."""
    lengths = [len(t.partitions) for t in described.values()]
    starts = np.cumsum([0, *lengths], dtype=np.int64)[:-1]  # each topic's first index
    listed = np.array(partitions, np.int64)
    if (listed == np.arange(len(listed)) - np.repeat(starts, lengths)).all():
        # every topic lists its partitions 0..n-1 in order, as the collector does: the index is
        # the topic's start plus the partition, without a lookup per position
        start_of = dict(zip(described, zip(starts.tolist(), lengths)))
        start, length = zip(*(start_of.get(name, (0, 0)) for name in rows.topic_names))
        return _at_topic_start(start, length, rows, partition)
    keys = zip([t.name for t in described.values() for _ in t.partitions], partitions)
    at = dict(zip(keys, range(len(listed))))  # (topic, partition) -> index into the metadata
    return np.fromiter(map(at.get, zip(rows.topic, rows.partition), repeat(-1)), np.intp, len(rows.topic))


class _PerPartition:
    """`_partition` for every position: records lost, headroom (NaN: None), basis (an index into
    BASES) and whether the headroom is an upper bound."""

    __slots__ = ("lost", "headroom", "basis", "upper")

    @classmethod
    def judge(cls, rows: _Rows, inputs: _Inputs) -> _PerPartition:
        committed, end = rows.committed, rows.end
        earliest, earliest_known = inputs.earliest, inputs.earliest_known
        out = cls()
        lost = earliest_known & (earliest > committed)
        unread = ~lost & (rows.readable > 0)
        applies = unread & (inputs.applies >= 0)
        measured = unread & ~applies
        with np.errstate(all="ignore"):
            by_time = _time_headroom(inputs.seconds, rows.age)
            by_size = _size_headroom(inputs.bytes, committed, earliest, earliest_known, end, inputs.size, inputs.rate)
        time_known, size_known = ~np.isnan(by_time), ~np.isnan(by_size)
        by_time_first = ~size_known | (time_known & (by_time <= by_size))
        headroom = np.where(by_time_first, by_time, by_size)
        some_unknown = ~time_known | ~size_known
        infinite = headroom == _INF
        basis = np.select(
            [lost, ~unread, applies, ~time_known & ~size_known, infinite & some_unknown, infinite, by_time_first],
            [_CODE[LOST], _CODE[CAUGHT_UP], inputs.applies, _CODE[UNKNOWN], _CODE[UNKNOWN], _CODE[UNLIMITED],
             _CODE[TIME]],
            _CODE[SIZE]).astype(np.int8)
        known_headroom = measured & (time_known | size_known) & ~(infinite & some_unknown)
        out.lost = np.where(lost, earliest - committed, 0)
        out.headroom = np.select([lost, ~unread, known_headroom], [0.0, _INF, headroom], np.nan)
        out.basis = basis
        out.upper = known_headroom & ~infinite & (some_unknown | (by_time_first & rows.lower))
        return out


def _time_headroom(seconds: np.ndarray, age: np.ndarray) -> np.ndarray:
    """`time_headroom` per position; NaN for None."""
    left = seconds - age
    return np.select([np.isnan(seconds), seconds == _INF, np.isnan(age)], [np.nan, _INF, np.nan],
                     np.where(left > 0.0, left, 0.0))


def _size_headroom(retention_bytes, committed, earliest, earliest_known, end, size, rate) -> np.ndarray:
    """`size_headroom` per position; NaN for None."""
    record_bytes = size / (end - earliest)
    room = retention_bytes / record_bytes - (end - committed)
    return np.select(
        [np.isnan(retention_bytes), retention_bytes == _INF, np.isnan(size) | ~earliest_known | (end <= earliest),
         record_bytes <= 0, room <= 0, np.isnan(rate), rate <= 0],
        [np.nan, _INF, np.nan, _INF, 0.0, np.nan, _INF],
        room / rate)


def _risks(rows: _Rows, judged: _PerPartition) -> tuple[RetentionRisk, ...]:
    """`topic_risk` for each run of positions of one group on one topic."""
    group, topic = rows.group, rows.topic_index
    is_start = np.r_[True, (group[1:] != group[:-1]) | (topic[1:] != topic[:-1])]
    starts = np.flatnonzero(is_start)
    run = np.cumsum(is_start) - 1  # each position's run
    headroom, basis = judged.headroom, judged.basis
    known = ~np.isnan(headroom)
    least = np.minimum.reduceat(np.where(known, headroom, _INF), starts)
    any_known = np.logical_or.reduceat(known, starts)
    any_unknown = np.logical_or.reduceat(~known, starts)
    # the worst position: the first with the least headroom, unless one with as little was lost
    tied = known & (headroom == least[run])
    tied_at = np.flatnonzero(tied)
    tied_run = run[tied_at]
    first = np.diff(tied_run, prepend=-1) != 0
    first_tied = np.full(len(starts), -1, np.intp)
    first_tied[tied_run[first]] = tied_at[first]
    lost_tied = np.logical_or.reduceat(tied & (basis == _CODE[LOST]), starts)
    worst = np.where(first_tied >= 0, first_tied, starts)  # without a known headroom: the first position
    worst_basis = np.where(lost_tied, _CODE[LOST], basis[worst])
    worst_upper = np.where(lost_tied, False, judged.upper[worst]) | (any_unknown & (worst_basis != _CODE[LOST]))
    worst_upper &= any_known
    lost_sums = np.add.reduceat(judged.lost, starts).tolist()
    lost_counts = np.add.reduceat(judged.lost > 0, starts).tolist()

    # the lagging positions of each run, as columns its records are made from when read
    lagging = basis != _CODE[CAUGHT_UP]
    if lagging.all():  # every position lags (the common case on a busy cluster)
        lagging_columns = _LaggingColumns(rows.topic, rows.partition, judged.lost, headroom, basis, judged.upper)
    else:
        picked = np.flatnonzero(lagging)
        lagging_columns = _LaggingColumns(_items_at(picked, rows.topic), _items_at(picked, rows.partition),
                                          judged.lost[picked], headroom[picked], basis[picked], judged.upper[picked])
    ends = np.cumsum(np.add.reduceat(lagging, starts)).tolist()
    groups, topic_names = rows.groups, rows.topic_names
    out = []
    begin = 0
    for g, t, lo, count, h, b, u, stop in zip(
            group[starts].tolist(), topic[starts].tolist(), lost_sums, lost_counts,
            _nones(np.where(any_known, least, np.nan)), _BASIS_NAMES[worst_basis].tolist(), worst_upper.tolist(), ends):
        out.append(RetentionRisk(groups[g].group, topic_names[t], lo, count, h, b, u,
                                 LaggingPartitions(lagging_columns, begin, stop)))
        begin = stop
    return tuple(out)


class _LaggingColumns:
    """The lagging positions of a cycle, in its risks' order: a column per field of
    `PartitionRetention` (the headroom NaN for None, the basis by its code), read, never written."""

    __slots__ = ("topic", "partition", "lost", "headroom", "basis", "upper")

    def __init__(self, topic: Sequence[str], partition: Sequence[int], lost: np.ndarray, headroom: np.ndarray,
                 basis: np.ndarray, upper: np.ndarray):
        self.topic, self.partition = topic, partition
        self.lost, self.headroom, self.basis, self.upper = lost, headroom, basis, upper
        for column in (lost, headroom, basis, upper):  # read by web threads while the next cycle runs
            column.flags.writeable = False

    def records(self, start: int, stop: int) -> tuple[PartitionRetention, ...]:
        at = slice(start, stop)
        return tuple(map(_RECORD, zip(self.topic[at], self.partition[at], self.lost[at].tolist(),
                                      _nones(self.headroom[at]), _BASIS_NAMES[self.basis[at]].tolist(),
                                      self.upper[at].tolist())))


class LaggingPartitions(ColumnRecords):
    """`RetentionRisk.partitions` as derive makes it: the records of one (group, topic)'s lagging
    positions, made each time they are read, from columns every risk of the cycle shares.

    A cycle reads none of them: the API's and the dashboard's group pages do, and /metrics with
    `partition_metrics` on. Made as records for every lagging position each cycle, they held
    1.4 MB of live objects at 1,000 groups x 10,000 partitions, 1.8 MB of the parent's memory
    (measured, docs/performance.md); the columns hold ~35 bytes a position. Equal to the tuple of
    the same records (the records `retention.topic_risk` makes), and copied and pickled as that
    tuple."""

    __slots__ = ()

    def _records(self, start: int, stop: int) -> tuple[PartitionRetention, ...]:
        return self._columns.records(start, stop)


def _items_at(at: np.ndarray, values: Sequence) -> list:
    """The items of `values` at the positions `at`."""
    return [values[i] for i in at.tolist()]


def _nones(values: np.ndarray) -> list:
    """Floats as a list, None for NaN."""
    out = values.tolist()
    if np.isnan(values).any():
        return [None if v != v else v for v in out]
    return out


def _ints(values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """int64 values (0 where None) and where they are known."""
    if None not in values:
        return np.array(values, np.int64), np.ones(len(values), bool)
    known = np.fromiter((v is not None for v in values), bool, len(values))
    return np.array([0 if v is None else v for v in values], np.int64), known


_LIMIT_FIELDS = attrgetter("cleanup_policy", "retention_ms", "retention_bytes")  # what `limits` reads
_CODE = {basis: i for i, basis in enumerate(BASES)}
_BASIS_NAMES = np.array(BASES, object)
_RECORD = partial(tuple.__new__, PartitionRetention)
