"""Retention and downsampling of the history, Kafka and Spark alike.

Kafka: per cluster and per `step_seconds` bucket older than `after_seconds`, the *last* cycle
that carried data is kept (so offsets stay true values of every series present there) and the
last failed cycle (so outages stay visible); whole cycles are removed so replayed cycles stay
coherent. Spark: the same retention (apps and queries not seen within it go too), and batches
older than `after_seconds` are thinned to the last one per query (DStream app) per step. Work
is done in small write transactions, so the collection's appends are not held up for long.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from monitor.storage.database import Database

log = logging.getLogger(__name__)

_DATA_TABLES = ("group_partitions", "partition_offsets", "group_summary", "topic_summary")
_PRUNE_CHUNK = 8  # cycles deleted per write transaction (keeps the writer lock short)


def check_retention(retention_seconds: float, after_seconds: float, step_seconds: float) -> None:
    if retention_seconds <= 0:
        raise ValueError("retention_seconds must be > 0")
    if after_seconds < 0:
        raise ValueError("downsample_after_seconds must be >= 0")
    if step_seconds <= 0:
        raise ValueError("downsample_step_seconds must be > 0")


class Retention:
    def __init__(self, db: Database, *, retention_seconds: float, after_seconds: float,
                 step_seconds: float, clock: Callable[[], float] = time.time) -> None:
        check_retention(retention_seconds, after_seconds, step_seconds)
        self._db = db
        self.retention_seconds = float(retention_seconds)
        self.after_seconds = float(after_seconds)
        self.step_seconds = float(step_seconds)
        self._clock = clock

    def prune(self, now: float | None = None) -> dict[str, int]:
        """Apply retention and downsampling. Returns counts of cycles removed.

        Works in small transactions so the collector's appends are not held up for long.
        """
        now = float(self._clock() if now is None else now)
        oldest = now - self.retention_seconds
        cutoff = now - self.after_seconds
        step = self.step_seconds
        with self._db.read() as conn:
            expired = [r[0] for r in conn.execute("SELECT id FROM cycles WHERE at < ?", (oldest,))]
            candidates = conn.execute(
                "SELECT id, cluster, at, has_data FROM cycles WHERE at >= ? AND at < ?"
                " ORDER BY cluster, at",
                (oldest, cutoff),
            ).fetchall()
        keep: dict[tuple[int, int, int], int] = {}
        considered: list[int] = []
        for cid, cluster, at, has_data in candidates:
            bucket = math.floor(at / step)
            if (bucket + 1) * step > cutoff:
                continue  # bucket not complete yet: newer cycles may still fall into it
            considered.append(cid)
            keep[(cluster, bucket, has_data)] = cid  # ordered by at: the last one wins
        kept = set(keep.values())
        thinned = [cid for cid in considered if cid not in kept]
        self._delete_cycles(expired)
        self._delete_cycles(thinned)
        self.prune_spark(now)
        if expired or thinned:
            log.info(
                "history %s: pruned %d expired and %d downsampled cycles",
                self._db.path, len(expired), len(thinned),
            )
        return {"expired_cycles": len(expired), "downsampled_cycles": len(thinned)}

    def _delete_cycles(self, ids: list[int]) -> None:
        for i in range(0, len(ids), _PRUNE_CHUNK):
            chunk = [(c,) for c in ids[i : i + _PRUNE_CHUNK]]
            with self._db.write("prune") as conn:
                for table in _DATA_TABLES:
                    conn.executemany(f"DELETE FROM {table} WHERE cycle = ?", chunk)
                conn.executemany("DELETE FROM cycles WHERE id = ?", chunk)

    def prune_spark(self, now: float | None = None) -> dict[str, int]:
        """Retention and downsampling of the Spark tables (also run by :meth:`prune`)."""
        now = float(self._clock() if now is None else now)
        oldest = now - self.retention_seconds
        cutoff = now - self.after_seconds
        step = self.step_seconds
        with self._db.write("prune_spark") as conn:
            expired = 0
            for (qid,) in conn.execute("SELECT id FROM spark_queries").fetchall():
                expired += conn.execute(
                    "DELETE FROM spark_batches WHERE query = ? AND at < ?", (qid, oldest)
                ).rowcount
            for (aid,) in conn.execute("SELECT id FROM spark_apps").fetchall():
                expired += conn.execute(
                    "DELETE FROM dstream_batches WHERE app = ? AND at < ?", (aid, oldest)
                ).rowcount
            gone_q = [r[0] for r in conn.execute(
                "SELECT id FROM spark_queries WHERE last_seen < ?", (oldest,))]
            conn.executemany("DELETE FROM spark_batches WHERE query = ?", [(q,) for q in gone_q])
            conn.executemany("DELETE FROM spark_queries WHERE id = ?", [(q,) for q in gone_q])
            gone_a = [r[0] for r in conn.execute(
                "SELECT id FROM spark_apps WHERE last_seen < ?", (oldest,))]
            for aid in gone_a:
                conn.execute("DELETE FROM spark_batches WHERE query IN"
                             " (SELECT id FROM spark_queries WHERE app = ?)", (aid,))
                conn.execute("DELETE FROM spark_queries WHERE app = ?", (aid,))
                conn.execute("DELETE FROM dstream_batches WHERE app = ?", (aid,))
                conn.execute("DELETE FROM spark_apps WHERE id = ?", (aid,))
            conn.execute("DELETE FROM spark_cycles WHERE at < ?", (oldest,))
        # downsampling: keep the last batch per (query, complete step bucket) older than cutoff
        thinned = 0
        for table, owner in (("spark_batches", "query"), ("dstream_batches", "app")):
            with self._db.read() as conn:
                rows = conn.execute(
                    f"SELECT {owner}, batch_id, at FROM {table} WHERE at >= ? AND at < ?"
                    f" ORDER BY {owner}, at, batch_id",
                    (oldest, cutoff),
                ).fetchall()
            keep: dict[tuple[int, int], int] = {}
            considered: list[tuple[int, int]] = []
            for own, bid, b_at in rows:
                bucket = math.floor(b_at / step)
                if (bucket + 1) * step > cutoff:
                    continue
                considered.append((own, bid))
                keep[(own, bucket)] = bid
            kept = {(own, bid) for (own, _), bid in keep.items()}
            drop = [k for k in considered if k not in kept]
            for i in range(0, len(drop), 500):
                with self._db.write("prune_spark") as conn:
                    conn.executemany(f"DELETE FROM {table} WHERE {owner} = ? AND batch_id = ?",
                                     drop[i : i + 500])
            thinned += len(drop)
        if expired or thinned or gone_a:
            log.info("history %s: pruned %d expired and %d downsampled Spark batches, %d apps",
                     self._db.path, expired, thinned, len(gone_a))
        return {"expired_batches": expired, "downsampled_batches": thinned,
                "expired_apps": len(gone_a)}
