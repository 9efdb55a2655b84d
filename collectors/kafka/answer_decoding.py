"""Answers the collector decodes with its own code, for the requests it sends every cycle.

kafka-python's parser asks an in-flight request's header for the class that decodes its answer
(`RequestHeader.get_response_class`). `decode_answers_with(request, decode)` gives a request a
header that answers with `decode(response_class, version, body)` instead: the metadata answer
(`collectors.kafka.metadata_answers`), the ListOffsets answers (`list_offsets_answer`), the
OffsetFetch answers (`read_offset_fetch`) and the DescribeLogDirs answers (`log_dirs_answer`) go
through it. kafka-python is pinned (pyproject.toml); the unit tests check every decoder here
against kafka-python's own classes.

**ListOffsets answers.** At 10,000 partitions kafka-python took 10-14 ms to decode one answer
into an object per partition, for two or three answers a cycle (latest, earliest, last stable),
and ten times that at 100,000 partitions. In the flexible encoding (v6+) each partition's entry has
a fixed size while it carries no tagged field, so a topic's entries are read by one
`struct.iter_unpack` (3.4 ms for the same answer, into the same offsets). An entry with tagged
fields, an answer of an earlier version, or one not read to its end exactly is decoded by
kafka-python instead.

**OffsetFetch answers** (v8+, many groups) are read the same way while every partition was
committed without metadata (then its entry has a fixed size), as consumers commit:
`read_offset_fetch`.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from kafka.protocol.api_header import RequestHeader

Decode = Callable[[Any, int, bytes], Any]  # (kafka-python's response class, API version, body) -> answer


class _Decoder:
    """Stands for the response class of one in-flight request (what kafka-python's parser calls)."""

    __slots__ = ("_decode", "_response_class", "_version")

    def __init__(self, decode: Decode, response_class, version: int) -> None:
        self._decode, self._response_class, self._version = decode, response_class, version

    def parse_header(self, data):
        return self._response_class.parse_header(data)

    def decode(self, data):
        body = data.read() if hasattr(data, "read") else bytes(data)
        return self._decode(self._response_class, self._version, body)


class _DecodingHeader(RequestHeader, init=False):
    __slots__ = ("decode_answer",)

    def get_response_class(self):
        response_class = super().get_response_class()
        if response_class is None:
            return None
        return _Decoder(self.decode_answer, response_class, self.request_api_version)


def decode_answers_with(request, decode: Decode) -> None:
    """After kafka-python's `with_header`: the request's answer is decoded by `decode`."""
    plain = request._header
    header = _DecodingHeader(request_api_key=plain.request_api_key, request_api_version=plain.request_api_version,
                             correlation_id=plain.correlation_id, client_id=plain.client_id)
    header.decode_answer = decode
    request._header = header


# -- ListOffsets ------------------------------------------------------------------------------

class OffsetsAnswer(NamedTuple):
    """A ListOffsets answer: each partition's offset, or its error."""

    offsets: dict[tuple[str, int], int]  # (topic, partition) -> offset, partitions without error
    errors: list[tuple[str, int, int]]  # (topic, partition, error code)
    throttle_time_ms: int  # read by kafka-python's connection (broker throttling)


# ListOffsets versions read from their bytes: the flexible encoding (v6+), up to the last version
# whose fields are known here (a later one may add fields: kafka-python decodes it)
_READ_VERSIONS = range(6, 12)
# partition index, error code, (timestamp), offset, (leader epoch), (count of tagged fields)
_OFFSET_ENTRY = struct.Struct(">ih8xq4xx")
_THROTTLE = struct.Struct(">i")
_NONE = b"\x00"  # a one-byte count of tagged fields that holds none


def list_offsets_answer(response_class, version: int, body: bytes) -> OffsetsAnswer:
    """A ListOffsets answer's offsets and errors, read from its bytes (see the module's text)."""
    if version in _READ_VERSIONS:
        answer = _read_flexible(body)
        if answer is not None:
            return answer
    return offsets_of_response(response_class.decode(body))


def offsets_of_response(response) -> OffsetsAnswer:
    """The same answer from kafka-python's decoded response."""
    offsets: dict[tuple[str, int], int] = {}
    errors: list[tuple[str, int, int]] = []
    for topic in response.topics:
        name = topic.name
        for partition in topic.partitions:
            if partition.error_code:
                errors.append((name, partition.partition_index, partition.error_code))
            else:
                offsets[(name, partition.partition_index)] = partition.offset
    return OffsetsAnswer(offsets, errors, getattr(response, "throttle_time_ms", 0) or 0)


def _read_flexible(body: bytes) -> OffsetsAnswer | None:
    """None when an entry carries tagged fields or the bytes do not end where the answer does."""
    try:
        (throttle,), at = _THROTTLE.unpack_from(body, 0), 4
        topics, at = uvarint(body, at)
        offsets: dict[tuple[str, int], int] = {}
        errors: list[tuple[str, int, int]] = []
        for _ in range(topics - 1):  # compact arrays hold their length + 1
            name, entries, at = _topic_entries(body, at, _OFFSET_ENTRY, ((_OFFSET_ENTRY.size - 1, _NONE),))
            for partition, error, offset in entries:
                if error:
                    errors.append((name, partition, error))
                else:
                    offsets[(name, partition)] = offset
        at = past_tagged_fields(body, at)
    except (_NotFixedSize, struct.error, IndexError, UnicodeDecodeError):
        return None
    return OffsetsAnswer(offsets, errors, throttle) if at == len(body) else None


# -- OffsetFetch (v8+: many groups) -----------------------------------------------------------

class FetchedGroup(NamedTuple):
    """One group's part of an OffsetFetch answer."""

    group_id: str
    error_code: int
    # per topic: its name and its partitions' (partition index, committed offset, error code);
    # None when this part is, byte for byte, the group's part of the kept answer (`KeptAnswer`)
    topics: list[tuple[str, list[tuple[int, int, int]]]] | None
    start: int = 0  # where the group's part of the answer starts and ends
    end: int = 0


class KeptAnswer(NamedTuple):
    """A previous answer to the same OffsetFetch request: its bytes, and where each group's part
    of them starts and ends. A group whose part of the next answer is the same bytes has the same
    committed offsets: they are not read again (most groups, between two cycles, have committed
    nothing new, or the same offsets again)."""

    body: bytes
    parts: dict[str, tuple[int, int]]  # group -> (start, end) in `body`


class FetchedOffsets(NamedTuple):
    """An OffsetFetch answer read from its bytes."""

    groups: list[FetchedGroup]
    throttle_time_ms: int  # read by kafka-python's connection (broker throttling)


# partition index, committed offset, (leader epoch), (metadata's length + 1), error code, (tagged
# fields): the entry of a partition committed without metadata, as consumers commit
_FETCHED = struct.Struct(">iq4xxhx")
# the entry's one-byte lengths that must hold nothing: the metadata (null or "") and the tags
_FETCHED_EMPTY = ((16, b"\x00\x01"), (19, _NONE))
_ERROR = struct.Struct(">h")


def read_offset_fetch(body: bytes, kept: KeptAnswer | None = None) -> FetchedOffsets | None:
    """An OffsetFetch v8 or v9 answer (flexible; a topic's name in each) read from its bytes. None
    when a partition was committed with metadata or carries tagged fields (its entry then has
    another size), or the bytes do not end where the answer does: kafka-python decodes it.

    With `kept` (the previous answer to the same request), a group whose part is the same bytes as
    its part of `kept` is not read (its `topics` None). Read from its start, the same bytes are the
    same part, ending where the kept part ended: a part changed anywhere, its lengths included,
    fails the comparison and is read as any other."""
    try:
        (throttle,), at = _THROTTLE.unpack_from(body, 0), 4
        count, at = uvarint(body, at)
        groups: list[FetchedGroup] = []
        kept_body, kept_parts = kept if kept is not None else (b"", {})
        for _ in range(count - 1):
            start = at
            group_id, at = _compact_string(body, at)
            part = kept_parts.get(group_id)
            if part is not None and body.startswith(memoryview(kept_body)[part[0]:part[1]], start):
                at = start + part[1] - part[0]
                groups.append(FetchedGroup(group_id, 0, None, start, at))
                continue
            topics_count, at = uvarint(body, at)
            topics: list[tuple[str, list[tuple[int, int, int]]]] = []
            for _ in range(topics_count - 1):
                name, entries, at = _topic_entries(body, at, _FETCHED, _FETCHED_EMPTY)
                topics.append((name, entries))
            (error,) = _ERROR.unpack_from(body, at)
            at = past_tagged_fields(body, at + 2)
            groups.append(FetchedGroup(group_id, error, topics, start, at))
        at = past_tagged_fields(body, at)
    except (_NotFixedSize, struct.error, IndexError, UnicodeDecodeError):
        return None
    return FetchedOffsets(groups, throttle) if at == len(body) else None


class _NotFixedSize(Exception):
    """An entry not of the fixed size (tagged fields, metadata): kafka-python decodes the answer."""


def _topic_entries(body: bytes, at: int, entry: struct.Struct, empty: tuple[tuple[int, bytes], ...]
                   ) -> tuple[str, list[tuple], int]:
    """A topic's name, its partitions' entries as `entry` reads them, and where the topic ends.
    `empty`: (where in an entry, the values it may hold) of its one-byte lengths that must hold
    nothing, else the entry has another size."""
    name, at = _compact_string(body, at)
    count, at = uvarint(body, at)
    if not count:  # a null array: not an answer read here
        raise _NotFixedSize(name)
    size = entry.size
    end = at + (count - 1) * size
    entries = body[at:end]
    if len(entries) != end - at:
        raise IndexError(end)
    for offset, allowed in empty:
        if entries[offset::size].translate(None, allowed):
            raise _NotFixedSize(name)
    return name, list(entry.iter_unpack(entries)), past_tagged_fields(body, end)


def _compact_string(body: bytes, at: int) -> tuple[str, int]:
    length, at = uvarint(body, at)
    if not length:
        raise IndexError("a null string where a name belongs")
    end = at + length - 1
    if end > len(body):
        raise IndexError(end)
    return body[at:end].decode(), end


def uvarint(body: bytes, at: int) -> tuple[int, int]:
    """An unsigned varint at `at`, and where it ends."""
    byte = body[at]
    if byte < 0x80:  # most lengths and counts: one byte
        return byte, at + 1
    value = shift = 0
    while True:
        byte = body[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def past_tagged_fields(body: bytes, at: int) -> int:
    """Where a tagged-field section that starts at `at` ends."""
    if not body[at]:  # none: the usual case
        return at + 1
    count, at = uvarint(body, at)
    for _ in range(count):
        _tag, at = uvarint(body, at)
        size, at = uvarint(body, at)
        at += size
    if at > len(body):
        raise IndexError(at)
    return at


# -- DescribeLogDirs --------------------------------------------------------------------------

class LogDirAnswer(NamedTuple):
    """One log directory of a DescribeLogDirs answer."""

    error_code: int
    path: str
    # per topic: its name and its replicas' (partition index, size in bytes, is a future log)
    topics: list[tuple[str, list[tuple[int, int, bool]]]]
    total_bytes: int  # of the volume (v4+); -1 when the broker does not report it
    usable_bytes: int


class LogDirsAnswer(NamedTuple):
    """A DescribeLogDirs answer: a broker's log directories."""

    dirs: list[LogDirAnswer]
    throttle_time_ms: int  # read by kafka-python's connection (broker throttling)
    # the answer's own error (v3+; e.g. CLUSTER_AUTHORIZATION_FAILED, with no directories): 0 if none
    error_code: int = 0


# DescribeLogDirs versions read from their bytes: the flexible encoding (v2+), up to the last
# version whose fields are known here. Asked every `log_dirs_every` cycles for every replica a
# broker holds: kafka-python decoded 10,000 replicas into an object and a dict each (~5 MB at
# once), which left the collector's child ~2.5 MB larger after each time (docs/performance.md,
# the thirty-fifth pass).
_LOG_DIRS_READ_VERSIONS = range(2, 6)
# partition index, size, (offset lag), is future key, (count of tagged fields)
_REPLICA = struct.Struct(">iq8x?x")
_VOLUME = struct.Struct(">qq")


def log_dirs_answer(response_class, version: int, body: bytes) -> LogDirsAnswer:
    """A DescribeLogDirs answer read from its bytes; kafka-python decodes an earlier version, an
    entry with tagged fields, or bytes that do not end where the answer does."""
    if version in _LOG_DIRS_READ_VERSIONS:
        answer = _read_log_dirs(body, version)
        if answer is not None:
            return answer
    return log_dirs_of_response(response_class.decode(body))


def log_dirs_of_response(response) -> LogDirsAnswer:
    """The same answer from kafka-python's decoded response."""
    dirs = [LogDirAnswer(d.error_code, d.log_dir or "",
                         [(t.name, [(p.partition_index, p.partition_size, bool(p.is_future_key)) for p in t.partitions])
                          for t in d.topics or ()],
                         getattr(d, "total_bytes", -1), getattr(d, "usable_bytes", -1))
            for d in response.results or ()]
    return LogDirsAnswer(dirs, getattr(response, "throttle_time_ms", 0) or 0, getattr(response, "error_code", 0) or 0)


def _read_log_dirs(body: bytes, version: int) -> LogDirsAnswer | None:
    """None when an entry carries tagged fields or the bytes do not end where the answer does."""
    try:
        (throttle,), at, answer_error = _THROTTLE.unpack_from(body, 0), 4, 0
        if version >= 3:
            (answer_error,) = _ERROR.unpack_from(body, at)
            at += 2
        count, at = uvarint(body, at)
        dirs: list[LogDirAnswer] = []
        for _ in range(count - 1):
            (error,) = _ERROR.unpack_from(body, at)
            path, at = _compact_string(body, at + 2)
            topics_count, at = uvarint(body, at)
            topics = []
            for _ in range(topics_count - 1):
                name, entries, at = _topic_entries(body, at, _REPLICA, ((_REPLICA.size - 1, _NONE),))
                topics.append((name, entries))
            total = usable = -1  # before v4: not reported, as kafka-python gives them
            if version >= 4:
                total, usable = _VOLUME.unpack_from(body, at)
                at += _VOLUME.size
            if version >= 5:
                at += 1  # is cordoned
            at = past_tagged_fields(body, at)
            dirs.append(LogDirAnswer(error, path, topics, total, usable))
        at = past_tagged_fields(body, at)
    except (_NotFixedSize, struct.error, IndexError, UnicodeDecodeError):
        return None
    return LogDirsAnswer(dirs, throttle, answer_error) if at == len(body) else None
