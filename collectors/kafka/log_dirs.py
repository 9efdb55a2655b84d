"""Broker log directories from DescribeLogDirs answers (`collectors.models.LogDir`).

Each broker answers for its own directories: every partition replica it holds with its size on
disk, and (Kafka 3.3+, KIP-827, DescribeLogDirs v4) the total and usable bytes of the volume.
A directory's size counts every log in it, a replica being moved in from another directory
(`is_future_key`) included: that is disk in use. A partition's size (`leader_sizes`) is its
leader's current log, what retention.bytes is measured against.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from collectors.models import LogDir

if TYPE_CHECKING:  # the parent of `run` reads log directories (`topic_bytes`) and loads no Kafka client
    from collectors.kafka.answer_decoding import LogDirAnswer

# (broker, topic) -> {partition: bytes of that replica's current log}: no key object per replica
# (10,000s of them, made each time the directories are asked)
ReplicaSizes = dict[tuple[int, str], dict[int, int]]


def parse_log_dirs(answers: Iterable[tuple[int, Iterable[LogDirAnswer]]], keep_topic: Callable[[str], bool],
                   error_name: Callable[[int], str]) -> tuple[tuple[LogDir, ...], ReplicaSizes]:
    """`answers`: (broker id, its log directories) per broker answering. Per-topic bytes are kept
    for topics `keep_topic` accepts; a directory with an error code is reported with the error's
    name (`error_name`) and no sizes."""
    dirs: list[LogDir] = []
    replicas: ReplicaSizes = {}
    for broker, log_dirs in answers:
        for error, path, topics, total_bytes, usable_bytes in log_dirs:
            if error:
                dirs.append(LogDir(broker=broker, path=path, size_bytes=0, error=error_name(error)))
                continue
            total = 0
            per_topic: dict[str, int] = {}
            for name, partitions in topics:
                if not partitions:
                    continue
                kept = keep_topic(name)
                sizes = replicas.setdefault((broker, name), {}) if kept else None
                topic_total = 0
                for partition, size, is_future in partitions:
                    size = max(0, size)
                    topic_total += size
                    if sizes is not None and not is_future:
                        sizes[partition] = size
                total += topic_total
                if kept:
                    per_topic[name] = per_topic.get(name, 0) + topic_total
            dirs.append(LogDir(
                broker=broker, path=path, size_bytes=total,
                total_bytes=_reported(total_bytes), usable_bytes=_reported(usable_bytes),
                topic_bytes=tuple(sorted(per_topic.items())),
            ))
    dirs.sort(key=lambda d: (d.broker, d.path))
    return tuple(dirs), replicas


def _reported(value: int | None) -> int | None:
    """Volume sizes are -1 when the broker does not report them (before DescribeLogDirs v4)."""
    return value if value is not None and value >= 0 else None


def leader_sizes(replicas: ReplicaSizes, leaders: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> bytes of the leader's replica, where the leader reported it."""
    out = {}
    for key, leader in leaders.items():
        sizes = replicas.get((leader, key[0]))
        if sizes is not None:
            size = sizes.get(key[1])
            if size is not None:
                out[key] = size
    return out


def topic_bytes(dirs: Iterable[LogDir]) -> dict[str, int]:
    """Bytes on disk per topic, every replica on every broker."""
    out: dict[str, int] = {}
    for d in dirs:
        for topic, size in d.topic_bytes:
            out[topic] = out.get(topic, 0) + size
    return out
