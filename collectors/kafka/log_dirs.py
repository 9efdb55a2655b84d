"""Broker log directories from DescribeLogDirs answers (`collectors.models.LogDir`).

Each broker answers for its own directories: every partition replica it holds with its size on
disk, and (Kafka 3.3+, KIP-827, DescribeLogDirs v4) the total and usable bytes of the volume.
A directory's size counts every log in it, a replica being moved in from another directory
(`is_future_key`) included: that is disk in use. A partition's size (`leader_sizes`) is its
leader's current log, what retention.bytes is measured against.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collectors.models import LogDir

# (broker, topic, partition) -> bytes of that replica's current log
ReplicaSizes = dict[tuple[int, str, int], int]


def parse_log_dirs(answers: Iterable[Mapping[str, Any]], keep_topic: Callable[[str], bool],
                   error_name: Callable[[int], str]) -> tuple[tuple[LogDir, ...], ReplicaSizes]:
    """`answers`: one {"broker": id, "log_dirs": [...]} per broker (kafka-python's
    `describe_log_dirs` shape). Per-topic bytes are kept for topics `keep_topic` accepts; a
    directory with an error code is reported with the error's name (`error_name`) and no sizes."""
    dirs: list[LogDir] = []
    replicas: ReplicaSizes = {}
    for answer in answers:
        broker = int(answer["broker"])
        for d in answer.get("log_dirs") or ():
            if d.get("error_code"):
                dirs.append(LogDir(broker=broker, path=d.get("log_dir") or "", size_bytes=0,
                                   error=error_name(d["error_code"])))
                continue
            total = 0
            per_topic: dict[str, int] = {}
            for t in d.get("topics") or ():
                name = t["name"]
                for p in t.get("partitions") or ():
                    size = max(0, int(p.get("partition_size") or 0))
                    total += size
                    if keep_topic(name):
                        per_topic[name] = per_topic.get(name, 0) + size
                        if not p.get("is_future_key"):
                            replicas[(broker, name, int(p["partition_index"]))] = size
            dirs.append(LogDir(
                broker=broker, path=d.get("log_dir") or "", size_bytes=total,
                total_bytes=_reported(d.get("total_bytes")), usable_bytes=_reported(d.get("usable_bytes")),
                topic_bytes=tuple(sorted(per_topic.items())),
            ))
    dirs.sort(key=lambda d: (d.broker, d.path))
    return tuple(dirs), replicas


def _reported(value: Any) -> int | None:
    """Volume sizes are -1 when the broker does not report them (before DescribeLogDirs v4)."""
    return int(value) if value is not None and int(value) >= 0 else None


def leader_sizes(replicas: Mapping[tuple[int, str, int], int],
                 leaders: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> bytes of the leader's replica, where the leader reported it."""
    out = {}
    for key, leader in leaders.items():
        size = replicas.get((leader, key[0], key[1]))
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
