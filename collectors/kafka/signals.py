"""Derived Kafka signals: raw snapshot + offset windows -> :class:`KafkaLagView`.

Pure: no I/O, no clock (``now`` is an argument), no mutation of the windows. The caller records
the cycle first (``windows.record_snapshot(raw)``), persists ``next_empty_since(...)``, then calls
:func:`derive`.

Semantics (docs/metrics.md "What the numbers mean"):

* offset lag = max(0, end offset - committed offset), the end offset being the high watermark:
  what ``kafka-consumer-groups`` prints. Partitions without an end offset this cycle (topic
  deleted, or offset fetch failed) and without a committed offset (negative sentinel such as -1 /
  OFFSET_INVALID) are left out: their lag is not measurable. Positions the collector marked
  ``committed=False`` (a consumed topic's partition without a committed offset) are kept, with
  ``uncommitted=True``, at the offset the cluster's rule gave them.
* readable lag = what the group will actually still get (``collectors.kafka.readable``): the
  collector's ``CommittedOffset.readable_lag`` (markers never count; for read_committed groups,
  aborted and open transactions do not either), or the offset lag where it is unknown. Status,
  ETA and the lag alerts use it.
* time lag = age of the oldest *readable* unconsumed record:
  - readable lag == 0: nothing is left to read, so the time lag is exactly **0.0 seconds** with
    method ``NONE`` (the model's ``TimeLagMethod.NONE`` means "caught up or no data"; the value
    tells the two apart: 0.0 = caught up, None = no data to estimate from);
  - exact (takes precedence by default): the collector read that record
    (``CommittedOffset.timestamp``) -> ``raw.end_offsets_fetched_at - timestamp``, clamped >= 0,
    method ``EXACT``;
  - else interpolated from the end-offset history: the record at offset ``r`` (the readable
    offset, the committed one when unknown) was appended when the log end went from ``r`` to
    ``r + 1``, so ``now - windows.offset_time(r + 1)``, clamped >= 0, method ``INTERPOLATED``.
    When ``r`` is older than the retained history the value is a lower bound and
    ``time_lag_lower_bound`` is True. A group's (and a topic's) time lag is the max over its
    partitions, and a lower bound as soon as any lagging partition's is.
* consume rate per partition from the committed series over ``rate_window`` (only the points the
  status window keeps, after the last rewind); produce rate per partition from the end-offset
  series. Group rates are sums over the partitions the group has committed offsets for, counting
  only partitions whose rate is known (None when none is known).
* status per partition by :mod:`collectors.kafka.rules` over the last ``status_window``
  observations; a partition is "connected" when a member's assignment contains it (or, when the
  group has members but none reports an assignment, e.g. non-consumer protocols, when the group
  has members at all; for a Spark query as a group, ``kind == "spark-query"``, when the query is
  running). Group status: Burrow's ERR/WARN/OK mapping.
* Empty groups (``ConsumerGroup.is_empty``: no members; a Spark query: not running) are reported with ``is_empty`` and ``empty_since`` (from the mapping
  the caller persists; ``now`` when missing) and dropped from the view once empty for longer than
  ``empty_group_ttl``.
* Groups whose ``error`` is set are reported with the error and NO partitions: lag 0, time lag
  None, rates None, ETA None, status OK are placeholders, not measurements; consumers of the view
  must check ``error`` first (e.g. export nothing for that group this cycle).
* Names (groups, topics, client ids) pass through untouched; escaping is the renderer's job.
* Lag against retention (records lost, headroom) per group and topic: ``collectors.kafka.retention``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter

from collectors.kafka.partition_health import min_insync_replicas
from collectors.kafka.rules import catch_up_eta, empty_group_expired, group_status
from collectors.kafka.vector_retention import retention_risks
from collectors.kafka.windows import OffsetWindows
from collectors.lag_columns import GroupPartitions, LagColumns, partition_fields
from collectors.models import (
    GroupLag,
    KafkaClusterSnapshot,
    KafkaLagView,
    Status,
    TimeLagMethod,
    TopicLag,
    TopicRates,
    objects_from_rows,
    topic_lags_of,
)

__all__ = ["SignalSettings", "TopicShapes", "derive", "next_empty_since"]

_by_partition = attrgetter("topic", "partition")
_EXACT = TimeLagMethod.EXACT
_INTERP = TimeLagMethod.INTERPOLATED
_NONE = TimeLagMethod.NONE
_OK = Status.OK


@dataclass(frozen=True, slots=True)
class SignalSettings:
    rate_window: float = 300.0  # seconds, for produce and consume rates
    status_window: int = 10  # observations in a full status window (<= OffsetWindows.status_window)
    empty_group_ttl: float = 7 * 86400.0  # seconds an Empty group stays in the view
    prefer_exact_time_lag: bool = True  # exact time lag takes precedence over interpolated

    def __post_init__(self) -> None:
        if not self.rate_window > 0:
            raise ValueError(f"rate_window must be > 0 seconds, got {self.rate_window!r}")
        if not (isinstance(self.status_window, int) and self.status_window >= 2):
            raise ValueError(f"status_window must be an integer >= 2, got {self.status_window!r}")
        if not self.empty_group_ttl >= 0:
            raise ValueError(f"empty_group_ttl must be >= 0 seconds, got {self.empty_group_ttl!r}")


DEFAULT_SETTINGS = SignalSettings()


def next_empty_since(
    raw: KafkaClusterSnapshot, previous: Mapping[str, float], now: float
) -> dict[str, float]:
    """The ``empty_since`` mapping to persist after this cycle.

    Empty groups keep their previous value (or start at ``now``); groups with members, and
    groups no longer listed, are removed. Groups whose fetch failed this cycle keep their previous
    value (a failed fetch says nothing about membership); a failed cycle changes nothing.
    """
    if raw.error is not None:
        return dict(previous)
    out: dict[str, float] = {}
    for g in raw.groups:
        if g.error is not None:
            if g.name in previous:
                out[g.name] = previous[g.name]
        elif g.is_empty:
            out[g.name] = previous.get(g.name, now)
    return out


@dataclass(frozen=True, slots=True)
class _Cycle:
    """What every group's derivation of one cycle shares."""

    cluster: str
    now: float
    windows: OffsetWindows
    settings: SignalSettings
    end_map: dict[tuple[str, int], int]  # high watermark per partition
    produce: dict[tuple[str, int], float | None]  # produce rate per partition
    exact_ref: float  # when end offsets were fetched: exact time lags are ages at that moment


