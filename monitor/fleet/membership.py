"""A replica's membership of its fleet: a Kafka consumer group on the coordination topic, as
Kafka Connect and Kafka Streams share work (docs/scaling.md). No consensus of our own: Kafka's
group coordinator decides who owns which partition, its session timeout decides when a silent
replica has lost its share.

- The coordination topic is compacted, `partitions` wide; `start()` creates it when missing (and
  refuses to start when it exists with another partition count: every replica must map units to
  the same partitions).
- Replicas subscribe with the cooperative-sticky assignor: a rebalance moves only the partitions
  that must move, and a replica keeps collecting the others meanwhile.
- An assigned partition is read from its beginning to its end (the changelog of the units on it:
  what their last owner wrote) before it counts as owned; then it is paused. The listener gets
  the units' states (`acquired`) and, on a revocation or a loss, the partitions it gives up
  (`released`).
- Fencing: a replica whose poll loop was silent for longer than the session timeout (SIGSTOP, a
  long pause) may have been replaced: `owned()` is empty from that moment, and the loop, once it
  runs again, releases its partitions and reads them again (or Kafka revokes them first).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.settings import ConfigError

log = logging.getLogger(__name__)
rdkafka_log = logging.getLogger("streamscope.librdkafka")

TOPIC_CONFIG = {
    "cleanup.policy": "compact",  # the latest state of each unit is what a new owner needs
    "min.compaction.lag.ms": "0",
    "segment.ms": "3600000",  # segments close hourly, so compaction keeps the topic small
    "min.cleanable.dirty.ratio": "0.5",
}
MAX_STATE_BYTES = 900_000  # under Kafka's default max.message.bytes (1 MiB)


class MembershipError(ConfigError):
    """The coordination topic cannot be used (wrong partition count, not creatable): `run`
    reports it as one line and exits 2, like a configuration error."""


class OwnershipListener(Protocol):
    def acquired(self, partition: int, states: Mapping[str, bytes]) -> None:
        """A partition is owned from now on; `states` is the last value of each key on it."""

    def released(self, partitions: frozenset[int], lost: bool) -> None:
        """Partitions no longer owned: revoked in a rebalance (`lost` False) or lost (session
        timed out, fenced)."""


@dataclass(frozen=True)
class MembershipSettings:
    bootstrap_servers: str
    topic: str
    group_id: str
    partitions: int
    instance: str
    session_timeout: float
    replication_factor: int = -1
    client_config: dict = field(default_factory=dict, repr=False)  # librdkafka, secrets resolved
    request_timeout: float = 10.0


@dataclass
class MembershipStats:
    rebalances: int = 0  # assignments and revocations seen
    lost: int = 0  # partitions lost (session timeout, fencing)
    restored_keys: int = 0  # state records read back on assignment
    writes: int = 0
    write_failures: int = 0


class FleetMembership:
    """A `Service`: `start()` joins the group, `stop()` leaves it (after the listener's last
    writes are flushed)."""

    def __init__(self, settings: MembershipSettings, listener: OwnershipListener, *,
                 poll_seconds: float = 0.2, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.stats = MembershipStats()
        self._listener = listener
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._owned: set[int] = set()
        self._restoring: dict[int, dict[str, bytes]] = {}
        self._assigned: set[int] = set()
        self._to_resume: set[int] = set()  # assigned in the last callback: resumed once assigned
        self._last_poll = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.ensure_topic()
        s = self.settings
        base = {"bootstrap.servers": s.bootstrap_servers, "logger": rdkafka_log, **s.client_config}
        self._producer = Producer({**base, "client.id": f"streamscope-fleet-{s.instance}", "linger.ms": 20,
                                   "enable.idempotence": True, "message.max.bytes": MAX_STATE_BYTES + 65536})
        session_ms = int(s.session_timeout * 1000)
        self._consumer = Consumer({
            **base, "group.id": s.group_id, "client.id": f"streamscope-fleet-{s.instance}",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": session_ms, "heartbeat.interval.ms": max(100, session_ms // 4),
            "max.poll.interval.ms": max(session_ms, 300_000),
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        })
        self._consumer.subscribe([s.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        self._last_poll = self._clock()
        self._thread = threading.Thread(target=self._loop, name="fleet-membership", daemon=True)
        self._thread.start()
        log.info("fleet: %s joins group %s on topic %s (%d partitions)", s.instance, s.group_id, s.topic, s.partitions)

    def stop(self) -> None:
        """Leave the group (the others take over at once, no session timeout to wait)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.session_timeout + 30)
        if self._producer is not None:
            self._producer.flush(self.settings.request_timeout)

    def ensure_topic(self) -> None:
        """Create the compacted coordination topic, or check the one there has `partitions`.
        (Described, never listed by name: a metadata request for a missing topic may create it
        with the broker's default partition count.)"""
        s = self.settings
        admin = AdminClient({"bootstrap.servers": s.bootstrap_servers, "logger": rdkafka_log, **s.client_config})
        count = self._partition_count(admin)
        if count is None:
            future = admin.create_topics([NewTopic(s.topic, s.partitions, s.replication_factor, config=TOPIC_CONFIG)],
                                         request_timeout=s.request_timeout)[s.topic]
            try:
                future.result(s.request_timeout + 5)
                log.info("fleet: created coordination topic %s (%d partitions, compacted)", s.topic, s.partitions)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another replica was first
                    raise MembershipError(f"fleet: cannot create coordination topic {s.topic}: {exc}") from None
            deadline = time.monotonic() + s.request_timeout
            while count is None and time.monotonic() < deadline:  # metadata reaches every broker in time
                time.sleep(0.1)
                count = self._partition_count(admin)
        if count != s.partitions:
            raise MembershipError(f"fleet.partitions: the coordination topic {s.topic} has {count or 0} partitions, "
                                  f"the config says {s.partitions}: every replica must use the topic's count")

    def _partition_count(self, admin: AdminClient) -> int | None:
        future = admin.describe_topics(TopicCollection([self.settings.topic]),
                                       request_timeout=self.settings.request_timeout)[self.settings.topic]
        try:
            return len(future.result(self.settings.request_timeout + 5).partitions)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise MembershipError(f"fleet: cannot describe coordination topic {self.settings.topic}: {exc}") from None

    # -- what the rest reads -----------------------------------------------------------------------

    def owned(self) -> frozenset[int]:
        """Partitions owned now: assigned, read back, and not possibly replaced (a poll loop silent
        for longer than the session timeout owns nothing until it has run again)."""
        with self._lock:
            if self._clock() - self._last_poll > self.settings.session_timeout:
                return frozenset()
            return frozenset(self._owned)

    def write(self, key: str, value: bytes | None, partition: int) -> bool:
        """Produce a state record (None: a tombstone); False when it could not be queued."""
        producer = self._producer
        if producer is None:
            return False
        try:
            producer.produce(self.settings.topic, key=key.encode("utf-8", "surrogatepass"), value=value,
                             partition=partition, on_delivery=self._delivered)
        except (BufferError, KafkaException) as exc:
            self.stats.write_failures += 1
            log.warning("fleet: state of %s not written: %s", key, exc)
            return False
        self.stats.writes += 1
        return True

    def flush(self, timeout: float) -> int:
        """Wait until written state is acknowledged; the number of records still in flight."""
        return self._producer.flush(timeout) if self._producer is not None else 0

    # -- the poll loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                if self._clock() - self._last_poll > self.settings.session_timeout:
                    self._fence()
                msg = consumer.poll(self._poll_seconds)
                with self._lock:
                    self._last_poll = self._clock()
                    resume, self._to_resume = self._to_resume, set()
                if resume:  # a partition paused under an earlier assignment stays paused otherwise
                    consumer.resume([TopicPartition(self.settings.topic, p) for p in sorted(resume)])
                if self._producer is not None:
                    self._producer.poll(0)
                if msg is not None:
                    self._handle(msg)
        except Exception:
            log.exception("fleet: the membership loop failed; leaving the group")
        finally:
            try:
                consumer.close()  # revokes (listener.released) and leaves the group
            except Exception:
                log.exception("fleet: leaving the group failed")

    def _handle(self, msg) -> None:
        error = msg.error()
        partition = msg.partition()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._restored(partition)
            else:
                log.warning("fleet: coordination topic: %s", error)
            return
        with self._lock:
            states = self._restoring.get(partition)
            if states is None:
                return  # a paused partition's late record, or one no longer assigned
            key = (msg.key() or b"").decode("utf-8", "surrogatepass")
            if msg.value() is None:
                states.pop(key, None)
            else:
                states[key] = msg.value()
            self.stats.restored_keys += 1

    def _restored(self, partition: int) -> None:
        with self._lock:
            states = self._restoring.pop(partition, None)
            if states is None:
                return
            self._owned.add(partition)
        self._consumer.pause([TopicPartition(self.settings.topic, partition)])
        self._listener.acquired(partition, states)

    def _fence(self) -> None:
        """Silent for longer than the session timeout: another replica may own these partitions
        now. Release them, and read them again (Kafka revokes them first if they moved)."""
        with self._lock:
            owned = frozenset(self._owned)
            self._owned.clear()
            assigned = sorted(self._assigned)
            for p in assigned:
                self._restoring[p] = {}
            self._last_poll = self._clock()
        log.warning("fleet: %s was silent for longer than the session timeout (%.0f s): its partitions may "
                    "have moved; reading them again", self.settings.instance, self.settings.session_timeout)
        self.stats.lost += len(owned)
        if owned:
            self._listener.released(owned, True)
        tps = [TopicPartition(self.settings.topic, p, OFFSET_BEGINNING) for p in assigned]
        if tps:
            self._consumer.resume(tps)
            for tp in tps:
                try:
                    self._consumer.seek(tp)
                except KafkaException as exc:
                    log.info("fleet: re-reading partition %d: %s", tp.partition, exc)

    # -- rebalance callbacks (run inside poll, on the loop's thread) --------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        with self._lock:
            for tp in partitions:
                self._restoring[tp.partition] = {}
                self._assigned.add(tp.partition)
                self._to_resume.add(tp.partition)
        log.info("fleet: %s assigned partitions %s", self.settings.instance, sorted(tp.partition for tp in partitions))
        # The client assigns them when this returns (assigning here too breaks the Python client's
        # next callback); nothing is ever committed, so each is read from its beginning.

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, lost=False)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, lost=True)

    def _give_up(self, consumer: Consumer, partitions: list[TopicPartition], lost: bool) -> None:
        self.stats.rebalances += 1
        numbers = {tp.partition for tp in partitions}
        with self._lock:
            owned = frozenset(self._owned & numbers)
            self._owned -= numbers
            self._assigned -= numbers
            for p in numbers:
                self._restoring.pop(p, None)
        if lost:
            self.stats.lost += len(owned)
        log.info("fleet: %s %s partitions %s", self.settings.instance, "lost" if lost else "gives up", sorted(numbers))
        if owned:
            self._listener.released(owned, lost)

    def _delivered(self, error, msg) -> None:
        if error is not None:
            self.stats.write_failures += 1
            log.warning("fleet: a state record was not written: %s", error)
