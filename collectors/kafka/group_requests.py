"""Batched consumer-group requests through kafka-python: a handful of requests per cycle
instead of two or three per group.

confluent-kafka (librdkafka) takes one group per `list_consumer_group_offsets` call and sends a
FindCoordinator + DescribeGroups per group, so 1,000 groups cost ~4,000 requests a cycle (and the
CPU of as many futures). kafka-python sends the protocol's batched forms: one FindCoordinator for
all groups (v4, KIP-699), one OffsetFetch per coordinator for many groups (v8, KIP-709, Kafka 3.0+)
and one DescribeGroups per coordinator. Measured on the 1,000 × 10,000 benchmark cluster:
committed offsets 0.15-0.3 s and descriptions 0.07-0.12 s, against 0.3-0.5 s and 0.5-0.7 s
through librdkafka on an idle machine (and 1.7-2.1 s together in a loaded cycle).

What it does not cover falls back to the per-group confluent path in the collector:
- groups of the new consumer protocol (KIP-848, type CONSUMER): DescribeGroups answers them
  "not a classic group"; librdkafka uses ConsumerGroupDescribe for them;
- any group whose batched request failed (its error is kept per group);
- clusters whose `client` settings have no kafka-python equivalent (`kafka_python_config`).
"""
from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.admin.client import CoordinatorType
import kafka.errors as Errors
from kafka.errors import (BrokerResponseError, CoordinatorNotAvailableError, IllegalSaslStateError,
                          KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError, NotCoordinatorError,
                          RequestTimedOutError, SaslAuthenticationFailedError, UnsupportedSaslMechanismError)
from kafka.metrics.measurable_stat import AbstractMeasurableStat
from kafka.protocol.admin import DescribeLogDirsRequest, DescribeQuorumRequest
from kafka.protocol.consumer import OffsetFetchRequest
from kafka.protocol.consumer.offsets import IsolationLevel, ListOffsetsRequest, OffsetSpec

from collectors.kafka.cluster import (ClusterInfo, PartitionInfo, ReplicaSets, TopicInfo, known_controller,
                                      topic_id_text)
from collectors.kafka.answer_decoding import (FetchedOffsets, KeptAnswer, LogDirAnswer, decode_answers_with,
                                              list_offsets_answer, log_dirs_answer, read_offset_fetch)
from collectors.kafka.metadata_answers import MetadataAnswers, Unchanged

from collectors.kafka.errors import AUTHENTICATION, TLS, ClusterSecurityError
from collectors.models import Broker, CommittedOffset, GroupMember

log = logging.getLogger(__name__)

_ListOffsetsTopic = ListOffsetsRequest.ListOffsetsTopic

# A refused login: the cluster's answer, not one group's error, and no retry will help.
_AUTHENTICATION_ERRORS = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError, IllegalSaslStateError)


class _HideClientConfiguration(logging.Filter):
    """kafka-python logs a client's whole configuration at DEBUG when it starts, SASL and SSL
    passwords included; secrets must never reach the logs, so that record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Starting KafkaAdminClient with configuration")


logging.getLogger("kafka.admin.client").addFilter(_HideClientConfiguration())

# librdkafka property -> kafka-python argument, for everything that decides how to connect.
_CONNECTION_KEYS = {
    "security.protocol": ("security_protocol", str.upper),
    "sasl.mechanism": ("sasl_mechanism", str),
    "sasl.mechanisms": ("sasl_mechanism", str),
    "sasl.username": ("sasl_plain_username", str),
    "sasl.password": ("sasl_plain_password", str),
    "sasl.kerberos.service.name": ("sasl_kerberos_service_name", str),
    "ssl.ca.location": ("ssl_cafile", str),
    "ssl.certificate.location": ("ssl_certfile", str),
    "ssl.key.location": ("ssl_keyfile", str),
    "ssl.key.password": ("ssl_password", str),
    "ssl.crl.location": ("ssl_crlfile", str),
    "ssl.endpoint.identification.algorithm": ("ssl_check_hostname", lambda v: str(v).lower() == "https"),
    "client.id": ("client_id", str),
}
_CONNECTION_PREFIXES = ("security.", "sasl.", "ssl.")

# Groups per OffsetFetch request: keeps one response moderate (2,000 groups x 10 partitions is
# ~0.8 MB) while 10,000 groups take 5 requests (with 500 a request, 20: measured 23 requests a
# cycle at 10,000 groups, against the protocol floor's 6).
OFFSET_FETCH_CHUNK = 2000
# Topics per DescribeConfigs request (4 settings each, defaults included).
DESCRIBE_CONFIGS_CHUNK = 1000


def _cluster_info(md) -> ClusterInfo:
    """kafka-python's MetadataResponse as the collector keeps it."""
    brokers = tuple(sorted((Broker(b.node_id, b.host, b.port, b.rack) for b in md.brokers), key=attrgetter("id")))
    shared = ReplicaSets()
    topics = {
        t.name: TopicInfo(
            partitions={p.partition_index: PartitionInfo(p.leader_id, shared(p.replica_nodes), shared(p.isr_nodes))
                        for p in t.partitions},
            topic_id=topic_id_text(t.topic_id),
            error=None if not t.error_code else Errors.for_code(t.error_code).__name__,
        )
        for t in md.topics
    }
    return ClusterInfo(brokers, known_controller(md.controller_id), topics)


