"""Immutable snapshots: what one collection cycle saw.

Everything downstream of the collectors (history, exporter, alerts, dashboard) reads these and
nothing else. All classes are frozen: dataclasses, or named tuples for the records a cluster
has one of per partition or per group and partition (`PartitionMetadata`, `CommittedOffset`,
`PartitionLag`, `PartitionRetention`: 100,000s per cycle on a large cluster, and a frozen
dataclass costs 3-5 times the CPU of a named tuple to build, pickle and unpickle); timestamps
are UNIX seconds (float) taken when the fetch that produced the value returned, so lag can be
computed from values of known age.

Two layers:
- *raw* Kafka data as the cluster reported it (`KafkaClusterSnapshot`), built by the collector;
- *derived* signals (`KafkaLagView`): lag, rates, time lag, status, built by
  `collectors.kafka.signals` from a raw snapshot plus history.

Spark apps are in the snapshot the same way: raw (`collectors.spark.models.SparkAppSnapshot`)
inside derived views (`SparkAppView`: labels, Kafka lag per query), built by
`collectors.spark.views`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from itertools import accumulate, chain, compress, repeat
from operator import attrgetter, is_, not_
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # an annotation only: the Kafka collector's process never loads the Spark models
    from collectors.spark.models import SparkAppView


# --------------------------------------------------------------------------------------------
# Raw Kafka data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broker:
    id: int
    host: str
    port: int
    rack: str | None = None


class PartitionMetadata(NamedTuple):
    """Metadata and offsets of one topic partition."""

    topic: str
    partition: int
    leader: int  # -1 when the partition has no leader (offline)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    earliest_offset: int | None  # None when the offset fetch failed for this partition
    latest_offset: int | None  # high watermark: what `kafka-consumer-groups` measures lag against
    # Last stable offset (ListOffsets READ_COMMITTED): where a read_committed consumer's log ends
    # (before the first open transaction). None when not fetched this cycle (no read_committed
    # group lags on the partition).
    stable_offset: int | None = None
    # Bytes of the leader's replica on disk (DescribeLogDirs, refreshed every
    # `log_dirs_every` cycles); None when not known.
    size_bytes: int | None = None

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def offline(self) -> bool:
        return self.leader < 0

    @property
    def message_count(self) -> int | None:
        """Messages retained (approximate for compacted topics)."""
        if self.earliest_offset is None or self.latest_offset is None:
            return None
        return max(0, self.latest_offset - self.earliest_offset)


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic's effective settings that decide what it keeps and who may write to it
    (DescribeConfigs, broker defaults included). A value Kafka did not report is None."""

    cleanup_policy: str | None  # "delete", "compact" or "compact,delete"
    retention_ms: int | None  # -1: no time limit
    retention_bytes: int | None  # per partition; -1: no size limit
    min_insync_replicas: int | None
    fetched_at: float = 0.0  # when these settings were first read (kept while they stay the same)

    @property
    def deletes(self) -> bool:
        """Old segments are deleted by retention (policy `delete`, alone or with `compact`)."""
        return "delete" in (self.cleanup_policy or "").split(",")

    def __reduce__(self):
        return _reduce_by_fields(self)


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: tuple[PartitionMetadata, ...]
    internal: bool = False
    # Kafka's topic id (base64 UUID, KIP-516). A topic deleted and created again under the same
    # name gets a new id: its offsets start a fresh history. None when not known.
    topic_id: str | None = None
    # Retention, cleanup policy, min.insync.replicas; refreshed every `topic_configs_every`
    # cycles (new topics at once). None when not known.
    config: TopicConfig | None = None

    def __reduce__(self):
        return _one_from_columns, (_columns_of((self,), "partitions"), "partitions", PartitionMetadata)


