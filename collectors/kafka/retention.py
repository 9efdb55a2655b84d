"""Lag against retention: will a group lose records it has not read yet?

Pure (docs/metrics.md, "Lag against retention"); the specification of
`collectors.kafka.vector_retention`, which applies it to a whole cycle at once. For every
partition a group lags on:

* **records lost** = log start offset (earliest) − committed offset, when positive: retention (or
  delete-records) removed records the group never read. Its offset lag then counts records that
  no longer exist, and the consumer will jump per `auto.offset.reset`. Headroom is 0.
* **headroom** = the time until the log start offset passes the committed offset, if the group
  stopped now, at the current produce rate and the topic's retention settings:
  - by time (`retention.ms`): a segment is deleted once its newest record is older than
    retention.ms, so the oldest unread record (its age is the time lag) goes at the earliest
    retention.ms − age from now. The estimate errs early: the segment may hold newer records,
    and the broker looks every `log.retention.check.interval.ms`;
  - by size (`retention.bytes`, per partition): the broker cuts the log from its start once it
    holds more than retention.bytes. The unread part (end − committed offsets, at the partition's
    average record size on disk) grows at produce rate × record size, so it reaches
    retention.bytes in (retention.bytes / record size − unread records) / produce rate seconds;
  - the smaller of the two. A group that keeps consuming gains time; the headroom is the time a
    stopped (or stuck) group has left.
* **compacted topics** (cleanup.policy `compact` without `delete`) delete no record by age or
  size, only records superseded by a newer one of the same key: headroom does not apply
  (None, basis `compacted`). Records lost are still counted (delete-records moves the log start).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from collectors.models import (
    CommittedOffset,
    PartitionLag,
    PartitionMetadata,
    PartitionRetention,
    RetentionRisk,
    TopicConfig,
)

LOST, TIME, SIZE, CAUGHT_UP, UNLIMITED, COMPACTED, UNKNOWN = (
    "lost", "time", "size", "caught_up", "unlimited", "compacted", "unknown")
BASES = (LOST, TIME, SIZE, CAUGHT_UP, UNLIMITED, COMPACTED, UNKNOWN)
_INF = math.inf

# The collector refreshes the earliest offset every cycle where a group's position is in this
# older part of the retained log (`near_log_start`), so a loss shows within a cycle there.
NEAR_LOG_START = 0.5


class Limits(NamedTuple):
    """A topic's retention as the arithmetic needs it, worked out once per topic."""

    applies: str | None  # None: headroom applies; else the basis saying why not (compacted, unknown)
    seconds: float | None  # retention.ms in seconds; +Inf without a time limit; None unknown
    bytes: float | None  # retention.bytes; +Inf without a size limit; None unknown


_UNKNOWN_LIMITS = Limits(UNKNOWN, None, None)
# Nothing unread: never part of a risk's detail, so one object stands for every such partition.
_NOTHING_UNREAD = PartitionRetention("", -1, 0, _INF, CAUGHT_UP)


def limits(config: TopicConfig | None) -> Limits:
    if config is None:
        return _UNKNOWN_LIMITS
    if not config.deletes:
        return Limits(COMPACTED if config.cleanup_policy else UNKNOWN, None, None)

    def limit(value: int | None, scale: float) -> float | None:
        return None if value is None else _INF if value < 0 else value / scale

    return Limits(None, limit(config.retention_ms, 1000.0), limit(config.retention_bytes, 1.0))


def time_headroom(retention_seconds: float | None, age: float | None) -> float | None:
    """Seconds until time retention reaches a record of `age` seconds; +Inf without a time
    limit, None when unknown."""
    if retention_seconds is None:
        return None
    if retention_seconds == _INF:
        return _INF
    if age is None:
        return None
    headroom = retention_seconds - age
    return headroom if headroom > 0.0 else 0.0