def derive(
    raw: KafkaClusterSnapshot,
    windows: OffsetWindows,
    now: float,
    settings: SignalSettings = DEFAULT_SETTINGS,
    empty_since: Mapping[str, float] | None = None,
    topic_shapes: TopicShapes | None = None,
) -> KafkaLagView:
    """Derive lag, time lag, rates, ETA and status for every group and topic of ``raw``.

    ``topic_shapes``: what the last call made of each topic's partitions and settings, kept by a
    caller that derives every cycle of one cluster (the view is the same with or without it).

    Two passes over the groups: the first measures every partition's lags and time lag and
    gathers its committed series; the consume rates and statuses of all of them are then judged
    at once (``OffsetWindows.judge_commits``); the second pass assembles the groups.
    """
    empty_since = empty_since or {}
    topics_out, end_map, produce = _topics(raw, windows, now, settings.rate_window, topic_shapes)
    cycle = _Cycle(raw.cluster, now, windows, settings, end_map, produce, raw.end_offsets_fetched_at)
    judged = _Judged()
    columns = LagColumns(sum(len(g.offsets) for g in raw.groups))  # every partition's PartitionLag
    measured = []
    for g in sorted(raw.groups, key=lambda g: g.name):
        group = _measure_group(g, cycle, empty_since, judged, columns)
        if group is not None:
            measured.append(group)
    columns.finish()
    rates, statuses = windows.judge_commits(judged.rows, judged.lags, judged.connected, now,
                                            settings.rate_window, settings.status_window)
    assembled = iter(objects_from_rows(GroupLag, [_assemble_group(g, rates, statuses, cycle, columns)
                                                  for g in measured if not isinstance(g, GroupLag)]))
    groups_out = [g if isinstance(g, GroupLag) else next(assembled) for g in measured]
    return KafkaLagView(cluster=raw.cluster, at=now, groups=tuple(groups_out), topics=tuple(topics_out),
                        retention=retention_risks(raw, groups_out, topics_out))


