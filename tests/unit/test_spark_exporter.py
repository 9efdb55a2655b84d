"""collectors.spark.exporter: Spark metric families from hand-built snapshots (and one real
progress report), parsed back with prometheus_client's text parser."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitor.web.metrics import MetricsCache, SnapshotCollector
from collectors.models import Snapshot
from collectors.spark.exporter import spark_families
from collectors.spark.views import disambiguate_app_names, spark_views
from collectors.spark.models import (
    BatchProgress,
    DriverMetrics,
    DStreamBatch,
    DStreamStats,
    Executor,
    FailedJob,
    JobSummary,
    PartitionOffset,
    QueryGauges,
    QueryState,
    SourceProgress,
    SourceStatus,
    SparkApp,
    SparkAppSnapshot,
    StageSummary,
    StateOperatorProgress,
    StreamingQuery,
    TriggerDurations,
)
from collectors.spark.progress import QueryTracker, merge_tracked

T = 1_800_000_000.0

CONTRACT = {
    "streamscope_spark_app_info", "streamscope_spark_app_up", "streamscope_spark_app_stale",
    "streamscope_spark_jobs_active",
    "streamscope_spark_jobs_failed_total", "streamscope_spark_stages_failed_total",
    "streamscope_spark_tasks_failed_total", "streamscope_spark_executors",
    "streamscope_spark_executor_memory_used_bytes", "streamscope_spark_executor_gc_seconds_total",
    "streamscope_spark_query_info", "streamscope_spark_query_active",
    "streamscope_spark_query_failed", "streamscope_spark_query_last_batch_id",
    "streamscope_spark_query_last_batch_timestamp_seconds",
    "streamscope_spark_query_batch_duration_seconds",
    "streamscope_spark_query_trigger_phase_duration_seconds",
    "streamscope_spark_query_trigger_interval_seconds",
    "streamscope_spark_query_input_rows_per_second",
    "streamscope_spark_query_processed_rows_per_second", "streamscope_spark_query_batch_input_rows",
    "streamscope_spark_query_watermark_delay_seconds",
    "streamscope_spark_query_event_time_delay_seconds", "streamscope_spark_query_state_rows",
    "streamscope_spark_query_state_memory_bytes", "streamscope_spark_query_offsets_behind_latest",
    "streamscope_spark_dstream_batch_interval_seconds",
    "streamscope_spark_dstream_scheduling_delay_seconds",
    "streamscope_spark_dstream_processing_time_seconds",
    "streamscope_spark_dstream_total_delay_seconds", "streamscope_spark_dstream_active_batches",
    "streamscope_spark_dstream_input_rate",
}


# --------------------------------------------------------------------------------------------
# builders (also used by test_spark_source.py and test_history_spark.py)
# --------------------------------------------------------------------------------------------


def make_app(app_id="local-1", name="etl", *, completed=False, version="4.3.0",
             via="ui") -> SparkApp:
    return SparkApp(id=app_id, name=name, ui_url="http://127.0.0.1:4040", attempt=None,
                    start_time=T - 3600, end_time=T if completed else None,
                    spark_version=version, completed=completed, fetched_at=T,
                    discovered_via=via)


def kafka_source(end: dict[tuple[str, int], int], latest: dict[tuple[str, int], int] | None = None,
                 behind=(0.0, 10.0, 20.0)) -> SourceProgress:
    latest = latest or end
    return SourceProgress(
        description="KafkaV2[Subscribe[events]]", start_offset=None, end_offset=None,
        latest_offset=None,
        end_offsets=tuple(PartitionOffset(t, p, o) for (t, p), o in sorted(end.items())),
        latest_offsets=tuple(PartitionOffset(t, p, o) for (t, p), o in sorted(latest.items())),
        num_input_rows=20, min_offsets_behind_latest=behind[0],
        avg_offsets_behind_latest=behind[1], max_offsets_behind_latest=behind[2])


def listener_batch(batch_id: int, at: float, *, duration_ms=1500, end=None, run_id="run-1",
                   input_rows=100, in_rps=50.0, proc_rps=80.0, received_at=None,
                   state_rows=(10, 5), state_bytes=(1000, 24)) -> BatchProgress:
    return BatchProgress(
        batch_id=batch_id, run_id=run_id, origin="listener",
        received_at=at + 2 if received_at is None else received_at, timestamp=at,
        duration_ms=duration_ms,
        durations=TriggerDurations(add_batch_ms=1000, get_batch_ms=1, latest_offset_ms=20,
                                   query_planning_ms=100, wal_commit_ms=150,
                                   commit_offsets_ms=200, trigger_execution_ms=duration_ms,
                                   other=(("commitBatch", 5),)),
        num_input_rows=input_rows, input_rows_per_second=in_rps, processed_rows_per_second=proc_rps,
        watermark=at - 30, event_time_min=at - 20, event_time_avg=at - 15, event_time_max=at - 10,
        state_operators=tuple(
            StateOperatorProgress("stateStoreSave", num_rows_total=r, num_rows_updated=1,
                                  memory_used_bytes=b) for r, b in zip(state_rows, state_bytes)),
        sources=(kafka_source(end),) if end else (),
    )


def sql_batch(batch_id: int, at: float, *, duration_ms=900, status="COMPLETED",
              run_id="run-1") -> BatchProgress:
    return BatchProgress(batch_id=batch_id, run_id=run_id, origin="sql", received_at=at + 5,
                         timestamp=at, duration_ms=duration_ms, status=status)


def make_query(name="ingest", qid="q-1", *, state=QueryState.ACTIVE, batches=(), exception=None,
               trigger_ms=2000, gauges=None, updated_at=T) -> StreamingQuery:
    last = max((b.batch_id for b in batches), default=None)
    return StreamingQuery(id=qid, name=name, run_id="run-1", state=state, exception=exception,
                          last_batch_id=last, batches=tuple(batches), updated_at=updated_at,
                          gauges=gauges, trigger_interval_ms=trigger_ms)


def executor(eid, *, active=True, mem=100, gc_ms=1500, failed=1) -> Executor:
    return Executor(id=eid, host_port="127.0.0.1:1", active=active, memory_used_bytes=mem,
                    max_memory_bytes=1000, disk_used_bytes=0, total_gc_time_ms=gc_ms,
                    failed_tasks=failed, active_tasks=0, completed_tasks=10, total_tasks=11,
                    total_cores=2, max_tasks=2, total_duration_ms=10, fetched_at=T)


def structured_app(app_id="local-1", name="etl", *, queries=None, **kw) -> SparkAppSnapshot:
    if queries is None:
        queries = (
            make_query("ingest", "q-1", batches=(
                listener_batch(7, T - 20, end={("events", 0): 90, ("events", 1): 240}),
                listener_batch(8, T - 10, duration_ms=2500,
                               end={("events", 0): 100, ("events", 1): 250}),
                sql_batch(9, T - 2, status="RUNNING"))),
            make_query("broken", "q-2", state=QueryState.FAILED,
                       exception="org.apache.spark.SparkException: boom",
                       batches=(sql_batch(3, T - 100),), trigger_ms=None),
        )
    jobs = JobSummary(active=2, failed=1, succeeded=None, fetched_at=T, failed_jobs=(
        FailedJob(job_id=4, name="count", description=None, submission_time=T - 50,
                  completion_time=T - 40, failed_tasks=4, failed_stages=1),))
    stages = StageSummary(failed_stages=(), failed_tasks=0, active=0, fetched_at=T)
    driver = DriverMetrics(namespace=app_id, fetched_at=T, jobs_failed_total=3,
                           stages_failed_total=2, tasks_failed_total=9)
    return SparkAppSnapshot(
        app=make_app(app_id, name, **kw), collected_at=T, jobs=jobs, stages=stages,
        executors=(executor("driver", mem=100, gc_ms=1500), executor("1", mem=50, gc_ms=500),
                   executor("2", active=False, mem=999, gc_ms=1000)),
        queries=tuple(queries), driver=driver,
        sources=(SourceStatus(source="applications", url="u", fetched_at=T, ok=True),))


def dstream_app(app_id="local-2", name="legacy") -> SparkAppSnapshot:
    batches = (
        DStreamBatch(batch_id=int((T - 1) * 1000), batch_time=T - 1, status="PROCESSING",
                     input_size=5, scheduling_delay_ms=10, processing_time_ms=None,
                     total_delay_ms=None),
        DStreamBatch(batch_id=int((T - 2) * 1000), batch_time=T - 2, status="COMPLETED",
                     input_size=7, scheduling_delay_ms=3, processing_time_ms=400,
                     total_delay_ms=403),
        DStreamBatch(batch_id=int((T - 3) * 1000), batch_time=T - 3, status="COMPLETED",
                     input_size=9, scheduling_delay_ms=1, processing_time_ms=300,
                     total_delay_ms=301),
    )
    stats = DStreamStats(
        start_time=T - 600, batch_duration_ms=1000, num_receivers=1, num_active_receivers=1,
        num_inactive_receivers=0, total_completed_batches=600, retained_completed_batches=2,
        active_batches=1, processed_records=1000, received_records=1005, avg_input_rate=12.5,
        avg_scheduling_delay_ms=2.0, avg_processing_time_ms=350.0, avg_total_delay_ms=352.0,
        fetched_at=T, batches=batches)
    return SparkAppSnapshot(app=make_app(app_id, name), collected_at=T, dstream=stats,
                            sources=(SourceStatus(source="applications", url="u", fetched_at=T,
                                                  ok=True),))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class _Families(Collector):
    def __init__(self, apps):
        self.apps = apps

    def collect(self):
        return spark_families(spark_views(self.apps))


def scrape(apps) -> tuple[str, dict]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(apps))
    text = generate_latest(registry).decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict, name: str, **labels) -> dict[tuple, float]:
    """Samples named `name` (the parser names counter families without `_total`)."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in families.values() for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())}


