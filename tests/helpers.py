"""Small helpers shared by the tests."""
from __future__ import annotations

import time

from demo.kafka_box import free_port  # noqa: F401  (re-exported: one free-port helper for everything)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ManualClock:
    """An injected clock the test moves by hand: `clock()` returns `clock.t`."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