@dataclass(frozen=True, slots=True)
class _TopicShape:
    """What `_topics` makes of one topic's partitions and settings alone: kept from one cycle to the
    next while they are the very same partitions and equal settings (`TopicShapes`)."""

    name: str
    partitions: tuple  # the PartitionMetadata tuple these were made of
    config: object  # and the TopicConfig
    keys: list[tuple[str, int]]  # (topic, partition) of each partition, in order
    numbers: list[int] | None  # each partition's number; None: 0, 1, 2... in order
    size: int  # the highest partition number + 1
    # the keys and high watermarks of those with one (two lists: no pair per partition kept)
    end_keys: list[tuple[str, int]]
    end_offsets: list[int]
    end_sum: int
    messages: int
    under_replicated: int
    offline: int
    replication_factor: int
    under_min_isr: int | None

    @classmethod
    def of(cls, topic, last: _TopicShape | None = None,
           key_of: Callable[[tuple[str, int]], tuple[str, int]] | None = None) -> _TopicShape:
        """`last`: the topic's shape of the last cycle, whose keys are taken while its partitions
        are numbered alike (a busy topic's partitions are new tuples every cycle; the keys are
        not). `key_of`: the key tuple a new key is filed under elsewhere (the offset windows'),
        so both keep one tuple per partition."""
        parts = topic.partitions
        numbers = [p.partition for p in parts]
        if last is not None and numbers == (last.numbers or list(range(len(last.keys)))):
            keys = last.keys
        else:
            keys = list(map(_by_partition, parts))
            if key_of is not None:
                keys = list(map(key_of, keys))
        size = 0
        end_keys, end_offsets = [], []
        end_sum = msgs = under = offline = under_min = factor = 0
        # `replication_factor` and `topic_under_min_isr` counted in this pass, not two more
        min_isr = min_insync_replicas(topic)
        # each partition's fields unpacked in one step
        for (_t, partition, leader, replicas, isr, earliest, latest, _s, _z), key in zip(parts, keys):
            if partition >= size:
                size = partition + 1
            if latest is not None:
                if latest >= 0:
                    end_keys.append(key)
                    end_offsets.append(latest)
                    end_sum += latest
                if earliest is not None and latest > earliest:  # PartitionMetadata.message_count
                    msgs += latest - earliest
            in_sync, assigned = len(isr), len(replicas)
            if in_sync < assigned:
                under += 1
            if assigned > factor:
                factor = assigned
            if leader < 0:
                offline += 1
            elif min_isr is not None and in_sync < min_isr:  # partition_health.under_min_isr
                under_min += 1
        return cls(topic.name, parts, topic.config, keys, None if numbers == list(range(len(parts))) else numbers,
                   size, end_keys, end_offsets, end_sum, msgs, under, offline, factor,
                   None if min_isr is None else under_min)


class TopicShapes:
    """Each topic's `_TopicShape`, kept for the next cycle while its partitions are the very tuple
    of this one and its settings are equal: the collector keeps an idle topic's partitions, and
    the parent gets them as the same objects (`collectors.kafka.wire`; the settings cross anew).
    What moves every cycle (the produce rates) is worked out every cycle. Holds the last cycle's
    topics only."""

    def __init__(self) -> None:
        self._by_name: dict[str, _TopicShape] = {}

    def of(self, topics, key_of: Callable[[tuple[str, int]], tuple[str, int]] | None = None) -> list[_TopicShape]:
        last = self._by_name
        shapes = []
        for topic in topics:
            shape = last.get(topic.name)
            if shape is None or shape.partitions is not topic.partitions or shape.config != topic.config:
                shape = _TopicShape.of(topic, shape, key_of)
            shapes.append(shape)
        self._by_name = {shape.name: shape for shape in shapes}
        return shapes


