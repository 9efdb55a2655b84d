"""`KafkaProgressFeed`: the streamscope listener's progress topic as a `ProgressFeed`.

The listener (`collectors/spark_listener.py`, inside users' Spark apps) publishes one JSON
envelope per StreamingQueryListener event to a Kafka topic, keyed by query id:

    {"type": "progress", "event": "progress", "wall": 1795607348.67,
     "app_id": "local-...", "app_name": "...", "query_id": "...", "run_id": "...",
     "query_name": "...", "payload": {...progress.json...}}

`drain()` returns the decoded envelopes received since the previous call (oldest first per
partition); `collectors.spark.progress.QueryTracker` parses them.

How the topic is read (a decision, documented in docs/metrics.md "Spark"):

- **No consumer group.** Every partition of the topic is *assigned* (not subscribed): there is no
  group membership, no rebalance and nothing is ever committed, so any number of streamscope
  processes read the same topic independently and none of them shows up as a lagging consumer
  group. (librdkafka insists on a `group.id`; `streamscope-progress-<topic>` is set but, with
  `assign()` and auto-commit off, never joined nor committed, so the broker never creates it.)
- **Start from the recent backlog.** At (re)start each partition is read from its end minus
  `backlog_messages` (librdkafka's logical "tail" offset, resolved without a blocking call), so
  the dashboard has the last batches of every query right away and nothing older is replayed.
  History de-duplicates batches by (app, query, batch id), so re-reading is harmless.
- **Partitions added later** are picked up by a metadata refresh (every
  `metadata_refresh_seconds`) and read from their beginning. A topic that does not exist yet is
  retried with back-off (1 s doubling to `metadata_refresh_seconds`).
- **Non-blocking drain.** `consume()` with a short timeout, at most `max_messages` per drain and
  at most `drain_budget_seconds` of wall time; what is left is read next cycle.
- **Bad input.** A message that is not JSON (or not a JSON object) is logged with its topic,
  partition, offset and the start of its value, counted in `decode_errors`, and skipped.
- **Broker outages.** Nothing raises out of `drain()`: librdkafka reconnects by itself and the
  assigned positions are kept, so reading resumes where it stopped. `healthy` / `last_error`
  tell the caller whether the broker is reachable (librdkafka's "all brokers down" until the
  next message or successful metadata request). A fatal client error recreates the consumer.
  librdkafka's own log lines go to the `streamscope.librdkafka.progress_feed` logger (the CLI
  keeps `streamscope.librdkafka` at ERROR).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)
_librdkafka_log = logging.getLogger("streamscope.librdkafka.progress_feed")

OFFSET_TAIL_BASE = -2000  # librdkafka RD_KAFKA_OFFSET_TAIL(n) == -2000 - n
OFFSET_BEGINNING = -2

_DEFAULT_CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",  # position deleted by retention: continue from the oldest
    "socket.timeout.ms": 10000,
    "session.timeout.ms": 10000,
    "log.connection.close": False,
    "reconnect.backoff.max.ms": 5000,
    "client.id": "streamscope-progress-feed",
    "fetch.wait.max.ms": 100,
}


class KafkaProgressFeed:
    """Reads the listener's progress topic; implements `collectors.spark.progress.ProgressFeed`.

    `bootstrap`: Kafka `bootstrap.servers`. `topic`: the progress topic. `client_config`: extra
    librdkafka properties (security.protocol, sasl.*, ssl.*), laid over the defaults.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_config: Mapping[str, Any] | None = None,
        backlog_messages: int = 500,
        max_messages: int = 5000,
        drain_budget_seconds: float = 0.5,
        poll_timeout_seconds: float = 0.05,
        metadata_timeout_seconds: float = 2.0,
        metadata_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bootstrap:
            raise ValueError("bootstrap (Kafka bootstrap.servers) is required")
        if not topic:
            raise ValueError("topic is required")
        if backlog_messages < 0 or max_messages < 1:
            raise ValueError("backlog_messages must be >= 0 and max_messages >= 1")
        self.bootstrap = bootstrap
        self.topic = topic
        self.client_config = dict(client_config or {})
        self.backlog_messages = int(backlog_messages)
        self.max_messages = int(max_messages)
        self.drain_budget_seconds = float(drain_budget_seconds)
        self.poll_timeout_seconds = float(poll_timeout_seconds)
        self.metadata_timeout_seconds = float(metadata_timeout_seconds)
        self.metadata_refresh_seconds = float(metadata_refresh_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._assigned: set[int] = set()
        self._next_metadata_at = 0.0
        self._metadata_backoff = 1.0
        self._closed = False
        self._down = False
        self._last_warning: dict[str, float] = {}
        # counters (read by tests and health)
        self.received = 0  # messages decoded and returned
        self.decode_errors = 0
        self.consumer_errors = 0
        self.consumers_created = 0
        self.last_error: str | None = None

    # -- public ---------------------------------------------------------------------------------

    @property
    def group_id(self) -> str:
        return f"streamscope-progress-{self.topic}"

    @property
    def assigned_partitions(self) -> tuple[int, ...]:
        return tuple(sorted(self._assigned))

    @property
    def healthy(self) -> bool:
        """False before the first drain and while the broker is unreachable (librdkafka reports
        all brokers down, or a metadata request failed) until a message or a metadata answer
        arrives. A topic that does not exist yet is not an outage: `healthy` stays True,
        `assigned_partitions` is empty and `last_error` says why."""
        return not self._down and self._consumer is not None

    def drain(self) -> list[dict]:
        """Events received since the last call, oldest first per partition; never raises and
        never blocks longer than about `drain_budget_seconds` (+ one bounded metadata request
        when partitions are (re)discovered)."""
        with self._lock:
            if self._closed:
                return []
            out: list[dict] = []
            try:
                self._ensure_consumer()
                self._maybe_refresh_assignment()
                if self._assigned:
                    self._consume_into(out)
            except Exception as e:  # noqa: BLE001 - a feed must never take the collector down
                self._note_error(f"drain failed: {type(e).__name__}: {e}")
                self._warn("drain", "progress feed %s: drain failed: %s", self.topic, e,
                           exc_info=True)
                if _is_fatal(e):
                    self._drop_consumer()
            return out

    def close(self) -> None:
        """Close the consumer (idempotent). Nothing to commit: positions are not stored."""
        with self._lock:
            self._closed = True
            self._drop_consumer()

    def __enter__(self) -> "KafkaProgressFeed":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consumer lifecycle ---------------------------------------------------------------------

    def _ensure_consumer(self) -> None:
        if self._consumer is not None:
            return
        from confluent_kafka import Consumer  # noqa: PLC0415 - optional at import time

        config = {
            **_DEFAULT_CONSUMER_CONFIG,
            **self.client_config,
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "error_cb": self._on_error,
            "logger": _librdkafka_log,
        }
        self._consumer = Consumer(config)
        self.consumers_created += 1
        self._assigned = set()
        self._next_metadata_at = 0.0
        self._metadata_backoff = 1.0

    def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._assigned = set()
        if consumer is None:
            return
        try:
            consumer.close()
        except Exception as e:  # noqa: BLE001
            log.debug("progress feed %s: close failed: %s", self.topic, e)

    def _maybe_refresh_assignment(self) -> None:
        now = self._clock()
        if now < self._next_metadata_at:
            return
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        try:
            md = self._consumer.list_topics(self.topic, timeout=self.metadata_timeout_seconds)
        except Exception as e:  # noqa: BLE001 - KafkaException on timeout / broker down
            self._down = True
            self._metadata_failed(now, f"metadata request failed: {e}")
            return
        tmd = md.topics.get(self.topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            why = tmd.error if tmd is not None and tmd.error is not None else "no partitions"
            # the broker answered: not an outage, but nothing to read yet
            self._down = False
            self._metadata_failed(now, f"topic {self.topic!r} not readable: {why}",
                                  level=logging.INFO)
            return
        self._down = False
        self._metadata_backoff = 1.0
        self._next_metadata_at = now + self.metadata_refresh_seconds
        new = sorted(set(tmd.partitions) - self._assigned)
        if not new:
            return
        first = not self._assigned
        start = (OFFSET_TAIL_BASE - self.backlog_messages) if first else OFFSET_BEGINNING
        self._consumer.incremental_assign([TopicPartition(self.topic, p, start) for p in new])
        self._assigned.update(new)
        log.info("progress feed %s@%s: reading partitions %s from %s", self.topic,
                 self.bootstrap, new,
                 f"the last {self.backlog_messages} messages" if first else "their beginning")

    def _metadata_failed(self, now: float, error: str, level: int = logging.WARNING) -> None:
        self._note_error(error)
        self._next_metadata_at = now + self._metadata_backoff
        self._metadata_backoff = min(self._metadata_backoff * 2, self.metadata_refresh_seconds)
        self._warn("metadata", "progress feed %s@%s: %s", self.topic, self.bootstrap, error,
                   level=level)

    # -- reading --------------------------------------------------------------------------------

    def _consume_into(self, out: list[dict]) -> None:
        deadline = self._clock() + self.drain_budget_seconds
        while len(out) < self.max_messages:
            batch = self._consumer.consume(min(500, self.max_messages - len(out)),
                                           timeout=self.poll_timeout_seconds)
            if not batch:
                break
            for msg in batch:
                err = msg.error()
                if err is not None:
                    self._on_message_error(err)
                    continue
                self._down = False
                item = self._decode(msg)
                if item is not None:
                    out.append(item)
            if self._clock() >= deadline:
                break
        self.received += len(out)

    def _decode(self, msg: Any) -> dict | None:
        value = msg.value()
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if value is None:
            return self._bad(where, "empty message (null value)", b"")
        try:
            item = json.loads(value)
        except (UnicodeDecodeError, ValueError) as e:
            return self._bad(where, f"not JSON: {e}", value)
        if not isinstance(item, dict):
            return self._bad(where, f"not a JSON object but {type(item).__name__}", value)
        return item

    def _bad(self, where: str, why: str, value: bytes) -> None:
        self.decode_errors += 1
        snippet = value[:200].decode("utf-8", "replace")
        self._warn("decode", "progress feed: skipping message %s: %s; value starts %r",
                   where, why, snippet, every=10.0)
        return None

    def _on_message_error(self, err: Any) -> None:
        self.consumer_errors += 1
        code = _code(err)
        if code == _code_named("_PARTITION_EOF"):
            return
        self._note_error(f"consume: {err}")
        self._warn("consume", "progress feed %s: %s", self.topic, err)
        if getattr(err, "fatal", lambda: False)():
            self._drop_consumer()

    def _on_error(self, err: Any) -> None:
        """librdkafka's global error callback (runs inside consume/list_topics)."""
        code = _code(err)
        if code == _code_named("_ALL_BROKERS_DOWN"):
            self._down = True
            # probe the metadata (bounded) soon, so `healthy` recovers without new messages
            self._next_metadata_at = min(self._next_metadata_at,
                                         self._clock() + self._metadata_backoff)
        self._note_error(str(err))
        self._warn("client", "progress feed %s@%s: %s", self.topic, self.bootstrap, err,
                   level=logging.WARNING if self._down else logging.DEBUG)

    # -- helpers --------------------------------------------------------------------------------

    def _note_error(self, error: str) -> None:
        self.last_error = error

    def _warn(self, what: str, message: str, *args: Any, level: int = logging.WARNING,
              exc_info: bool = False, every: float = 30.0) -> None:
        """Log at most once per `every` seconds per kind of problem (debug otherwise)."""
        now = time.monotonic()
        if now - self._last_warning.get(what, -every) >= every:
            self._last_warning[what] = now
            log.log(level, message, *args, exc_info=exc_info)
        else:
            log.debug(message, *args)


def _code(err: Any) -> int | None:
    try:
        return err.code()
    except Exception:  # noqa: BLE001
        return None


def _code_named(name: str) -> int | None:
    try:
        from confluent_kafka import KafkaError  # noqa: PLC0415

        return getattr(KafkaError, name)
    except Exception:  # noqa: BLE001
        return None


def _is_fatal(exc: BaseException) -> bool:
    err = exc.args[0] if getattr(exc, "args", None) else None
    try:
        return bool(err.fatal())
    except Exception:  # noqa: BLE001
        return False
