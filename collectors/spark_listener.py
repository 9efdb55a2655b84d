"""A StreamingQueryListener for users' Spark apps: progress to Kafka, processed offsets to a group.

Two lines in a PySpark Structured Streaming app::

    from collectors.spark_listener import attach
    attach(spark, bootstrap="broker:9092", topic="streamscope-progress", commit_offsets=True)

Every query of that SparkSession then publishes one JSON message per listener event to
``topic`` (key = query id, so a query's events stay in order on one partition)::

    {"type": "progress", "event": "progress", "wall": 1795607348.67,
     "app_id": "local-1795607340123", "app_name": "clickstream-stats",
     "query_id": "...", "run_id": "...", "query_name": "clickstream_stats",
     "payload": {...},            # the progress JSON exactly as Spark wrote it (progress.json)
     "sink": {"topics": ["clickstream-stats"]}}   # progress of a Kafka sink only, when known

``type`` is one of ``started``, ``progress``, ``idle`` and ``terminated`` (the latter's payload
carries ``exception`` and ``errorClassOnException``). Spark's progress names no Kafka sink topic
(its ``sink.description`` is ``...KafkaSourceProvider$KafkaTable@1f2e``), so the listener reads
the query's ``topic`` write option in the driver once per query (``kafka_sink_topics``) and adds
it as ``sink.topics``; nothing else of the write options (servers, credentials) leaves the app. streamscope's Spark collector reads that
topic (``spark.progress_topic`` in its config); ``collectors.spark.parse.progress.parse_progress_event``
parses the messages.

With ``commit_offsets=True`` the offsets a query has processed (``sources[].endOffset`` of its
Kafka sources: ``{"topic": {"partition": offset}}``) are also committed to a consumer group named
``spark-<query name>`` (``spark-<query id>`` for an unnamed query) with
``AdminClient.alter_consumer_group_offsets``. Spark itself never commits offsets, so without
this no Kafka lag tool sees a Structured Streaming query; with it every tool does. The group
has no members, which is what lets an admin client commit for it.

Nothing here blocks Spark's threads for long: messages go to confluent-kafka's in-memory
queue, offset commits run in a background thread that keeps only the newest offsets per group,
and every failure is logged, never raised into Spark. ``onQueryStarted`` runs on the query's
own thread in Spark, which is one more reason to stay quick.

This module imports neither pyspark nor confluent-kafka at import time; ``StreamscopeListener``
(a ``pyspark.sql.streaming.StreamingQueryListener`` subclass) is created on first use, and the
pure parts (``envelope``, ``kafka_end_offsets``, ``ProgressPublisher``) work without pyspark.
"""
from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import weakref
from typing import Any, Callable, Mapping

log = logging.getLogger("streamscope.spark_listener")

DEFAULT_TOPIC = "streamscope-progress"
DEFAULT_GROUP_PREFIX = "spark-"
EVENT_TYPES = ("started", "progress", "idle", "terminated")
MAX_REMEMBERED_QUERIES = 1000  # queries whose sink topics a listener keeps
# Kafka source descriptions in progress JSON: "KafkaV2[Subscribe[clickstream]]" (DSv2, the
# default), "KafkaSource[Subscribe[clickstream]]" (DSv1), "KafkaMicroBatchStream..." (older).
KAFKA_SOURCE_MARKERS = ("KafkaV2[", "KafkaSource[", "KafkaMicroBatch")

_DEFAULT_PRODUCER_CONFIG = {
    "linger.ms": 50,
    "acks": 1,
    "message.timeout.ms": 30000,
    "socket.timeout.ms": 10000,
    "queue.buffering.max.messages": 10000,
    "client.id": "streamscope-spark-listener",
}
_DEFAULT_ADMIN_CONFIG = {
    "socket.timeout.ms": 10000,
    "client.id": "streamscope-spark-listener-admin",
}