def _topics(raw: KafkaClusterSnapshot, windows: OffsetWindows, now: float, rate_window: float,
            shapes: TopicShapes | None = None):
    """Per topic: end offsets, produce rates, replication counts; and the per-partition maps."""
    cluster = raw.cluster
    topics = sorted(raw.topics, key=lambda t: t.name)
    shaped = (shapes or TopicShapes()).of(topics, windows.partition_key)
    # every partition's produce rate in one call: where the window starts and ends is looked up
    # once per cycle (the partitions share their time arrays), not once per topic
    keys = list(chain.from_iterable(s.keys for s in shaped))
    cycle_rates = windows.end_offset_rates_of(keys, now, rate_window)
    produce: dict[tuple[str, int], float | None] = dict(zip(keys, cycle_rates))
    end_map: dict[tuple[str, int], int] = dict(zip(chain.from_iterable(s.end_keys for s in shaped),
                                                   chain.from_iterable(s.end_offsets for s in shaped)))
    topics_out: list[TopicRates] = []
    at = 0
    for shape in shaped:
        n = len(shape.keys)
        of_topic = cycle_rates[at:at + n]
        at += n
        if shape.numbers is None:
            rates = of_topic
        else:
            rates = [None] * shape.size
            for partition, r in zip(shape.numbers, of_topic):
                if partition >= 0:
                    rates[partition] = r
        total = 0.0
        known = False
        for r in of_topic:
            if r is not None:
                total += r
                known = True
        topics_out.append(
            TopicRates(
                cluster=cluster,
                topic=shape.name,
                partitions=n,
                end_offset_sum=shape.end_sum,
                message_count=shape.messages,
                produce_rate=total if known else None,
                partition_produce_rates=tuple(rates),
                under_replicated=shape.under_replicated,
                offline=shape.offline,
                replication_factor=shape.replication_factor,
                under_min_isr=shape.under_min_isr,
            )
        )

    return topics_out, end_map, produce


class _Judged:
    """The committed series whose rate and status are judged together after the first pass."""

    __slots__ = ("rows", "lags", "connected")

    def __init__(self) -> None:
        self.rows: list[int] = []  # rows of OffsetWindows' committed columns
        self.lags: list[int] = []  # readable lag now
        self.connected: list[bool] = []  # a live member owns the partition


@dataclass(slots=True)
class _MeasuredGroup:
    """A group after the first pass: its partitions without consume rate and status yet."""

    group: object  # the ConsumerGroup
    empty_since: float | None
    topics: tuple[str, ...]  # sorted
    # its partitions' run of the cycle's LagColumns (consume rate None and status OK so far); the
    # committed series of its partitions are _Judged's from `judged_from` on, in order, but for
    # the partitions (by their place in the run) in `unjudged` (no series: they stay as they are).
    # Not an index per partition: 10,000 int objects at 10,000 positions, kept until assembly.
    start: int
    stop: int
    judged_from: int
    unjudged: list[int] | None
    total_lag: int
    total_readable: int
    uncommitted: int
    time_lag: float | None
    time_lag_method: TimeLagMethod
    lower_bound: bool
    produce_rate: float | None  # the sum of its partitions' produce rates; None when none is known
    # the group's only topic, when all its measured partitions are of one (most groups): its
    # `TopicLag` is then the group's sums, with no second pass over the partitions. None: other
    # groups. The topic's time lag is the group's, its method that of the first of equals
    # (`topic_lags_of`'s rule), where the group prefers an exact one.
    single_topic: str | None
    topic_time_lag_method: TimeLagMethod


