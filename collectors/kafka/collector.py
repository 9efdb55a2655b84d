"""Kafka collector: one cycle of raw data from one cluster, through confluent-kafka's AdminClient.

Order within a cycle matters for correct lag: committed offsets are fetched *before* end
offsets, so end − committed can never be negative because of the race between the two fetches
(it can only overstate lag by what was produced in between, and both fetch times are kept).

Fault handling (see DESIGN.md): every call has a bounded `request_timeout`; after any timeout the
AdminClient and consumer are discarded and recreated on the next cycle, because reusing an
AdminClient after a timed-out group call can abort the process inside librdkafka. The process
boundary in `collectors.kafka.process` makes even that abort survivable.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Iterable

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from collectors.kafka.errors import ClusterSecurityError, SecurityErrors, failure_kind
from collectors.kafka.group_requests import (
    BatchedGroupRequests,
    CommittedOffsets,
    GroupDescription,
    GroupRequestTimeout,
    kafka_python_config,
)
from collectors.models import (
    Broker,
    CommittedOffset,
    ConsumerGroup,
    GroupMember,
    KafkaClusterSnapshot,
    PartitionMetadata,
    RecordTimestamp,
    Topic,
)

log = logging.getLogger(__name__)
rdkafka_log = logging.getLogger("streamscope.librdkafka")

NameFilter = Callable[[str], bool]

# What differs between repeats of one librdkafka line: "(after 0ms in state CONNECT, 2 identical
# error(s) suppressed)".
_ATTEMPT_DETAIL = re.compile(r" \(after \d+ms in state [A-Z_]+[^)]*\)")


class _AdminClientLog:
    """The AdminClient's `logger`. Its lines arrive only when it is polled, which the collector
    does after a failed cycle (to read the error callback): then dozens at once, e.g. one
    "Connect ... failed" per reconnect while a broker is down. The failure and its cause are in the
    collector's own warning, so each distinct line is passed on once per cycle, at DEBUG."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def new_cycle(self) -> None:
        self._seen.clear()

    def log(self, level: int, fmt: str, *args) -> None:  # the interface confluent-kafka calls
        line = fmt % args
        key = _ATTEMPT_DETAIL.sub("", line)
        if key not in self._seen:
            self._seen.add(key)
            rdkafka_log.debug("%s", line)


def quiet_kafka_client_logs(level: int = logging.INFO) -> None:
    """Client-library chatter below what the collector itself reports: librdkafka logs several
    lines a second while a broker is down (errors only), kafka-python logs every connection and
    I/O-loop start at INFO (warnings and up). Debug logging (`level` DEBUG) keeps everything."""
    if level <= logging.DEBUG:
        return
    logging.getLogger("streamscope.librdkafka").setLevel(max(level, logging.ERROR))
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))


def _accept_all(_: str) -> bool:
    return True


@dataclass(frozen=True)
class KafkaCollectorSettings:
    cluster: str
    bootstrap_servers: str
    # extra librdkafka properties, secrets resolved (never in a repr: reprs end up in logs)
    client_config: dict = field(default_factory=dict, repr=False)
    # the secret values among them: masked in every log line of the collector's child process
    secrets: tuple[str, ...] = field(default=(), repr=False)
    group_filter: NameFilter = _accept_all
    topic_filter: NameFilter = _accept_all
    include_internal_topics: bool = False
    request_timeout: float = 10.0
    max_in_flight_group_requests: int = 32
    exact_time_lag_partitions: int = 50
    isolation_level: str = "read_uncommitted"
    # Earliest offsets move only with retention: refresh them every N cycles (1 = every cycle).
    earliest_offsets_every: int = 10
    # Committed offsets and classic-group descriptions in batched requests (kafka-python,
    # `group_requests.py`); False: one librdkafka call per group.
    batched_group_requests: bool = True


# librdkafka's list_offsets costs CPU quadratic in the partitions of one call (measured: 10,000
# partitions in one call 0.8-1.3 s, in calls of 500 submitted together 0.18 s, same requests
# per leader); calls of this size are all in flight at once.
LIST_OFFSETS_CHUNK = 500


class CycleTimeout(Exception):
    """A bounded call did not answer in time; clients must be recreated."""


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc)
    return "TIMED_OUT" in text or "timed out" in text.lower() or "_TRANSPORT" in text


