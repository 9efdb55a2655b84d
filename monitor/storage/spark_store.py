"""Spark history: applications, queries and their micro-batches, DStream batches.

Tables and de-duplication: docs/architecture.md, "Storage". Batches older than `floor_seconds`
(the downsampling age, or the retention if shorter) are not written at all: they were stored
when fresh, or would be thinned right away. Range queries downsample like the Kafka ranges: more
rows than `max_points` are grouped into `max_points` equal time buckets (`at` and `batch_id` the
last in the bucket; durations and delays the max; trigger phases, rows/s and state the average;
input rows the sum; `batches` the number of batches).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from collectors.spark.models import DStreamStats, SparkAppView, StreamingQuery
from monitor.storage.codec import to_ms, to_seconds
from monitor.storage.database import Database

# TriggerDurations fields stored per batch (spark_batches columns without the suffix) and
# Spark's names for them (the `phase` label / keys of `phases`).
PHASE_FIELDS = ("add_batch_ms", "get_batch_ms", "latest_offset_ms", "query_planning_ms",
                "wal_commit_ms", "commit_offsets_ms")
_PHASE_NAMES = ("addBatch", "getBatch", "latestOffset", "queryPlanning", "walCommit",
                "commitOffsets")


class SparkStore:
    """The Spark tables of the history database. Thread-safe (see `Database`)."""

    def __init__(self, db: Database, *, floor_seconds: float) -> None:
        self._db = db
        self._floor_seconds = floor_seconds  # batches older than this when stored are not written

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------

    def append(self, at: float, apps: Iterable[SparkAppView]) -> None:
        """Store one Spark collection cycle in one transaction.

        Apps and queries are upserted (latest state wins); new finished micro-batches and
        completed DStream batches are added, de-duplicated by (app, query, batch id).
        """
        at = float(at)
        apps = list(apps)
        floor = at - self._floor_seconds
        with self._db.write("append_spark") as conn:
            conn.execute("INSERT OR REPLACE INTO spark_cycles(at, apps) VALUES (?, ?)",
                         (at, len(apps)))
            for view in apps:
                aid = _upsert_app(conn, at, view)
                for q in view.raw.queries:
                    _insert_batches(conn, _upsert_query(conn, at, aid, q), q, floor)
                if view.raw.dstream is not None:
                    _insert_dstream_batches(conn, aid, view.raw.dstream, floor)

    # ------------------------------------------------------------------------------------------
    # Spark: reading
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _spark_app_id(conn: sqlite3.Connection, app: str) -> int | None:
        """Row id of an app by application id, else by exported label or name (latest seen)."""
        row = conn.execute("SELECT id FROM spark_apps WHERE app_id = ?", (app,)).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT id FROM spark_apps WHERE label = ? OR name = ?"
                " ORDER BY label = ? DESC, last_seen DESC LIMIT 1",
                (app, app, app),
            ).fetchone()
        return None if row is None else row[0]

    @classmethod
    def _spark_query_id(cls, conn: sqlite3.Connection, app: str, query: str) -> int | None:
        aid = cls._spark_app_id(conn, app)
        if aid is None:
            return None
        row = conn.execute(
            "SELECT id FROM spark_queries WHERE app = ? AND (query_id = ? OR query_key = ?)",
            (aid, query.lower(), query),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT id FROM spark_queries WHERE app = ? AND name = ?"
                " ORDER BY last_seen DESC LIMIT 1",
                (aid, query),
            ).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _range_buckets(
        conn: sqlite3.Connection, table: str, owner: str, oid: int, start: float, end: float,
        max_points: int,
    ) -> tuple[int, str, tuple]:
        """(rows in range, bucket expression, its parameters) for a Spark range query."""
        if max_points < 1:
            raise ValueError("max_points must be >= 1")
        n, first, last = conn.execute(
            f"SELECT count(*), min(at), max(at) FROM {table}"
            f" WHERE {owner} = ? AND at >= ? AND at <= ?",
            (oid, start, end),
        ).fetchone()
        if n <= max_points:
            return n, "batch_id", ()
        width = (last - first) / max_points
        return n, "min(CAST((at - ?) / ? AS INTEGER), ?)", (first, width, max_points - 1)

    def batches(
        self, app: str, query: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Micro-batches of a query with trigger time in [start, end], oldest first, at most
        max_points rows (bucketed as the module docstring says).

        ``app``: application id, or the exported ``app`` label / app name (latest app seen
        with it). ``query``: query id, or name. Keys: at, batch_id, batches, duration_seconds,
        phases ({Spark phase name: seconds}), input_rows, input_rows_per_second,
        processed_rows_per_second, watermark_delay_seconds, event_time_delay_seconds,
        state_rows, state_memory_bytes, origin and run_id (None when aggregated).
        """
        if end < start:
            return []
        with self._db.read() as conn:
            qid = self._spark_query_id(conn, app, query)
            if qid is None:
                return []
            n, bucket, bparams = self._range_buckets(conn, "spark_batches", "query", qid,
                                                     start, end, max_points)
            if n == 0:
                return []
            phase_cols = ", ".join(f"{'' if bucket == 'batch_id' else 'avg'}({c})"
                                   for c in PHASE_FIELDS)
            if bucket == "batch_id":
                sql = (f"SELECT at, batch_id, 1, duration_ms, {phase_cols}, input_rows,"
                       " input_rps, processed_rps, watermark_delay_ms, event_delay_ms,"
                       " state_rows, state_bytes, origin, run_id FROM spark_batches"
                       " WHERE query = ? AND at >= ? AND at <= ? ORDER BY at, batch_id")
                rows = conn.execute(sql, (qid, start, end)).fetchall()
            else:
                sql = (f"SELECT max(at), max(batch_id), count(*), max(duration_ms), {phase_cols},"
                       " sum(input_rows), avg(input_rps), avg(processed_rps),"
                       " max(watermark_delay_ms), max(event_delay_ms), avg(state_rows),"
                       f" avg(state_bytes), NULL, NULL, {bucket} AS b FROM spark_batches"
                       " WHERE query = ? AND at >= ? AND at <= ? GROUP BY b ORDER BY 1")
                rows = [r[:-1] for r in conn.execute(sql, (*bparams, qid, start, end))]
        out = []
        for r in rows:
            at, bid, count, dur, *rest = r
            phases_ms, rest = rest[: len(PHASE_FIELDS)], rest[len(PHASE_FIELDS):]
            in_rows, in_rps, proc_rps, wm, ev, st_rows, st_bytes, origin, run_id = rest
            phases = {name: ms / 1000.0 for name, ms in zip(_PHASE_NAMES, phases_ms)
                      if ms is not None}
            if dur is not None and origin == 1 and phases:
                phases.setdefault("triggerExecution", dur / 1000.0)
            out.append({
                "at": at, "batch_id": bid, "batches": count, "duration_seconds": to_seconds(dur),
                "phases": phases, "input_rows": in_rows, "input_rows_per_second": in_rps,
                "processed_rows_per_second": proc_rps, "watermark_delay_seconds": to_seconds(wm),
                "event_time_delay_seconds": to_seconds(ev), "state_rows": st_rows,
                "state_memory_bytes": st_bytes,
                "origin": None if origin is None else ("listener" if origin else "sql"),
                "run_id": run_id,
            })
        return out

    def dstream_batches(
        self, app: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Completed DStream batches of an app with batch time in [start, end], oldest first,
        at most max_points rows. ``app`` as for :meth:`batches`.

        Keys: at (batch time), batch_id, batches, input_size (sum in bucket),
        scheduling_delay_seconds, processing_time_seconds, total_delay_seconds (max in bucket),
        failed_output_ops (sum).
        """
        if end < start:
            return []
        with self._db.read() as conn:
            aid = self._spark_app_id(conn, app)
            if aid is None:
                return []
            n, bucket, bparams = self._range_buckets(conn, "dstream_batches", "app", aid,
                                                     start, end, max_points)
            if n == 0:
                return []
            if bucket == "batch_id":
                rows = conn.execute(
                    "SELECT at, batch_id, 1, input_size, scheduling_delay_ms,"
                    " processing_time_ms, total_delay_ms, failed_ops FROM dstream_batches"
                    " WHERE app = ? AND at >= ? AND at <= ? ORDER BY at",
                    (aid, start, end),
                ).fetchall()
            else:
                rows = [r[:-1] for r in conn.execute(
                    "SELECT max(at), max(batch_id), count(*), sum(input_size),"
                    " max(scheduling_delay_ms), max(processing_time_ms), max(total_delay_ms),"
                    f" sum(failed_ops), {bucket} AS b FROM dstream_batches"
                    " WHERE app = ? AND at >= ? AND at <= ? GROUP BY b ORDER BY 1",
                    (*bparams, aid, start, end),
                )]
        return [
            {"at": at, "batch_id": bid, "batches": count, "input_size": size,
             "scheduling_delay_seconds": to_seconds(sd), "processing_time_seconds": to_seconds(pt),
             "total_delay_seconds": to_seconds(td), "failed_output_ops": failed}
            for at, bid, count, size, sd, pt, td, failed in rows
        ]

    def apps_latest(self) -> list[dict[str, Any]]:
        """Apps of the latest Spark cycle with their queries, sorted by label.

        App keys: app_id, name, label (the exported ``app`` label), spark_version, kind
        (structured | dstream | other), ui_url, discovered_via, completed, stale, up,
        start_time, end_time, jobs_active, jobs_failed, executors_active, first_seen,
        last_seen, queries. Query keys: query_id, name, label, run_id, state, exception,
        last_batch_id, trigger_interval_seconds, first_seen, last_seen, last_batch_at,
        last_batch_duration_seconds.
        """
        with self._db.read() as conn:
            row = conn.execute("SELECT max(at) FROM spark_cycles").fetchone()
            if row is None or row[0] is None:
                return []
            latest = row[0]
            app_cols = ("app_id", "name", "label", "spark_version", "kind", "ui_url",
                        "discovered_via", "completed", "stale", "up", "start_time", "end_time",
                        "jobs_active", "jobs_failed", "executors_active", "first_seen",
                        "last_seen")
            apps = conn.execute(
                f"SELECT id, {', '.join(app_cols)} FROM spark_apps WHERE last_seen = ?",
                (latest,),
            ).fetchall()
            out = []
            for aid, *vals in apps:
                a = dict(zip(app_cols, vals))
                for k in ("completed", "stale", "up"):
                    a[k] = bool(a[k])
                queries = []
                for (qid, query_id, name, run_id, state, exc, last_id, trig, first,
                     seen) in conn.execute(
                        "SELECT id, query_id, name, run_id, state, exception, last_batch_id,"
                        " trigger_interval_ms, first_seen, last_seen FROM spark_queries"
                        " WHERE app = ? AND last_seen = ?", (aid, latest)).fetchall():
                    last = conn.execute(
                        "SELECT at, duration_ms FROM spark_batches WHERE query = ?"
                        " ORDER BY at DESC LIMIT 1", (qid,)).fetchone()
                    queries.append({
                        "query_id": query_id, "name": name, "label": name or query_id or "",
                        "run_id": run_id, "state": state, "exception": exc,
                        "last_batch_id": last_id, "trigger_interval_seconds": to_seconds(trig),
                        "first_seen": first, "last_seen": seen,
                        "last_batch_at": last[0] if last else None,
                        "last_batch_duration_seconds": to_seconds(last[1]) if last else None,
                    })
                queries.sort(key=lambda q: (q["label"], q["query_id"] or ""))
                a["queries"] = queries
                out.append(a)
        out.sort(key=lambda a: (a["label"] or "", a["app_id"]))
        return out


def _upsert_app(conn: sqlite3.Connection, at: float, view: SparkAppView) -> int:
    """The app's row (latest state wins); its row id."""
    snap = view.raw
    app = snap.app
    kind = "dstream" if snap.dstream is not None else ("structured" if snap.queries else "other")
    conn.execute(
        "INSERT INTO spark_apps(app_id, name, label, spark_version, kind, ui_url,"
        " discovered_via, completed, stale, up, start_time, end_time, jobs_active,"
        " jobs_failed, executors_active, first_seen, last_seen)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(app_id) DO UPDATE SET name=excluded.name,"
        " label=excluded.label, spark_version=coalesce(excluded.spark_version,"
        " spark_version), kind=excluded.kind, ui_url=coalesce(excluded.ui_url, ui_url),"
        " discovered_via=excluded.discovered_via, completed=excluded.completed,"
        " stale=excluded.stale, up=excluded.up, start_time=coalesce("
        "excluded.start_time, start_time), end_time=excluded.end_time,"
        " jobs_active=excluded.jobs_active, jobs_failed=excluded.jobs_failed,"
        " executors_active=excluded.executors_active,"
        " last_seen=max(last_seen, excluded.last_seen)",
        (app.id, app.name, view.label, app.spark_version, kind, app.ui_url,
         app.discovered_via, int(app.completed), int(snap.stale), int(view.up), app.start_time,
         app.end_time, view.jobs_active, view.failed_jobs,
         len(snap.active_executors) if snap.executors else None, at, at),
    )
    return conn.execute("SELECT id FROM spark_apps WHERE app_id = ?", (app.id,)).fetchone()[0]


def _upsert_query(conn: sqlite3.Connection, at: float, aid: int, q: StreamingQuery) -> int:
    """The query's row (latest state wins); its row id."""
    conn.execute(
        "INSERT INTO spark_queries(app, query_key, query_id, name, run_id, state,"
        " exception, last_batch_id, trigger_interval_ms, first_seen, last_seen)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(app, query_key) DO UPDATE SET"
        " query_id=coalesce(excluded.query_id, query_id),"
        " name=coalesce(excluded.name, name), run_id=excluded.run_id,"
        " state=excluded.state, exception=excluded.exception,"
        " last_batch_id=excluded.last_batch_id,"
        " trigger_interval_ms=excluded.trigger_interval_ms,"
        " last_seen=max(last_seen, excluded.last_seen)",
        (aid, q.key, q.id, q.name, q.run_id, q.state.value, q.exception,
         q.last_batch_id, q.trigger_interval_ms, at, at),
    )
    return conn.execute("SELECT id FROM spark_queries WHERE app = ? AND query_key = ?",
                        (aid, q.key)).fetchone()[0]


def _batch_rows(qid: int, q: StreamingQuery, floor: float) -> list[tuple]:
    """Finished batches triggered at or after `floor`, in spark_batches column order."""
    rows = []
    for b in q.batches:
        b_at = b.timestamp if b.timestamp is not None else b.received_at
        if b.status == "RUNNING" or b_at is None or b_at < floor:
            continue
        d = b.durations
        rows.append((
            qid, b.batch_id, float(b_at), b.run_id,
            1 if b.origin == "listener" else 0, b.measured_duration_ms,
            *((getattr(d, f) if d is not None else None) for f in PHASE_FIELDS),
            b.num_input_rows, b.input_rows_per_second,
            b.processed_rows_per_second, to_ms(b.watermark_delay_seconds),
            to_ms(b.event_time_delay_seconds), b.state_rows_total,
            b.state_memory_bytes,
        ))
    return rows


def _insert_batches(conn: sqlite3.Connection, qid: int, q: StreamingQuery, floor: float) -> None:
    rows = _batch_rows(qid, q, floor)
    if rows:
        conn.executemany(
            "INSERT INTO spark_batches VALUES (" + ",".join("?" * 19) + ")"
            " ON CONFLICT(query, batch_id) DO UPDATE SET at=excluded.at,"
            " run_id=excluded.run_id, origin=excluded.origin,"
            " duration_ms=excluded.duration_ms,"
            " add_batch_ms=excluded.add_batch_ms,"
            " get_batch_ms=excluded.get_batch_ms,"
            " latest_offset_ms=excluded.latest_offset_ms,"
            " query_planning_ms=excluded.query_planning_ms,"
            " wal_commit_ms=excluded.wal_commit_ms,"
            " commit_offsets_ms=excluded.commit_offsets_ms,"
            " input_rows=excluded.input_rows, input_rps=excluded.input_rps,"
            " processed_rps=excluded.processed_rps,"
            " watermark_delay_ms=excluded.watermark_delay_ms,"
            " event_delay_ms=excluded.event_delay_ms,"
            " state_rows=excluded.state_rows, state_bytes=excluded.state_bytes"
            " WHERE excluded.origin > spark_batches.origin"
            " OR (excluded.run_id IS NOT spark_batches.run_id"
            " AND excluded.at > spark_batches.at)",
            rows,
        )


def _insert_dstream_batches(conn: sqlite3.Connection, aid: int, ds: DStreamStats, floor: float) -> None:
    rows = [
        (aid, b.batch_id, float(b.batch_time), b.input_size,
         b.scheduling_delay_ms, b.processing_time_ms, b.total_delay_ms,
         b.num_failed_output_ops)
        for b in ds.batches
        if b.status == "COMPLETED" and b.batch_time is not None and b.batch_time >= floor
    ]
    if rows:
        conn.executemany("INSERT OR IGNORE INTO dstream_batches VALUES (?,?,?,?,?,?,?,?)", rows)