def _measure_group(g, cycle: _Cycle, empty_since: Mapping[str, float], judged: _Judged, columns: LagColumns):
    """First pass over one group: a finished GroupLag when it failed, None when it has been
    Empty longer than the TTL, else its measured partitions (their series added to ``judged``)."""
    now, windows, settings = cycle.now, cycle.windows, cycle.settings
    end_map, produce = cycle.end_map, cycle.produce
    prefer_exact, exact_ref = settings.prefer_exact_time_lag, cycle.exact_ref
    name = g.name
    members = g.members
    is_empty = g.is_empty  # a Spark query (kind "spark-query") has no members by nature
    es: float | None = None
    if is_empty:
        es = empty_since.get(name, now)
        if empty_group_expired(es, now, settings.empty_group_ttl):
            return None
    owners = _owners(members)
    topic_names = {tp[0] for tp in owners}
    if g.error is not None:
        return _failed_group(g, cycle.cluster, es, topic_names)
    if g.kind == "spark-query":
        all_connected = not is_empty  # a running query is the consumer, without membership
    else:
        all_connected = bool(members) and not owners
    series = windows._group_series(name) or {}
    rows, lags, connected = judged.rows, judged.lags, judged.connected
    parts: list[tuple] = []  # the group's PartitionLag fields but its name, until put in `columns`
    judged_from = len(rows)
    unjudged: list[int] | None = None
    total_lag = 0
    total_readable = 0
    uncommitted = 0
    max_tl: float | None = None
    max_method = _NONE
    any_lower = False
    p_sum = 0.0
    p_known = False
    only_topic = None  # the topic of every measured partition so far (False: more than one)
    first_method = _NONE  # the method of the first partition with the worst time lag
    # each CommittedOffset's fields unpacked in one step: 100,000s of positions a cycle
    for topic, partition, committed, is_committed, readable, readable_offset, timestamp in sorted(
            g.offsets, key=_by_partition):
        if committed < 0:
            continue
        key = (topic, partition)
        topic_names.add(topic)
        end = end_map.get(key)
        if end is None:
            continue
        prod = produce[key]  # the topic pass gave every partition with an end offset its rate
        if prod is not None:
            p_sum += prod
            p_known = True
        lag = end - committed
        if lag < 0:
            lag = 0
        if readable is None or readable > lag:
            readable = lag
        elif readable < 0:
            readable = 0
        # the two answers most positions get, without a call each: caught up, or read exactly
        if readable == 0:
            tl, method, lower = 0.0, _NONE, False
        elif timestamp is not None and prefer_exact:
            tl, method, lower = (age if (age := exact_ref - timestamp) > 0.0 else 0.0), _EXACT, False
        else:
            tl, method, lower = _time_lag(committed, readable_offset, timestamp, key, cycle)
        # positions without a committed offset have no commit history: no rate, status OK
        row = series.get(key) if is_committed else None
        if row is None:
            if unjudged is None:
                unjudged = []
            unjudged.append(len(parts))
        else:
            rows.append(row)
            lags.append(readable)
            connected.append(all_connected or key in owners)
        # PartitionLag's fields in order, but the group: (topic, partition, committed_offset,
        # end_offset, lag, time_lag_seconds, time_lag_method, consume_rate, status, owner,
        # time_lag_lower_bound, readable_lag, uncommitted)
        parts.append((topic, partition, committed if is_committed else None, end, lag, tl,
                      method, None, _OK, owners.get(key), lower, readable, not is_committed))
        total_lag += lag
        total_readable += readable
        if not is_committed:
            uncommitted += 1
        any_lower = any_lower or lower
        if tl is not None:
            if max_tl is None or tl > max_tl:
                max_tl = tl
                max_method = first_method = method
            elif tl == max_tl and method is _EXACT:
                max_method = method  # the group prefers the exact of equals; a topic keeps the first
        if only_topic != topic:
            only_topic = topic if only_topic is None else False
    start, stop = columns.put(parts)
    return _MeasuredGroup(g, es, tuple(sorted(topic_names)), start, stop, judged_from, unjudged, total_lag,
                          total_readable, uncommitted, max_tl, max_method, any_lower, p_sum if p_known else None,
                          only_topic or None, first_method)


