"""Lag against retention: will a group lose records it has not read yet?

Pure (docs/metrics.md, "Lag against retention"). For every partition a group lags on:

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

from collectors.models import (
    CommittedOffset,
    GroupLag,
    KafkaClusterSnapshot,
    PartitionLag,
    PartitionMetadata,
    PartitionRetention,
    RetentionRisk,
    TopicConfig,
    TopicRates,
)

LOST, TIME, SIZE, CAUGHT_UP, UNLIMITED, COMPACTED, UNKNOWN = (
    "lost", "time", "size", "caught_up", "unlimited", "compacted", "unknown")
BASES = (LOST, TIME, SIZE, CAUGHT_UP, UNLIMITED, COMPACTED, UNKNOWN)
_INF = math.inf

# The collector refreshes the earliest offset every cycle where a group's position is in this
# older part of the retained log (`near_log_start`), so a loss shows within a cycle there.
NEAR_LOG_START = 0.5


def time_headroom(config: TopicConfig, age: float | None) -> float | None:
    """Seconds until time retention reaches a record of `age` seconds; +Inf without a time
    limit, None when unknown."""
    if config.retention_ms is None:
        return None
    if config.retention_ms < 0:
        return _INF
    if age is None:
        return None
    return max(0.0, config.retention_ms / 1000.0 - age)


def size_headroom(config: TopicConfig, committed: int, earliest: int | None, end: int,
                  size_bytes: int | None, produce_rate: float | None) -> float | None:
    """Seconds until size retention reaches the committed offset; +Inf without a size limit or
    while nothing is produced, None when unknown (no partition size or rate)."""
    limit = config.retention_bytes
    if limit is None:
        return None
    if limit < 0:
        return _INF
    if size_bytes is None or earliest is None or end <= earliest:
        return None
    record_bytes = size_bytes / (end - earliest)
    if record_bytes <= 0:
        return _INF  # an empty log on disk: nothing to cut
    room = limit / record_bytes - (end - committed)  # records the log may still grow by
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
    committed = p.committed_offset
    if committed is None:
        return None
    earliest = meta.earliest_offset if meta is not None else None
    lost = earliest - committed if earliest is not None and earliest > committed else 0
    if lost:
        return PartitionRetention(p.topic, p.partition, lost, 0.0, LOST)
    if p.readable_lag <= 0:
        return PartitionRetention(p.topic, p.partition, 0, _INF, CAUGHT_UP)
    if config is None:
        return PartitionRetention(p.topic, p.partition, 0, None, UNKNOWN)
    if not config.deletes:
        return PartitionRetention(p.topic, p.partition, 0, None, COMPACTED if config.cleanup_policy else UNKNOWN)
    by_time = time_headroom(config, p.time_lag_seconds)
    by_size = size_headroom(config, committed, earliest, p.end_offset,
                            meta.size_bytes if meta is not None else None, produce_rate)
    known = [(h, basis) for h, basis in ((by_time, TIME), (by_size, SIZE)) if h is not None]
    if not known:
        return PartitionRetention(p.topic, p.partition, 0, None, UNKNOWN)
    headroom, basis = min(known)
    some_unknown = len(known) < 2
    if headroom == _INF:
        if some_unknown:  # the only limit that could bite is the one not known
            return PartitionRetention(p.topic, p.partition, 0, None, UNKNOWN)
        return PartitionRetention(p.topic, p.partition, 0, _INF, UNLIMITED)
    upper = some_unknown or (by_time is not None and by_time <= headroom and p.time_lag_lower_bound)
    return PartitionRetention(p.topic, p.partition, 0, headroom, basis, bool(upper))


def topic_risk(group: str, topic: str, parts: list[PartitionRetention]) -> RetentionRisk:
    """A group's risk on one topic: the worst partition (lost first, then the least headroom),
    with the lagging partitions as detail."""
    lost = sum(p.lost for p in parts)
    lost_partitions = sum(1 for p in parts if p.lost)
    timed = [p for p in parts if p.headroom_seconds is not None]
    if timed:
        worst = min(timed, key=lambda p: (p.headroom_seconds, p.basis != LOST))
        headroom, basis = worst.headroom_seconds, worst.basis
        upper = worst.upper_bound or (any(p.headroom_seconds is None for p in parts) and worst.basis != LOST)
    else:
        headroom, basis, upper = None, parts[0].basis if parts else UNKNOWN, False
    lagging = tuple(p for p in parts if p.basis != CAUGHT_UP)
    return RetentionRisk(group=group, topic=topic, lost=lost, lost_partitions=lost_partitions,
                         headroom_seconds=headroom, basis=basis, upper_bound=upper, partitions=lagging)


def retention_risks(raw: KafkaClusterSnapshot, groups: Iterable[GroupLag],
                    topics: Iterable[TopicRates]) -> tuple[RetentionRisk, ...]:
    """Every (group, topic) with a committed position, against the topic's retention."""
    meta: dict[tuple[str, int], PartitionMetadata] = {}
    configs: dict[str, TopicConfig | None] = {}
    for t in raw.topics:
        configs[t.name] = t.config
        for p in t.partitions:
            meta[(t.name, p.partition)] = p
    rates = {t.topic: t.partition_produce_rates for t in topics}
    out: list[RetentionRisk] = []
    for g in groups:
        per_topic: dict[str, list[PartitionRetention]] = {}
        for p in g.partitions:
            topic_rates = rates.get(p.topic, ())
            rate = topic_rates[p.partition] if 0 <= p.partition < len(topic_rates) else None
            r = partition_retention(p, meta.get((p.topic, p.partition)), configs.get(p.topic), rate)
            if r is not None:
                per_topic.setdefault(p.topic, []).append(r)
        out.extend(topic_risk(g.group, topic, parts) for topic, parts in sorted(per_topic.items()))
    return tuple(out)


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
