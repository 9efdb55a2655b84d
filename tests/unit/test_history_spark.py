"""monitor.history Spark storage: append_spark round trip, de-duplication, range downsampling,
latest apps, retention/thinning, migration of a version-1 file. Real SQLite, injected clock."""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from collectors.spark.models import QueryState
from monitor.storage import SCHEMA_VERSION, History
from monitor.storage.schema import _migrate_to_1
from tests.helpers import ManualClock
from collectors.spark.views import spark_views
from tests.unit.test_spark_exporter import (
    T,
    dstream_app,
    listener_batch,
    make_query,
    sql_batch,
    structured_app,
)




@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T)


@pytest.fixture
def hist(tmp_path: Path, clock: ManualClock):
    h = History(tmp_path / "h.db", retention_seconds=86400, downsample_after_seconds=3600,
                downsample_step_seconds=60, clock=clock)
    yield h
    h.close()


def app_with(batches, *, name="ingest", qid="q-1", state=QueryState.ACTIVE, app_id="local-1",
             app_name="etl"):
    return structured_app(app_id, app_name,
                          queries=(make_query(name, qid, state=state, batches=batches),))


def test_round_trip_of_query_batches(hist: History):
    hist.spark.append(T, spark_views([structured_app(), dstream_app()]))
    rows = hist.spark.batches("local-1", "ingest", T - 100, T)
    # the RUNNING batch 9 is not stored
    assert [r["batch_id"] for r in rows] == [7, 8]
    r = rows[-1]
    assert r["at"] == T - 10 and r["batches"] == 1 and r["origin"] == "listener"
    assert r["duration_seconds"] == 2.5
    assert r["phases"] == {"addBatch": 1.0, "getBatch": 0.001, "latestOffset": 0.02,
                           "queryPlanning": 0.1, "walCommit": 0.15, "commitOffsets": 0.2,
                           "triggerExecution": 2.5}
    assert (r["input_rows"], r["input_rows_per_second"], r["processed_rows_per_second"]) == \
        (100, 50.0, 80.0)
    assert (r["watermark_delay_seconds"], r["event_time_delay_seconds"]) == (30.0, 10.0)
    assert (r["state_rows"], r["state_memory_bytes"], r["run_id"]) == (15, 1024, "run-1")
    # the failed query's SQL-listing batch: duration only
    (b,) = hist.spark.batches("local-1", "broken", 0, T)
    assert (b["batch_id"], b["duration_seconds"], b["origin"], b["phases"]) == (3, 0.9, "sql", {})
    # lookups by name / label and by query id work too
    assert hist.spark.batches("etl", "q-1", 0, T) == rows
    assert hist.spark.batches("nope", "ingest", 0, T) == []
    assert hist.spark.batches("local-1", "nope", 0, T) == []
    assert hist.spark.batches("local-1", "ingest", T, T - 1) == []


def test_dstream_round_trip(hist: History):
    hist.spark.append(T, spark_views([dstream_app()]))
    rows = hist.spark.dstream_batches("local-2", T - 10, T)
    assert [(r["at"], r["input_size"], r["scheduling_delay_seconds"],
             r["processing_time_seconds"], r["total_delay_seconds"]) for r in rows] == \
        [(T - 3, 9, 0.001, 0.3, 0.301), (T - 2, 7, 0.003, 0.4, 0.403)]  # PROCESSING left out
    assert hist.spark.dstream_batches("legacy", T - 10, T) == rows


def test_batches_are_deduplicated_and_listener_records_win(hist: History, clock: ManualClock):
    sql = app_with((sql_batch(1, T - 20), sql_batch(2, T - 10, duration_ms=700)))
    hist.spark.append(T, spark_views([sql]))
    hist.spark.append(T + 15, spark_views([sql]))  # same batches again: nothing new
    rows = hist.spark.batches("local-1", "ingest", 0, T + 100)
    assert [(r["batch_id"], r["origin"]) for r in rows] == [(1, "sql"), (2, "sql")]
    # the listener's full progress of batch 2 replaces the SQL record; a later SQL record of
    # the same batch does not replace the listener's
    lst = app_with((sql_batch(1, T - 20), listener_batch(2, T - 10, duration_ms=650)))
    hist.spark.append(T + 30, spark_views([lst]))
    hist.spark.append(T + 45, spark_views([sql]))
    rows = hist.spark.batches("local-1", "ingest", 0, T + 100)
    assert [(r["batch_id"], r["origin"], r["duration_seconds"]) for r in rows] == \
        [(1, "sql", 0.9), (2, "listener", 0.65)]
    # a new run (fresh checkpoint) restarting batch ids replaces the old run's batch 1
    new_run = app_with((listener_batch(1, T + 40, run_id="run-2"),))
    hist.spark.append(T + 60, spark_views([new_run]))
    rows = hist.spark.batches("local-1", "ingest", 0, T + 100)
    assert [(r["batch_id"], r["run_id"], r["at"]) for r in rows] == \
        [(2, "run-1", T - 10), (1, "run-2", T + 40)]