@dataclass(frozen=True, slots=True)
class LogDir:
    """One log directory of one broker (DescribeLogDirs)."""

    broker: int
    path: str
    size_bytes: int  # the partition replicas (current logs) in this directory
    # The volume the directory is on (Kafka 3.3+, KIP-827); None when the broker does not say.
    total_bytes: int | None = None
    usable_bytes: int | None = None
    error: str | None = None  # e.g. KafkaStorageError: the directory is offline
    topic_bytes: tuple[tuple[str, int], ...] = ()  # (topic, bytes of its replicas here), kept topics


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    assignment: tuple[tuple[str, int], ...]  # (topic, partition)

    def __reduce__(self):
        return _reduce_by_fields(self)


class CommittedOffset(NamedTuple):
    """A group's position on one partition, and what is left for it to read there.

    `committed` False marks a partition of a topic the group consumes that has no committed
    offset (new partitions, a new subscription): `offset` is then where the consumer would start
    by the cluster's `uncommitted_partitions` rule (like `auto.offset.reset`: the end for
    `latest`, the earliest offset for `earliest`). Lag tools show such partitions as `-`.

    The readable fields are filled by the collector (see `collectors.kafka.readable`): control
    markers are never readable, and for `read_committed` groups neither are aborted records nor
    records of open transactions. None means "not known": readers fall back to offset lag.
    """

    topic: str
    partition: int
    offset: int  # committed offset = next record the group will read
    committed: bool = True
    readable_lag: int | None = None  # records left to read (markers between records may count)
    readable_offset: int | None = None  # first offset that may hold a readable record (>= offset)
    # Timestamp (UNIX seconds) of the first readable record at or after `offset`, when it was read:
    # the exact age of the oldest unconsumed record. None when not read.
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    name: str
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Unknown
    members: tuple[GroupMember, ...]
    offsets: tuple[CommittedOffset, ...]
    offsets_fetched_at: float
    protocol_type: str = "consumer"
    coordinator: int | None = None
    error: str | None = None  # set when this group's offsets could not be fetched this cycle
    # "consumer" for Kafka consumer groups; "spark-query" for a Structured Streaming query whose
    # source offsets (from its progress) stand in for committed offsets.
    kind: str = "consumer"
    # How the group's consumers read: read_committed skips aborted and open transactions.
    isolation_level: str = "read_committed"
    # The partition assignor the group agreed on (range, cooperative-sticky, uniform, ...); None
    # when not known (no members, or not described).
    assignor: str | None = None

    @property
    def is_empty(self) -> bool:
        """No consumer is attached. A Spark query has no members by nature: it counts as
        empty only when it is not running."""
        if self.kind == "spark-query":
            return self.state != "Stable"
        return not self.members

    def __reduce__(self):
        return _one_from_columns, (_columns_of((self,), "offsets"), "offsets", CommittedOffset)


def _reduce_by_fields(obj):
    """A frozen dataclass with slots pickled as its class and its fields' values: the default
    (`dataclasses`' __getstate__/__setstate__) looks its fields up for every object, ~10 us each
    way, and a snapshot holds one `TopicConfig` per topic and a `GroupMember` per member."""
    return type(obj), _layout(type(obj))[0](obj)