def size_headroom(retention_bytes: float | None, committed: int, earliest: int | None, end: int,
                  size_bytes: int | None, produce_rate: float | None) -> float | None:
    """Seconds until size retention reaches the committed offset; +Inf without a size limit or
    while nothing is produced, None when unknown (no partition size or rate)."""
    if retention_bytes is None:
        return None
    if retention_bytes == _INF:
        return _INF
    if size_bytes is None or earliest is None or end <= earliest:
        return None
    record_bytes = size_bytes / (end - earliest)
    if record_bytes <= 0:
        return _INF  # an empty log on disk: nothing to cut
    room = retention_bytes / record_bytes - (end - committed)  # records the log may still grow by
    if room <= 0:
        return 0.0
    if produce_rate is None:
        return None
    if produce_rate <= 0:
        return _INF
    return room / produce_rate


def partition_retention(p: PartitionLag, meta: PartitionMetadata | None, config: TopicConfig | None,
                        produce_rate: float | None) -> PartitionRetention | None:
    """One partition of a group against retention; None for a position without a committed
    offset (it starts where the cluster's rule says: nothing of it is unread yet)."""
    return _partition(p, meta, limits(config), produce_rate)


def _partition(p: PartitionLag, meta: PartitionMetadata | None, topic: Limits,
               produce_rate: float | None) -> PartitionRetention | None:
    committed = p.committed_offset
    if committed is None:
        return None
    earliest = meta.earliest_offset if meta is not None else None
    if earliest is not None and earliest > committed:
        return PartitionRetention(p.topic, p.partition, earliest - committed, 0.0, LOST)
    if p.readable_lag <= 0:
        return _NOTHING_UNREAD
    if topic.applies is not None:
        return PartitionRetention(p.topic, p.partition, 0, None, topic.applies)
    by_time = time_headroom(topic.seconds, p.time_lag_seconds)
    by_size = size_headroom(topic.bytes, committed, earliest, p.end_offset,
                            meta.size_bytes if meta is not None else None, produce_rate)
    if by_time is None and by_size is None:
        return PartitionRetention(p.topic, p.partition, 0, None, UNKNOWN)
    if by_size is None or by_time is not None and by_time <= by_size:
        headroom, basis = by_time, TIME
    else:
        headroom, basis = by_size, SIZE
    some_unknown = by_time is None or by_size is None
    if headroom == _INF:
        if some_unknown:  # the only limit that could bite is the one not known
            return PartitionRetention(p.topic, p.partition, 0, None, UNKNOWN)
        return PartitionRetention(p.topic, p.partition, 0, _INF, UNLIMITED)
    upper = some_unknown or (basis == TIME and p.time_lag_lower_bound)
    return PartitionRetention(p.topic, p.partition, 0, headroom, basis, upper)


def topic_risk(group: str, topic: str, parts: list[PartitionRetention]) -> RetentionRisk:
    """A group's risk on one topic: the worst partition (lost first, then the least headroom),
    with the lagging partitions as detail."""
    lost = lost_partitions = 0
    worst = None
    some_unknown = False
    lagging = []
    for p in parts:
        if p.lost:
            lost += p.lost
            lost_partitions += 1
        if p.basis != CAUGHT_UP:
            lagging.append(p)
        h = p.headroom_seconds
        if h is None:
            some_unknown = True
        elif worst is None or h < worst.headroom_seconds or h == worst.headroom_seconds and p.basis == LOST:
            worst = p
    if worst is None:
        return RetentionRisk(group, topic, lost, lost_partitions, None, parts[0].basis if parts else UNKNOWN,
                             False, tuple(lagging))
    upper = worst.upper_bound or (some_unknown and worst.basis != LOST)
    return RetentionRisk(group, topic, lost, lost_partitions, worst.headroom_seconds, worst.basis, upper,
                         tuple(lagging))


def near_log_start(commits: Mapping[str, Iterable[CommittedOffset]], earliest: Mapping[tuple[str, int], int],
                   latest: Mapping[tuple[str, int], int], fraction: float = NEAR_LOG_START) -> set[tuple[str, int]]:
    """Partitions where some group's committed offset lies in the oldest `fraction` of the
    retained log (or before it): where the next segment deletion can take records it has not
    read, so the collector asks their log start offset every cycle."""
    out: set[tuple[str, int]] = set()
    for offsets in commits.values():
        for o in offsets:
            key = (o.topic, o.partition)
            if key in out:
                continue
            start, end = earliest.get(key), latest.get(key)
            if start is not None and end is not None and o.offset < end and o.offset < start + (end - start) * fraction:
                out.add(key)
    return out
