"""Answers the collector decodes with its own code, for the requests it sends every cycle.

kafka-python's parser asks an in-flight request's header for the class that decodes its answer
(`RequestHeader.get_response_class`). `decode_answers_with(request, decode)` gives a request a
header that answers with `decode(response_class, version, body)` instead: the metadata answer
(`collectors.kafka.metadata_answers`) and the ListOffsets answers (`list_offsets_answer`) go
through it. kafka-python is pinned (pyproject.toml); the unit tests check every decoder here
against kafka-python's own classes.

**ListOffsets answers.** At 10,000 partitions kafka-python took 10-14 ms to decode one answer
into an object per partition, for two or three answers a cycle (latest, earliest, last stable),
and ten times that at 100,000 partitions. In the flexible encoding (v6+) each partition's entry has
a fixed size while it carries no tagged field, so a topic's entries are read by one
`struct.iter_unpack` (3.4 ms for the same answer, into the same offsets). An entry with tagged
fields, an answer of an earlier version, or one not read to its end exactly is decoded by
kafka-python instead.
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


_FLEXIBLE_FROM = 6  # ListOffsets versions in the flexible encoding
# partition index, error code, timestamp, offset, leader epoch, count of tagged fields (0: none)
_ENTRY = struct.Struct(">ihqqiB")
_THROTTLE = struct.Struct(">i")


def list_offsets_answer(response_class, version: int, body: bytes) -> OffsetsAnswer:
    """A ListOffsets answer's offsets and errors, read from its bytes (see the module's text)."""
    if version >= _FLEXIBLE_FROM:
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
        size = _ENTRY.size
        for _ in range(topics - 1):  # compact arrays hold their length + 1
            length, at = uvarint(body, at)
            name = body[at:at + length - 1].decode()
            at += length - 1
            count, at = uvarint(body, at)
            if not count:  # null: not an answer this reads
                return None
            end = at + (count - 1) * size
            entries = body[at:end]
            if len(entries) != end - at or entries[size - 1::size].count(0) != count - 1:
                return None  # short, or an entry with tagged fields
            for partition, error, _timestamp, offset, _epoch, _tags in _ENTRY.iter_unpack(entries):
                if error:
                    errors.append((name, partition, error))
                else:
                    offsets[(name, partition)] = offset
            at = past_tagged_fields(body, end)
        at = past_tagged_fields(body, at)
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    return OffsetsAnswer(offsets, errors, throttle) if at == len(body) else None


def uvarint(body: bytes, at: int) -> tuple[int, int]:
    """An unsigned varint at `at`, and where it ends."""
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
    count, at = uvarint(body, at)
    for _ in range(count):
        _tag, at = uvarint(body, at)
        size, at = uvarint(body, at)
        at += size
    if at > len(body):
        raise IndexError(at)
    return at
