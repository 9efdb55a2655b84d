"""`Collection.wake()`: a fleet replica that was just given units starts its next cycle at once
instead of waiting out its interval (an hour here: without the wake the second cycle never
comes within the test's bound)."""
import threading
import time

from monitor.collection.loops import Collection


class CountingSpark:
    """A Spark source with no apps that counts its cycles."""

    def __init__(self) -> None:
        self.cycles = 0
        self.changed = threading.Condition()

    def cycle(self):
        with self.changed:
            self.cycles += 1
            self.changed.notify_all()
        return (), ()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.cycles >= n, timeout)


def test_wake_starts_the_next_cycle_now():
    spark = CountingSpark()
    published = []
    collection = Collection([], spark, interval_seconds=3600, clock=time.time, store_health=lambda: None,
                            publish=published.append)
    collection.start()
    try:
        assert spark.wait_for(1, 10), "the first cycle"
        assert not spark.wait_for(2, 0.2), "no second cycle before the hour is up"
        collection.wake()
        assert spark.wait_for(2, 10), "the second cycle, started by wake()"
    finally:
        collection.stop()
        collection.close()