_QuorumTopic = DescribeQuorumRequest.TopicData


def _quorum_leader(response) -> int | None:
    """The metadata quorum's leader in a DescribeQuorum answer; raises its error."""
    if response.error_code:
        raise Errors.for_code(response.error_code)(response.error_message or "")
    for topic in response.topics:
        for partition in topic.partitions:
            if partition.error_code:
                raise Errors.for_code(partition.error_code)(partition.error_message or "")
            return known_controller(partition.leader_id)
    return None


def kafka_python_config(client_config: Mapping[str, object]) -> dict | None:
    """kafka-python arguments for a cluster's librdkafka `client` settings, or None when a
    connection setting has no equivalent here (then the per-group librdkafka path is used, which
    honours every librdkafka property). Other librdkafka tuning keys do not affect kafka-python."""
    out: dict = {}
    for key, value in client_config.items():
        if key in _CONNECTION_KEYS:
            name, convert = _CONNECTION_KEYS[key]
            out[name] = convert(value)
        elif key.startswith(_CONNECTION_PREFIXES):
            return None
    return out


class _BodyEncodedOnce:
    """A request sent again every cycle as it is: its body is encoded once per API version, and
    only the header (its correlation id) is new on each send. The bytes are the ones
    kafka-python's own `encode` gives (tests/unit/test_group_requests.py).

    Once encoded, the objects the body was made from are let go (`_let_go`): kept, they would
    hold memory for bytes already made. A version not yet encoded makes them again (`_fill`)."""

    __slots__ = ()

    def _fill(self) -> None:
        raise NotImplementedError

    def _let_go(self) -> None:
        raise NotImplementedError

    def encode(self, version=None, header=False, framed=False):
        if version is not None:
            self.API_VERSION = version
        body = self._bodies.get(self.API_VERSION)
        if body is None:
            self._fill()
            body = self._bodies[self.API_VERSION] = bytes(super().encode(header=False, framed=False))
            self._let_go()
        data = (bytes(self.encode_header(flexible=self.flexible_version_q(self.API_VERSION))) + body
                if header else body)
        return struct.pack(">i", len(data)) + data if framed else data


