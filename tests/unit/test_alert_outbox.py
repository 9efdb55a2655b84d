"""Dispatcher: retries with capped exponential backoff, Retry-After, FIFO, rate limits, restarts."""
from __future__ import annotations

import threading

import pytest

from alerts.config import DeliveryConfig
from alerts.notifiers.base import DeliveryResult
from alerts.outbox import Dispatcher, TokenBucket, backoff_delay
from alerts.store import NewOutboxItem, StateStore, EngineChanges
from tests.helpers import ManualClock


class Scripted:
    """Fake notifier answering from a script; records (key, now) of every attempt."""

    type = "webhook"

    def __init__(self, name, script=(), max_per_second=None, burst=1):
        self.name = name
        self.script = list(script)
        self.max_per_second = max_per_second
        self.burst = burst
        self.calls: list[tuple[str, float]] = []

    def send(self, payload, key, now):
        self.calls.append((key, now))
        if self.script:
            r = self.script.pop(0)
            if isinstance(r, Exception):
                raise r
            return r
        return DeliveryResult.success(200)


class Coalescing(Scripted):
    coalesce = True

    def __init__(self, name):
        super().__init__(name)
        self.batches = []

    def send_batch(self, payloads, key, now):
        self.batches.append([p["n"] for p in payloads])
        return DeliveryResult.success(200)


FAIL = DeliveryResult(False, 500, None, "HTTP 500")
POLICY = DeliveryConfig(initial_backoff=1, max_backoff=8, multiplier=2, max_retry_after=60)


def enqueue(store, receiver, n, key=None, at=0.0):
    ch = EngineChanges(outbox=[NewOutboxItem(key or f"{receiver}-{n}", receiver, "webhook", "g", at,
                                             {"n": n, "status": "firing", "alerts": []})])
    return store.commit(ch)


