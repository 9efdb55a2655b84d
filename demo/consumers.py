"""Demo consumer groups: one that keeps up, one deliberately slower than the producer."""
from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaException


class DemoConsumer:
    """Consumes `topic` as `group` in a thread, at most `max_rate` messages/s (None = unbounded)."""

    def __init__(self, bootstrap: str, topic: str, group: str, *, max_rate: float | None = None,
                 commit_interval_ms: int = 1000):
        self.topic, self.group, self.max_rate = topic, group, max_rate
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": commit_interval_ms,
            "client.id": f"demo-{group}",
            "session.timeout.ms": 10000,
        })
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self.consumed = 0

    def pause(self) -> None:
        """Stop reading (the group stays a member and keeps committing its position) until `resume()`."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def _run(self) -> None:
        self._consumer.subscribe([self.topic])
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                if self._paused.is_set():
                    # librdkafka heartbeats on its own thread; a pause shorter than max.poll.interval.ms
                    # (5 min) keeps the membership
                    self._stop.wait(0.1)
                    continue
                batch = 1 if self.max_rate else 500
                messages = self._consumer.consume(num_messages=batch, timeout=0.2)
                self.consumed += sum(1 for m in messages if not m.error())
                if self.max_rate:
                    # Sleep until the consumed count is back under the allowed budget.
                    ahead = self.consumed / self.max_rate - (time.monotonic() - started)
                    if ahead > 0:
                        self._stop.wait(ahead)
        except KafkaException:
            pass  # broker gone while the demo stops
        finally:
            try:
                self._consumer.close()  # commits the final offsets
            except KafkaException:
                pass

    def start(self) -> "DemoConsumer":
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.group}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(20)