class ReusedListOffsetsRequest(_BodyEncodedOnce, ListOffsetsRequest, init=False):
    """A ListOffsets request sent again every cycle, encoded once (`_BodyEncodedOnce`).

    The partitions a leader is asked for rarely change between cycles, and kafka-python spends
    ~5 us a partition building and encoding the request (~95 ms for 10,000 partitions, twice or
    three times a cycle). Its partition objects (3 MB of the collector's memory at 10,000
    partitions) are built again from the (topic, partition) pairs when a version needs them."""

    __slots__ = ("_bodies", "_partitions", "_timestamp")

    def __init__(self, *args, partitions: tuple[tuple[str, int], ...] = (), timestamp: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self._bodies: dict[int, bytes] = {}
        self._partitions, self._timestamp = partitions, timestamp

    def _fill(self) -> None:
        if not self.topics:
            self.topics = _offsets_topics(self._partitions, self._timestamp)

    def _let_go(self) -> None:
        self.topics = []

    def with_header(self, correlation_id=0, client_id="kafka-python"):
        super().with_header(correlation_id, client_id)
        decode_answers_with(self, list_offsets_answer)  # an `OffsetsAnswer`


class LogDirsRequest(DescribeLogDirsRequest, init=False):
    """DescribeLogDirs, its answer read from its bytes (`answer_decoding.log_dirs_answer`): a
    `LogDirsAnswer`."""

    __slots__ = ()

    def with_header(self, correlation_id=0, client_id="kafka-python"):
        super().with_header(correlation_id, client_id)
        decode_answers_with(self, log_dirs_answer)


class ReusedOffsetFetchRequest(_BodyEncodedOnce, OffsetFetchRequest, init=False):
    """An OffsetFetch request for every committed offset of many groups (v8, KIP-709), sent again
    every cycle, encoded once (`_BodyEncodedOnce`). kafka-python builds and encodes it anew for
    each call: ~2.5 ms a cycle at 1,000 groups, ~25 ms at 10,000. Built as kafka-python's admin
    client builds it for groups asked without partitions (`_list_group_offsets_requests`)."""

    __slots__ = ("_bodies", "group_ids", "_kept", "_kept_offsets")

    def __init__(self, group_ids: tuple[str, ...]):
        super().__init__(groups=_offset_fetch_groups(group_ids), min_version=8, max_version=8)
        self._bodies: dict[int, bytes] = {}
        self.group_ids = group_ids
        # the last answer read from its bytes, and the offsets of each group read from it
        self._kept: KeptAnswer | None = None
        self._kept_offsets: dict[str, tuple[CommittedOffset, ...]] = {}

    def _fill(self) -> None:
        if not self.groups:
            self.groups = _offset_fetch_groups(self.group_ids)

    def _let_go(self) -> None:
        self.groups = []

    def with_header(self, correlation_id=0, client_id="kafka-python"):
        super().with_header(correlation_id, client_id)
        decode_answers_with(self, self._answer)

    def _answer(self, response_class, version: int, body: bytes):
        """This cycle's answer (in kafka-python's I/O thread): each group's offsets, those of a group
        whose part of the answer is the same bytes as last time taken from last time
        (`read_offset_fetch`'s `kept`: at 1,000 groups whose commits stay, 8-12 ms of the
        collector's CPU a cycle, measured, docs/performance.md). An answer kafka-python decodes
        forgets the kept one."""
        fetched = offset_fetch_answer(response_class, version, body, self._kept)
        if not isinstance(fetched, FetchedOffsets):
            self._kept, self._kept_offsets = None, {}
            return fetched
        offsets = _fetched_offsets(fetched, self._kept_offsets)
        parts = {g.group_id: (g.start, g.end) for g in fetched.groups  # a group's error is read again each time
                 if not isinstance(offsets[g.group_id], BrokerResponseError)}
        self._kept = KeptAnswer(body, parts)
        self._kept_offsets = {name: offsets[name] for name in parts}
        return GroupOffsetsAnswer(offsets, fetched.throttle_time_ms)


class GroupOffsetsAnswer(NamedTuple):
    """An OffsetFetch answer read from its bytes: each group's committed offsets or its error, as
    `offsets_of_groups` gives them."""

    offsets: dict[str, tuple[CommittedOffset, ...] | BrokerResponseError]
    throttle_time_ms: int  # read by kafka-python's connection (broker throttling)


def _offset_fetch_groups(group_ids: Iterable[str]) -> list:
    return [_OffsetFetchGroup(group_id=name, topics=None) for name in group_ids]


_OffsetFetchGroup = OffsetFetchRequest.OffsetFetchRequestGroup


class ReusedOffsetFetches:
    """The OffsetFetch requests of this cycle and the last, by the groups they ask: a request for
    the same groups is sent again as it is. Two cycles' worth, so groups that come and go do not
    keep old requests; a new client (after a failure) takes them over."""

    def __init__(self) -> None:
        self._this_cycle: dict[tuple[str, ...], ReusedOffsetFetchRequest] = {}
        self._last_cycle: dict[tuple[str, ...], ReusedOffsetFetchRequest] = {}

    def new_cycle(self) -> None:
        self._last_cycle, self._this_cycle = self._this_cycle, {}

    def request(self, group_ids: Iterable[str]) -> ReusedOffsetFetchRequest:
        key = tuple(sorted(group_ids))  # the order of the groups does not change the answer
        request = self._this_cycle.get(key) or self._last_cycle.get(key) or ReusedOffsetFetchRequest(key)
        self._this_cycle[key] = request
        return request


def list_offsets_request(partitions: Sequence[tuple[str, int]], spec: OffsetSpec,
                         level: IsolationLevel) -> ReusedListOffsetsRequest:
    """One ListOffsets request for (topic, partition) pairs, built as kafka-python's admin client
    builds it (`_list_partition_offsets_request`: same fields, same version floor) without a
    TopicPartition and a dict entry per partition first."""
    timestamp = int(spec)
    min_version = max(ListOffsetsRequest.min_version_for_isolation_level(level.value), 0,
                      ListOffsetsRequest.min_version_for_timestamp(spec) if timestamp < 0 else 0)
    partitions = tuple(partitions)
    return ReusedListOffsetsRequest(isolation_level=level.value, topics=_offsets_topics(partitions, timestamp),
                                    min_version=min_version, partitions=partitions, timestamp=timestamp)


def _offsets_topics(partitions: Sequence[tuple[str, int]], timestamp: int) -> list:
    by_topic: dict[str, list] = {}
    partition_type = _ListOffsetsTopic.ListOffsetsPartition
    for topic, pid in partitions:
        by_topic.setdefault(topic, []).append(partition_type(partition_index=pid, timestamp=timestamp))
    return [_ListOffsetsTopic(name=name, partitions=parts) for name, parts in by_topic.items()]


@dataclass(frozen=True)
class GroupDescription:
    """What the collector keeps of a group description, whichever client fetched it."""

    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, ...
    members: tuple[GroupMember, ...]
    protocol_type: str  # "consumer" or "simple" (no protocol: offsets committed by hand)
    coordinator: int | None
    assignor: str | None = None  # the partition assignor the members agreed on (range, ...)


@dataclass
class CommittedOffsets:
    offsets: dict[str, tuple[CommittedOffset, ...]]
    errors: dict[str, str]
    fetched_at: dict[str, float]

    def take(self, name: str, answer: tuple[CommittedOffset, ...] | BrokerResponseError, at: float) -> None:
        """Keep one group's answer (`offsets_of_groups`): its offsets, or its error."""
        if isinstance(answer, BrokerResponseError):
            self.errors[name] = str(answer)
        else:
            self.fetched_at[name] = at
            self.offsets[name] = answer


# A group's coordinator moved: a new client finds it again (kafka-python caches coordinators).
_COORDINATOR_MOVED = (NotCoordinatorError, CoordinatorNotAvailableError)


class GroupRequestTimeout(Exception):
    """The cluster did not answer in time (or could not be reached): the cycle fails."""


class BatchedGroupRequests:
    """Committed offsets and classic-group descriptions of many groups in batched requests."""

    def __init__(self, bootstrap_servers: str, client_config: Mapping[str, object], request_timeout: float,
                 client_id: str):
        self._bootstrap = bootstrap_servers
        self._config = {"client_id": client_id, **client_config}
        self._timeout_ms = int(request_timeout * 1000)
        self._admin = None
        self._requests = _RequestCounter()
        # (leader, spec, isolation) -> the partitions last asked and their request, sent again
        # while they are the same: at most one entry per broker and kind of offset.
        self._offset_requests: dict[tuple, ReusedListOffsetsRequest] = {}
        self._offset_fetches = ReusedOffsetFetches()
        self._metadata_answers = MetadataAnswers()
        self._quorum_error: str | None = None  # the last error describing the quorum, logged once

    @property
    def metadata_answers(self) -> MetadataAnswers:
        """How many metadata answers were decoded and how many were the previous one again."""
        return self._metadata_answers

    @property
    def requests_sent(self) -> int:
        """Requests sent since this object was created (kafka-python's own count)."""
        return self._requests.count

    def _client(self):
        if self._admin is None:
            with _security_errors_logged(io_thread=f"kafka-io-{self._config['client_id']}") as security:
                try:
                    self._admin = self._new_client()
                except KafkaError as exc:
                    if security.found is not None:
                        raise security.found from exc
                    raise GroupRequestTimeout(f"connecting to {self._bootstrap}: {exc}") from exc
            self._requests.attach(self._admin)
        return self._admin

    def _new_client(self) -> KafkaAdminClient:
        return _AdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms,
                            bootstrap_timeout_ms=self._timeout_ms, offset_fetches=self._offset_fetches, **self._config)

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # closing a client of a dead cluster may fail; it is discarded anyway
                log.debug("closing kafka-python admin client failed", exc_info=True)

    # -- committed offsets -------------------------------------------------------------------

    def committed_offsets(self, names: list[str]) -> CommittedOffsets:
        result = CommittedOffsets({}, {}, {})
        self._offset_fetches.new_cycle()
        for i in range(0, len(names), OFFSET_FETCH_CHUNK):
            chunk = names[i:i + OFFSET_FETCH_CHUNK]
            try:
                fetched = self._call(lambda: self._client().list_group_offsets(chunk))
            except _GroupError:
                # an error of the whole response (not of one group): isolate it group by group
                self._retry_one_by_one(chunk, result)
                continue
            at = time.time()
            moved = []
            for name, answer in fetched.items():
                if isinstance(answer, _COORDINATOR_MOVED):
                    moved.append(name)
                else:
                    result.take(name, answer, at)
            if moved:  # asked again, one by one, through a new client (see _call)
                self.close()
                self._retry_one_by_one(moved, result)
        return result

    def _retry_one_by_one(self, names: list[str], result: CommittedOffsets) -> None:
        for name in names:
            try:
                answer = self._call(lambda: self._client().list_group_offsets([name]))
            except _GroupError as exc:
                result.errors[name] = str(exc.__cause__)
                continue
            result.take(name, answer.get(name, ()), time.time())

    # -- cluster metadata and partition offsets ----------------------------------------------

    def metadata(self) -> ClusterInfo:
        """Brokers, controller, and every topic with its partitions and id: one Metadata request.

        Read from the decoded response's fields: kafka-python's `_get_cluster_metadata` turns the
        whole response into dicts first, which was a third of a steady cycle's CPU at 10,000
        partitions. No authorized operations are asked for: the collector does not use them. An
        answer byte for byte the previous one is not decoded again: its `ClusterInfo` is the
        previous one (`collectors.kafka.metadata_answers`)."""
        client = self._client()
        request = self._metadata_answers.request()
        answer = self._call(lambda: client._manager.run(client._manager.send, request))
        if isinstance(answer, Unchanged):
            return answer.info
        info = _cluster_info(answer.response)
        self._metadata_answers.keep(answer, info)
        return info

    def active_controller(self, named: int | None) -> int | None:
        """The node id of the active controller: the leader of the KRaft metadata quorum
        (DescribeQuorum, which a broker forwards to the controllers; what `kafka-metadata-quorum
        describe --status` shows as LeaderId). A KRaft broker's Metadata answer cannot name it and
        names a random broker instead. A cluster whose brokers do not offer DescribeQuorum (ZooKeeper
        mode) has a real controller broker, the one the Metadata answer `named`. None: not known
        this cycle (the quorum could not be described: not authorised, no leader, an error)."""
        client = self._client()
        manager = client._manager
        try:
            manager.broker_version_data.api_version(DescribeQuorumRequest)
        except Errors.IncompatibleBrokerVersion:
            return named
        request = DescribeQuorumRequest(topics=[_QuorumTopic(
            topic_name="__cluster_metadata", partitions=[_QuorumTopic.PartitionData(partition_index=0)])])
        try:
            response = manager.run(manager.send, request)
            leader = _quorum_leader(response)
        except KafkaError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if error != self._quorum_error:
                log.info("the active controller is unknown: describing the metadata quorum failed: %s", error)
            self._quorum_error = error
            return None
        self._quorum_error = None
        return leader

    def list_offsets(self, by_leader: Mapping[int, list[tuple[str, int]]], spec: str,
                     isolation: str = "read_uncommitted") -> dict[tuple[str, int], int]:
        """Offsets (`spec` "latest" or "earliest") of partitions grouped by leader: one ListOffsets
        request per leader for all its partitions. A partition without a leader, or whose leader or
        own answer failed, is left out (logged), like any partition whose offset is unknown."""
        client = self._client()
        offset_spec = OffsetSpec.LATEST if spec == "latest" else OffsetSpec.EARLIEST
        level = (IsolationLevel.READ_COMMITTED if isolation == "read_committed" else IsolationLevel.READ_UNCOMMITTED)

        async def run() -> dict[tuple[str, int], int]:
            out: dict[tuple[str, int], int] = {}
            for leader, partitions in by_leader.items():
                if leader < 0:
                    continue
                request = self._offsets_request(leader, partitions, offset_spec, level)
                try:
                    response = await client._manager.send(request, node_id=leader)
                except KafkaError as exc:
                    log.info("offsets of %d partition(s) led by broker %d unavailable: %s", len(partitions), leader, exc)
                    continue
                # the answer keyed on the caller's own key tuples (a key not asked: its own), in C
                asked = dict(zip(partitions, partitions))
                offsets = response.offsets
                out.update(zip(map(asked.get, offsets, offsets), offsets.values()))
                for name, partition, error in response.errors:
                    log.info("offsets of %s[%d] unavailable: %s", name, partition, Errors.for_code(error).__name__)
            return out

        return self._call(lambda: client._manager.run(run))

    def _offsets_request(self, leader: int, partitions: list[tuple[str, int]], spec: OffsetSpec,
                         level: IsolationLevel) -> ReusedListOffsetsRequest:
        key, asked = (leader, spec, level), tuple(partitions)
        cached = self._offset_requests.get(key)
        if cached is not None and cached._partitions == asked:
            return cached
        request = self._offset_requests[key] = list_offsets_request(asked, spec, level)
        return request

    # -- topic settings and log directories (costly: every N cycles) ---------------------------

    def topic_configs(self, names: list[str], keys: tuple[str, ...]
                      ) -> tuple[dict[str, dict[str, str | None]], dict[str, str]]:
        """The effective values of `keys` for each topic (defaults included): one DescribeConfigs
        request per DESCRIBE_CONFIGS_CHUNK topics, to any broker; and the name of the error each
        topic the answer refused has (e.g. TopicAuthorizationFailedError; one deleted meanwhile:
        UnknownTopicOrPartitionError). Those are left out of the values.

        The answer's entries are read as decoded: kafka-python's `describe_configs` makes a dict
        of every entry and looks its source and type up in enums, two thirds of the 80 ms of CPU
        that 1,000 topics cost each time (measured, docs/performance.md)."""
        client = self._client()
        out: dict[str, dict[str, str | None]] = {}
        refused: dict[str, str] = {}
        for i in range(0, len(names), DESCRIBE_CONFIGS_CHUNK):
            request = client._describe_configs_request(
                [ConfigResource(ConfigResourceType.TOPIC, name, configs=list(keys))
                 for name in names[i:i + DESCRIBE_CONFIGS_CHUNK]])

            async def run(request=request):
                return await client._manager.send(request)

            answer = self._call(lambda: client._manager.run(run))
            for result in answer.results:
                if result.error_code == 0 and result.configs:
                    out[result.resource_name] = {entry.name: entry.value for entry in result.configs}
                elif result.error_code:
                    refused[result.resource_name] = Errors.for_code(result.error_code).__name__
        return out, refused

    def log_dirs(self, brokers: Iterable[int]) -> tuple[list[tuple[int, list[LogDirAnswer]]], dict[int, str]]:
        """Every log directory of each broker, with every partition replica in it (DescribeLogDirs
        for all topics: one request per broker), as (broker, its directories); and why each
        broker left out did not give them: no answer, or the answer's own error (e.g.
        CLUSTER_AUTHORIZATION_FAILED: no directories at all, not an empty broker)."""
        client = self._client()
        request = LogDirsRequest(topics=None)

        async def run() -> tuple[list[tuple[int, list[LogDirAnswer]]], dict[int, str]]:
            out, missing = [], {}
            for broker in brokers:
                try:
                    answer = await client._manager.send(request, node_id=broker)
                except KafkaError as exc:
                    missing[broker] = f"no answer: {exc}"
                    continue
                if answer.error_code:
                    missing[broker] = Errors.for_code(answer.error_code).__name__
                    continue
                out.append((broker, answer.dirs))
            return out, missing

        return self._call(lambda: client._manager.run(run))

    # -- descriptions ------------------------------------------------------------------------

    def describe(self, names: list[str]) -> tuple[dict[str, GroupDescription], dict[str, str]]:
        """Descriptions of classic groups; second value: group -> error for the groups this
        request could not describe (e.g. KIP-848 groups), for the caller to retry elsewhere."""
        if not names:
            return {}, {}
        try:
            raw = self._call(lambda: self._client().describe_groups(names))
        except _GroupError as exc:
            return {}, {name: str(exc.__cause__) for name in names}
        described: dict[str, GroupDescription] = {}
        failed: dict[str, str] = {}
        for name in names:
            group = raw.get(name)
            if group is None or group.get("error"):
                failed[name] = (group or {}).get("error") or "not in the DescribeGroups response"
                continue
            described[name] = GroupDescription(
                state=group["group_state"] or "Unknown",
                members=tuple(_member(m) for m in group["members"]),
                protocol_type=group["protocol_type"] or "simple",
                coordinator=self._coordinator(name),
                assignor=group.get("protocol_data") or None,
            )
        return described, failed

    def _coordinator(self, name: str) -> int | None:
        # kafka-python keeps the coordinators it found (one batched FindCoordinator) in its
        # cluster metadata; there is no public accessor, so a version change degrades to None.
        try:
            return self._admin._manager.cluster.get_coordinator(name, CoordinatorType.GROUP)
        except Exception:
            return None

    # -- errors ------------------------------------------------------------------------------

    def _call(self, fn):
        try:
            return fn()
        except _AUTHENTICATION_ERRORS as exc:
            self.close()
            raise ClusterSecurityError(AUTHENTICATION, _explained(exc)) from exc
        except (KafkaTimeoutError, RequestTimedOutError, KafkaConnectionError, NodeNotReadyError) as exc:
            self.close()
            raise GroupRequestTimeout(f"{type(exc).__name__}: {exc}") from exc
        except BrokerResponseError as exc:  # group-level (coordinator moving, not authorised, ...)
            if isinstance(exc, _COORDINATOR_MOVED):
                # kafka-python caches coordinators and does not forget one that moved: a new
                # client finds them again (the next request, e.g. the group-by-group retry)
                self.close()
            raise _GroupError() from exc