def _layout(cls: type) -> tuple[attrgetter, tuple[str, ...]]:
    """A dataclass's fields, looked up once: a getter of their values (a tuple: every class
    pickled here has two or more fields) and their names."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = tuple(f.name for f in fields(cls))
        layout = _LAYOUTS[cls] = (attrgetter(*names), names)
    return layout


_LAYOUTS: dict[type, tuple[attrgetter, tuple[str, ...]]] = {}


# A snapshot crosses from the collector process to `run` pickled, every cycle. A cluster snapshot
# crosses whole, its topics and its groups as columns: one list per field, and their records as
# one column per record field with each owner's count of them (a `Topic` or `ConsumerGroup`
# pickled alone, the same way as a column of one). It pickles as lists of plain values and is
# made again by C-level maps, without a Python call per topic, group or record on either side.
# Measured: a named tuple pickled on its own costs a Python call each way (23 and 11 ms for the
# 20,000 records of a 10,000-partition snapshot, against 3 and 4 ms as plain rows); and a call
# per topic and per group each way cost about as much again as all the records (a real snapshot
# of 1,000 groups x 10,000 partitions: pickled in 12.3 -> 4.9 ms, unpickled in 9.5 -> 6.4 ms).
_OWNERS = (("topics", "partitions", PartitionMetadata), ("groups", "offsets", CommittedOffset))


def _reduce_as_columns(snapshot):
    return _snapshot_from_columns, snapshot_columns(snapshot)


# What a receiver of snapshot columns already holds: per owners field ("topics", "groups"), each
# owner's records by its name, as the last snapshot it was sent had them (`records_by_name`).
Held = dict[str, dict[str, tuple]]


def snapshot_columns(snapshot, held: Held | None = None) -> tuple:
    """(class, field values) of a cluster snapshot, its topics and groups as columns. An owner
    whose records are the very tuple `held` has under its name is sent without them: the
    receiver puts in its own (`snapshot_from_columns` with the same `held`, as it decoded it)."""
    values_of, names = _layout(type(snapshot))
    values = list(values_of(snapshot))
    for owners, records_field, _ in _OWNERS:
        at = names.index(owners)
        values[at] = _columns_of(values[at], records_field, held.get(owners) if held else None)
    return type(snapshot), tuple(values)


def snapshot_from_columns(cls: type, values: tuple, held: Held | None = None):
    """The snapshot `snapshot_columns` made columns of. Raises KeyError when the columns name
    records that `held` has not."""
    values = list(values)
    names = _layout(cls)[1]
    for owners, records_field, record_type in _OWNERS:
        at = names.index(owners)
        values[at] = _objects_of(values[at], records_field, record_type, held.get(owners) if held else None)
    return cls(*values)


def records_by_name(snapshot) -> Held:
    """Each topic's partitions and each group's offsets by name (a name listed twice: the last):
    what a receiver of this snapshot's columns holds for the next one."""
    return {owners: dict(zip(map(attrgetter("name"), getattr(snapshot, owners)),
                             map(attrgetter(records_field), getattr(snapshot, owners))))
            for owners, records_field, _ in _OWNERS}


def _one_from_columns(pickled: tuple, records_field: str, record_type: type):
    """The `Topic` or `ConsumerGroup` pickled as a column of one."""
    return _objects_of(pickled, records_field, record_type)[0]


def _snapshot_from_columns(cls: type, values: tuple):
    """The snapshot `_reduce_as_columns` pickled."""
    return snapshot_from_columns(cls, values)


_HELD = -1  # an owner's count of records in the columns: the receiver holds them


def _columns_of(owners: tuple, records_field: str, held: dict[str, tuple] | None = None) -> tuple:
    """(class, columns) of objects of one frozen dataclass with slots: a list of values per field,
    and for `records_field` (each object's count of records, a tuple per record field). An object
    whose records are the very tuple `held` has under its name gets the count `_HELD` and sends
    none."""
    if not owners:
        return ()
    cls = type(owners[0])
    columns = []
    for name in _layout(cls)[1]:
        column = list(map(attrgetter(name), owners))
        if name == records_field:
            counts = list(map(len, column))
            if held:
                same = list(map(is_, map(held.get, map(attrgetter("name"), owners)), column))
                if any(same):
                    counts = [_HELD if s else n for s, n in zip(same, counts)]
                    column = list(compress(column, map(not_, same)))
            column = (counts, list(zip(*chain.from_iterable(column))))
        columns.append(column)
    return cls, columns


def _objects_of(pickled: tuple, records_field: str, record_type: type, held: dict[str, tuple] | None = None) -> tuple:
    """The objects `_columns_of` made columns of, their records `record_type` again (an object
    counted `_HELD`: the records `held` has under its name). Each slot is set as the class's own
    `__init__` sets it (the slot's descriptor, as `object.__setattr__` does); the classes have no
    `__post_init__` to run."""
    if not pickled:
        return ()
    cls, columns = pickled
    objects = list(map(object.__new__, repeat(cls, len(columns[0]))))
    names = _layout(cls)[1]
    for name, column in zip(names, columns):
        if name == records_field:
            counts, record_columns = column
            records = list(map(tuple.__new__, repeat(record_type), zip(*record_columns)))
            if _HELD in counts:
                column = _with_held(counts, records, columns[names.index("name")], held or {})
            else:
                ends = list(accumulate(counts))
                column = map(tuple, map(records.__getitem__, map(slice, [0, *ends], ends)))
        deque(map(getattr(cls, name).__set__, objects, column), 0)
    return tuple(objects)