class KafkaCollector:
    """Collects `KafkaClusterSnapshot`s from one cluster. Not thread-safe: one cycle at a time."""

    def __init__(self, settings: KafkaCollectorSettings):
        self.settings = settings
        self._admin: AdminClient | None = None
        self._consumer: Consumer | None = None
        self._requests = 0
        self._cycle = 0
        self._earliest: dict[tuple[str, int], int] = {}
        self._batched: BatchedGroupRequests | None = None
        self._security_errors = SecurityErrors()
        self._admin_log = _AdminClientLog()
        python_config = kafka_python_config(settings.client_config) if settings.batched_group_requests else None
        if settings.batched_group_requests and python_config is None:
            log.info("cluster %s: client settings without a kafka-python equivalent; group requests are "
                     "sent one group at a time", settings.cluster)
        self._batched_config = python_config

    # -- client lifecycle -------------------------------------------------------------------

    def _client_config(self) -> dict:
        return {
            "bootstrap.servers": self.settings.bootstrap_servers,
            "client.id": f"streamscope-{self.settings.cluster}",
            "socket.timeout.ms": int(self.settings.request_timeout * 1000),
            # librdkafka logs several lines a second while a broker is down: route to logging.
            "logger": rdkafka_log,
            "log.connection.close": False,
            # a rejected login or TLS handshake only shows here; the call fails as "transport failure"
            "error_cb": self._security_errors,
            **self.settings.client_config,
        }

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({**self._client_config(), "logger": self._admin_log})
        return self._admin

    def _timestamp_consumer(self) -> Consumer:
        if self._consumer is None:
            config = self._client_config()
            config.update({
                # Never joins or commits: partitions are assigned by hand, offsets only read.
                "group.id": f"streamscope-timelag-{self.settings.cluster}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "fetch.wait.max.ms": 100,
                "fetch.max.bytes": 1 << 20,
                "max.partition.fetch.bytes": 64 << 10,
                "isolation.level": self.settings.isolation_level,
            })
            self._consumer = Consumer(config)
        return self._consumer

    def _batched_requests(self) -> BatchedGroupRequests | None:
        if self._batched is None and self._batched_config is not None:
            self._batched = BatchedGroupRequests(
                self.settings.bootstrap_servers, self._batched_config, self.settings.request_timeout,
                client_id=f"streamscope-{self.settings.cluster}")
        return self._batched

    @property
    def batched_requests_sent(self) -> int:
        """Requests sent by the batched group client so far (the benchmark adds them to librdkafka's)."""
        return self._batched.requests_sent if self._batched is not None else 0

    def reset_clients(self) -> None:
        """Discard clients (after a timeout) so the next cycle starts with fresh connections."""
        admin, consumer, batched = self._admin, self._consumer, self._batched
        self._admin = self._consumer = self._batched = None
        if batched is not None:
            batched.close()
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # closing a consumer of a dead cluster may fail; it is discarded anyway
                log.debug("closing time-lag consumer failed", exc_info=True)
        del admin  # AdminClient has no close(); dropping the reference destroys it

    def close(self) -> None:
        self.reset_clients()

    # -- one cycle ----------------------------------------------------------------------------

    def collect(self) -> KafkaClusterSnapshot:
        started = time.time()
        self._requests = 0
        self._security_errors.take()  # only this cycle's errors explain its failure
        self._admin_log.new_cycle()
        try:
            return self._collect(started)
        except Exception as exc:  # a failed cycle is data (collector_up 0), never a crash
            exc = self._security_error() or exc
            if isinstance(exc, (CycleTimeout, GroupRequestTimeout, ClusterSecurityError)) or _is_timeout(exc):
                self.reset_clients()
            if isinstance(exc, ClusterSecurityError):
                error, kind = str(exc), exc.kind
            else:
                error = f"{type(exc).__name__}: {exc}"
                kind = failure_kind(error)
            log.warning("kafka cluster %s: collection failed: %s", self.settings.cluster, error)
            return KafkaClusterSnapshot(
                cluster=self.settings.cluster, started_at=started, finished_at=time.time(),
                requests=self._requests, error=error, error_kind=kind,
            )

    def _security_error(self) -> ClusterSecurityError | None:
        """An authentication or TLS error librdkafka reported this cycle. Its error callback runs
        only inside `poll()`, so the AdminClient is polled once here (that also serves its log)."""
        if self._admin is not None:
            self._admin.poll(0)
        return self._security_errors.take()

    def _collect(self, started: float) -> KafkaClusterSnapshot:
        admin = self._admin_client()
        timeout = self.settings.request_timeout
        phases = _PhaseTimer()
        metadata = admin.list_topics(timeout=timeout)
        self._requests += 1
        phases.done("metadata")
        brokers = tuple(
            Broker(id=b.id, host=b.host, port=b.port) for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
        )
        group_names, new_protocol_groups = self._list_groups(admin)
        phases.done("list_groups")
        batched = self._batched_requests()
        # Group descriptions are independent of offsets: the ones librdkafka fetches are in flight
        # while the committed and end offsets (which must be fetched in that order) are collected.
        # The batched client describes classic groups only (KIP-848 groups need librdkafka).
        describe_futures = self._submit_describe(
            admin, [n for n in group_names if n in new_protocol_groups] if batched else group_names)
        if batched:
            sent_before = batched.requests_sent
            offsets = batched.committed_offsets(group_names)
        else:
            offsets = self._committed_offsets(admin, group_names)
        committed = offsets.offsets
        phases.done("committed_offsets")

        topic_names = {
            name for name, t in metadata.topics.items()
            if self._keep_topic(name) and t.error is None
        }
        # Topics consumed by a kept group are always collected, or its lag would be unknown.
        topic_names |= {o.topic for group_offsets in committed.values() for o in group_offsets
                        if o.topic in metadata.topics}
        # Ordered by leader: a list_offsets call of LIST_OFFSETS_CHUNK partitions then mostly
        # goes to one broker (one ListOffsets request) instead of one request per broker.
        partitions = [
            TopicPartition(name, pid)
            for _leader, name, pid in sorted(
                (p.leader, name, pid) for name in topic_names for pid, p in metadata.topics[name].partitions.items())
        ]
        earliest, latest, end_offsets_at = self._end_offsets(admin, partitions)
        phases.done("end_offsets")
        descriptions = self._await_describe(describe_futures)
        if batched:
            described, failed = batched.describe([n for n in group_names if n not in new_protocol_groups])
            self._requests += batched.requests_sent - sent_before
            descriptions.update(described)
            if failed:
                log.debug("cluster %s: %d group(s) described one by one: %s", self.settings.cluster, len(failed),
                          dict(list(failed.items())[:5]))
                descriptions.update(self._await_describe(self._submit_describe(admin, sorted(failed))))
        phases.done("describe_groups")

        topics = tuple(
            Topic(
                name=name,
                internal=name.startswith("__"),
                partitions=tuple(
                    PartitionMetadata(
                        topic=name, partition=pid, leader=p.leader, replicas=tuple(p.replicas),
                        isr=tuple(p.isrs), earliest_offset=earliest.get((name, pid)),
                        latest_offset=latest.get((name, pid)),
                    )
                    for pid, p in sorted(metadata.topics[name].partitions.items())
                ),
            )
            for name in sorted(topic_names)
        )
        groups = tuple(
            self._group(name, descriptions.get(name), committed.get(name, ()), offsets.errors.get(name),
                        offsets.fetched_at.get(name, started))
            for name in group_names
        )
        phases.done("build")
        record_timestamps = self._record_timestamps(groups, latest, earliest)
        phases.done("exact_time_lag")
        return KafkaClusterSnapshot(
            cluster=self.settings.cluster, started_at=started, finished_at=time.time(),
            brokers=brokers, controller_id=metadata.controller_id if metadata.controller_id >= 0 else None,
            topics=topics, groups=groups, end_offsets_fetched_at=end_offsets_at,
            record_timestamps=record_timestamps, requests=self._requests, phase_seconds=phases.phases(),
        )

    def _keep_topic(self, name: str) -> bool:
        if name.startswith("__") and not self.settings.include_internal_topics:
            return False
        return self.settings.topic_filter(name)

    # -- groups -------------------------------------------------------------------------------

    def _list_groups(self, admin: AdminClient) -> tuple[list[str], set[str]]:
        """Names of the kept groups, and which of them use the new consumer protocol (KIP-848)."""
        result = admin.list_consumer_groups(request_timeout=self.settings.request_timeout).result()
        self._requests += 1
        if result.errors:
            log.warning("cluster %s: listing groups partially failed: %s", self.settings.cluster, result.errors)
        names = sorted({g.group_id for g in result.valid})
        kept = [n for n in names if self.settings.group_filter(n) and not n.startswith("streamscope-timelag-")]
        new_protocol = {g.group_id for g in result.valid if getattr(getattr(g, "type", None), "name", "") == "CONSUMER"}
        return kept, new_protocol

    def _bounded(self, names: list[str], submit: Callable[[str], Future]) -> dict[str, Future]:
        """Submit one call per name with at most `max_in_flight_group_requests` outstanding."""
        slots = threading.BoundedSemaphore(self.settings.max_in_flight_group_requests)
        futures: dict[str, Future] = {}
        deadline = time.monotonic() + self.settings.request_timeout * 3
        for name in names:
            if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise CycleTimeout("group requests did not complete within the cycle budget")
            future = submit(name)
            self._requests += 1
            future.add_done_callback(lambda _f: slots.release())
            futures[name] = future
        return futures

    def _submit_describe(self, admin: AdminClient, names: list[str]) -> dict[str, Future]:
        # describe_consumer_groups takes many groups per call and librdkafka runs them concurrently
        # (one FindCoordinator + DescribeGroups per coordinator); chunks keep each call moderate.
        futures: dict[str, Future] = {}
        for i in range(0, len(names), 256):
            batch = admin.describe_consumer_groups(names[i:i + 256], request_timeout=self.settings.request_timeout)
            self._requests += len(batch)
            futures.update(batch)
        return futures

    def _await_describe(self, futures: dict[str, Future]) -> dict[str, GroupDescription]:
        out = {}
        for name, future in futures.items():
            try:
                out[name] = _description(future.result())
            except KafkaException as exc:
                if _is_timeout(exc):
                    raise CycleTimeout(f"describe group {name!r}: {exc}") from exc
                log.info("cluster %s: describe group %r failed: %s", self.settings.cluster, name, exc)
        return out

    def _committed_offsets(self, admin: AdminClient, names: list[str]):
        timeout = self.settings.request_timeout

        def submit(name: str) -> Future:
            request = [ConsumerGroupTopicPartitions(name)]
            return admin.list_consumer_group_offsets(request, request_timeout=timeout)[name]

        futures = self._bounded(names, submit)
        result = CommittedOffsets({}, {}, {})
        for name, future in futures.items():
            try:
                group = future.result()
            except KafkaException as exc:
                if _is_timeout(exc):
                    raise CycleTimeout(f"committed offsets of group {name!r}: {exc}") from exc
                result.errors[name] = str(exc)
                continue
            result.fetched_at[name] = time.time()
            result.offsets[name] = tuple(
                CommittedOffset(tp.topic, tp.partition, tp.offset)
                for tp in sorted(group.topic_partitions, key=lambda tp: (tp.topic, tp.partition))
                if tp.offset >= 0 and tp.error is None
            )
        return result

    def _group(self, name, description: GroupDescription | None, offsets, error, fetched_at) -> ConsumerGroup:
        if description is None:
            return ConsumerGroup(name=name, state="Unknown", members=(), offsets=offsets,
                                 offsets_fetched_at=fetched_at, error=error)
        state = description.state.replace("_", "")
        return ConsumerGroup(
            name=name, state=_STATE_NAMES.get(state.upper(), state), members=description.members, offsets=offsets,
            offsets_fetched_at=fetched_at, protocol_type=description.protocol_type,
            coordinator=description.coordinator, error=error,
        )

    # -- end offsets --------------------------------------------------------------------------

    def _end_offsets(self, admin: AdminClient, partitions: list[TopicPartition]):
        """Earliest and latest offsets of all partitions: librdkafka sends one ListOffsets per leader."""
        if not partitions:
            return {}, {}, time.time()
        from confluent_kafka import IsolationLevel

        isolation = (IsolationLevel.READ_COMMITTED if self.settings.isolation_level == "read_committed"
                     else IsolationLevel.READ_UNCOMMITTED)
        self._cycle += 1
        stale_earliest = [tp for tp in partitions if (tp.topic, tp.partition) not in self._earliest]
        if self._cycle % self.settings.earliest_offsets_every == 1 or self.settings.earliest_offsets_every == 1:
            stale_earliest = partitions
        if stale_earliest:
            self._earliest.update(self._list_offsets(admin, stale_earliest, OffsetSpec.earliest(), isolation))
        latest = self._list_offsets(admin, partitions, OffsetSpec.latest(), isolation)
        fetched_at = time.time()
        wanted = {(tp.topic, tp.partition) for tp in partitions}
        self._earliest = {k: v for k, v in self._earliest.items() if k in wanted}  # forget deleted partitions
        return dict(self._earliest), latest, fetched_at

    def _list_offsets(self, admin: AdminClient, partitions: list[TopicPartition], spec, isolation) -> dict:
        futures = {}
        for i in range(0, len(partitions), LIST_OFFSETS_CHUNK):
            futures.update(admin.list_offsets({tp: spec for tp in partitions[i:i + LIST_OFFSETS_CHUNK]},
                                              isolation_level=isolation, request_timeout=self.settings.request_timeout))
            self._requests += 1
        offsets = {}
        for tp, future in futures.items():
            try:
                offsets[(tp.topic, tp.partition)] = future.result().offset
            except KafkaException as exc:
                if _is_timeout(exc):
                    raise CycleTimeout(f"list offsets {tp.topic}[{tp.partition}]: {exc}") from exc
                log.info("cluster %s: offsets of %s[%d] unavailable: %s",
                         self.settings.cluster, tp.topic, tp.partition, exc)
        return offsets

    # -- exact time lag -----------------------------------------------------------------------

    def _record_timestamps(self, groups: Iterable[ConsumerGroup], latest: dict, earliest: dict):
        """Read the record at the committed offset of the worst-lagging partitions.

        One consumer is assigned to all chosen partitions at once and pauses each after its
        first record: measured ~0.3 s for 600 partitions, against 49 s one partition at a time.
        """
        limit = self.settings.exact_time_lag_partitions
        if limit <= 0:
            return ()
        candidates = []
        for group in groups:
            for o in group.offsets:
                end = latest.get((o.topic, o.partition))
                if end is not None and end > o.offset:
                    start = max(o.offset, earliest.get((o.topic, o.partition), o.offset))
                    candidates.append((end - o.offset, group.name, o.topic, o.partition, start))
        if not candidates:
            return ()
        candidates.sort(reverse=True)
        # One assignment can hold each partition once: read the record of the worst-lagging
        # group's offset; other groups at that same offset share it, groups at other offsets of
        # the same partition are interpolated this cycle.
        wanted: dict[tuple[str, int, int], list[str]] = {}
        chosen: dict[tuple[str, int], int] = {}
        for _lag, group, topic, partition, offset in candidates:
            if (topic, partition) not in chosen:
                if len(chosen) >= limit:
                    continue
                chosen[(topic, partition)] = offset
            if chosen[(topic, partition)] == offset:
                wanted.setdefault((topic, partition, offset), []).append(group)
        try:
            found = self._read_first_records(list(wanted))
        except KafkaException as exc:
            log.info("cluster %s: exact time lag skipped this cycle: %s", self.settings.cluster, exc)
            self.reset_clients()
            return ()
        return tuple(
            RecordTimestamp(group=group, topic=topic, partition=partition, offset=offset, timestamp=ts)
            for (topic, partition, offset), ts in sorted(found.items())
            for group in wanted[(topic, partition, offset)]
        )

    def _read_first_records(self, wanted: list[tuple[str, int, int]]) -> dict[tuple[str, int, int], float]:
        consumer = self._timestamp_consumer()
        by_partition = {(t, p): o for t, p, o in wanted}
        consumer.assign([TopicPartition(t, p, o) for t, p, o in wanted])
        self._requests += 1
        found: dict[tuple[str, int, int], float] = {}
        deadline = time.monotonic() + min(self.settings.request_timeout, 5.0)
        try:
            while len(found) < len(wanted) and time.monotonic() < deadline:
                messages = consumer.consume(num_messages=max(1, len(wanted)), timeout=0.2)
                done = []
                for message in messages:
                    if message.error():
                        continue
                    key = (message.topic(), message.partition())
                    offset = by_partition.get(key)
                    if offset is None or (key[0], key[1], offset) in found:
                        continue
                    _ts_type, ts_ms = message.timestamp()
                    if ts_ms is not None and ts_ms >= 0:
                        found[(key[0], key[1], offset)] = ts_ms / 1000.0
                    done.append(TopicPartition(key[0], key[1]))
                if done:
                    consumer.pause(done)
        finally:
            # Pause flags outlive unassign() in librdkafka: resume first, or the next cycle's
            # assignment of the same partitions would never fetch.
            consumer.resume([TopicPartition(t, p) for t, p, _ in wanted])
            consumer.unassign()
        return found


class _PhaseTimer:
    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._phases: list[tuple[str, float]] = []

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self._phases.append((phase, now - self._last))
        self._last = now

    def phases(self) -> tuple[tuple[str, float], ...]:
        return tuple(self._phases)


_STATE_NAMES = {
    "STABLE": "Stable", "EMPTY": "Empty", "DEAD": "Dead", "PREPARINGREBALANCE": "PreparingRebalance",
    "COMPLETINGREBALANCE": "CompletingRebalance", "UNKNOWN": "Unknown", "ASSIGNING": "Assigning",
    "RECONCILING": "Reconciling",
}


def _description(d) -> GroupDescription:
    """confluent-kafka's ConsumerGroupDescription as the collector keeps it."""
    members = tuple(
        GroupMember(
            member_id=m.member_id, client_id=m.client_id, host=m.host,
            assignment=tuple(sorted(
                (tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])
            )),
        )
        for m in d.members
    )
    return GroupDescription(
        state=getattr(d.state, "name", str(d.state)).title().replace("_", ""), members=members,
        protocol_type="simple" if d.is_simple_consumer_group else "consumer",
        coordinator=d.coordinator.id if d.coordinator else None,
    )
