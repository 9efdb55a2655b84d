"""Cluster metadata decoded only when the broker's answer changed.

The collector asks for every topic's metadata each cycle (leaders route the offset requests, the
replica lists give partition health, topic ids tell re-created topics apart). On a steady cluster
the answer is byte for byte the one of the previous cycle, and at 10,000 partitions kafka-python
spent ~20 ms decoding it and the collector ~18 ms more turning it into a `ClusterInfo` (measured,
the collector process against the 1,000 x 10,000 benchmark cluster).

A `MetadataAnswers` keeps the body of the last answer turned into a `ClusterInfo`, and that
`ClusterInfo`. A request built by `request()` has its answer decoded by `MetadataAnswers._answer`: a body equal to
the kept one (same API version, same bytes) is not decoded and comes back as `Unchanged`, which
carries the kept `ClusterInfo`; any other body is decoded as kafka-python decodes it and comes
back as `Decoded` with its bytes, which the caller keeps with the `ClusterInfo` it builds from it
(`keep`). The body and the `ClusterInfo` are kept together, so an answer is only ever matched
against the bytes its `ClusterInfo` was built from. Equal bytes decode to equal fields: nothing
the collector reads can differ, leaders, replicas, ISR, topic ids and errors included.

One field is left out of the comparison: the controller id. A KRaft cluster's brokers cannot name
the active controller to a client, and each answer names a broker picked at random instead (seen:
one broker of three answered 1, then 3, then 1 again). Compared in full, answers of a steady
three-broker cluster were decoded again in 7-10 cycles of 12, and at 100,000 partitions a decode
is ~0.5 s of the collector's CPU. A body equal to the kept one but for its controller id is
`Unchanged` too, and carries the kept `ClusterInfo` with that answer's controller id.

The request made here has its answer decoded by `MetadataAnswers` through kafka-python's own
hook (`collectors.kafka.answer_decoding`). kafka-python is pinned (pyproject.toml) and the unit
tests check the bytes and the decoding against its own classes.
"""
from __future__ import annotations

import struct
from dataclasses import replace
from typing import NamedTuple

from kafka.protocol.metadata import MetadataRequest

from collectors.kafka.answer_decoding import decode_answers_with, past_tagged_fields, uvarint
from collectors.kafka.cluster import ClusterInfo, known_controller

# The first Metadata version in the flexible encoding (compact strings and arrays, tagged fields).
_FLEXIBLE_FROM = 9


class _Kept(NamedTuple):
    version: int  # the API version the body was answered in
    body: bytes  # the answer after its response header
    throttle_time_ms: int
    info: ClusterInfo
    controller_at: int | None  # where the controller id lies in `body`; None: not found


class Unchanged(NamedTuple):
    """An answer whose body equals the kept one: its `ClusterInfo` is the kept one."""

    info: ClusterInfo
    throttle_time_ms: int  # read by kafka-python's connection (broker throttling)


class Decoded(NamedTuple):
    """An answer decoded as kafka-python decodes it, with the bytes it was decoded from."""

    response: object  # kafka-python's MetadataResponse
    version: int
    body: bytes
    throttle_time_ms: int


class MetadataAnswers:
    """The last metadata answer turned into a `ClusterInfo`, and the requests that reuse it."""

    __slots__ = ("_kept", "decoded", "unchanged")

    def __init__(self) -> None:
        self._kept: _Kept | None = None
        self.decoded = 0  # answers decoded (a new body)
        self.unchanged = 0  # answers whose body was the kept one's

    def request(self) -> MetadataRequest:
        """A request for every topic's metadata (no authorized operations), answered through this."""
        return _Request(self, topics=None, allow_auto_topic_creation=False,
                        include_cluster_authorized_operations=False, include_topic_authorized_operations=False)

    def keep(self, answer: Decoded, info: ClusterInfo) -> None:
        """`info` was built from `answer`: later answers with the same body give it back."""
        self._kept = _Kept(answer.version, answer.body, answer.throttle_time_ms, info,
                           controller_offset(answer.version, answer.body))

    def _answer(self, response_class, version: int, body: bytes) -> Unchanged | Decoded:
        kept = self._kept
        if kept is not None and kept.version == version:
            if kept.body == body:
                self.unchanged += 1
                return Unchanged(kept.info, kept.throttle_time_ms)
            at = kept.controller_at
            if at is not None and len(body) == len(kept.body):
                kept_body = memoryview(kept.body)
                if body.startswith(kept_body[:at]) and body.endswith(kept_body[at + 4:]):
                    (controller,) = struct.unpack_from(">i", body, at)
                    self.unchanged += 1
                    return Unchanged(replace(kept.info, controller_id=known_controller(controller)),
                                     kept.throttle_time_ms)
        response = response_class.decode(body)
        self.decoded += 1
        return Decoded(response, version, body, getattr(response, "throttle_time_ms", 0) or 0)


def controller_offset(version: int, body: bytes) -> int | None:
    """Where the controller id (4 bytes) lies in a Metadata answer's body of `version`: after the
    throttle time, the brokers and the cluster id. None for the versions before the flexible
    encoding (compared in full) and for a body too short to hold it."""
    if version < _FLEXIBLE_FROM:
        return None
    try:
        at = 4  # throttle_time_ms
        brokers, at = uvarint(body, at)
        for _ in range(brokers - 1):  # a compact array holds its length + 1
            at += 4  # node_id
            host, at = uvarint(body, at)
            at += host - 1 + 4  # compact string (length + 1), port
            rack, at = uvarint(body, at)
            at += max(rack - 1, 0)  # compact nullable string: 0 is null
            at = past_tagged_fields(body, at)
        cluster_id, at = uvarint(body, at)
        at += max(cluster_id - 1, 0)
    except IndexError:
        return None
    return at if at + 4 <= len(body) else None


class _Request(MetadataRequest, init=False):
    __slots__ = ("_answers",)

    def __init__(self, answers: MetadataAnswers, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._answers = answers

    def with_header(self, correlation_id=0, client_id="kafka-python"):
        super().with_header(correlation_id, client_id)
        decode_answers_with(self, self._answers._answer)