def test_range_downsampling(hist: History):
    batches = [listener_batch(i, T + 2 * i, duration_ms=1000 + i, input_rows=10, in_rps=float(i))
               for i in range(100)]
    for k in range(0, 100, 25):  # four cycles, each carrying the last 25 batches
        hist.spark.append(T + 2 * (k + 25), spark_views([app_with(batches[k:k + 25])]))
    full = hist.spark.batches("local-1", "ingest", T, T + 1000)
    assert len(full) == 100 and all(r["batches"] == 1 for r in full)
    pts = hist.spark.batches("local-1", "ingest", T, T + 1000, max_points=10)
    assert len(pts) == 10
    assert sum(p["batches"] for p in pts) == 100
    assert sum(p["input_rows"] for p in pts) == 1000  # rows: the sum in each bucket
    assert pts[-1]["at"] == T + 198 and pts[-1]["batch_id"] == 99  # last in bucket
    assert pts[0]["duration_seconds"] == max(r["duration_seconds"] for r in full[:pts[0]["batches"]])
    n0 = pts[0]["batches"]
    assert pts[0]["input_rows_per_second"] == pytest.approx(sum(range(n0)) / n0)  # average
    assert all(p["origin"] is None and p["run_id"] is None for p in pts)
    assert set(pts[0]["phases"]) == {"addBatch", "getBatch", "latestOffset", "queryPlanning",
                                     "walCommit", "commitOffsets"}
    # a sub-range
    sub = hist.spark.batches("local-1", "ingest", T + 20, T + 39)
    assert [r["batch_id"] for r in sub] == list(range(10, 20))
    with pytest.raises(ValueError):
        hist.spark.batches("local-1", "ingest", T, T + 1000, max_points=0)


def test_dstream_range_downsampling(hist: History):
    base = dstream_app()
    from collectors.spark.models import DStreamBatch

    batches = tuple(DStreamBatch(batch_id=int((T + i) * 1000), batch_time=T + i,
                                 status="COMPLETED", input_size=2, scheduling_delay_ms=i,
                                 processing_time_ms=100, total_delay_ms=100 + i)
                    for i in range(30))
    hist.spark.append(T + 30, spark_views([replace(base, dstream=replace(base.dstream, batches=batches))]))
    pts = hist.spark.dstream_batches("local-2", T, T + 30, max_points=3)
    assert [p["batches"] for p in pts] == [10, 10, 10]
    assert [p["input_size"] for p in pts] == [20, 20, 20]
    assert [p["total_delay_seconds"] for p in pts] == [0.109, 0.119, 0.129]


def test_spark_apps_latest(hist: History, clock: ManualClock):
    assert hist.spark.apps_latest() == []
    hist.spark.append(T, spark_views([structured_app(), dstream_app(), structured_app("local-3", "gone")]))
    hist.spark.append(T + 15, spark_views([structured_app(), dstream_app(),
                               structured_app("local-4", "etl", completed=True)]))
    apps = hist.spark.apps_latest()
    assert [(a["app_id"], a["label"], a["kind"], a["up"]) for a in apps] == [
        ("local-1", "etl", "structured", True),
        ("local-4", "etl (local-4)", "structured", False),  # finished run of the same name
        ("local-2", "legacy", "dstream", True),
    ]
    etl = apps[0]
    assert (etl["name"], etl["spark_version"], etl["first_seen"], etl["last_seen"]) == \
        ("etl", "4.3.0", T, T + 15)
    assert (etl["jobs_active"], etl["jobs_failed"], etl["executors_active"]) == (2, 3, 2)
    qs = {q["label"]: q for q in etl["queries"]}
    assert set(qs) == {"broken", "ingest"}
    assert (qs["ingest"]["state"], qs["ingest"]["last_batch_id"],
            qs["ingest"]["trigger_interval_seconds"], qs["ingest"]["last_batch_at"],
            qs["ingest"]["last_batch_duration_seconds"]) == ("active", 9, 2.0, T - 10, 2.5)
    assert qs["broken"]["state"] == "failed" and "boom" in qs["broken"]["exception"]
    hist.spark.append(T + 30, spark_views([]))
    assert hist.spark.apps_latest() == []