class _AdminClient(KafkaAdminClient):
    """KafkaAdminClient whose I/O thread is stopped when it cannot bootstrap: its constructor
    starts the thread first and leaves it running when bootstrapping fails (one thread leaked
    per failed cycle while a cluster is unreachable, measured); and whose `list_group_offsets`
    answers each group with its committed offsets or its own error (`offsets_of_groups`)."""

    def _list_group_offsets_process_response(self, response, group_id=None):
        return offsets_of_groups(response, group_id)

    def _list_group_offsets_requests(self, group_specs):
        """Every committed offset of many groups in one request (v8+): the request sent for the
        same groups before, when there is one (`ReusedOffsetFetches`). Otherwise (groups asked
        for some partitions, or a broker before Kafka 3.0) kafka-python's own requests."""
        if (self._offset_fetches is None or not group_specs or any(spec is not None for spec in group_specs.values())
                or self._manager.broker_version_data.api_version(OffsetFetchRequest) < 8):
            yield from super()._list_group_offsets_requests(group_specs)
            return
        yield None, self._offset_fetches.request(group_specs)

    def __init__(self, offset_fetches: ReusedOffsetFetches | None = None, **configs):
        self._offset_fetches = offset_fetches
        try:
            super().__init__(**configs)
        except BaseException:
            net = getattr(self, "_net", None)
            if net is not None:
                net.stop()
            raise