def one(families: dict, name: str, **labels) -> float:
    found = samples(families, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return next(iter(found.values()))


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_every_contract_name_is_exported_and_nothing_else():
    text, _ = scrape([structured_app(), dstream_app()])
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    assert names == CONTRACT


def test_app_level_values():
    _, f = scrape([structured_app()])
    assert samples(f, "streamscope_spark_app_info") == {
        (("app", "etl"), ("app_id", "local-1"), ("spark_version", "4.3.0")): 1.0}
    assert one(f, "streamscope_spark_app_up", app="etl") == 1.0
    assert one(f, "streamscope_spark_jobs_active", app="etl") == 2
    # the driver's lifetime counters win over the listing's counts
    assert one(f, "streamscope_spark_jobs_failed_total", app="etl") == 3
    assert one(f, "streamscope_spark_stages_failed_total", app="etl") == 2
    assert one(f, "streamscope_spark_tasks_failed_total", app="etl") == 9
    assert one(f, "streamscope_spark_executors", app="etl", state="active") == 2
    assert one(f, "streamscope_spark_executors", app="etl", state="dead") == 1
    assert one(f, "streamscope_spark_executor_memory_used_bytes", app="etl") == 150  # live only
    assert one(f, "streamscope_spark_executor_gc_seconds_total", app="etl") == 3.0  # all
    assert f["streamscope_spark_jobs_failed"].type == "counter"
    assert f["streamscope_spark_executor_gc_seconds"].type == "counter"


def test_counters_fall_back_to_listings_without_driver_metrics():
    snap = replace(structured_app(), driver=None,
                   stages=StageSummary(failed_stages=(), failed_tasks=0, active=0, fetched_at=T))
    _, f = scrape([snap])
    assert one(f, "streamscope_spark_jobs_failed_total", app="etl") == 1  # jobs.failed
    assert one(f, "streamscope_spark_stages_failed_total", app="etl") == 0
    assert one(f, "streamscope_spark_tasks_failed_total", app="etl") == 3  # sum over executors


def test_query_values_come_from_the_latest_finished_batch():
    _, f = scrape([structured_app()])
    q = {"app": "etl", "query": "ingest"}
    assert samples(f, "streamscope_spark_query_info", **q) == {
        (("app", "etl"), ("query", "ingest"), ("query_id", "q-1"), ("run_id", "run-1")): 1.0}
    assert one(f, "streamscope_spark_query_active", **q) == 1.0
    assert one(f, "streamscope_spark_query_failed", **q) == 0.0
    # batch 9 is still RUNNING: batch 8 is the latest finished one
    assert one(f, "streamscope_spark_query_last_batch_id", **q) == 8
    assert one(f, "streamscope_spark_query_last_batch_timestamp_seconds", **q) == T - 10
    assert one(f, "streamscope_spark_query_batch_duration_seconds", **q) == 2.5
    assert one(f, "streamscope_spark_query_trigger_interval_seconds", **q) == 2.0
    phases = {dict(k)["phase"]: v for k, v in
              samples(f, "streamscope_spark_query_trigger_phase_duration_seconds", **q).items()}
    assert phases == {"addBatch": 1.0, "getBatch": 0.001, "latestOffset": 0.02,
                      "queryPlanning": 0.1, "walCommit": 0.15, "commitOffsets": 0.2,
                      "triggerExecution": 2.5, "commitBatch": 0.005}
    assert one(f, "streamscope_spark_query_input_rows_per_second", **q) == 50.0
    assert one(f, "streamscope_spark_query_processed_rows_per_second", **q) == 80.0
    assert one(f, "streamscope_spark_query_batch_input_rows", **q) == 100
    assert one(f, "streamscope_spark_query_watermark_delay_seconds", **q) == 30.0
    assert one(f, "streamscope_spark_query_event_time_delay_seconds", **q) == 10.0
    assert one(f, "streamscope_spark_query_state_rows", **q) == 15
    assert one(f, "streamscope_spark_query_state_memory_bytes", **q) == 1024
    behind = {dict(k)["stat"]: v for k, v in
              samples(f, "streamscope_spark_query_offsets_behind_latest", **q).items()}
    assert behind == {"min": 0.0, "avg": 10.0, "max": 20.0}


def test_failed_query_and_sql_only_batches():
    _, f = scrape([structured_app()])
    q = {"app": "etl", "query": "broken"}
    assert one(f, "streamscope_spark_query_active", **q) == 0.0
    assert one(f, "streamscope_spark_query_failed", **q) == 1.0
    assert one(f, "streamscope_spark_query_last_batch_id", **q) == 3
    assert one(f, "streamscope_spark_query_batch_duration_seconds", **q) == 0.9
    # no listener progress, no gauges, no trigger estimate: those series are absent
    for name in ("streamscope_spark_query_trigger_interval_seconds",
                 "streamscope_spark_query_input_rows_per_second",
                 "streamscope_spark_query_state_rows",
                 "streamscope_spark_query_trigger_phase_duration_seconds",
                 "streamscope_spark_query_offsets_behind_latest"):
        assert samples(f, name, **q) == {}, name


def test_unknown_state_has_no_active_series_and_gauges_are_a_fallback():
    gauges = QueryGauges(query="g", fetched_at=T, input_rate=5.0, processing_rate=6.0,
                         watermark=T - 40, state_rows_total=7, state_used_bytes=70)
    q = make_query("g", None, state=QueryState.UNKNOWN, gauges=gauges, trigger_ms=None)
    _, f = scrape([structured_app(queries=(q,))])
    assert samples(f, "streamscope_spark_query_active", query="g") == {}
    assert one(f, "streamscope_spark_query_failed", query="g") == 0.0
    assert one(f, "streamscope_spark_query_input_rows_per_second", query="g") == 5.0
    assert one(f, "streamscope_spark_query_processed_rows_per_second", query="g") == 6.0
    assert one(f, "streamscope_spark_query_watermark_delay_seconds", query="g") == 40.0
    assert one(f, "streamscope_spark_query_state_rows", query="g") == 7
    assert one(f, "streamscope_spark_query_state_memory_bytes", query="g") == 70
    assert samples(f, "streamscope_spark_query_info", query="g") == {
        (("app", "etl"), ("query", "g"), ("query_id", ""), ("run_id", "run-1")): 1.0}


def test_same_query_label_twice_in_one_app_exports_the_active_one():
    old = make_query("ingest", "q-old", state=QueryState.TERMINATED, updated_at=T + 100,
                     batches=(sql_batch(50, T - 500),))
    new = make_query("ingest", "q-new", batches=(sql_batch(2, T - 5),))
    _, f = scrape([structured_app(queries=(old, new))])
    assert [dict(k)["query_id"] for k in samples(f, "streamscope_spark_query_info")] == ["q-new"]
    assert one(f, "streamscope_spark_query_last_batch_id", query="ingest") == 2


def test_dstream_values():
    _, f = scrape([dstream_app()])
    a = {"app": "legacy"}
    assert one(f, "streamscope_spark_dstream_batch_interval_seconds", **a) == 1.0
    # latest COMPLETED batch (the newest one is still processing)
    assert one(f, "streamscope_spark_dstream_scheduling_delay_seconds", **a) == 0.003
    assert one(f, "streamscope_spark_dstream_processing_time_seconds", **a) == 0.4
    assert one(f, "streamscope_spark_dstream_total_delay_seconds", **a) == 0.403
    assert one(f, "streamscope_spark_dstream_active_batches", **a) == 1
    assert one(f, "streamscope_spark_dstream_input_rate", **a) == 12.5
    # averages when no batch is listed
    snap = dstream_app()
    snap = replace(snap, dstream=replace(snap.dstream, batches=()))
    _, f = scrape([snap])
    assert one(f, "streamscope_spark_dstream_processing_time_seconds", **a) == 0.35


def test_app_up_is_zero_for_stale_unreachable_and_finished_apps():
    down = SourceStatus(source="applications", url="u", fetched_at=T, ok=False, error="refused")
    apps = [replace(structured_app("a-1", "stale"), stale=True),
            replace(structured_app("a-2", "down"), sources=(down,)),
            structured_app("a-3", "done", completed=True),
            structured_app("a-4", "fine")]
    _, f = scrape(apps)
    assert {dict(k)["app"]: v for k, v in samples(f, "streamscope_spark_app_up").items()} == \
        {"stale": 0.0, "down": 0.0, "done": 0.0, "fine": 1.0}


def test_a_down_app_is_exported_with_up_0_its_queries_not_active_and_its_last_values():
    """What the collector returns for a driver that stopped answering: the last snapshot, stale,
    its queries marked not active (collectors.spark.collector)."""
    refused = SourceStatus(source="applications", url="u", fetched_at=T, ok=False,
                           error="connection refused")
    live = structured_app("local-1", "etl")
    down = replace(live, stale=True, sources=(refused,), queries=tuple(
        replace(q, state=QueryState.TERMINATED, state_source="app unreachable")
        if q.state == QueryState.ACTIVE else q for q in live.queries))
    _, before = scrape([live])
    _, f = scrape([down, structured_app("local-3", "done", completed=True)])
    a, q = {"app": "etl"}, {"app": "etl", "query": "ingest"}
    assert one(f, "streamscope_spark_app_up", **a) == 0.0
    assert one(f, "streamscope_spark_app_stale", **a) == 1.0
    assert one(f, "streamscope_spark_query_active", **q) == 0.0
    assert one(f, "streamscope_spark_query_failed", **q) == 0.0  # not known to have failed
    # a finished app is down too, but not stale
    assert one(f, "streamscope_spark_app_up", app="done") == 0.0
    assert one(f, "streamscope_spark_app_stale", app="done") == 0.0
    # every other series of the app keeps its last value
    for name in ("streamscope_spark_query_last_batch_id", "streamscope_spark_query_batch_duration_seconds",
                 "streamscope_spark_query_input_rows_per_second", "streamscope_spark_jobs_failed_total",
                 "streamscope_spark_executor_memory_used_bytes"):
        assert samples(f, name, app="etl") == samples(before, name, app="etl"), name
    assert one(before, "streamscope_spark_app_stale", **a) == 0.0


def test_a_restarted_app_keeps_the_bare_name_while_the_killed_run_is_shown_down():
    refused = SourceStatus(source="applications", url="u", fetched_at=T, ok=False, error="refused")
    killed = replace(structured_app("local-1", "etl"), stale=True, sources=(refused,))
    apps = [killed, structured_app("local-2", "etl")]
    assert [a.label for a in spark_views(apps)] == ["etl (local-1)", "etl"]
    # two down runs of one name: both suffixed
    assert [a.label for a in spark_views([killed, replace(killed, app=make_app("local-2"))])] \
        == ["etl (local-1)", "etl (local-2)"]
    # alone, a down app keeps its name
    assert [a.label for a in spark_views([killed])] == ["etl"]


def test_two_live_apps_with_the_same_name_are_told_apart_by_id():
    apps = [structured_app("local-1", "etl"), structured_app("local-2", "etl")]
    _, f = scrape(apps)
    labels = {dict(k)["app"]: dict(k)["app_id"] for k in samples(f, "streamscope_spark_app_info")}
    assert labels == {"etl (local-1)": "local-1", "etl (local-2)": "local-2"}
    assert set(dict(k)["app"] for k in samples(f, "streamscope_spark_query_info", query="ingest")) \
        == {"etl (local-1)", "etl (local-2)"}
    # a finished run listed next to the running one: the running one keeps the bare name
    apps = [structured_app("local-1", "etl", completed=True), structured_app("local-2", "etl")]
    assert [a.label for a in spark_views(apps)] == ["etl (local-1)", "etl"]


def test_disambiguation_rules():
    assert disambiguate_app_names([("a", "1", True), ("b", "2", True)]) == ["a", "b"]
    assert disambiguate_app_names([("a", "1", False), ("a", "2", False)]) == ["a (1)", "a (2)"]
    assert disambiguate_app_names([("a", "1", False), ("a", "2", True), ("a", "3", False)]) == \
        ["a (1)", "a", "a (3)"]
    assert disambiguate_app_names([("", "local-9", True), (None, "local-8", True)]) == \
        ["local-9", "local-8"]
    assert disambiguate_app_names([("a", "1", True), ("a", "1", True)]) == ["a (1)", "a (1) #2"]
    # liveness levels: answering (2) beats not answering (1) beats finished (0)
    assert disambiguate_app_names([("a", "1", 1), ("a", "2", 2), ("a", "3", 0)]) == \
        ["a (1)", "a", "a (3)"]
    assert disambiguate_app_names([("a", "1", 1), ("a", "2", 0)]) == ["a", "a (2)"]
    assert disambiguate_app_names([("a", "1", 1), ("a", "2", 1)]) == ["a (1)", "a (2)"]


def test_hostile_names_are_escaped_and_round_trip():
    app_name = 'evil "app"\nwith\\backslash <script>alert(1)</script>'
    query_name = 'q"}\nstreamscope_fake{x="1"} 1'
    q = make_query(query_name, "q-x", batches=(listener_batch(1, T - 5, end={("t", 0): 1}),))
    text, f = scrape([structured_app(name=app_name, queries=(q,))])
    assert "<script>" in text  # verbatim: the text format escapes only \, " and newline
    assert '\\"app\\"\\nwith\\\\backslash' in text
    assert "\nstreamscope_fake" not in text  # no injected series
    assert one(f, "streamscope_spark_app_up", app=app_name) == 1.0
    assert one(f, "streamscope_spark_query_last_batch_id", app=app_name, query=query_name) == 1


def test_no_apps_no_samples_and_fresh_families_each_time():
    text, _ = scrape([])
    assert not [line for line in text.splitlines() if line and not line.startswith("#")]
    apps = spark_views([structured_app()])
    first = list(spark_families(apps))
    second = list(spark_families(apps))
    assert all(a is not b for a, b in zip(first, second))
    # an app gone from the snapshot is gone from the output
    _, f = scrape([structured_app("local-5", "other")])
    assert samples(f, "streamscope_spark_app_up", app="etl") == {}


def test_snapshot_collector_exports_spark_families():
    snap = Snapshot(at=T, spark=spark_views([structured_app(), dstream_app()]))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snap))
    cache = MetricsCache(registry)
    cache.refresh()
    f = {x.name: x for x in text_string_to_metric_families(cache.latest().decode())}
    assert one(f, "streamscope_spark_query_last_batch_id", app="etl", query="ingest") == 8
    assert one(f, "streamscope_spark_dstream_active_batches", app="legacy") == 1