def test_prune_applies_retention_and_thins_old_batches(tmp_path: Path, clock: ManualClock):
    h = History(tmp_path / "p.db", retention_seconds=7200, downsample_after_seconds=600,
                downsample_step_seconds=60, clock=clock)
    try:
        # 2 s trigger for 20 minutes, stored in 40 cycles as it happened
        batches = [listener_batch(i, T + 2 * i) for i in range(600)]
        for k in range(0, 600, 15):
            clock.t = T + 2 * (k + 15)
            h.spark.append(clock.t, spark_views([app_with(batches[max(0, k - 15):k + 15]),
                                     structured_app("local-3", "old")
                                     if k == 0 else dstream_app()]))
        assert len(h.spark.batches("local-1", "ingest", 0, T + 5000, max_points=10_000)) == 600
        now = T + 1200
        stats = h.prune(now)  # Kafka result unchanged; Spark pruned alongside
        assert stats == {"expired_cycles": 0, "downsampled_cycles": 0}
        rows = h.spark.batches("local-1", "ingest", 0, T + 5000, max_points=10_000)
        cutoff = now - 600
        old = [r for r in rows if r["at"] < cutoff]
        recent = [r for r in rows if r["at"] >= cutoff]
        assert len(recent) == 300  # untouched
        assert len(old) == 10  # one per complete 60 s bucket: the last batch in it
        assert all((r["at"] - T) % 60 == 58 for r in old)
        assert h.prune_spark(now) == {"expired_batches": 0, "downsampled_batches": 0,
                                      "expired_apps": 0}  # idempotent
        # thinned batches are not written back by later cycles carrying them
        clock.t = now
        h.spark.append(now, spark_views([app_with(batches[:600])]))
        assert len(h.spark.batches("local-1", "ingest", 0, T + 5000, max_points=10_000)) == 310
        # retention: everything older than 2 h goes, and so do apps not seen within it
        stats = h.prune_spark(T + 1201 + 7200)
        assert stats["expired_apps"] == 3 and stats["expired_batches"] > 0
        assert h.spark.batches("local-1", "ingest", 0, T + 1e6) == []
        assert h.spark.apps_latest() == []
    finally:
        h.close()


def test_old_batches_are_not_backfilled(hist: History):
    """Batches older than downsample_after_seconds are not written (e.g. at startup)."""
    hist.spark.append(T + 7200, spark_views([app_with((listener_batch(1, T), listener_batch(2, T + 7190)))]))
    assert [r["batch_id"] for r in hist.spark.batches("local-1", "ingest", 0, T + 7200)] == [2]


def test_version_1_file_is_migrated_keeping_kafka_data(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _migrate_to_1(conn)
    conn.execute("INSERT INTO names(name) VALUES ('c1')")
    conn.execute("INSERT INTO cycles(cluster, at, ok, stale, has_data) VALUES (1, ?, 0, 1, 0)", (T,))
    conn.execute("PRAGMA user_version=1")
    conn.close()
    h = History(path, clock=clock)
    try:
        assert h.kafka.latest_cycle("c1")["at"] == T
        h.spark.append(T, spark_views([structured_app()]))
        assert [r["batch_id"] for r in h.spark.batches("local-1", "ingest", 0, T)] == [7, 8]
    finally:
        h.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()


def test_reopened_file_keeps_spark_data(tmp_path: Path, clock: ManualClock):
    h = History(tmp_path / "r.db", clock=clock)
    h.spark.append(T, spark_views([structured_app()]))
    h.close()
    h2 = History(tmp_path / "r.db", clock=clock)
    try:
        assert [a["app_id"] for a in h2.spark.apps_latest()] == ["local-1"]
        h2.spark.append(T + 15, spark_views([structured_app()]))
        assert len(h2.spark.batches("local-1", "ingest", 0, T + 15)) == 2
    finally:
        h2.close()


def test_memory_database_works_too(clock: ManualClock):
    h = History(":memory:", clock=clock)
    try:
        h.spark.append(T, spark_views([structured_app(), dstream_app()]))
        assert len(h.spark.apps_latest()) == 2
        assert len(h.spark.dstream_batches("legacy", 0, T)) == 2
    finally:
        h.close()