def _with_held(counts: list[int], records: list, owner_names: list[str], held: dict[str, tuple]) -> list[tuple]:
    """Each owner's records: the next `count` of `records`, or, counted `_HELD`, those `held` has
    under its name (KeyError when it has none)."""
    out = []
    at = 0
    for count, name in zip(counts, owner_names):
        if count == _HELD:
            out.append(held[name])
        else:
            out.append(tuple(records[at:at + count]))
            at += count
    return out


def objects_from_rows(cls: type, rows: list[tuple]) -> list:
    """Objects of a frozen dataclass with slots from rows of all its fields' values, in field
    order: each slot set as `__init__` sets it, a field at a time for every object (C-level maps),
    not a call with a dozen keyword arguments per object (GroupLag: 3.8 us each). `__post_init__`
    does not run: each row carries every field's final value."""
    objects = list(map(object.__new__, repeat(cls, len(rows))))
    if rows:
        for name, column in zip(_layout(cls)[1], zip(*rows), strict=True):
            deque(map(getattr(cls, name).__set__, objects, column), 0)
    return objects


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative latency histogram, as Prometheus keeps one."""

    bounds: tuple[float, ...]  # bucket upper bounds, ascending (+Inf implied)
    counts: tuple[int, ...]  # cumulative count per bound, then the total (len(bounds) + 1)
    sum: float = 0.0

    @property
    def count(self) -> int:
        return self.counts[-1] if self.counts else 0


@dataclass(frozen=True, slots=True)
class ProbeStats:
    """The end-to-end probe of one cluster (`collectors.kafka.probe`): totals since the probe
    started (counters) and how its last round went."""

    topic: str
    partitions: int  # partitions probed per round (one per broker)
    up: bool  # the last round got every record back, in time, and committed
    rounds_total: int
    sent_total: int
    received_total: int
    failures: tuple[tuple[str, int], ...]  # (reason, count): produce, timeout, commit, setup
    roundtrip: Histogram  # produce -> consumed back, seconds
    produce: Histogram  # produce -> acknowledged (acks=all), seconds
    commit: Histogram  # commit -> committed, seconds
    last_round_at: float | None = None
    last_success_at: float | None = None
    error: str | None = None  # why the last round failed


@dataclass(frozen=True, slots=True)
class KafkaClusterSnapshot:
    """One cycle of raw data from one Kafka cluster."""

    cluster: str
    started_at: float
    finished_at: float
    brokers: tuple[Broker, ...] = ()
    controller_id: int | None = None
    topics: tuple[Topic, ...] = ()
    groups: tuple[ConsumerGroup, ...] = ()
    end_offsets_fetched_at: float = 0.0
    requests: int = 0  # requests this cycle sent (as far as the client tells)
    # False when listing groups partially failed: a group missing from `groups` may still exist,
    # so its history must not be forgotten this cycle.
    groups_complete: bool = True
    phase_seconds: tuple[tuple[str, float], ...] = ()  # (phase, duration): where the cycle's time went
    positions_read: int = 0  # group positions read this cycle (readable lag, exact time lag)
    error: str | None = None  # set when the cycle failed as a whole
    error_kind: str | None = None  # with `error`: one of collectors.kafka.errors.ERROR_KINDS
    # Every broker's log directories (refreshed every `log_dirs_every` cycles) and when they were
    # fetched; () and None when not known.
    log_dirs: tuple[LogDir, ...] = ()
    log_dirs_fetched_at: float | None = None
    # Why the last DescribeLogDirs round left directories unknown (the request failed, or brokers
    # that did not give theirs, whose directories are kept from before); None when all answered.
    log_dirs_error: str | None = None
    # Why topics' settings (DescribeConfigs) are unknown, or from before: the last request failed,
    # or topics refused (e.g. TopicAuthorizationFailedError); None when every topic's are known.
    topic_configs_error: str | None = None
    # The end-to-end probe's counters (opt-in per cluster); carried by failed cycles too.
    probe: ProbeStats | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __reduce__(self):
        return _reduce_as_columns(self)

    @property
    def log_dirs_complete(self) -> bool | None:
        """Every broker's log directories known from the last DescribeLogDirs round (None: they
        are not asked: `log_dirs_every` 0, or the librdkafka client)."""
        if self.log_dirs_error is None and self.log_dirs_fetched_at is None:
            return None
        return self.log_dirs_error is None

    @property
    def topic_configs_complete(self) -> bool | None:
        """Every topic's settings known and the last DescribeConfigs answered (None: settings are
        not asked, `topic_configs_every` 0)."""
        if self.topic_configs_error is None and all(t.config is None for t in self.topics):
            return None
        return self.topic_configs_error is None

    @property
    def failed_groups(self) -> tuple[str, ...]:
        """Groups whose committed offsets this cycle could not fetch (their lag is unknown)."""
        return tuple(g.name for g in self.groups if g.error is not None)


# --------------------------------------------------------------------------------------------
# Derived Kafka signals
# --------------------------------------------------------------------------------------------


class Status(str, Enum):
    """Burrow-style consumer status. Order matters: later is worse."""

    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    REWIND = "REWIND"
    ERR = "ERR"

    @property
    def severity(self) -> int:
        return _STATUS_SEVERITY[self]


_STATUS_SEVERITY = {
    Status.OK: 0, Status.WARN: 1, Status.STALL: 2, Status.STOP: 2, Status.REWIND: 2, Status.ERR: 3,
}


class TimeLagMethod(str, Enum):
    EXACT = "exact"  # timestamp of the record at the committed offset was read
    INTERPOLATED = "interpolated"  # from the end-offset history
    NONE = "none"  # caught up (lag 0) or no data to estimate from


class _PartitionLagFields(NamedTuple):
    group: str
    topic: str
    partition: int
    committed_offset: int | None  # None: no committed offset (see `uncommitted`)
    end_offset: int
    lag: int  # messages, clamped >= 0: end offset (high watermark) - committed, as the Kafka CLI
    time_lag_seconds: float | None
    time_lag_method: TimeLagMethod
    consume_rate: float | None  # messages/s over the status window
    status: Status
    owner: str | None = None  # member client id owning the partition, if any
    # True when time_lag_seconds is a LOWER bound: the committed offset is older than the
    # retained end-offset history (interpolated only; see collectors.kafka.windows)
    time_lag_lower_bound: bool = False
    # Records left to read: markers (and, read_committed, aborted/open transactions) excluded.
    # Status, ETA and lag alerts use it. None when built: the same as `lag`.
    readable_lag: int = None  # type: ignore[assignment]
    # The partition has no committed offset; `lag` follows the cluster's uncommitted-partition rule.
    uncommitted: bool = False


class PartitionLag(_PartitionLagFields):
    """One group's lag on one partition. `readable_lag` left None is the offset lag. Built
    100,000s of times a cycle on large clusters: derive makes them by `tuple.__new__` over all 14
    fields, in C, which skips this default."""

    __slots__ = ()

    def __new__(cls, group, topic, partition, committed_offset, end_offset, lag, time_lag_seconds, time_lag_method,
                consume_rate, status, owner=None, time_lag_lower_bound=False, readable_lag=None, uncommitted=False):
        return tuple.__new__(cls, (group, topic, partition, committed_offset, end_offset, lag, time_lag_seconds,
                                   time_lag_method, consume_rate, status, owner, time_lag_lower_bound,
                                   lag if readable_lag is None else readable_lag, uncommitted))


class TopicLag(NamedTuple):
    """One group's lag on one topic, from its partitions: the per-topic figures of /metrics
    (`streamscope_kafka_consumergroup_lag{topic}` and its siblings), of the lag alert rules and
    of the API, defined here once (`topic_lags_of`)."""

    topic: str
    lag: int  # sum of the partitions' lag, as `kafka-consumer-groups` sums them
    readable_lag: int  # sum of the partitions' readable lag
    time_lag_seconds: float | None  # the worst timed partition's; None when no partition is timed
    time_lag_method: TimeLagMethod  # that partition's (the first of equals, in partition order)
    time_lag_lower_bound: bool  # some timed partition's time lag is only a lower bound
    consume_rate: float | None  # sum of the known consume rates; None when none is known


def topic_lags_of(partitions) -> tuple[TopicLag, ...]:
    """Each topic's `TopicLag` from a group's `PartitionLag` records, by topic name."""
    acc: dict[str, list] = {}
    # the records' fields unpacked in one step: 10,000s a cycle on a large cluster
    for _g, topic, _p, _c, _e, lag, seconds, method, rate, _s, _o, lower, readable, _u in partitions:
        a = acc.get(topic)
        if a is None:
            a = acc[topic] = [0, 0, None, TimeLagMethod.NONE, False, None]
        a[0] += lag
        a[1] += readable
        if seconds is not None:
            if a[2] is None or seconds > a[2]:
                a[2], a[3] = seconds, method
            if lower:
                a[4] = True
        if rate is not None:
            a[5] = rate if a[5] is None else a[5] + rate
    return tuple(TopicLag(topic, *a) for topic, a in sorted(acc.items()))


@dataclass(frozen=True, slots=True)
class GroupLag:
    cluster: str
    group: str
    state: str
    members: int
    is_empty: bool
    empty_since: float | None  # first time seen Empty (kept across restarts through history)
    lag: int  # total messages
    time_lag_seconds: float | None  # max over partitions
    time_lag_method: TimeLagMethod  # method of the partition that gave the max
    consume_rate: float | None  # messages/s
    produce_rate: float | None  # messages/s into the partitions the group consumes
    eta_seconds: float | None  # catch-up ETA: lag / (consume - produce); None = not catching up
    status: Status
    # a tuple, or as derive makes it (`collectors.lag_columns.GroupPartitions`) a sequence equal
    # to one, its records made when read from the cycle's columns
    partitions: Sequence[PartitionLag]
    topics: tuple[str, ...]
    fetched_at: float
    error: str | None = None
    # True when any lagging partition's time lag is a lower bound: the max is then a lower bound
    time_lag_lower_bound: bool = False
    kind: str = "consumer"  # or "spark-query" (see ConsumerGroup.kind)
    # Sum of the partitions' readable lag (see PartitionLag). None when built: the same as `lag`.
    readable_lag: int = None  # type: ignore[assignment]
    uncommitted_partitions: int = 0  # partitions of consumed topics without a committed offset
    # Per topic, from `partitions` (`topic_lags_of`). None when built: worked out then, so it always
    # agrees with `partitions`; a `replace` that changes the partitions passes None again.
    topic_lags: tuple[TopicLag, ...] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.readable_lag is None:
            object.__setattr__(self, "readable_lag", self.lag)
        if self.topic_lags is None:
            object.__setattr__(self, "topic_lags", topic_lags_of(self.partitions))


@dataclass(frozen=True, slots=True)
class TopicRates:
    cluster: str
    topic: str
    partitions: int
    end_offset_sum: int
    message_count: int
    produce_rate: float | None  # messages/s over the rate window
    partition_produce_rates: tuple[float | None, ...]  # index = partition number
    under_replicated: int
    offline: int
    replication_factor: int | None = None  # replicas per partition (the largest while a reassignment runs); None unknown
    under_min_isr: int | None = None  # partitions under min.insync.replicas; None when that is not known


class PartitionRetention(NamedTuple):
    """One lagging partition of a group against its topic's retention."""

    topic: str
    partition: int
    lost: int  # records the log start offset has passed and the group never read
    headroom_seconds: float | None  # see RetentionRisk
    basis: str  # see RetentionRisk
    upper_bound: bool = False  # see RetentionRisk


