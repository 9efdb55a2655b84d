"""What a unit's owner writes to the coordination topic and a new owner reads back (Kafka
Streams' changelog pattern): small, bounded, validated.

Two kinds of record, each keyed so compaction keeps the latest:

- `w|<cluster>|<group>`: a group's offset windows: its committed series per partition (the
  status window's points and when the current offset was first seen), recent end offsets of
  its partitions (rates and time-lag interpolation continue) and since when it is Empty;
- `a|<unit>`: the alert state of a unit (`alerts.handover`): its alerts, their notification
  groups and what each receiver was told, and the notifications not delivered yet.

A record is JSON compressed with zlib, at most `MAX_STATE_BYTES`: a group with very many
partitions keeps fewer end-offset points first. A record that does not decode or validate is
logged and ignored (the unit starts afresh, as after a restart without history).
"""
from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collectors.kafka.windows import OffsetWindows

log = logging.getLogger(__name__)

VERSION = 1
MAX_STATE_BYTES = 900_000  # under Kafka's default max.message.bytes (1 MiB)
END_POINTS = (16, 4, 2, 0)  # end offsets kept per partition, fewer when a record is too large
RECENT_END_POINTS = 8  # of which the newest at full resolution, the rest spread over the history


class StateError(ValueError):
    """A record that is not a valid state."""


def windows_key(cluster: str, group: str) -> str:
    return f"w|{cluster}|{group}"


def alerts_key(unit: str) -> str:
    return f"a|{unit}"


def parse_key(key: str) -> tuple[str, str, str | None]:
    """("w", cluster, group) or ("a", unit, None); StateError for anything else."""
    kind, _, rest = key.partition("|")
    if kind == "w":
        cluster, sep, group = rest.partition("|")
        if sep and cluster:
            return kind, cluster, group
    elif kind == "a" and rest:
        return kind, rest, None
    raise StateError(f"not a state key: {key[:80]!r}")


def encode(data: Mapping[str, Any]) -> bytes:
    return zlib.compress(json.dumps({"v": VERSION, **data}, separators=(",", ":"), allow_nan=False).encode())


def decode(value: bytes) -> dict[str, Any]:
    try:
        data = json.loads(zlib.decompress(value, bufsize=1 << 16))
    except (zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"undecodable state: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise StateError("a state of another version")
    return data


# -- a group's windows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupWindows:
    group: str
    empty_since: float | None
    # (topic, partition, changed_at, ((at, offset, lag), ...))
    commits: tuple[tuple[str, int, float, tuple[tuple[float, int, int | None], ...]], ...]
    # (topic, partition, ((at, end offset), ...))
    ends: tuple[tuple[str, int, tuple[tuple[float, int], ...]], ...]


def spread(points: list, newest: int = RECENT_END_POINTS, total: int = END_POINTS[0]) -> list:
    """The newest `newest` points, and up to `total` in all spread evenly over the older ones."""
    if len(points) <= total:
        return points
    if total <= newest:
        return points[-total:] if total else []
    older, recent = points[:-newest], points[-newest:]
    step = len(older) / (total - newest)
    return [older[int(i * step)] for i in range(total - newest)] + recent


def export_group(windows: OffsetWindows, group: str, partitions: Iterable[tuple[str, int]],
                 empty_since: float | None) -> GroupWindows:
    commits, ends = [], []
    for topic, partition in sorted(set(partitions)):
        series = windows.committed_series(group, topic, partition)
        changed = windows.last_changed_at(group, topic, partition)
        if series and changed is not None:
            commits.append((topic, partition, changed, tuple((p.at, p.offset, p.lag) for p in series)))
        end = windows.end_offset_series(topic, partition)
        if end:
            ends.append((topic, partition, tuple(end)))
    return GroupWindows(group, empty_since, tuple(commits), tuple(ends))


def encode_group(state: GroupWindows) -> bytes | None:
    """The record, with fewer end-offset points while it is too large; None when even the
    committed series alone are (a group of tens of thousands of partitions)."""
    commits = [[t, p, changed, [list(point) for point in points]] for t, p, changed, points in state.commits]
    for keep in END_POINTS:
        ends = [[t, p, [list(point) for point in spread(list(points), min(RECENT_END_POINTS, keep), keep)]]
                for t, p, points in state.ends] if keep else []
        value = encode({"g": state.group, "es": state.empty_since, "c": commits, "e": ends})
        if len(value) <= MAX_STATE_BYTES:
            return value
    log.warning("fleet: the windows of group %r are too large to hand over (%d partitions)", state.group,
                len(state.commits))
    return None


def decode_group(value: bytes) -> GroupWindows:
    data = decode(value)
    try:
        commits = tuple(
            (str(t), int(p), _finite(changed), tuple((_finite(at), int(o), None if lag is None else int(lag))
                                                     for at, o, lag in points))
            for t, p, changed, points in data["c"])
        ends = tuple((str(t), int(p), tuple((_finite(at), int(o)) for at, o in points)) for t, p, points in data["e"])
        empty_since = None if data.get("es") is None else _finite(data["es"])
        return GroupWindows(str(data["g"]), empty_since, commits, ends)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"invalid group windows: {exc}") from None


def import_group(windows: OffsetWindows, state: GroupWindows) -> None:
    """Continue from what the last owner saw: its committed series replace ours (forgotten
    first), its end offsets fill in what we do not have yet (newer points we have are kept)."""
    windows.forget_group(state.group)
    for topic, partition, changed, points in state.commits:
        windows.restore_committed(state.group, (topic, partition), points, changed)
    # One call per time, as the collector records them: partitions sampled together share
    # their times (collectors.kafka.windows); each partition's points still come oldest first.
    by_time: dict[float, dict[tuple[str, int], int]] = {}
    for topic, partition, points in state.ends:
        for at, offset in points:
            by_time.setdefault(at, {})[(topic, partition)] = offset
    for at in sorted(by_time):
        windows.record_end_offsets(at, by_time[at])


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number