def test_real_kafka_source_progress_report():
    """A progress report captured from a live pyspark run with a Kafka source."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "kafka_source_progress.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    raw = json.loads(path.read_text())
    tracker = QueryTracker()
    tracker.ingest_raw([{"event": "progress", "wall": T, "app_id": "local-7",
                         "app_name": "clickstream", "payload": raw}], received_at=T)
    q = merge_tracked(None, tracker.get(raw["id"]), max_batches=5)
    snap = SparkAppSnapshot(app=make_app("local-7", "clickstream", via="progress-feed"),
                            collected_at=T, queries=(q,))
    _, f = scrape([snap])
    lq = {"app": "clickstream", "query": "clickstream_stats"}
    assert one(f, "streamscope_spark_query_last_batch_id", **lq) == 1
    assert one(f, "streamscope_spark_query_batch_duration_seconds", **lq) == 13.812
    assert one(f, "streamscope_spark_query_batch_input_rows", **lq) == 1996
    assert one(f, "streamscope_spark_query_input_rows_per_second", **lq) == 41.3
    assert one(f, "streamscope_spark_query_trigger_phase_duration_seconds", phase="addBatch",
               **lq) == 12.132
    assert one(f, "streamscope_spark_query_state_memory_bytes", **lq) == 55408
    behind = {dict(k)["stat"]: v for k, v in
              samples(f, "streamscope_spark_query_offsets_behind_latest", **lq).items()}
    assert behind == {"min": 562.0, "avg": 600.8, "max": 638.0}


def test_alerts_see_the_labels_and_queries_the_exporter_exports():
    """The read model every reader uses (`collectors.spark.views`): the queries alerts see are the
    exported ones, and their values are the exported ones."""
    old = make_query("ingest", "q-old", state=QueryState.FAILED, exception="boom",
                     updated_at=T - 500, batches=(sql_batch(1, T - 900),))
    apps = [structured_app("local-1", "etl", completed=True),
            structured_app("local-2", "etl"),
            structured_app("local-3", "etl"),
            structured_app("local-4", "solo", queries=(old, make_query("ingest", "q-new")))]
    views = spark_views(apps)
    assert [a.label for a in views] == ["etl (local-1)", "etl (local-2)", "etl (local-3)", "solo"]
    _, f = scrape(apps)
    exported = {(dict(k)["app"], dict(k)["query"])
                for k in samples(f, "streamscope_spark_query_info")}
    assert {(a.label, q.label) for a in views for q in a.current_queries} == exported
    # the active "ingest" of solo is the one both see: the old failed run does not alert
    failed = {(a.label, q.label) for a in views for q in a.current_queries if q.failed}
    assert failed == {(label, "broken") for label in ("etl (local-1)", "etl (local-2)",
                                                      "etl (local-3)")}
    ingest = views[1].current_queries[1]
    assert ingest.label == "ingest" and ingest.trigger_interval_seconds == 2.0
    assert [b.batch_id for b in ingest.finished_batches] == [7, 8]  # RUNNING left out