@dataclass(frozen=True, slots=True)
class RetentionRisk:
    """A group's position on one topic against the topic's retention.

    `headroom_seconds`: time until the log start offset passes the committed offset, if the group
    stopped now, at the current produce rate and retention settings (worst partition); +Inf when
    nothing the group still has to read can be deleted (no lag, or no retention limit); None when
    it does not apply or is not known (see `basis`). `basis` says what decides it: `lost` (records
    were deleted already: headroom 0), `time` (retention.ms), `size` (retention.bytes), `caught_up`,
    `unlimited`, `compacted` (cleanup.policy compact without delete: records are not deleted by
    age or size, headroom does not apply), `unknown` (the topic's settings, or the record's age,
    are not known yet). `upper_bound`: the true headroom may be smaller (the age of the oldest
    unread record is only a lower bound, or the partition size is not known while retention.bytes
    is set).
    """

    group: str
    topic: str
    lost: int  # records lost, summed over the topic's partitions
    lost_partitions: int
    headroom_seconds: float | None
    basis: str
    upper_bound: bool = False
    # the partitions with lag: a tuple, or as derive makes it (`vector_retention.LaggingPartitions`)
    # a sequence equal to one, its records made when read
    partitions: Sequence[PartitionRetention] = ()


@dataclass(frozen=True, slots=True)
class KafkaLagView:
    """Derived signals for one cluster at one cycle."""

    cluster: str
    at: float
    groups: tuple[GroupLag, ...]
    topics: tuple[TopicRates, ...]
    # Lag against retention per group and topic (`collectors.kafka.retention`)
    retention: tuple[RetentionRisk, ...] = ()