class _SecurityErrorCapture(logging.Handler):
    """kafka-python retries a rejected SASL login or a failed TLS handshake until its bootstrap
    times out, then raises only "Unable to bootstrap"; the reason is in what its I/O thread logged
    (the exception is an argument of the record). Records of other clients' threads are ignored.

    Measured against Kafka 4.x: for a wrong password the broker's answer and its closing of the
    connection often arrive together, and kafka-python then reports only "socket disconnected";
    over the attempts of one bootstrap the answer usually gets through (librdkafka, which runs
    first in a cycle, reports it every time)."""

    def __init__(self, io_thread: str):
        super().__init__(logging.DEBUG)
        self._io_thread = io_thread
        self.found: ClusterSecurityError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.found is not None or record.threadName != self._io_thread or not isinstance(record.args, tuple):
            return
        for arg in record.args:
            if isinstance(arg, _AUTHENTICATION_ERRORS):
                self.found = ClusterSecurityError(AUTHENTICATION, _explained(arg))
            elif isinstance(arg, KafkaConnectionError) and "Handshake failed" in str(arg):
                self.found = ClusterSecurityError(TLS, _explained(arg))


def _explained(exc: KafkaError) -> str:
    """Name, message and (when the message is only the error's name) kafka-python's description."""
    text = f"{type(exc).__name__}: {exc}"
    description = getattr(exc, "description", "")
    return f"{text} ({description})" if description and str(exc).endswith(type(exc).__name__) else text


