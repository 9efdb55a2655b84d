"""Kafka lag of Structured Streaming queries (pure functions).

Spark's Kafka source does not commit consumer-group offsets, so no Kafka lag tool sees a query.
A query's position is the `endOffset` of its latest batch's Kafka source (the next offset it
will read, like a committed offset). Offset lag = topic end offset - that position, clamped >= 0.

Time lag is computed on the Kafka side exactly as for consumer groups (timestamp of the record at
the position, or interpolation over end-offset history): `query_positions` gives the positions
with their age, and `query_as_consumer_group` wraps them as a `ConsumerGroup` so the Kafka lag
code (`collectors.kafka.signals`) can treat a query like any group.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from collectors.models import CommittedOffset, ConsumerGroup
from collectors.spark.models import BatchProgress, StreamingQuery

# Same naming as the listener's offset commits (collectors.spark_listener.default_group_name):
# when the listener commits a query's offsets, the Kafka collector sees that real group under
# this name, and the pseudo group below must not be added a second time.
QUERY_GROUP_PREFIX = "spark-"

# What a partition's lag was measured against (`QueryPartitionLag.against`).
AGAINST_END_OFFSETS = "end"  # the topic's end offset, as the Kafka collector fetched it
AGAINST_BATCH_LATEST = "latest"  # the offset the source saw as latest at the query's batch


@dataclass(frozen=True, slots=True)
class QueryPosition:
    """Where a query is in one topic partition, as of its latest reported batch."""

    topic: str
    partition: int
    offset: int  # endOffset of the latest batch: the next offset the query will read
    latest_offset: int | None  # what the source saw as latest at that trigger
    batch_id: int
    as_of: float  # when streamscope received that batch's progress (UNIX s)


@dataclass(frozen=True, slots=True)
class QueryPartitionLag:
    topic: str
    partition: int
    query_offset: int
    end_offset: int
    lag: int  # messages, clamped >= 0
    as_of: float  # age reference of query_offset
    against: str = AGAINST_END_OFFSETS


def _latest_kafka_batch(query: StreamingQuery) -> BatchProgress | None:
    for b in reversed(query.batches):
        if b.origin == "listener" and any(s.end_offsets for s in b.sources):
            return b
    return None


def query_positions(query: StreamingQuery) -> tuple[QueryPosition, ...]:
    """The query's position per Kafka topic-partition (latest listener batch with Kafka
    offsets). When several sources read the same partition, the lowest position counts."""
    batch = _latest_kafka_batch(query)
    if batch is None:
        return ()
    best: dict[tuple[str, int], QueryPosition] = {}
    for src in batch.sources:
        latest = {(p.topic, p.partition): p.offset for p in src.latest_offsets}
        for p in src.end_offsets:
            k = (p.topic, p.partition)
            if k not in best or p.offset < best[k].offset:
                best[k] = QueryPosition(topic=p.topic, partition=p.partition, offset=p.offset,
                                        latest_offset=latest.get(k), batch_id=batch.batch_id,
                                        as_of=batch.received_at)
    return tuple(sorted(best.values(), key=lambda q: (q.topic, q.partition)))


def query_kafka_lag(
    query: StreamingQuery, end_offsets: Mapping[tuple[str, int], int], *, latest_fallback: bool = False,
) -> tuple[QueryPartitionLag, ...]:
    """Per-partition lag = topic end offset - query source endOffset, clamped >= 0.

    `end_offsets` maps (topic, partition) to the partition's end offset (high watermark) as the
    Kafka collector fetched it. Partitions the query reads but `end_offsets` lacks are left out
    (with `latest_fallback`, measured against the latest offset the source saw at that batch);
    partitions of the topic the query has not reported yet are left out too.
    """
    out = []
    for pos in query_positions(query):
        end, against = end_offsets.get((pos.topic, pos.partition)), AGAINST_END_OFFSETS
        if end is None and latest_fallback:
            end, against = pos.latest_offset, AGAINST_BATCH_LATEST
        if end is None:
            continue
        out.append(QueryPartitionLag(topic=pos.topic, partition=pos.partition,
                                     query_offset=pos.offset, end_offset=end,
                                     lag=max(0, end - pos.offset), as_of=pos.as_of, against=against))
    return tuple(out)


def query_group_name(query: StreamingQuery, prefix: str = QUERY_GROUP_PREFIX) -> str:
    """`spark-<query name>`, or `spark-<query id>` for an unnamed query."""
    return f"{prefix}{query.name or query.id}"


def query_as_consumer_group(query: StreamingQuery, *,
                            prefix: str = QUERY_GROUP_PREFIX) -> ConsumerGroup | None:
    """The query as a pseudo consumer group (positions as committed offsets), for the Kafka lag
    and time-lag code, named like the group the listener commits to. None when the query has
    reported no Kafka offsets. Skip it when the Kafka collector already sees that group."""
    positions = query_positions(query)
    if not positions:
        return None
    state = "Stable" if query.state.value == "active" else "Empty"
    return ConsumerGroup(
        name=query_group_name(query, prefix),
        state=state,
        members=(),
        offsets=tuple(CommittedOffset(p.topic, p.partition, p.offset) for p in positions),
        offsets_fetched_at=max(p.as_of for p in positions),
        protocol_type="spark-structured-streaming",
    )


def join_query_groups(groups: Iterable[ConsumerGroup],
                      query_groups: Iterable[ConsumerGroup]) -> tuple[ConsumerGroup, ...]:
    """A cluster's consumer groups with the Spark queries' groups (`query_as_consumer_group`)
    joined in, each name once.

    When the cluster already has a query's group (the streamscope listener commits the query's
    processed offsets to it, `commit_offsets=True`), that group is shown as the query: its
    committed offsets (what every Kafka tool sees) with the query's kind and state. Such a
    group has no members, so as a plain group it would look Empty whether the query runs or
    is dead. A real group with members belongs to some other consumer and is left as it is.
    """
    by_name = {g.name: g for g in query_groups}
    out = []
    for g in groups:
        query = by_name.pop(g.name, None)
        if query is not None and not g.members:
            g = replace(g, kind=query.kind, state=query.state)
        out.append(g)
    return tuple(out) + tuple(by_name.values())