# --------------------------------------------------------------------------------------------
# Collector health and the whole snapshot
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """How a collector's child process ended (it is restarted for the next cycle)."""

    reason: str  # "exit" (exit code), "signal" (killed by a signal), "timeout" (hung, terminated)
    message: str  # e.g. "killed by SIGKILL between cycles"
    at: float
    pid: int | None = None
    exit_code: int | None = None  # negative: the number of the signal that killed it


@dataclass(frozen=True, slots=True)
class CollectorHealth:
    name: str  # e.g. "kafka:local", "spark:http://127.0.0.1:4040"
    kind: str  # kafka | spark
    up: bool
    last_attempt_at: float
    last_success_at: float | None
    duration_seconds: float
    error: str | None = None
    cycles_total: int = 0
    failures_total: int = 0
    # with `error`: what kind of failure (bounded set, e.g. "authentication", "tls", "timeout")
    error_kind: str | None = None
    # collectors with a child process: (reason, restarts) for every reason, zeros included
    restarts: tuple[tuple[str, int], ...] = ()
    last_exit: ProcessExit | None = None

    @property
    def restarts_total(self) -> int:
        return sum(count for _reason, count in self.restarts)

    def stale(self, now: float, max_age: float) -> bool:
        return self.last_success_at is None or now - self.last_success_at > max_age


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The latest raw snapshot and derived view of one Kafka cluster.

    `stale` is True when the latest cycle failed and `raw`/`lag` are the last good data.
    """

    raw: KafkaClusterSnapshot
    lag: KafkaLagView
    stale: bool = False
    # The end-to-end probe's latest counters: fresh even when the cycle failed (`raw` is then the
    # last good data); None without a probe.
    probe: ProbeStats | None = None


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """Whether writes to the history store work. History is optional at run time: when writes
    fail, collection, /metrics, the dashboard's live view and alert evaluation go on."""

    up: bool
    error: str | None = None  # the last write failure, while down
    failures_total: int = 0
    last_failure_at: float | None = None
    last_success_at: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything streamscope knows at one instant; what the exporter, API and dashboard read."""

    at: float
    clusters: tuple[ClusterState, ...] = ()
    health: tuple[CollectorHealth, ...] = ()
    spark: tuple[SparkAppView, ...] = ()
    history: StoreHealth | None = None  # None: not known (no history store)
