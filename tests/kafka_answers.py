"""Kafka protocol answers encoded by kafka-python, for unit tests of the collector's readers."""
from __future__ import annotations

from collections.abc import Callable


def offset_fetch_body(groups, *, metadata: Callable[[str, str, int], str | None] = lambda _g, _t, _p: "",
                      throttle: int = 0) -> bytes:
    """The bytes of an OffsetFetch v8 answer: `groups` maps a group to its error code or to
    (topic, partition, committed offset, error code) rows; `metadata(group, topic, partition)` is
    what each partition was committed with."""
    from kafka.protocol.consumer import OffsetFetchResponse as R

    G = R.OffsetFetchResponseGroup
    T = G.OffsetFetchResponseTopics
    P = T.OffsetFetchResponsePartitions
    out = []
    for name, rows in groups.items():
        if isinstance(rows, int):
            out.append(G(version=8, group_id=name, error_code=rows, topics=[]))
            continue
        topics = {}
        for topic, partition, offset, error in rows:
            topics.setdefault(topic, []).append(P(version=8, partition_index=partition, committed_offset=offset,
                                                  committed_leader_epoch=-1, metadata=metadata(name, topic, partition),
                                                  error_code=error))
        out.append(G(version=8, group_id=name, error_code=0,
                     topics=[T(version=8, name=t, partitions=ps) for t, ps in topics.items()]))
    return bytes(R(version=8, throttle_time_ms=throttle, groups=out).encode(version=8))
