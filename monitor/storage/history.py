"""`History`: the one SQLite file that keeps every collection cycle.

It owns the database and hands out its parts: `kafka` (a `KafkaStore`: the collection appends
cycles to it, the web layer and the alert inputs read it as a `HistoryReader`), `spark` (a
`SparkStore`) and the retention (`prune`). One process writes a given file; any number of
threads read.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from collectors.models import StoreHealth
from monitor.storage.database import Database
from monitor.storage.downsampling import Retention, check_retention
from monitor.storage.kafka_store import KafkaStore
from monitor.storage.spark_store import SparkStore


class History:
    def __init__(
        self,
        path: str | Path,
        *,
        retention_seconds: float = 86400,
        downsample_after_seconds: float = 3600,
        downsample_step_seconds: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_retention(retention_seconds, downsample_after_seconds, downsample_step_seconds)
        self.db = Database(path, clock=clock)
        self.retention = Retention(self.db, retention_seconds=retention_seconds,
                                   after_seconds=downsample_after_seconds,
                                   step_seconds=downsample_step_seconds, clock=clock)
        self.kafka = KafkaStore(self.db, clock=clock)
        self.spark = SparkStore(self.db, floor_seconds=min(self.retention.after_seconds,
                                                           self.retention.retention_seconds))

    @property
    def path(self) -> str:
        return self.db.path

    def write_status(self) -> StoreHealth:
        return self.db.write_status()

    def prune(self, now: float | None = None) -> dict[str, int]:
        """Retention and downsampling of the Kafka and Spark tables; counts of Kafka cycles removed."""
        return self.retention.prune(now)

    def prune_spark(self, now: float | None = None) -> dict[str, int]:
        """Retention and downsampling of the Spark tables alone (`prune` runs it too)."""
        return self.retention.prune_spark(now)

    def set_meta(self, key: str, value_json: str) -> None:
        """Store a small JSON document for another subsystem (validated as JSON)."""
        if not isinstance(value_json, str):
            raise TypeError("set_meta takes the value as JSON text (str)")
        json.loads(value_json)  # raises ValueError on malformed JSON
        with self.db.write("set_meta") as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value_json),
            )

    def get_meta(self, key: str) -> str | None:
        """The JSON text stored under `key`, or None."""
        with self.db.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

    def release_reader(self) -> None:
        """Close the calling thread's reader connection (`Database.release_reader`)."""
        self.db.release_reader()

    def close(self) -> None:
        """Close all connections. Further calls raise HistoryError. Idempotent."""
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
