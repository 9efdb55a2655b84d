"""Outbox delivery: drain persisted notifications per receiver, with retries and rate limits.

- Items of one receiver go out in order (FIFO). If the head item fails, that receiver waits
  (exponential backoff `initial_backoff * multiplier^(attempts-1)`, capped at `max_backoff`, or the
  receiver's `Retry-After` when it sends one, capped at `max_retry_after`); other receivers go on.
- An item is marked delivered only after the notifier reports success (HTTP 2xx / SMTP 250).
  Nothing is ever dropped: an outage only delays delivery. A crash between the send and the mark
  sends the item again after restart with the same idempotency key, so receivers can deduplicate.
- Per-receiver token bucket (`max_per_second`, `burst`), e.g. Slack's 1 message/s per webhook.
- Alertmanager receivers coalesce their queue: the newest state of each alert in one request.
- Items for a receiver that is no longer configured stay queued (and are reported) until it is
  configured again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .config import DeliveryConfig
from .notifiers.base import DeliveryResult, Notifier
from .store import OutboxItem, StateStore

log = logging.getLogger(__name__)


class TokenBucket:
    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = float(rate)
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is None:
            self.updated = now
            return
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def next_free(self, now: float) -> float:
        self._refill(now)
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) / self.rate


@dataclass
class DispatchReport:
    at: float
    delivered: list[str] = field(default_factory=list)  # idempotency keys
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, redacted error)
    rate_limited: list[str] = field(default_factory=list)  # receivers
    waiting: list[str] = field(default_factory=list)  # receivers in backoff
    unknown_receivers: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.delivered) + len(self.failed)


def backoff_delay(attempts: int, policy: DeliveryConfig) -> float:
    """Delay after the `attempts`-th failed attempt (1-based)."""
    exp = max(0, attempts - 1)
    delay = policy.initial_backoff * (policy.multiplier ** min(exp, 64))
    return min(policy.max_backoff, delay)


class Dispatcher:
    def __init__(self, store: StateStore, notifiers: Mapping[str, Notifier], policy: DeliveryConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.policy = policy or DeliveryConfig()
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        for name, n in self.notifiers.items():
            rate = getattr(n, "max_per_second", None)
            if rate:
                self._buckets[name] = TokenBucket(rate, getattr(n, "burst", 1))
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def dispatch_once(self, now: float | None = None) -> DispatchReport:
        """One pass over every receiver's queue. Blocking network I/O (bounded by notifier timeouts)."""
        with self._lock:
            now = self.clock() if now is None else now
            report = DispatchReport(now)
            for receiver in self.store.pending_receivers():
                notifier = self.notifiers.get(receiver)
                if notifier is None:
                    report.unknown_receivers.append(receiver)
                    if receiver not in self._warned:
                        log.warning("outbox has notifications for receiver %r which is not configured; "
                                    "they stay queued", receiver)
                        self._warned.add(receiver)
                    continue
                self._drain(receiver, notifier, now, report)
            return report

    def _drain(self, receiver: str, notifier: Notifier, now: float, report: DispatchReport) -> None:
        items = self.store.pending_items(receiver, limit=self.policy.max_per_round * 10)
        coalesce = getattr(notifier, "coalesce", False)
        sent = 0
        while items and sent < self.policy.max_per_round:
            head = items[0]
            if head.next_attempt_at > now:
                report.waiting.append(receiver)
                return
            bucket = self._buckets.get(receiver)
            if bucket is not None and not bucket.try_take(now):
                report.rate_limited.append(receiver)
                return
            batch = items if coalesce else [head]
            result = self._send(notifier, batch, now)
            sent += 1
            if result.ok:
                self.store.mark_delivered([i.id for i in batch], now, result.status, receiver)
                report.delivered.extend(i.idempotency_key for i in batch)
                items = items[len(batch):]
                continue
            attempts = head.attempts + 1
            delay = backoff_delay(attempts, self.policy)
            if result.retry_after is not None:
                delay = min(max(result.retry_after, 0.0), self.policy.max_retry_after)
            error = result.error or "delivery failed"
            self.store.mark_failed(head.id, now, now + delay, error, result.status, receiver)
            report.failed.append((head.idempotency_key, error))
            log.warning("notification %s to %s failed (attempt %d, retry in %.1fs): %s",
                        head.idempotency_key, receiver, attempts, delay, error)
            return

    @staticmethod
    def _send(notifier: Notifier, batch: list[OutboxItem], now: float) -> DeliveryResult:
        head = batch[0]
        try:
            if len(batch) > 1 and hasattr(notifier, "send_batch"):
                return notifier.send_batch([i.payload for i in batch], batch[-1].idempotency_key, now)  # type: ignore[attr-defined]
            return notifier.send(head.payload, head.idempotency_key, now)
        except Exception as exc:  # a notifier bug must not kill the dispatcher; message is type only
            log.exception("notifier %s raised", getattr(notifier, "name", "?"))
            return DeliveryResult(False, None, None, f"notifier error: {type(exc).__name__}")

    def next_due(self, now: float | None = None) -> float | None:
        """Earliest time something may be sent (for the caller's sleep), None if the outbox is empty."""
        now = self.clock() if now is None else now
        t = self.store.next_attempt_at()
        if t is None:
            return None
        return max(t, now)
