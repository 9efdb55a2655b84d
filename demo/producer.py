"""Demo producer: realistic clickstream events at a configurable rate, with a rate profile and bursts.

Each record has a key (user id), a JSON value with an event time, and the Kafka record
timestamp set to that event time, so time lag computed by streamscope can be checked against
the truth.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Producer

PAGES = ["/", "/search", "/product/{}", "/cart", "/checkout", "/account", "/help"]
ACTIONS = ["view", "view", "view", "click", "click", "add_to_cart", "purchase"]
COUNTRIES = ["DE", "FR", "US", "GB", "IN", "BR", "JP", "NL"]


def click_event(rng: random.Random, now: float) -> tuple[str, dict]:
    user = f"user-{rng.randrange(5000):04d}"
    page = rng.choice(PAGES).format(rng.randrange(500))
    action = rng.choice(ACTIONS)
    event = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "user_id": user,
        "page": page,
        "action": action,
        "country": rng.choice(COUNTRIES),
        "amount": round(rng.uniform(5, 300), 2) if action == "purchase" else 0.0,
        "event_time": now,
    }
    return user, event


@dataclass(frozen=True)
class RateProfile:
    """Messages per second over time: a base rate with a slow sine swing (like daily traffic)."""

    base: float = 50.0
    swing: float = 0.3  # +-30 %
    period_seconds: float = 300.0

    def rate_at(self, elapsed: float) -> float:
        return max(0.0, self.base * (1 + self.swing * math.sin(2 * math.pi * elapsed / self.period_seconds)))


class DemoProducer:
    """Produces to `topic` in a background thread until `stop()`; `burst(n)` adds n events at once."""

    def __init__(self, bootstrap: str, topic: str, *, profile: RateProfile = RateProfile(), seed: int = 7):
        self.topic = topic
        self.profile = profile
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "client.id": "streamscope-demo-producer"})
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._burst = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.produced = 0

    def produce_one(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key, event = click_event(self._rng, now)
        self._producer.produce(self.topic, key=key, value=json.dumps(event).encode(), timestamp=int(now * 1000))
        self.produced += 1

    def burst(self, count: int) -> None:
        with self._lock:
            self._burst += count

    def _run(self) -> None:
        started = time.monotonic()
        owed = 0.0
        last = started
        while not self._stop.is_set():
            now_mono = time.monotonic()
            owed += self.profile.rate_at(now_mono - started) * (now_mono - last)
            last = now_mono
            with self._lock:
                owed += self._burst
                self._burst = 0
            while owed >= 1:
                self.produce_one()
                owed -= 1
                if self.produced % 1000 == 0:
                    self._producer.poll(0)
            self._producer.poll(0)
            self._stop.wait(0.05)
        self._producer.flush(10)

    def start(self) -> "DemoProducer":
        self._thread = threading.Thread(target=self._run, name=f"producer-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def flush(self, timeout: float = 10) -> None:
        self._producer.flush(timeout)
