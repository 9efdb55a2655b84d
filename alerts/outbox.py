"""Outbox delivery: drain persisted notifications per receiver, with retries and rate limits.

- Receivers are served in parallel: in the background each configured receiver has its own worker
  thread, which sleeps until that receiver's next item is due (or it is woken for new items), so
  a receiver that hangs until its timeout delays only itself. `dispatch_once` drains every
  receiver once, also in parallel. A per-receiver lock means one receiver is never sent to by
  two threads at once (FIFO, nothing sent twice).
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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .config import DeliveryConfig
from .notifiers.base import DeliveryResult, Notifier
from .store import OutboxItem, StateStore

log = logging.getLogger(__name__)

IDLE_WAIT = 5.0  # a worker with nothing due still looks at its queue this often
MIN_WAIT = 0.02  # between two passes of a worker whose queue is still due (no busy loop)


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
    busy: list[str] = field(default_factory=list)  # receivers another thread was sending to
    next_due: dict[str, float | None] = field(default_factory=dict)  # receiver -> may send again at

    @property
    def sent(self) -> int:
        return len(self.delivered) + len(self.failed)

    def merge(self, other: "DispatchReport") -> None:
        self.delivered.extend(other.delivered)
        self.failed.extend(other.failed)
        self.rate_limited.extend(other.rate_limited)
        self.waiting.extend(other.waiting)
        self.unknown_receivers.extend(other.unknown_receivers)
        self.busy.extend(other.busy)
        self.next_due.update(other.next_due)


def backoff_delay(attempts: int, policy: DeliveryConfig) -> float:
    """Delay after the `attempts`-th failed attempt (1-based)."""
    exp = max(0, attempts - 1)
    delay = policy.initial_backoff * (policy.multiplier ** min(exp, 64))
    return min(policy.max_backoff, delay)


def worker_wait(due: float | None, now: float) -> float:
    """How long a receiver's worker sleeps (unless woken) when its next item is due at `due`."""
    if due is None:
        return IDLE_WAIT
    return min(IDLE_WAIT, max(MIN_WAIT, due - now))


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
        self._sending = {name: threading.Lock() for name in self.notifiers}  # held while draining a receiver
        self._wakes = {name: threading.Event() for name in self.notifiers}
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ one pass (callers, tests)
    def dispatch_once(self, now: float | None = None) -> DispatchReport:
        """One pass over every receiver's queue, the receivers in parallel; returns when all are done.
        Blocking network I/O, bounded by the slowest receiver's timeout. A receiver whose worker is
        sending right now is left to it (listed in `busy`)."""
        now = self.clock() if now is None else now
        report = DispatchReport(now)
        receivers = []
        for receiver in self.store.pending_receivers():
            if receiver in self.notifiers:
                receivers.append(receiver)
            else:
                report.unknown_receivers.append(receiver)
                self._warn_unknown(receiver)
        for part in self._map(lambda r: self.drain_receiver(r, now, block=False), receivers):
            report.merge(part)
        return report

    def _map(self, fn: Callable[[str], DispatchReport], receivers: list[str]) -> list[DispatchReport]:
        if len(receivers) <= 1:
            return [fn(r) for r in receivers]
        with self._pool_lock:
            if self._pool is None:  # one thread per receiver at most: the config bounds the pool
                self._pool = ThreadPoolExecutor(max_workers=len(self.notifiers),
                                                thread_name_prefix="streamscope-alerts-pass")
            pool = self._pool
        return list(pool.map(fn, receivers))

    def drain_receiver(self, receiver: str, now: float, *, block: bool = True) -> DispatchReport:
        """Send what is due for one configured receiver (at most `max_per_round`); the report's
        `next_due[receiver]` says when it may send again (None: its queue is empty)."""
        report = DispatchReport(now)
        lock = self._sending[receiver]
        if not lock.acquire(blocking=block):
            report.busy.append(receiver)
            return report
        try:
            self._drain(receiver, self.notifiers[receiver], now, report)
            report.next_due[receiver] = self._next_due(receiver, now, report)
        finally:
            lock.release()
        return report

    def _next_due(self, receiver: str, now: float, report: DispatchReport) -> float | None:
        if receiver in report.rate_limited:
            return self._buckets[receiver].next_free(now)
        t = self.store.next_attempt_at(receiver)
        return None if t is None else max(t, now)

    def _warn_unknown(self, receiver: str) -> None:
        if receiver not in self._warned:
            self._warned.add(receiver)
            log.warning("outbox has notifications for receiver %r which is not configured; they stay queued",
                        receiver)

    # ------------------------------------------------------------------ background workers
    def start(self) -> None:
        """One worker thread per configured receiver."""
        if self._workers:
            return
        self._stopping.clear()
        for receiver in self.store.pending_receivers():
            if receiver not in self.notifiers:
                self._warn_unknown(receiver)
        self._workers = [threading.Thread(target=self._serve, args=(name,), daemon=True,
                                          name=f"streamscope-alerts-deliver-{name}") for name in sorted(self.notifiers)]
        for t in self._workers:
            t.start()

    def wake(self, receivers: Iterable[str] | None = None) -> None:
        """New items are queued (for `receivers`, default all): their workers look at once."""
        for name in (self._wakes if receivers is None else receivers):
            event = self._wakes.get(name)
            if event is not None:
                event.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the workers to end and wait up to `timeout` seconds in all. A worker inside a send
        ends when the send does (bounded by the receiver's timeout); nothing it sends is lost:
        an item not marked delivered is sent again, with the same key, after a restart."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        self._workers = []
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _serve(self, receiver: str) -> None:
        wake = self._wakes[receiver]
        while not self._stopping.is_set():
            wake.clear()  # before the work, so a wake-up that comes during it is not lost
            try:
                now = self.clock()
                due = self.drain_receiver(receiver, now).next_due.get(receiver)
            except Exception:
                if self._stopping.is_set():  # e.g. the store was closed under a send that outlived stop()
                    return
                log.exception("delivery to %s failed", receiver)
                due = None
            wake.wait(worker_wait(due, self.clock()))

    # ------------------------------------------------------------------ sending
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