# --------------------------------------------------------------------------- pure helpers
def envelope(kind: str, payload: Mapping[str, Any], *, app_id: str | None = None,
             app_name: str | None = None, wall: float | None = None,
             sink_topics: list[str] | None = None) -> dict[str, Any]:
    """The message published for one listener event (see the module docstring)."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}; expected one of {EVENT_TYPES}")
    message = {
        "type": kind,
        "event": kind,  # the name collectors.spark.parse reads first
        "wall": time.time() if wall is None else wall,
        "app_id": app_id,
        "app_name": app_name,
        "query_id": _opt_str(payload.get("id")),
        "run_id": _opt_str(payload.get("runId")),
        "query_name": _opt_str(payload.get("name")),
        "payload": dict(payload),
    }
    if sink_topics:
        message["sink"] = {"topics": list(sink_topics)}
    return message


def is_kafka_source(source: Mapping[str, Any]) -> bool:
    """True for a Kafka source of a progress report (by its ``description``)."""
    description = source.get("description")
    return isinstance(description, str) and any(m in description for m in KAFKA_SOURCE_MARKERS)


def kafka_end_offsets(progress: Mapping[str, Any]) -> dict[tuple[str, int], int]:
    """``{(topic, partition): offset}`` processed by a micro-batch (its Kafka sources' endOffset).

    Spark's Kafka offsets are the next offset to read, which is exactly what a consumer group
    commits. ``endOffset`` may arrive as a JSON object or as a JSON string; anything else (other
    sources, negative sentinels such as -1/-2, malformed values) is skipped.
    """
    offsets: dict[tuple[str, int], int] = {}
    sources = progress.get("sources")
    if not isinstance(sources, list):
        return offsets
    for source in sources:
        if not isinstance(source, Mapping) or not is_kafka_source(source):
            continue
        end = source.get("endOffset")
        if isinstance(end, str):
            try:
                end = json.loads(end)
            except ValueError:
                continue
        if not isinstance(end, Mapping):
            continue
        for topic, partitions in end.items():
            if not isinstance(topic, str) or not isinstance(partitions, Mapping):
                continue
            for partition, offset in partitions.items():
                try:
                    partition_number = int(partition)
                except (TypeError, ValueError):
                    continue
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    continue
                offsets[(topic, partition_number)] = offset
    return offsets


def is_kafka_sink(progress: Mapping[str, Any]) -> bool:
    """True when a progress report's sink is Kafka (``sink.description`` names its classes)."""
    sink = progress.get("sink")
    description = sink.get("description") if isinstance(sink, Mapping) else None
    return isinstance(description, str) and "kafka" in description.lower()


def kafka_sink_topics(spark: Any, query_id: str) -> list[str] | None:
    """The ``topic`` write option of a query's Kafka sink, from its plan in the driver
    (``WriteToMicroBatchDataSource.writeOptions``; verified on Spark 4.2). None when it is not
    known: no such option (the topic is a column of each record), no JVM (Spark Connect), or
    any error. Only the topic is read, never the other options."""
    try:
        plan = spark.streams.get(query_id)._jsq.streamingQuery().logicalPlan()
        topic = plan.writeOptions().get("topic")
        return [str(topic.get())] if topic.isDefined() else None
    except Exception:  # noqa: BLE001 - best effort; a listener never breaks the query
        log.debug("streamscope listener: no sink topic for query %s", query_id, exc_info=True)
        return None


def default_group_name(query_name: str | None, query_id: str | None,
                       prefix: str = DEFAULT_GROUP_PREFIX) -> str | None:
    """``spark-<query name>``, or ``spark-<query id>`` for an unnamed query."""
    base = query_name or query_id
    return f"{prefix}{base}" if base else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class _LibrdkafkaLog:
    """librdkafka's log lines (several a second while a broker is down) at DEBUG, plus at most
    one WARNING per ``every`` seconds, so a Spark app's log is not flooded."""

    def __init__(self, every: float = 60.0,
                 name: str = "streamscope.spark_listener.librdkafka") -> None:
        self.logger = logging.getLogger(name)
        self.every = every
        self._last = -every

    def log(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if level >= logging.WARNING and now - self._last >= self.every:
            self._last = now
            self.logger.warning(message + " (further librdkafka messages at DEBUG for %.0f s)",
                                *args, self.every)
        else:
            self.logger.debug(message, *args)


# --------------------------------------------------------------------------- publisher
class ProgressPublisher:
    """Publishes listener events to Kafka and commits processed offsets; no pyspark needed.

    Args:
        bootstrap: Kafka ``bootstrap.servers``.
        topic: where events go.
        commit_offsets: also commit each progress' Kafka endOffsets to a consumer group.
        group: group name, or a callable ``(query_name, query_id) -> name``; default
            ``spark-<query name>`` (``group_prefix`` + name, or the id for an unnamed query).
        producer_config / admin_config: extra confluent-kafka settings (SASL, TLS...), added
            over the defaults.
        app_id / app_name: copied into every message (``attach`` fills them from the session).
        commit_timeout: seconds one offset commit may take before it is abandoned; a failed
            commit is retried with backoff (0.5 s doubling to 30 s) until newer offsets replace it.
    """

    def __init__(self, bootstrap: str, topic: str = DEFAULT_TOPIC, *, commit_offsets: bool = False,
                 group: str | Callable[[str | None, str | None], str | None] | None = None,
                 group_prefix: str = DEFAULT_GROUP_PREFIX,
                 producer_config: Mapping[str, Any] | None = None,
                 admin_config: Mapping[str, Any] | None = None,
                 app_id: str | None = None, app_name: str | None = None,
                 commit_timeout: float = 10.0) -> None:
        if not bootstrap:
            raise ValueError("bootstrap (Kafka bootstrap.servers) is required")
        if not topic:
            raise ValueError("topic is required")
        self.bootstrap = bootstrap
        self.topic = topic
        self.commit_offsets = commit_offsets
        self.group = group
        self.group_prefix = group_prefix
        self.producer_config = dict(producer_config or {})
        self.admin_config = dict(admin_config or {})
        self.app_id = app_id
        self.app_name = app_name
        self.commit_timeout = commit_timeout
        self.sent = 0  # messages acknowledged by the broker
        self.failed = 0  # messages dropped (queue full, delivery failure, serialisation)
        self.commits = 0  # successful offset commits
        self.commit_failures = 0
        self._lock = threading.Lock()
        self._producer: Any = None
        self._admin: Any = None
        self._pending: dict[str, dict[tuple[str, int], int]] = {}
        self._committed: dict[str, dict[tuple[str, int], int]] = {}
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._closed = False
        self._in_flight = False
        self._last_warning: dict[str, float] = {}
        _LIVE_PUBLISHERS.add(self)

    # Clients and threads are created lazily and dropped on pickling, so a listener can be
    # shipped with cloudpickle (Spark Connect runs listeners server-side).
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_wake", "_producer", "_admin", "_worker"):
            state[key] = None
        state["_pending"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._in_flight = False
        _LIVE_PUBLISHERS.add(self)

    # ------------------------------------------------------------------ events
    def publish(self, kind: str, payload: Mapping[str, Any], *,
                sink_topics: list[str] | None = None) -> None:
        """Publish one event (never raises); for ``progress`` also queue the offset commit."""
        try:
            message = envelope(kind, payload, app_id=self.app_id, app_name=self.app_name,
                               sink_topics=sink_topics)
            query_id = message["query_id"]
            self._produce(query_id, json.dumps(message, separators=(",", ":")).encode())
            if kind == "progress" and self.commit_offsets:
                self._queue_commit(payload)
            if kind == "terminated":
                self.flush(2.0)
        except Exception:  # noqa: BLE001 - a listener must never break the query
            self._warn("publish", "streamscope listener could not publish a %s event", kind,
                       exc_info=True)

    def publish_json(self, kind: str, raw_json: str,
                     sink_topics: Callable[[Mapping[str, Any]], list[str] | None] | None = None) -> None:
        """Like ``publish`` for a JSON text (``event.progress.json``); ``sink_topics(payload)``
        names the Kafka topics its sink writes (see ``kafka_sink_topics``)."""
        try:
            payload = json.loads(raw_json)
        except (TypeError, ValueError):
            self.failed += 1
            self._warn("decode", "streamscope listener got unparsable %s JSON: %.200r", kind, raw_json)
            return
        if not isinstance(payload, dict):
            self.failed += 1
            self._warn("decode", "streamscope listener got a non-object %s JSON", kind)
            return
        self.publish(kind, payload, sink_topics=sink_topics(payload) if sink_topics else None)

    def group_for(self, query_name: str | None, query_id: str | None) -> str | None:
        """The consumer group a query's offsets are committed to."""
        if callable(self.group):
            return self.group(query_name, query_id)
        if isinstance(self.group, str) and self.group:
            return self.group
        return default_group_name(query_name, query_id, self.group_prefix)

    def flush(self, timeout: float = 5.0) -> int:
        """Wait up to ``timeout`` s for queued messages; returns how many are still queued."""
        producer = self._producer
        if producer is None:
            return 0
        try:
            return producer.flush(timeout)
        except Exception:  # noqa: BLE001
            self._warn("flush", "streamscope listener flush failed", exc_info=True)
            return -1

    def wait_committed(self, timeout: float = 5.0) -> bool:
        """Wait until no offset commit is pending (tests, shutdown); True if none is."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush messages, finish pending commits (bounded), stop the worker thread."""
        self.wait_committed(timeout / 2)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        worker = self._worker
        if worker is not None:
            worker.join(timeout / 2)
        self.flush(timeout / 2)
        _LIVE_PUBLISHERS.discard(self)

    # ------------------------------------------------------------------ Kafka producer
    def _producer_instance(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer  # noqa: PLC0415 - optional at import time

            config = {**_DEFAULT_PRODUCER_CONFIG, **self.producer_config,
                      "bootstrap.servers": self.bootstrap, "logger": _LibrdkafkaLog()}
            self._producer = Producer(config)
        return self._producer

    def _produce(self, key: str | None, value: bytes) -> None:
        producer = self._producer_instance()
        try:
            producer.produce(self.topic, key=key.encode() if key else None, value=value,
                             on_delivery=self._delivered)
        except BufferError:
            producer.poll(0)
            self.failed += 1
            self._warn("queue", "streamscope listener dropped an event: producer queue full "
                               "(is Kafka at %s reachable?)", self.bootstrap)
            return
        producer.poll(0)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is None:
            self.sent += 1
        else:
            self.failed += 1
            self._warn("delivery", "streamscope listener could not deliver to %s: %s",
                       self.topic, error)

    # ------------------------------------------------------------------ offset commits
    def _queue_commit(self, payload: Mapping[str, Any]) -> None:
        offsets = kafka_end_offsets(payload)
        if not offsets:
            return
        group = self.group_for(_opt_str(payload.get("name")), _opt_str(payload.get("id")))
        if not group:
            return
        with self._lock:
            if self._closed or self._committed.get(group) == offsets:
                return
            self._pending[group] = offsets  # newest wins: older pending offsets are obsolete
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._commit_loop, daemon=True,
                                                name="streamscope-listener-commit")
                self._worker.start()
            self._wake.notify_all()

    def _commit_loop(self) -> None:
        backoff = 0.0
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait(1.0)
                if not self._pending:  # closed and nothing left
                    return
                group, offsets = self._pending.popitem()
                self._in_flight = True
            ok = False
            try:
                ok = self._commit(group, offsets)
            finally:
                with self._lock:
                    self._in_flight = False
                    if ok:
                        self._committed[group] = offsets
                    elif not self._closed:
                        # Retry later (coordinator loading, broker down...) unless newer
                        # offsets arrived meanwhile; they replace these anyway.
                        self._pending.setdefault(group, offsets)
                    self._wake.notify_all()
            if ok:
                backoff = 0.0
                continue
            backoff = min(max(backoff * 2, 0.5), 30.0)
            with self._lock:
                if not self._closed:
                    self._wake.wait(backoff)

    def _commit(self, group: str, offsets: dict[tuple[str, int], int]) -> bool:
        try:
            from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition  # noqa: PLC0415

            admin = self._admin_instance()
            request = ConsumerGroupTopicPartitions(
                group, [TopicPartition(topic, partition, offset)
                        for (topic, partition), offset in sorted(offsets.items())])
            futures = admin.alter_consumer_group_offsets([request],
                                                         request_timeout=self.commit_timeout)
            result = futures[group].result(timeout=self.commit_timeout + 5)
            errors = [tp for tp in (result.topic_partitions or []) if tp.error is not None]
            if errors:
                raise RuntimeError(", ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in errors))
        except Exception as error:  # noqa: BLE001
            self.commit_failures += 1
            # After a timeout librdkafka may still hold state for the request: a fresh client
            # avoids the assertion abort seen when the broker comes back (docs/architecture.md).
            self._admin = None
            self._warn("commit", "streamscope listener could not commit offsets of group %s: %s",
                       group, error)
            return False
        self.commits += 1
        return True

    def _admin_instance(self) -> Any:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient  # noqa: PLC0415

            config = {**_DEFAULT_ADMIN_CONFIG, **self.admin_config,
                      "bootstrap.servers": self.bootstrap, "logger": _LibrdkafkaLog()}
            self._admin = AdminClient(config)
        return self._admin

    # ------------------------------------------------------------------ logging
    def _warn(self, what: str, message: str, *args: Any, exc_info: bool = False,
              every: float = 30.0) -> None:
        """Log a warning at most once per ``every`` seconds per kind of failure."""
        now = time.monotonic()
        if now - self._last_warning.get(what, -every) >= every:
            self._last_warning[what] = now
            log.warning(message, *args, exc_info=exc_info)
        else:
            log.debug(message, *args, exc_info=exc_info)


_LIVE_PUBLISHERS: "weakref.WeakSet[ProgressPublisher]" = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for publisher in list(_LIVE_PUBLISHERS):
        try:
            publisher.close(3.0)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- pyspark listener
def _event_payload_started(event: Any) -> dict[str, Any]:
    return {"id": str(event.id), "runId": str(event.runId), "name": event.name,
            "timestamp": event.timestamp}


def _event_payload_idle(event: Any) -> dict[str, Any]:
    return {"id": str(event.id), "runId": str(event.runId), "timestamp": event.timestamp}


def _event_payload_terminated(event: Any, names: Mapping[str, str | None]) -> dict[str, Any]:
    query_id = str(event.id)
    payload = {"id": query_id, "runId": str(event.runId), "name": names.get(query_id),
               "exception": event.exception, "timestamp": _iso_now()}
    error_class = getattr(event, "errorClassOnException", None)
    if error_class:
        payload["errorClassOnException"] = error_class
    return payload


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


_LISTENER_CLASS: type | None = None


def _listener_class() -> type:
    """Create (once) the StreamingQueryListener subclass; needs pyspark."""
    global _LISTENER_CLASS
    if _LISTENER_CLASS is not None:
        return _LISTENER_CLASS
    from pyspark.sql.streaming import StreamingQueryListener  # noqa: PLC0415

    class StreamscopeListener(StreamingQueryListener):
        """Publishes every query event of a SparkSession to Kafka (see the module docstring)."""

        def __init__(self, bootstrap: str, topic: str = DEFAULT_TOPIC, *, spark: Any = None,
                     **options: Any) -> None:
            self.publisher = ProgressPublisher(bootstrap, topic, **options)
            self._spark = spark  # the session, to read each query's Kafka sink topic once
            self._sink_topics: dict[str, list[str] | None] = {}  # query id -> topics (bounded)
            self._names: dict[str, str | None] = {}  # query id -> name (terminated lacks it)
            self._terminated: set[str] = set()
            self._terminated_changed = threading.Condition()

        def onQueryStarted(self, event: Any) -> None:
            try:
                payload = _event_payload_started(event)
                self._names[payload["id"]] = payload["name"]
            except Exception:  # noqa: BLE001
                log.warning("streamscope listener: bad started event", exc_info=True)
                return
            self.publisher.publish("started", payload)

        def onQueryProgress(self, event: Any) -> None:
            try:
                raw = event.progress.json  # NOT json.dumps(lastProgress): UUIDs in pyspark 4
            except Exception:  # noqa: BLE001
                log.warning("streamscope listener: bad progress event", exc_info=True)
                return
            self.publisher.publish_json("progress", raw, sink_topics=self._kafka_sink_topics)

        def _kafka_sink_topics(self, progress: Mapping[str, Any]) -> list[str] | None:
            query_id = progress.get("id")
            if self._spark is None or not isinstance(query_id, str) or not is_kafka_sink(progress):
                return None
            if query_id not in self._sink_topics:
                if len(self._sink_topics) >= MAX_REMEMBERED_QUERIES:
                    self._sink_topics.pop(next(iter(self._sink_topics)))
                self._sink_topics[query_id] = kafka_sink_topics(self._spark, query_id)
            return self._sink_topics[query_id]

        def onQueryIdle(self, event: Any) -> None:
            try:
                payload = _event_payload_idle(event)
                payload["name"] = self._names.get(payload["id"])
            except Exception:  # noqa: BLE001
                log.warning("streamscope listener: bad idle event", exc_info=True)
                return
            self.publisher.publish("idle", payload)

        def onQueryTerminated(self, event: Any) -> None:
            try:
                payload = _event_payload_terminated(event, self._names)
            except Exception:  # noqa: BLE001
                log.warning("streamscope listener: bad terminated event", exc_info=True)
                return
            self.publisher.publish("terminated", payload)
            with self._terminated_changed:
                self._terminated.add(payload["id"])
                self._terminated_changed.notify_all()

        def wait_terminated(self, query_id: Any, timeout: float = 5.0) -> bool:
            """Wait until the terminated event of ``query_id`` was published (after query.stop())."""
            key = str(query_id)
            with self._terminated_changed:
                return self._terminated_changed.wait_for(lambda: key in self._terminated, timeout)

        def close(self, timeout: float = 5.0) -> None:
            self.publisher.close(timeout)

    StreamscopeListener.__module__ = __name__
    StreamscopeListener.__qualname__ = "StreamscopeListener"
    _LISTENER_CLASS = StreamscopeListener
    return StreamscopeListener


def __getattr__(name: str) -> Any:  # PEP 562: `from collectors.spark_listener import StreamscopeListener`
    if name == "StreamscopeListener":
        return _listener_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_listener(bootstrap: str, topic: str = DEFAULT_TOPIC, **options: Any) -> Any:
    """A new ``StreamscopeListener`` (not yet registered); options as for ProgressPublisher."""
    return _listener_class()(bootstrap, topic, **options)


def attach(spark: Any, bootstrap: str, topic: str = DEFAULT_TOPIC, *, commit_offsets: bool = False,
           **options: Any) -> Any:
    """Register a ``StreamscopeListener`` on ``spark`` (a SparkSession) and return it.

    ``options`` as for ``ProgressPublisher`` (``group``, ``group_prefix``, ``producer_config``,
    ``admin_config``, ``commit_timeout``). The app id and name are taken from the session.
    """
    if "app_id" not in options or "app_name" not in options:
        app_id, app_name = _app_identity(spark)
        options.setdefault("app_id", app_id)
        options.setdefault("app_name", app_name)
    # a classic (JVM) session lets the listener read Kafka sink topics; Spark Connect has none
    jvm_session = spark if getattr(spark, "_jsparkSession", None) is not None else None
    listener = make_listener(bootstrap, topic, commit_offsets=commit_offsets, spark=jvm_session, **options)
    spark.streams.addListener(listener)
    return listener


def detach(spark: Any, listener: Any, timeout: float = 5.0) -> None:
    """Unregister ``listener`` and flush what it still holds."""
    try:
        spark.streams.removeListener(listener)
    finally:
        listener.close(timeout)


def _app_identity(spark: Any) -> tuple[str | None, str | None]:
    try:
        context = spark.sparkContext  # not available under Spark Connect
        return context.applicationId, context.appName
    except Exception:  # noqa: BLE001
        try:
            return None, spark.conf.get("spark.app.name", None)
        except Exception:  # noqa: BLE001
            return None, None