def test_backoff_is_exponential_and_capped():
    assert [backoff_delay(i, POLICY) for i in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_delivered_once_after_retries(store):
    n = Scripted("hook", [FAIL, FAIL, FAIL, FAIL, FAIL])
    d = Dispatcher(store, {"hook": n}, POLICY)
    enqueue(store, "hook", 1)
    times = []
    t = 0.0
    while t < 100:
        rep = d.dispatch_once(t)
        if rep.sent:
            times.append(t)
        t += 0.5
    assert times == [0, 1, 3, 7, 15, 23]  # 1, 2, 4, 8, then capped at 8
    assert len(n.calls) == 6 and {k for k, _ in n.calls} == {"hook-1"}
    assert store.outbox_items(pending_only=True) == []
    assert store.delivery_stats() == {("hook", "failure"): 5, ("hook", "success"): 1}


def test_retry_after_overrides_backoff_and_is_capped(store):
    n = Scripted("slack", [DeliveryResult(False, 429, 30.0, "HTTP 429"), DeliveryResult(False, 429, 9999.0, "x")])
    d = Dispatcher(store, {"slack": n}, POLICY)
    enqueue(store, "slack", 1)
    d.dispatch_once(0)
    assert d.dispatch_once(29.9).sent == 0
    assert d.dispatch_once(30).sent == 1  # second 429 asks for 9999 s; capped at 60
    assert d.dispatch_once(89.9).sent == 0
    assert d.dispatch_once(90).delivered == ["slack-1"]
    assert d.next_due(91) is None


def test_fifo_per_receiver_and_independent_receivers(store):
    a = Scripted("a", [FAIL])
    b = Scripted("b")
    d = Dispatcher(store, {"a": a, "b": b}, POLICY)
    for i in (1, 2, 3):
        enqueue(store, "a", i)
        enqueue(store, "b", i)
    rep = d.dispatch_once(0)
    assert [k for k, _ in a.calls] == ["a-1"]  # head failed: a-2, a-3 wait behind it
    assert rep.delivered == ["b-1", "b-2", "b-3"]
    rep = d.dispatch_once(1)
    assert rep.delivered == ["a-1", "a-2", "a-3"]


def test_rate_limit_per_receiver(store):
    n = Scripted("slack", max_per_second=1.0)
    d = Dispatcher(store, {"slack": n}, POLICY)
    for i in range(3):
        enqueue(store, "slack", i)
    assert d.dispatch_once(0).delivered == ["slack-0"]
    rep = d.dispatch_once(0.5)
    assert rep.delivered == [] and rep.rate_limited == ["slack"]
    assert d.dispatch_once(1.0).delivered == ["slack-1"]
    assert d.dispatch_once(2.0).delivered == ["slack-2"]


def test_token_bucket_burst():
    b = TokenBucket(0.5, burst=2)
    assert b.try_take(0) and b.try_take(0) and not b.try_take(0)
    assert b.next_free(0) == 2.0 and b.try_take(2.0)


def test_unknown_receiver_items_stay_queued(store):
    d = Dispatcher(store, {}, POLICY)
    enqueue(store, "gone", 1)
    rep = d.dispatch_once(0)
    assert rep.unknown_receivers == ["gone"] and len(store.outbox_items(pending_only=True)) == 1
    d2 = Dispatcher(store, {"gone": Scripted("gone")}, POLICY)  # configured again later
    assert d2.dispatch_once(1).delivered == ["gone-1"]


def test_notifier_exception_is_a_failure_not_a_crash(store):
    n = Scripted("hook", [RuntimeError("secret-ish detail")])
    d = Dispatcher(store, {"hook": n}, POLICY)
    enqueue(store, "hook", 1)
    rep = d.dispatch_once(0)
    assert rep.failed == [("hook-1", "notifier error: RuntimeError")]
    assert d.dispatch_once(1).delivered == ["hook-1"]


def test_outbox_survives_restart_and_delivers_once(tmp_path):
    path = tmp_path / "r.db"
    s1 = StateStore(path)
    down = Scripted("hook", [FAIL, FAIL])
    d1 = Dispatcher(s1, {"hook": down}, POLICY)
    enqueue(s1, "hook", 1)
    d1.dispatch_once(0)
    s1.close()  # process dies while the receiver is down

    s2 = StateStore(path)
    (item,) = s2.outbox_items(pending_only=True)
    assert item.attempts == 1 and item.next_attempt_at == 1 and item.last_error == "HTTP 500"
    up = Scripted("hook")
    d2 = Dispatcher(s2, {"hook": up}, POLICY)
    assert d2.dispatch_once(0.5).sent == 0  # backoff persisted
    assert d2.dispatch_once(1).delivered == ["hook-1"]
    assert d2.dispatch_once(100).sent == 0
    assert len(up.calls) == 1
    # the same idempotency key cannot be enqueued twice
    assert enqueue(s2, "hook", 1) == 0
    s2.close()


def test_coalescing_receiver_sends_queue_in_one_request(store):
    am = Coalescing("am")
    d = Dispatcher(store, {"am": am}, POLICY)
    for i in range(4):
        enqueue(store, "am", i)
    rep = d.dispatch_once(0)
    assert am.batches == [[0, 1, 2, 3]] and len(rep.delivered) == 4
    assert store.outbox_items(pending_only=True) == []


# ------------------------------------------------------------------------------ receivers in parallel
# Threads meet on events with bounded waits; time is the injected clock, nothing sleeps.


class Hung(Scripted):
    """Blocks inside send until `answer` is set, like a receiver that does not answer."""

    def __init__(self, name):
        super().__init__(name)
        self.inside = threading.Event()
        self.answer = threading.Event()

    def send(self, payload, key, now):
        self.inside.set()
        assert self.answer.wait(30), "test did not release the hung receiver"
        return super().send(payload, key, now)


class Counting(Scripted):
    """Releases `called` once per attempt, so a test can wait for each one."""

    def __init__(self, name, script=()):
        super().__init__(name, script)
        self.called = threading.Semaphore(0)

    def send(self, payload, key, now):
        result = super().send(payload, key, now)
        self.called.release()
        return result


def test_one_pass_serves_receivers_in_parallel(store):
    hook, slack = Hung("hook"), Counting("slack")
    d = Dispatcher(store, {"hook": hook, "slack": slack}, POLICY)
    enqueue(store, "hook", 1)
    enqueue(store, "slack", 1)
    reports = []
    one_pass = threading.Thread(target=lambda: reports.append(d.dispatch_once(0)))
    one_pass.start()
    try:
        assert hook.inside.wait(10)
        assert slack.called.acquire(timeout=5), "slack waited for the hung receiver"
    finally:
        hook.answer.set()
        one_pass.join(10)
    (report,) = reports
    assert report.delivered == ["hook-1", "slack-1"]  # merged in receiver order
    assert report.next_due == {"hook": None, "slack": None}
    assert store.outbox_items(pending_only=True) == []


def test_workers_a_hung_receiver_never_delays_another_receivers_retry(store):
    clock = ManualClock(0.0)
    hook, slack = Hung("hook"), Counting("slack", [FAIL])
    d = Dispatcher(store, {"hook": hook, "slack": slack}, POLICY, clock)
    enqueue(store, "hook", 1)
    enqueue(store, "slack", 1)
    d.start()
    try:
        assert hook.inside.wait(10)  # hook's worker is stuck in its send
        assert slack.called.acquire(timeout=10)  # slack's first attempt: 500, retry due at t=1
        clock.t = 1.0
        d.wake(["slack"])
        assert slack.called.acquire(timeout=10)  # the retry goes out while hook still hangs
        assert not hook.answer.is_set()
        # the lock is a barrier: this returns once slack's worker recorded the delivery
        assert d.drain_receiver("slack", 1.0).next_due == {"slack": None}
        assert [k for k, _ in slack.calls] == ["slack-1", "slack-1"]
        # a pass while hook's worker is sending leaves hook to it: nothing is sent twice
        report = d.dispatch_once(1.0)
        assert report.busy == ["hook"] and report.sent == 0
        hook.answer.set()
        assert d.drain_receiver("hook", 1.0).next_due == {"hook": None}
    finally:
        hook.answer.set()
        d.stop()
    assert [k for k, _ in hook.calls] == ["hook-1"]
    assert store.outbox_items(pending_only=True) == []
    assert store.delivery_stats() == {("hook", "success"): 1, ("slack", "failure"): 1, ("slack", "success"): 1}
    assert not any(t.name.startswith("streamscope-alerts") and t.is_alive() for t in threading.enumerate())


def test_worker_sleeps_until_its_receiver_is_due():
    from alerts.outbox import IDLE_WAIT, MIN_WAIT, worker_wait

    assert worker_wait(None, 100.0) == IDLE_WAIT  # empty queue: look again now and then
    assert worker_wait(101.5, 100.0) == 1.5
    assert worker_wait(100.0, 100.0) == MIN_WAIT  # still due (per-round cap): go on, without spinning
    assert worker_wait(10_000.0, 100.0) == IDLE_WAIT