@contextmanager
def _security_errors_logged(io_thread: str):
    capture = _SecurityErrorCapture(io_thread)
    logger = logging.getLogger("kafka")
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)


def offset_fetch_answer(response_class, version: int, body: bytes, kept: KeptAnswer | None = None):
    """An OffsetFetch answer: read from its bytes where it can be (`FetchedOffsets`, v8-9; against
    `kept`, see `read_offset_fetch`), otherwise kafka-python's decoded response. `offsets_of_groups`
    takes either."""
    if version in (8, 9):  # topics by name (v10 names them by id)
        fetched = read_offset_fetch(body, kept)
        if fetched is not None:
            return fetched
    return response_class.decode(body)


def offsets_of_groups(response, group_id: str | None = None) -> dict[str, tuple[CommittedOffset, ...] | BrokerResponseError]:
    """Group -> its committed offsets (sorted by topic and partition, partitions without a commit
    left out), or the error of that group (or of one of its partitions), from an OffsetFetch
    answer (v8+: many groups; before: `group_id`'s only; `FetchedOffsets`: read from its bytes). An
    error of the whole response raises.

    kafka-python's own parsing builds a TopicPartition and an OffsetAndMetadata per partition and
    raises on the first group's error, so one failing group cost a request per group of its batch;
    at 10,000 groups x 10 partitions the parsing alone took about 0.6 s a cycle."""
    if isinstance(response, GroupOffsetsAnswer):
        return response.offsets
    if isinstance(response, FetchedOffsets):
        return _fetched_offsets(response)
    error = Errors.for_code(response.error_code)
    if error is not Errors.NoError:
        raise error(f"OffsetFetchResponse failed with response '{response}'.")
    groups = response.groups if response.API_VERSION >= 8 else (response,)
    out: dict[str, tuple[CommittedOffset, ...] | BrokerResponseError] = {}
    for group in groups:
        name = group.group_id if response.API_VERSION >= 8 else group_id
        out[name] = _group_offsets(name, group.error_code,
                                   ((topic.name, map(_fetched_fields, topic.partitions)) for topic in group.topics))
    return out