def _assemble_group(m: _MeasuredGroup, rates: list, statuses: list, cycle: _Cycle, columns: LagColumns) -> tuple:
    """Second pass: consume rates and statuses into the partitions' columns, the group's sums and
    status: the GroupLag's fields in order (`objects_from_rows` makes every group's at once)."""
    rate_column, status_column, start = columns.rate, columns.status, m.start
    partition_statuses: list[Status] = []
    c_sum = 0.0
    c_known = False
    i = m.judged_from
    unjudged = set(m.unjudged) if m.unjudged else ()
    for at in range(m.stop - start):
        if at in unjudged:
            partition_statuses.append(_OK)
            continue
        consume, status = rates[i], statuses[i]
        i += 1
        if consume is not None:
            c_sum += consume
            c_known = True
            rate_column[start + at] = consume
        if status is not _OK:
            status_column[start + at] = status
        partition_statuses.append(status)
    g = m.group
    consume_rate = c_sum if c_known else None
    produce_rate = m.produce_rate
    gstatus, _worst = group_status(partition_statuses)
    plags = GroupPartitions(columns, g.name, start, m.stop) if m.stop > start else ()
    if m.single_topic is not None:  # `topic_lags_of(plags)`, from the sums already made
        topic_lags = (TopicLag(m.single_topic, m.total_lag, m.total_readable, m.time_lag,
                               m.topic_time_lag_method, m.lower_bound, consume_rate),)
    else:
        topic_lags = topic_lags_of(partition_fields(plags))
    # (cluster, group, state, members, is_empty, empty_since, lag, time_lag_seconds, time_lag_method,
    # consume_rate, produce_rate, eta_seconds, status, partitions, topics, fetched_at, error,
    # time_lag_lower_bound, kind, readable_lag, uncommitted_partitions, topic_lags)
    return (cycle.cluster, g.name, g.state, len(g.members), g.is_empty, m.empty_since, m.total_lag, m.time_lag,
            m.time_lag_method, consume_rate, produce_rate,
            catch_up_eta(m.total_readable, consume_rate, produce_rate) if plags else None,
            gstatus, plags, m.topics, g.offsets_fetched_at, None, m.lower_bound, g.kind,
            m.total_readable, m.uncommitted, topic_lags)


def _time_lag(committed: int, readable_offset: int | None, ts: float | None, key: tuple[str, int],
              cycle: _Cycle) -> tuple[float | None, TimeLagMethod, bool]:
    """(seconds, method, lower bound): the age of the oldest readable unconsumed record, for a
    lagging position at `committed` (its CommittedOffset's readable offset and record timestamp
    given) that `_measure_group` did not answer itself: it answers a position with no readable
    lag (0 s) and one whose record was read while exact time lag is preferred (its age)."""
    # that record was appended when the log end went from its offset to one more
    start = readable_offset if readable_offset is not None else committed
    at, within = cycle.windows._offset_time(key, start + 1)
    if at is not None:
        return max(0.0, cycle.now - at), _INTERP, not within
    if ts is not None:
        return max(0.0, cycle.exact_ref - ts), _EXACT, False
    return None, _NONE, False


def _owners(members) -> dict[tuple[str, int], str]:
    """(topic, partition) -> client id of the member it is assigned to."""
    owners: dict[tuple[str, int], str] = {}
    for m in members:
        for tp in m.assignment:
            owners.setdefault((tp[0], tp[1]), m.client_id)
    return owners


def _failed_group(g, cluster: str, empty_since: float | None, topic_names: set[str]) -> GroupLag:
    """A group whose offsets could not be fetched: the error, and placeholders, not measurements."""
    return GroupLag(
        cluster=cluster, group=g.name, state=g.state, members=len(g.members),
        is_empty=g.is_empty, empty_since=empty_since, lag=0, time_lag_seconds=None,
        time_lag_method=_NONE, consume_rate=None, produce_rate=None, eta_seconds=None,
        status=Status.OK, partitions=(), topics=tuple(sorted(topic_names)),
        fetched_at=g.offsets_fetched_at, error=g.error, kind=g.kind,
    )
