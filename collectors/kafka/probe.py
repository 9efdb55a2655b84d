"""The end-to-end probe: is the cluster actually working? (opt-in per cluster, `clusters[].probe`)

Offsets alone cannot say whether a record written now can be read back: a broker can answer
metadata and ListOffsets and still fail every produce (no ISR, a full disk, a hung request
thread). Like kminion's end-to-end monitoring, the probe writes, reads and commits for real:

- a probe topic (`probe.topic`, default `streamscope-probe`) with one partition per broker (created
  when missing, partitions added when brokers join; Kafka spreads their leaders over the brokers,
  so each round touches every broker that leads one), short retention;
- every `probe.interval_seconds`, one small record to each partition (acks=all), read back by a
  consumer assigned to every partition, whose offsets are then committed under the group
  `streamscope-probe-<cluster>` (left out of the groups streamscope reports);
- per round: produce latency (to the acknowledgement), round-trip latency (produced → consumed)
  and commit latency, into histograms; a round is up when every record came back within
  `probe.timeout_seconds` and the commit was confirmed.

It runs on its own thread next to the collector (in the collector's child process), so a hung
cluster shows as probe failures even while the collection's cycles time out; each snapshot
carries its counters (`ProbeStats`). The bookkeeping of a round (`ProbeRound`) and the counters
(`ProbeRecorder`) are pure and take the time as an argument.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from collectors.kafka.settings import ProbeSettings
from collectors.models import Histogram, ProbeStats

log = logging.getLogger(__name__)

PROBE_GROUP_PREFIX = "streamscope-probe-"
FAILURE_REASONS = ("setup", "produce", "timeout", "commit")
# Seconds; Prometheus' default buckets, which span a healthy loopback round trip (ms) to a timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def probe_group(cluster: str) -> str:
    return PROBE_GROUP_PREFIX + cluster


def is_probe_group(name: str) -> bool:
    return name.startswith(PROBE_GROUP_PREFIX)


class LatencyHistogram:
    """A cumulative histogram being filled (`frozen()` is the snapshot's copy)."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # per bucket, the last one above every bound
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def frozen(self) -> Histogram:
        cumulative, total = [], 0
        for n in self._counts:
            total += n
            cumulative.append(total)
        return Histogram(bounds=self._bounds, counts=tuple(cumulative), sum=self._sum)


class ProbeRound:
    """One round: records sent per partition, their acknowledgements, their return and the commit.
    Times are monotonic seconds given by the caller."""

    def __init__(self, number: int, partitions: list[int], started: float, timeout: float) -> None:
        self.number = number
        self.partitions = list(partitions)
        self.started = started
        self.deadline = started + timeout
        self._sent: dict[int, float] = {}
        self._acked: set[int] = set()
        self.produce_latencies: list[float] = []
        self.roundtrip_latencies: list[float] = []
        self.produce_errors: dict[int, str] = {}
        self.received: dict[int, int] = {}  # partition -> offset of the record read back
        self.commit_started: float | None = None
        self.commit_latency: float | None = None
        self.commit_error: str | None = None

    def sent(self, partition: int, at: float) -> None:
        self._sent[partition] = at

    def acked(self, partition: int, at: float, error: str | None) -> None:
        self._acked.add(partition)
        if error is not None:
            self.produce_errors[partition] = error
        elif partition in self._sent:
            self.produce_latencies.append(at - self._sent[partition])

    def got(self, partition: int, offset: int, at: float) -> None:
        """The round's record of `partition` was read back (a duplicate is ignored)."""
        if partition in self._sent and partition not in self.received and at <= self.deadline:
            self.received[partition] = offset
            self.roundtrip_latencies.append(at - self._sent[partition])

    @property
    def all_received(self) -> bool:
        return len(self.received) == len(self.partitions)

    def commit_sent(self, at: float) -> None:
        self.commit_started = at

    def committed(self, at: float, error: str | None) -> None:
        if self.commit_started is None or self.commit_latency is not None or self.commit_error is not None:
            return
        if error is not None:
            self.commit_error = error
        elif at <= self.deadline:
            self.commit_latency = at - self.commit_started

    def finished(self, now: float) -> bool:
        """Past the deadline, or the commit answered and every record's acknowledgement is in (it
        can arrive after the record was read back)."""
        answered = self.commit_latency is not None or self.commit_error is not None
        return now >= self.deadline or answered and len(self._acked) == len(self.partitions)

    def failures(self) -> dict[str, int]:
        """Records that failed, by reason (produce error, not back in time) and a failed commit."""
        missing = [p for p in self.partitions if p not in self.received]
        produce = sum(1 for p in missing if p in self.produce_errors)
        return {"produce": produce, "timeout": len(missing) - produce,
                "commit": 0 if self.commit_latency is not None or missing else 1}

    def error(self) -> str | None:
        """Why the round failed, in words; None when it succeeded."""
        failures = self.failures()
        if not any(failures.values()):
            return None
        words = []
        if failures["produce"]:
            words.append(f"{failures['produce']} record(s) not produced ({next(iter(self.produce_errors.values()))})")
        if failures["timeout"]:
            words.append(f"{failures['timeout']} of {len(self.partitions)} record(s) not back within "
                         f"{self.deadline - self.started:g} s")
        if failures["commit"]:
            words.append(f"commit {'failed: ' + self.commit_error if self.commit_error else 'not confirmed in time'}")
        return "; ".join(words)


class ProbeRecorder:
    """The probe's counters and histograms; rounds are recorded by the probe's thread, `stats()`
    is read by the collector's."""

    def __init__(self, topic: str) -> None:
        self._lock = threading.Lock()
        self._topic = topic
        self._partitions = 0
        self._up = False
        self._rounds = self._sent = self._received = 0
        self._failures = dict.fromkeys(FAILURE_REASONS, 0)
        self._roundtrip, self._produce, self._commit = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
        self._last_round_at: float | None = None
        self._last_success_at: float | None = None
        self._error: str | None = None

    def record_round(self, r: ProbeRound, at: float) -> None:
        """A finished round; `at` is wall-clock time."""
        with self._lock:
            self._partitions = len(r.partitions)
            self._rounds += 1
            self._sent += len(r.partitions)
            self._received += len(r.received)
            for reason, n in r.failures().items():
                self._failures[reason] += n
            for seconds in r.produce_latencies:
                self._produce.observe(seconds)
            for seconds in r.roundtrip_latencies:
                self._roundtrip.observe(seconds)
            if r.commit_latency is not None:
                self._commit.observe(r.commit_latency)
            self._error = r.error()
            self._up = self._error is None
            self._last_round_at = at
            if self._up:
                self._last_success_at = at

    def record_setup_failure(self, error: str, at: float) -> None:
        with self._lock:
            self._rounds += 1
            self._failures["setup"] += 1
            self._up = False
            self._error = f"setup: {error}"
            self._last_round_at = at

    def stats(self) -> ProbeStats:
        with self._lock:
            return ProbeStats(
                topic=self._topic, partitions=self._partitions, up=self._up, rounds_total=self._rounds,
                sent_total=self._sent, received_total=self._received,
                failures=tuple(self._failures.items()), roundtrip=self._roundtrip.frozen(),
                produce=self._produce.frozen(), commit=self._commit.frozen(),
                last_round_at=self._last_round_at, last_success_at=self._last_success_at, error=self._error,
            )


class Probe:
    """The probe's thread and its Kafka clients (confluent-kafka): `start()`, `stats()`, `stop()`."""

    def __init__(self, settings: ProbeSettings, cluster: str, client_config: dict,
                 *, monotonic: Callable[[], float] = time.monotonic, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.cluster = cluster
        self._config = client_config  # librdkafka properties (bootstrap, security, logger)
        self._monotonic, self._clock = monotonic, clock
        self.recorder = ProbeRecorder(settings.topic)
        self._run_id = uuid.uuid4().hex[:12]  # records of an earlier probe are not this one's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer = self._consumer = None
        self._partitions: list[int] = []
        self._round: ProbeRound | None = None
        self._rounds = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"probe-{self.cluster}", daemon=True)
            self._thread.start()

    def stats(self) -> ProbeStats:
        return self.recorder.stats()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.timeout_seconds + 5)
            self._thread = None

    # -- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        interval = self.settings.interval_seconds
        next_at = self._monotonic()
        try:
            while not self._stop.wait(max(0.0, next_at - self._monotonic())):
                next_at = self._monotonic() + interval
                try:
                    if self._consumer is None:
                        self._setup()
                    self._run_round()
                except Exception as exc:  # the probe's failures are data, the thread goes on
                    log.info("cluster %s: probe failed: %s", self.cluster, exc)
                    self.recorder.record_setup_failure(f"{type(exc).__name__}: {exc}", self._clock())
                    self._close_clients()
        finally:
            self._close_clients()

    def _setup(self) -> None:
        """The probe topic (created, or widened to one partition per broker), a producer and a
        consumer assigned to every partition at its end."""
        timeout = self.settings.timeout_seconds
        topic = self.settings.topic
        admin = AdminClient({**self._config, "socket.timeout.ms": int(timeout * 1000)})
        metadata = admin.list_topics(timeout=timeout)
        brokers = len(metadata.brokers)
        existing = metadata.topics.get(topic)
        if existing is None or existing.error is not None and not existing.partitions:
            replicas = self.settings.replication_factor or min(3, brokers)
            admin.create_topics([NewTopic(topic, brokers, replicas, config={
                "retention.ms": str(self.settings.retention_ms), "cleanup.policy": "delete"})],
                request_timeout=timeout)[topic].result(timeout)
            log.info("cluster %s: created the probe topic %r (%d partitions, %d replicas)", self.cluster, topic,
                     brokers, replicas)
        elif len(existing.partitions) < brokers:
            admin.create_partitions([NewPartitions(topic, brokers)], request_timeout=timeout)[topic].result(timeout)
        partitions = self._wait_for_leaders(admin, topic, brokers, timeout)
        consumer = Consumer({
            **self._config, "group.id": probe_group(self.cluster), "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "latest", "fetch.wait.max.ms": 10,
            "isolation.level": "read_uncommitted", "on_commit": self._on_commit,
        })
        try:
            start = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                                             timeout=timeout, cached=False)[1])
                     for p in partitions]
            consumer.assign(start)
        except BaseException:
            consumer.close()
            raise
        self._consumer = consumer
        self._producer = Producer({**self._config, "acks": "all", "linger.ms": 0, "enable.idempotence": False,
                                   "message.timeout.ms": int(timeout * 1000)})
        self._partitions = partitions

    def _wait_for_leaders(self, admin, topic: str, wanted: int, timeout: float) -> list[int]:
        deadline = self._monotonic() + timeout
        while True:
            t = admin.list_topics(topic, timeout=timeout).topics.get(topic)
            if t is not None and t.error is None and len(t.partitions) >= wanted and all(
                    p.leader >= 0 for p in t.partitions.values()):
                return sorted(t.partitions)
            if self._monotonic() > deadline:
                raise TimeoutError(f"probe topic {topic!r} has no leader for every partition")
            time.sleep(0.1)

    def _run_round(self) -> None:
        self._rounds += 1
        now = self._monotonic
        r = self._round = ProbeRound(self._rounds, self._partitions, now(), self.settings.timeout_seconds)
        for p in self._partitions:
            self._producer.produce(self.settings.topic, value=f"{self._run_id}:{r.number}:{p}".encode(), partition=p,
                                   on_delivery=lambda err, _msg, p=p, r=r: r.acked(p, now(), None if err is None else str(err)))
            r.sent(p, now())
        commit_sent = False
        while not r.finished(now()) and not self._stop.is_set():
            self._producer.poll(0)
            message = self._consumer.poll(0.02)
            if message is not None and message.error() is None:
                self._note_record(r, message.value(), message.partition(), message.offset())
            if r.all_received and not commit_sent:
                r.commit_sent(now())
                self._consumer.commit(offsets=[TopicPartition(self.settings.topic, p, o + 1)
                                               for p, o in sorted(r.received.items())], asynchronous=True)
                commit_sent = True
        self.recorder.record_round(r, self._clock())
        if r.error():
            log.debug("cluster %s: probe round %d: %s", self.cluster, r.number, r.error())

    def _note_record(self, r: ProbeRound, value: bytes | None, partition: int, offset: int) -> None:
        try:
            run, number, _p = (value or b"").decode().split(":")
        except (UnicodeDecodeError, ValueError):
            return  # not a probe record of this format: someone else writes to the topic
        if run == self._run_id and int(number) == r.number:
            r.got(partition, offset, self._monotonic())

    def _on_commit(self, error, _partitions) -> None:  # served inside consumer.poll(): the probe's thread
        r = self._round
        if r is not None:
            r.committed(self._monotonic(), None if error is None else str(error))

    def _close_clients(self) -> None:
        consumer, self._consumer, self._producer = self._consumer, None, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # closing a client of an unreachable cluster may fail; it is dropped
                log.debug("closing the probe consumer failed", exc_info=True)