def _fetched_offsets(fetched: FetchedOffsets, kept: Mapping[str, tuple[CommittedOffset, ...]] | None = None
                     ) -> dict[str, tuple[CommittedOffset, ...] | BrokerResponseError]:
    """Each group's offsets or error from an answer read from its bytes; a group not read again
    (its `topics` None: its part was the kept answer's) has its offsets from `kept`."""
    return {g.group_id: kept[g.group_id] if g.topics is None else _group_offsets(g.group_id, g.error_code, g.topics)
            for g in fetched.groups}


def _group_offsets(name: str, error_code: int, topics) -> tuple[CommittedOffset, ...] | BrokerResponseError:
    """`topics`: each topic's name and its partitions' (partition index, committed offset, error code)."""
    if error_code:
        return Errors.for_code(error_code)(f"OffsetFetchResponse failed for group '{name}'.")
    offsets = []
    for topic_name, partitions in topics:
        for partition, committed, error in partitions:
            if error:
                return Errors.for_code(error)(f"OffsetFetchResponse failed for partition {partition}")
            if committed >= 0:  # every field, as tuple.__new__ takes them: 10,000s a cycle
                offsets.append(_record(CommittedOffset, (topic_name, partition, committed, True, None, None, None)))
    offsets.sort(key=_by_partition)
    return tuple(offsets)


