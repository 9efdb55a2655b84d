"""The latest snapshot, swapped atomically: what the web layer and the alert inputs read."""
from __future__ import annotations

import threading

from collectors.models import Snapshot


class SnapshotStore:
    """Readers never block the collection: `latest()` returns whatever was published last."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self.cycle_event = threading.Condition()
        self.cycles = 0

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        with self.cycle_event:
            self.cycles += 1
            self.cycle_event.notify_all()

    def wait_for_cycle(self, after: int, timeout: float) -> bool:
        """Block until more than `after` cycles were published (tests and the CLI use it)."""
        with self.cycle_event:
            return self.cycle_event.wait_for(lambda: self.cycles > after, timeout)