_fetched_fields = attrgetter("partition_index", "committed_offset", "error_code")
_by_partition = attrgetter("topic", "partition")
_record = tuple.__new__  # a named tuple from all its fields, without its Python-level __new__


class _GroupError(Exception):
    """A group-level error in a batched response (its cause says which)."""


def _member(m: Mapping) -> GroupMember:
    assignment = m.get("member_assignment")
    pairs: Iterable[tuple[str, int]] = ()
    if isinstance(assignment, Mapping):
        pairs = ((t["topic"], p) for t in assignment.get("assigned_partitions", ()) for p in t["partitions"])
    return GroupMember(member_id=m["member_id"], client_id=m["client_id"], host=m["client_host"],
                       assignment=tuple(sorted(pairs)))


class _RequestCounter:
    """Counts requests kafka-python sends, from its own `request-latency` sensor (recorded once per
    answered request), so the benchmark can report requests per cycle for both clients."""

    def __init__(self) -> None:
        self.count = 0

    def attach(self, admin) -> None:
        counter = self

        class _Count(AbstractMeasurableStat):
            def record(self, config, value, time_ms):
                counter.count += 1

            def measure(self, config, now):
                return counter.count

        try:
            sensor = admin._metrics.sensor("request-latency")
            sensor.add(admin._metrics.metric_name("streamscope-request-total", "admin-metrics",
                                                  "Requests sent (counted by streamscope)."), _Count())
        except Exception:  # counting is for reporting only
            log.debug("cannot count kafka-python requests", exc_info=True)
