"""Spark parsers on real Spark 4.3.0 captures (tests/fixtures/spark).

Values asserted here were read from the fixture files. Variants (failed jobs, Kafka offsets,
malformed bodies) are built by editing real responses, so their shape stays Spark's.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from tests.spark_fixtures import spark_fixtures

from collectors.spark.lag import query_as_consumer_group, query_kafka_lag, query_positions
from collectors.spark.models import QueryState, StreamingQuery
from collectors.spark.merge import apply_gauges, apply_ui_rows, estimate_trigger_interval_ms, merge_batches
from collectors.spark.parse.common import SparkParseError, decode_json, parse_spark_time
from collectors.spark.parse.dstream import (
    is_not_dstream_response,
    parse_streaming_batches,
    parse_streaming_receivers,
    parse_streaming_statistics,
)
from collectors.spark.parse.master import parse_master_index_html, parse_master_json
from collectors.spark.parse.metrics import (
    parse_metrics_json,
    parse_prometheus_text,
    query_gauges_from_prometheus,
)
from collectors.spark.parse.progress import (
    parse_progress,
    parse_progress_event,
    parse_progress_lines,
    parse_recent_progress,
)
from collectors.spark.parse.rest import (
    parse_application,
    parse_applications,
    parse_executors,
    parse_jobs,
    parse_stages,
    parse_version,
)
from collectors.spark.parse.sql import parse_batch_description, parse_sql
from collectors.spark.parse.ui import parse_streaming_ui_html
from collectors.spark.progress import QueryTracker, merge_tracked


FIX = spark_fixtures()

SS_APP = "local-1795607342131"
SS_QUERY_ID = "a419f25d-579a-4032-a9c5-f48531d4a0cb"
SS_RUN_ID = "815c0dd3-c990-4182-a739-31c67cf34e8e"
T = 1_800_000_000.0  # a fetch time


def text(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def load(name: str):
    return decode_json(text(name), name)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def test_parse_spark_time_formats():
    assert parse_spark_time("2026-11-25T11:49:01.300GMT") == pytest.approx(1795607341.3)
    assert parse_spark_time("2026-11-25T11:51:56.000Z") == pytest.approx(1795607516.0)
    assert parse_spark_time(1795607341300) == pytest.approx(1795607341.3)
    assert parse_spark_time("2026-11-25T12:49:01.300+01:00") == pytest.approx(1795607341.3)
    # Spark's "no time" values
    assert parse_spark_time(-1) is None
    assert parse_spark_time("1969-12-31T23:59:59.999GMT") is None
    assert parse_spark_time(None) is None
    with pytest.raises(SparkParseError, match="src: when: unrecognised timestamp"):
        parse_spark_time("yesterday", "src", "when")


def test_decode_json_malformed_has_context():
    with pytest.raises(SparkParseError) as e:
        decode_json('[ {"id" : "x", ', "http://h:4040/api/v1/applications")
    assert e.value.source == "http://h:4040/api/v1/applications"
    assert "invalid JSON at line 1" in str(e.value)


# --------------------------------------------------------------------------------------------
# applications / version
# --------------------------------------------------------------------------------------------


def test_applications_driver_ui():
    (app,) = parse_applications(load("ss_applications.json"), source="ss", fetched_at=T,
                                ui_url="http://127.0.0.1:4040")
    assert app.id == SS_APP
    assert app.name == "fixture-structured"
    assert app.spark_version == "4.3.0"
    assert app.completed is False
    assert app.start_time == pytest.approx(1795607341.3)
    assert app.end_time is None
    assert app.user == "root"
    assert app.attempt is None
    assert app.ui_url == "http://127.0.0.1:4040"
    assert app.fetched_at == T
    # the single-app endpoint has the same shape
    assert parse_application(load("ss_application.json"), source="one", fetched_at=T).id == SS_APP
    (ds,) = parse_applications(load("ds_applications.json"), source="ds", fetched_at=T)
    assert (ds.id, ds.name) == ("local-1795607432174", "fixture-dstream")


def test_applications_history_server():
    apps = parse_applications(load("shs/applications.json"), source="shs", fetched_at=T,
                              via="history")
    assert [a.id for a in apps] == ["app-20261125115234-0000", "local-1795607611605"]
    ss = apps[0]
    assert ss.completed is True
    assert ss.start_time == pytest.approx(1795607553.28)
    assert ss.end_time == pytest.approx(1795607664.001)
    assert ss.last_updated == pytest.approx(1795607663.998)
    assert ss.discovered_via == "history"
    assert parse_applications(load("shs/applications_running.json"), source="shs",
                              fetched_at=T) == ()


def test_application_with_minimal_attempt():
    # History Server listing of a running app: no epochs, no version
    data = load("standalone/rproxy/shs_running_list.json")
    app = parse_application(data, source="shs", fetched_at=T)
    assert app.id == "app-20261125115516-0000"
    assert app.completed is False and app.spark_version is None and app.start_time is None
    with pytest.raises(SparkParseError, match="expected a JSON list of applications"):
        parse_applications(data, source="shs", fetched_at=T)


def test_applications_malformed():
    data = load("ss_applications.json")
    bad = copy.deepcopy(data)
    del bad[0]["id"]
    with pytest.raises(SparkParseError, match=r"ss: applications\[0\]: missing 'id'"):
        parse_applications(bad, source="ss", fetched_at=T)
    bad = copy.deepcopy(data)
    bad[0]["attempts"][0]["completed"] = "no"
    with pytest.raises(SparkParseError, match="completed: expected true/false"):
        parse_applications(bad, source="ss", fetched_at=T)
    # Spark's 404 page is not JSON
    with pytest.raises(SparkParseError, match="invalid JSON"):
        decode_json(text("ss_api_root.txt"), "/api/v1")


def test_version():
    assert parse_version(load("ss_version.json"), source="v") == "4.3.0"
    with pytest.raises(SparkParseError, match="missing 'spark'"):
        parse_version({"version": "4"}, source="v")


# --------------------------------------------------------------------------------------------
# jobs / stages / executors
# --------------------------------------------------------------------------------------------


def test_jobs_counts():
    jobs = parse_jobs(load("ss_jobs.json"), source="jobs", fetched_at=T)
    assert (jobs.active, jobs.failed, jobs.succeeded) == (0, 0, 19)
    assert jobs.failed_jobs == ()
    ds = parse_jobs(load("ds_jobs.json"), source="jobs", fetched_at=T)
    assert (ds.active, ds.failed, ds.succeeded) == (1, 0, 20)
    shs = parse_jobs(load("shs/ss_jobs.json"), source="jobs", fetched_at=T)
    assert shs.succeeded == 52


def test_jobs_failed_and_filtered():
    data = load("ss_jobs.json")
    data[0]["status"] = "FAILED"  # job 18
    data[0]["numFailedTasks"] = 3
    data[0]["numFailedStages"] = 1
    jobs = parse_jobs(data, source="jobs", fetched_at=T, filtered=True)
    assert jobs.failed == 1
    assert jobs.failed_job_ids == (18,)
    assert jobs.failed_job_names == ("start at NativeMethodAccessorImpl.java:0",)
    assert jobs.failed_jobs[0].description.startswith("windowed_counts\nid = ")
    assert jobs.failed_jobs[0].failed_tasks == 3
    assert jobs.succeeded is None  # filtered listing: unknown, not 0
    assert jobs.fetched_at == T


def test_jobs_malformed():
    with pytest.raises(SparkParseError, match="expected a JSON list of jobs, got dict"):
        parse_jobs({"jobs": []}, source="/jobs", fetched_at=T)
    data = load("ss_jobs.json")
    data[2]["jobId"] = "sixteen"
    with pytest.raises(SparkParseError, match=r"/jobs: jobs\[2\]\.jobId: expected an integer"):
        parse_jobs(data, source="/jobs", fetched_at=T)


def test_stages():
    ss = parse_stages(load("ss_stages.json"), source="st", fetched_at=T)
    assert ss.failed_stages == () and ss.failed_tasks == 0 and ss.active == 0
    ds = parse_stages(load("ds_stages.json"), source="st", fetched_at=T)
    assert ds.active == 1
    # a failed stage, as ?status=FAILED would list it
    stage = load("ss_stages.json")[0]
    stage.update(status="FAILED", numFailedTasks=4,
                 failureReason="Job aborted due to stage failure: Task 0 in stage 37.0 failed")
    failed = parse_stages([stage], source="st", fetched_at=T)
    assert [(s.stage_id, s.attempt_id) for s in failed.failed_stages] == [(37, 0)]
    assert failed.failed_tasks == 4
    assert failed.failed_stages[0].failure_reason.startswith("Job aborted")
    with pytest.raises(SparkParseError, match=r"stages\[0\]: missing 'stageId'"):
        parse_stages([{"status": "FAILED"}], source="st", fetched_at=T)


def test_executors():
    (drv,) = parse_executors(load("ss_allexecutors.json"), source="ex", fetched_at=T)
    assert drv.id == "driver" and drv.is_driver and drv.active
    assert drv.memory_used_bytes == 4284586
    assert drv.max_memory_bytes == 455501414
    assert drv.total_gc_time_ms == 439
    assert (drv.completed_tasks, drv.failed_tasks, drv.active_tasks) == (112, 0, 0)
    assert drv.total_cores == 2
    assert drv.peak_jvm_heap_bytes == 265835504
    assert drv.add_time == pytest.approx(parse_spark_time("2026-11-25T11:49:02.188GMT"))
    standalone = parse_executors(load("standalone/drv_executors.json"), source="ex", fetched_at=T)
    assert [(e.id, e.total_cores, e.total_gc_time_ms, e.completed_tasks) for e in standalone] == \
        [("driver", 0, 306, 0), ("0", 2, 708, 106)]
    with pytest.raises(SparkParseError, match=r"executors\[0\]: missing 'id'"):
        parse_executors([{"isActive": True}], source="ex", fetched_at=T)


# --------------------------------------------------------------------------------------------
# /sql: one execution per micro-batch
# --------------------------------------------------------------------------------------------


def test_batch_description():
    d = parse_batch_description(f"windowed_counts\nid = {SS_QUERY_ID}\nrunId = {SS_RUN_ID}\nbatch = 18")
    assert (d.name, d.query_id, d.run_id, d.batch_id) == ("windowed_counts", SS_QUERY_ID, SS_RUN_ID, 18)
    # unnamed query, CRLF, upper-case UUIDs, extra spaces
    d = parse_batch_description(f"\r\nid = {SS_QUERY_ID.upper()}\r\nrunId =  {SS_RUN_ID}\r\nbatch = 0\r\n")
    assert (d.name, d.query_id, d.batch_id) == (None, SS_QUERY_ID, 0)
    # names may contain spaces and dots
    d = parse_batch_description(f"orders.v2 to delta\nid = {SS_QUERY_ID}\nrunId = {SS_RUN_ID}\nbatch = 7")
    assert d.name == "orders.v2 to delta"
    assert parse_batch_description(f"q\nid = {SS_QUERY_ID}\nrunId = {SS_RUN_ID}\nbatch = init").batch_id is None
    for not_batch in ("start at NativeMethodAccessorImpl.java:0", None, 42,
                      "id = x\nrunId = y\nbatch = 1",
                      'Streaming job from <a href="/streaming/batch/?id=1795607458000">'):
        assert parse_batch_description(not_batch) is None


def test_sql_structured_app():
    (q,) = parse_sql(load("ss_sql.json"), source="sql", fetched_at=T)
    assert q.name == "windowed_counts"
    assert (q.id, q.run_id) == (SS_QUERY_ID, SS_RUN_ID)
    assert q.state == QueryState.UNKNOWN  # SQL alone cannot tell active from stopped
    assert q.last_batch_id == 18
    assert [b.batch_id for b in q.batches] == list(range(19))
    assert all(b.origin == "sql" and b.status == "COMPLETED" and b.received_at == T for b in q.batches)
    b18 = q.batches[-1]
    assert b18.timestamp == pytest.approx(parse_spark_time("2026-11-25T11:49:42.067GMT"))
    assert b18.duration_ms == 342
    # batch 0 = executions 1 (11:49:06.511, 1851 ms) and 2 (11:49:06.536, 1824 ms)
    assert q.batches[0].duration_ms == 1851
    assert q.updated_at == T


def test_sql_history_server_and_limits():
    (q,) = parse_sql(load("shs/ss_sql.json"), source="sql", fetched_at=T, max_batches=100)
    assert q.id == "063c66ea-2235-4c60-944e-257923e419a7"
    assert [b.batch_id for b in q.batches] == list(range(50))
    assert q.batches[0].duration_ms == 4053
    (q10,) = parse_sql(load("shs/ss_sql.json"), source="sql", fetched_at=T, max_batches=10)
    assert [b.batch_id for b in q10.batches] == list(range(40, 50))
    (qp,) = parse_sql(load("standalone/rproxy/proxy_sql.json"), source="sql", fetched_at=T)
    assert qp.last_batch_id == 21 and qp.run_id == "c970b985-abad-44f2-a7a9-2b9dfea939e0"
    assert parse_sql(load("ds_sql.json"), source="sql", fetched_at=T) == ()


def test_sql_failed_batch():
    data = load("ss_sql.json")
    data[-1]["status"] = "FAILED"
    data[-1]["errorMessage"] = "org.apache.spark.SparkException: Job aborted"
    (q,) = parse_sql(data, source="sql", fetched_at=T)
    assert q.state == QueryState.FAILED
    assert q.exception == "org.apache.spark.SparkException: Job aborted"
    assert q.batches[-1].status == "FAILED"


def test_sql_interrupted_batch_means_stopped():
    # What pyspark 4.2 showed live after query.stop(): the running batch's execution FAILED with
    # an InterruptedException; that is a stop, not a failure.
    data = load("ss_sql.json")
    for ex in data[-2:]:  # both executions of batch 18
        ex["status"] = "FAILED"
        ex["errorMessage"] = ("java.lang.InterruptedException\n\tat java.base/java.util.concurrent."
                              "locks.AbstractQueuedSynchronizer.tryAcquireSharedNanos(...)")
    (q,) = parse_sql(data, source="sql", fetched_at=T)
    assert (q.state, q.state_source, q.exception) == (QueryState.TERMINATED, "sql", None)
    assert q.batches[-1].status == "INTERRUPTED" and q.batches[-1].error is None
    assert q.batches[-2].status == "COMPLETED"


def test_sql_error_messages_are_clipped():
    data = load("ss_sql.json")
    data[-1]["status"] = "FAILED"
    data[-1]["errorMessage"] = "org.apache.spark.SparkException: boom\n" + "\tat x.y(z)\n" * 2000
    (q,) = parse_sql(data, source="sql", fetched_at=T)
    assert q.exception.startswith("org.apache.spark.SparkException: boom")
    assert len(q.exception) < 4100 and q.exception.endswith("[clipped]")


def test_sql_malformed():
    with pytest.raises(SparkParseError, match="expected a JSON list of SQL executions"):
        parse_sql({"executions": []}, source="/sql", fetched_at=T)
    data = load("ss_sql.json")
    data[3]["duration"] = "long"
    with pytest.raises(SparkParseError, match=r"/sql: sql\[3\]\.duration: expected an integer"):
        parse_sql(data, source="/sql", fetched_at=T)


# --------------------------------------------------------------------------------------------
# /metrics/json/ and /metrics/prometheus/
# --------------------------------------------------------------------------------------------


def test_metrics_json_streaming_gauges():
    m = parse_metrics_json(load("ss_metrics_json_trailing.json"), source="m", fetched_at=T)
    assert m.namespace == SS_APP
    (g,) = m.queries
    assert g.query == "windowed_counts"
    assert g.input_rate == 50.0
    assert g.processing_rate == pytest.approx(215.9827213822894)
    assert g.latency_ms == 463
    assert g.watermark == pytest.approx(1795607374.82)
    assert (g.state_rows_total, g.state_used_bytes) == (2, 2496)
    assert g.fetched_at == T
    assert (m.active_jobs, m.all_jobs) == (0, 19)
    assert (m.jobs_succeeded_total, m.jobs_failed_total) == (19, 0)
    assert (m.stages_completed_total, m.stages_failed_total) == (37, 0)
    assert (m.tasks_completed_total, m.tasks_failed_total) == (112, 0)
    assert m.listener_events_dropped_total == 0
    assert m.jvm_heap_bytes == 265835504


def test_metrics_json_other_apps():
    ds = parse_metrics_json(load("ds_metrics_json.json"), source="m", fetched_at=T)
    assert ds.namespace == "fixture_dstream"  # spark.metrics.namespace
    assert ds.queries == ()
    assert (ds.active_jobs, ds.running_stages, ds.waiting_stages) == (2, 2, 1)
    default = parse_metrics_json(load("default_metrics_json.txt"), source="m", fetched_at=T)
    assert default.namespace == "local-1795607828462"
    assert default.queries == ()  # metricsEnabled is off by default
    assert default.jobs_succeeded_total == 9


def test_metrics_json_malformed():
    # The History Server answers /metrics/json/ with an HTML page
    with pytest.raises(SparkParseError, match="invalid JSON"):
        decode_json(text("shs/metrics_json.txt"), "shs/metrics/json/")
    with pytest.raises(SparkParseError, match="not a metrics servlet response"):
        parse_metrics_json({"version": "4.0.0"}, source="m", fetched_at=T)
    with pytest.raises(SparkParseError, match="expected a JSON object for metrics.gauges"):
        parse_metrics_json({"gauges": [], "counters": {}}, source="m", fetched_at=T)


def test_metrics_json_dotted_query_name():
    data = load("ss_metrics_json_trailing.json")
    g = data["gauges"]
    for k in [k for k in g if ".spark.streaming.windowed_counts." in k]:
        g[k.replace(".windowed_counts.", ".orders.v2.")] = g.pop(k)
    (q,) = parse_metrics_json(data, source="m", fetched_at=T).queries
    assert q.query == "orders.v2" and q.input_rate == 50.0


def test_prometheus_servlet():
    samples = parse_prometheus_text(text("ss_metrics_prometheus_trailing.txt"), source="p")
    assert len(samples) > 100
    by_name = {s.name: s.value for s in samples}
    assert by_name["metrics_local_1795607342131_driver_DAGScheduler_job_allJobs_Value"] == 19
    (g,) = query_gauges_from_prometheus(samples, fetched_at=T)
    assert g.query == "windowed_counts"
    assert (g.input_rate, g.latency_ms, g.state_rows_total) == (50.0, 463, 2)
    assert g.watermark == pytest.approx(1795607374.82)
    execs = parse_prometheus_text(text("ss_metrics_executors_prometheus_trailing.txt"), source="p")
    mem = [s for s in execs if s.name == "metrics_executor_memoryUsed_bytes"][0]
    assert dict(mem.labels) == {"application_id": SS_APP, "application_name": "fixture-structured",
                                "executor_id": "driver"}
    assert mem.value == 4284586
    # default: no PrometheusServlet -> Spark's 404 HTML page
    with pytest.raises(SparkParseError, match="line 1: not a Prometheus sample"):
        parse_prometheus_text(text("default_metrics_prometheus.txt"), source="p")


# --------------------------------------------------------------------------------------------
# DStream
# --------------------------------------------------------------------------------------------


def test_dstream_statistics_batches_receivers():
    st = parse_streaming_statistics(load("ds_streaming_statistics.json"), source="s", fetched_at=T)
    assert st.batch_duration_ms == 2000
    assert (st.num_receivers, st.num_active_receivers, st.num_inactive_receivers) == (1, 1, 0)
    assert (st.total_completed_batches, st.active_batches) == (10, 1)
    assert (st.processed_records, st.received_records) == (838, 936)
    assert st.avg_input_rate == pytest.approx(42.54545454545455)
    assert (st.avg_scheduling_delay_ms, st.avg_processing_time_ms, st.avg_total_delay_ms) == \
        (372, 1593, 2003)
    assert st.start_time == pytest.approx(parse_spark_time("2026-11-25T11:50:38.582GMT"))
    batches = parse_streaming_batches(load("ds_streaming_batches.json"), source="b")
    assert len(batches) == 11
    assert batches[0].batch_id == 1795607460000 and batches[0].status == "PROCESSING"
    assert batches[0].processing_time_ms is None
    done = batches[1]
    assert (done.status, done.input_size, done.scheduling_delay_ms, done.processing_time_ms,
            done.total_delay_ms) == ("COMPLETED", 98, 2, 796, 798)
    receivers = parse_streaming_receivers(load("ds_streaming_receivers.json"), source="r")
    assert [(r.stream_id, r.name, r.active) for r in receivers] == \
        [(0, "SocketReceiver-0", True), (1, "Queue stream [1]", None)]
    assert receivers[0].avg_event_rate == pytest.approx(42.54545454545455)
    with pytest.raises(SparkParseError, match="missing 'batchDuration'"):
        parse_streaming_statistics({"numReceivers": 1}, source="s", fetched_at=T)


def test_streaming_404_means_not_a_dstream_app():
    # what Spark answers for a Structured Streaming app (and on the History Server)
    assert text("ss_streaming_statistics.txt").startswith("no streaming listener attached")
    assert is_not_dstream_response(404, text("ss_streaming_statistics.txt"))
    assert is_not_dstream_response(404, text("shs/ss_streaming_statistics.txt"))
    assert not is_not_dstream_response(200, "{}")
    assert not is_not_dstream_response(500, "oops")


# --------------------------------------------------------------------------------------------
# /StreamingQuery/ UI page
# --------------------------------------------------------------------------------------------


def test_streaming_ui_page():
    (row,) = parse_streaming_ui_html(text("ss_ui_StreamingQuery.html"), source="ui")
    assert (row.name, row.status, row.query_id, row.run_id) == \
        ("windowed_counts", "RUNNING", SS_QUERY_ID, SS_RUN_ID)
    assert row.active and row.latest_batch == 18
    assert (row.avg_input_rate, row.avg_process_rate) == (47.63, 163.97)
    (done,) = parse_streaming_ui_html(text("shs/ss_ui_StreamingQuery.html"), source="ui")
    assert (done.status, done.active, done.latest_batch, done.error) == ("FINISHED", False, 49, None)
    with pytest.raises(SparkParseError, match="not the Structured Streaming page"):
        parse_streaming_ui_html(text("ss_api_root.txt"), source="ui")


def test_streaming_ui_failed_query_error_cell():
    # the error cell as Spark 4.2 renders it: headline, "+details" toggle, full trace in <pre>
    cell = ('<td>py4j.Py4JException: An exception was raised by the Python Proxy.<span '
            'data-toggle-details=".stacktrace-details" class="expand-details float-end">\n'
            '        +details\n      </span><div class="stacktrace-details collapsed">\n'
            '          <pre>py4j.Py4JException: An exception was raised by the Python Proxy.\n'
            '  File &quot;clientserver.py&quot;, line 644</pre></div></td>')
    html = text("shs/ss_ui_StreamingQuery.html").replace("<td>FINISHED</td>", "<td>FAILED</td>")
    html = html.replace("<td>-</td>", cell)
    (row,) = parse_streaming_ui_html(html, source="ui")
    assert row.status == "FAILED"
    assert row.error == "py4j.Py4JException: An exception was raised by the Python Proxy."
    (q,) = apply_ui_rows([], [row], fetched_at=T)
    assert (q.state, q.exception, q.last_batch_id) == (QueryState.FAILED, row.error, 49)


# --------------------------------------------------------------------------------------------
# progress JSON
# --------------------------------------------------------------------------------------------


def test_progress_last_final():
    qid, name, b = parse_progress(load("lastProgress_final.json"), source="p", received_at=T)
    assert (qid, name, b.batch_id, b.run_id) == (SS_QUERY_ID, "windowed_counts", 85, SS_RUN_ID)
    assert b.origin == "listener" and b.received_at == T
    assert b.timestamp == pytest.approx(1795607516.0)  # 2026-11-25T11:51:56.000Z
    assert b.duration_ms == 431
    d = b.durations
    assert (d.add_batch_ms, d.get_batch_ms, d.latest_offset_ms, d.query_planning_ms,
            d.wal_commit_ms, d.commit_offsets_ms, d.trigger_execution_ms) == (311, 0, 0, 42, 34, 38, 430)
    assert (b.num_input_rows, b.input_rows_per_second, b.processed_rows_per_second) == (100, 50.0, 232.0)
    assert b.watermark == pytest.approx(1795607508.82)  # 11:51:48.820Z
    assert b.event_time_max == pytest.approx(1795607515.82)
    assert b.event_time_delay_seconds == pytest.approx(0.18)
    assert b.watermark_delay_seconds == pytest.approx(7.18)
    assert (b.state_rows_total, b.state_memory_bytes, b.rows_dropped_by_watermark) == (2, 2528, 0)
    (src,) = b.sources
    assert src.description.startswith("RateStreamV2[rowsPerSecond=50")
    assert (src.start_offset, src.end_offset, src.latest_offset) == ("168", "170", "170")
    assert src.end_offsets == () and not src.is_kafka
    assert (b.sink_description, b.sink_output_rows) == ("MemorySink", 0)


def test_progress_first_batch_has_no_watermark():
    events = parse_progress_lines(text("listener_events.jsonl"), source="le", received_at=T)
    first = events[1].batch
    assert first.batch_id == 0 and first.watermark is None  # "1970-01-01T00:00:00.000Z"
    assert first.event_time_max is None and first.event_time_delay_seconds is None


def test_listener_events():
    events = parse_progress_lines(text("listener_events.jsonl"), source="le", received_at=T)
    kinds = [e.kind for e in events]
    assert len(events) == 88
    assert kinds[0] == "started" and kinds[-1] == "terminated"
    assert kinds.count("progress") == 86
    assert events[0].received_at == pytest.approx(1795607345.7910855)  # the envelope's "wall"
    assert events[0].timestamp == pytest.approx(1795607345.78)
    assert events[-1].exception is None and events[-1].run_id == SS_RUN_ID
    assert [e.batch.batch_id for e in events if e.batch][-1] == 85
    recent = parse_recent_progress(load("recentProgress_final.json"), source="rp", received_at=T)
    assert [e.batch.batch_id for e in recent] == list(range(86))
    # lastProgress_samples lines carry query.status + lastProgress
    lines = [json.loads(line) for line in text("lastProgress_samples.jsonl").splitlines()]
    assert len(lines) == 34
    assert [parse_progress(x["lastProgress"], source="s", received_at=T)[2].batch_id
            for x in lines][:3] == [2, 4, 7]


def test_progress_event_shapes():
    payload = load("lastProgress_final.json")
    raw = parse_progress_event(payload, source="f", received_at=T)
    assert raw.kind == "progress" and raw.received_at == T and raw.app_id is None
    env = parse_progress_event({"event": "QueryProgressEvent", "wall": 5.0, "appId": SS_APP,
                                "app_name": "fixture-structured", "payload": payload},
                               source="f", received_at=T)
    assert (env.kind, env.received_at, env.app_id, env.app_name) == \
        ("progress", 5.0, SS_APP, "fixture-structured")
    term = parse_progress_event({"id": SS_QUERY_ID, "runId": SS_RUN_ID,
                                 "exception": "java.lang.ArithmeticException: / by zero",
                                 "errorClassOnException": None}, source="f", received_at=T)
    assert term.kind == "terminated" and term.exception.startswith("java.lang.Arithmetic")


def test_progress_malformed_has_context():
    p = load("lastProgress_final.json")
    bad = copy.deepcopy(p)
    del bad["batchId"]
    with pytest.raises(SparkParseError, match="missing 'batchId'"):
        parse_progress(bad, source="feed[3]", received_at=T)
    bad = copy.deepcopy(p)
    bad["durationMs"] = [1, 2]
    with pytest.raises(SparkParseError, match=r"feed\[3\]: expected a JSON object for "
                                              r"progress\[windowed_counts batch 85\]\.durationMs"):
        parse_progress(bad, source="feed[3]", received_at=T)
    with pytest.raises(SparkParseError, match="unknown event type 'exploded'"):
        parse_progress_event({"event": "exploded", "payload": p}, source="f", received_at=T)
    with pytest.raises(SparkParseError, match=r"le:2: invalid JSON"):
        parse_progress_lines(text("listener_events.jsonl").splitlines()[0] + "\n{oops\n",
                             source="le", received_at=T)


def kafka_progress(end=(100, 250), latest=(120, 250), batch_id=86):
    """The real final progress with its rate source replaced by a Kafka-shaped one."""
    p = load("lastProgress_final.json")
    p["batchId"] = batch_id
    p["sources"] = [{
        "description": "KafkaV2[Subscribe[events]]",
        "startOffset": {"events": {"0": 90, "1": 240}},
        "endOffset": {"events": {"0": end[0], "1": end[1]}},
        "latestOffset": {"events": {"0": latest[0], "1": latest[1]}},
        "numInputRows": 20, "inputRowsPerSecond": 10.0, "processedRowsPerSecond": 46.4,
        "metrics": {"avgOffsetsBehindLatest": "10.0", "maxOffsetsBehindLatest": "20",
                    "minOffsetsBehindLatest": "0"},
    }]
    return p


def test_progress_kafka_source_offsets():
    _, _, b = parse_progress(kafka_progress(), source="k", received_at=T)
    (src,) = b.sources
    assert src.is_kafka
    assert [(o.topic, o.partition, o.offset) for o in src.end_offsets] == \
        [("events", 0, 100), ("events", 1, 250)]
    assert [o.offset for o in src.latest_offsets] == [120, 250]
    assert json.loads(src.end_offset) == {"events": {"0": 100, "1": 250}}
    assert (src.min_offsets_behind_latest, src.avg_offsets_behind_latest,
            src.max_offsets_behind_latest) == (0.0, 10.0, 20.0)
    # offsets as a JSON string (how some serialisations carry them) parse the same
    p = kafka_progress()
    p["sources"][0]["endOffset"] = json.dumps(p["sources"][0]["endOffset"])
    _, _, b2 = parse_progress(p, source="k", received_at=T)
    assert b2.sources[0].end_offsets == src.end_offsets


# --------------------------------------------------------------------------------------------
# Kafka lag of a query
# --------------------------------------------------------------------------------------------


def _query_with(*progresses) -> StreamingQuery:
    tracker = QueryTracker(max_batches=50)
    tracker.ingest_raw(progresses, received_at=T)
    return merge_tracked(None, tracker.get(SS_QUERY_ID), max_batches=50)


def test_real_kafka_source_progress():
    """A Kafka source's progress from a live pyspark 4.2 run (captured in tests/fixtures)."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "kafka_source_progress.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    qid, name, b = parse_progress(json.loads(path.read_text()), source=path.name, received_at=T)
    assert (name, b.batch_id, b.num_input_rows) == ("clickstream_stats", 1, 1996)
    (src,) = b.sources
    assert src.is_kafka and src.description == "KafkaV2[Subscribe[clickstream]]"
    assert [(o.topic, o.partition, o.offset) for o in src.end_offsets][:2] == \
        [("clickstream", 0, 632), ("clickstream", 1, 679)]
    assert len(src.start_offsets) == len(src.latest_offsets) == 6
    # Spark reports these as strings
    assert (src.min_offsets_behind_latest, src.avg_offsets_behind_latest,
            src.max_offsets_behind_latest) == (562.0, 600.8, 638.0)
    # lag against the offsets the source saw as latest reproduces Spark's own numbers
    tracker = QueryTracker()
    tracker.ingest_raw([json.loads(path.read_text())], received_at=T)
    q = merge_tracked(None, tracker.get(qid), max_batches=5)
    latest = {(o.topic, o.partition): o.offset for o in src.latest_offsets}
    lags = [x.lag for x in query_kafka_lag(q, latest)]
    assert lags == [562, 611, 638, 576, 580, 638]
    assert (min(lags), round(sum(lags) / len(lags), 1), max(lags)) == (562, 600.8, 638)


def test_query_kafka_lag():
    q = _query_with(kafka_progress(end=(90, 240), batch_id=85), kafka_progress(end=(100, 250)))
    lag = query_kafka_lag(q, {("events", 0): 130, ("events", 1): 245, ("other", 0): 9})
    assert [(x.topic, x.partition, x.query_offset, x.end_offset, x.lag) for x in lag] == \
        [("events", 0, 100, 130, 30), ("events", 1, 250, 245, 0)]  # clamped >= 0
    assert all(x.as_of == T for x in lag)
    assert query_kafka_lag(q, {}) == ()
    pos = query_positions(q)
    assert [(p.offset, p.latest_offset, p.batch_id) for p in pos] == [(100, 120, 86), (250, 250, 86)]
    group = query_as_consumer_group(q)
    assert group.name == "spark-windowed_counts"  # as the listener names its offset commits
    assert [(o.topic, o.partition, o.offset) for o in group.offsets] == [("events", 0, 100), ("events", 1, 250)]
    assert group.offsets_fetched_at == T and group.members == ()
    # a rate-source query has no Kafka position
    rate = _query_with(load("lastProgress_final.json"))
    assert query_positions(rate) == () and query_as_consumer_group(rate) is None


# --------------------------------------------------------------------------------------------
# merging sources
# --------------------------------------------------------------------------------------------


def test_merge_sql_ui_gauges_listener():
    (q,) = parse_sql(load("ss_sql.json"), source="sql", fetched_at=T)
    rows = parse_streaming_ui_html(text("ss_ui_StreamingQuery.html"), source="ui")
    (q,) = apply_ui_rows([q], rows, fetched_at=T + 1)
    assert (q.state, q.state_source, q.ui_status) == (QueryState.ACTIVE, "ui", "RUNNING")
    gauges = parse_metrics_json(load("ss_metrics_json_trailing.json"), source="m", fetched_at=T + 2).queries
    (q,) = apply_gauges([q], gauges)
    assert q.gauges.input_rate == 50.0 and q.updated_at == T + 2
    events = parse_progress_lines(text("listener_events.jsonl"), source="le", received_at=T)
    tracker = QueryTracker(max_batches=50)
    tracker.ingest(events)
    merged = merge_tracked(q, tracker.get(SS_QUERY_ID), max_batches=50)
    assert merged.state == QueryState.TERMINATED and merged.state_source == "listener"
    assert merged.last_batch_id == 85
    assert len(merged.batches) == 50
    assert [b.batch_id for b in merged.batches] == list(range(36, 86))
    assert all(b.origin == "listener" for b in merged.batches)
    assert merged.last_progress.batch_id == 85
    assert merged.started_at == pytest.approx(1795607345.78)
    # listener records win over SQL ones for the same batch
    both = merge_batches(q.batches, [e.batch for e in events if e.batch], max_batches=200)
    assert len(both) == 86 and both[18].origin == "listener"


def test_gauges_alone_make_an_active_query():
    gauges = parse_metrics_json(load("ss_metrics_json_trailing.json"), source="m", fetched_at=T).queries
    (q,) = apply_gauges([], gauges)
    assert (q.id, q.name, q.state, q.state_source) == (None, "windowed_counts", QueryState.ACTIVE, "metrics")


def test_listener_failure_sets_failed():
    tracker = QueryTracker()
    tracker.ingest_raw([
        {"event": "started", "wall": T, "payload": {"id": SS_QUERY_ID, "runId": SS_RUN_ID,
                                                     "name": "windowed_counts",
                                                     "timestamp": "2026-11-25T11:49:05.780Z"}},
        {"event": "progress", "wall": T + 1, "payload": load("lastProgress_final.json")},
        {"event": "terminated", "wall": T + 2, "payload": {
            "id": SS_QUERY_ID, "runId": SS_RUN_ID,
            "exception": "org.apache.spark.SparkException: boom", "errorClassOnException": None}},
    ], received_at=0.0)
    q = merge_tracked(None, tracker.get(SS_QUERY_ID), max_batches=5)
    assert q.state == QueryState.FAILED
    assert q.exception == "org.apache.spark.SparkException: boom"
    assert q.updated_at == T + 2 and q.last_batch_id == 85


# --------------------------------------------------------------------------------------------
# standalone master
# --------------------------------------------------------------------------------------------


def test_master_json_and_index():
    m = parse_master_json(load("standalone/master_json.json"), source="m", fetched_at=T)
    assert (m.url, m.status, m.alive_workers) == ("spark://127.0.0.1:7077", "ALIVE", 1)
    (app,) = m.apps
    assert (app.id, app.name, app.state, app.active) == \
        ("app-20261125115234-0000", "fixture-structured-standalone", "RUNNING", True)
    assert app.start_time == pytest.approx(1795607554.375)
    links = parse_master_index_html(text("standalone/master_index.html"),
                                    base_url="http://127.0.0.1:8080", source="m/")
    assert links == {"app-20261125115234-0000": "http://192.0.2.2:4040"}
    # reverse proxy: relative links resolve against the master
    html = text("standalone/master_index.html").replace(
        'href="http://192.0.2.2:4040"', 'href="/proxy/app-20261125115234-0000/"')
    assert parse_master_index_html(html, base_url="http://m:8080", source="m/") == \
        {"app-20261125115234-0000": "http://m:8080/proxy/app-20261125115234-0000/"}
    rp = parse_master_json(load("standalone/rproxy/master_json.json"), source="m", fetched_at=T)
    assert [a.id for a in rp.apps] == ["app-20261125115516-0000"]
    with pytest.raises(SparkParseError, match="not a standalone master /json/ response"):
        parse_master_json(load("standalone/worker_json.json"), source="w", fetched_at=T)


def test_listener_envelope_contract():
    """What collectors.spark_listener publishes is what the collector parses."""
    spark_listener = pytest.importorskip("collectors.spark_listener")
    p = load("lastProgress_final.json")
    msg = json.loads(json.dumps(spark_listener.envelope(
        "progress", p, app_id=SS_APP, app_name="fixture-structured", wall=5.0)))
    ev = parse_progress_event(msg, source="topic", received_at=T)
    assert (ev.kind, ev.query_id, ev.app_id, ev.app_name, ev.received_at) == \
        ("progress", SS_QUERY_ID, SS_APP, "fixture-structured", 5.0)
    assert ev.batch.batch_id == 85 and ev.name == "windowed_counts"
    msg = json.loads(json.dumps(spark_listener.envelope(
        "terminated", {"id": SS_QUERY_ID, "runId": SS_RUN_ID, "exception": "boom",
                       "errorClassOnException": None}, app_id=SS_APP, wall=6.0)))
    ev = parse_progress_event(msg, source="topic", received_at=T)
    assert (ev.kind, ev.run_id, ev.exception, ev.received_at) == ("terminated", SS_RUN_ID, "boom", 6.0)


def test_trigger_interval_estimated_from_batch_times():
    # the fixture jobs ran with a 2 s ProcessingTime trigger
    events = parse_progress_lines(text("listener_events.jsonl"), source="le", received_at=T)
    listener = [e.batch for e in events if e.batch]
    assert estimate_trigger_interval_ms(listener) == 2000
    (q,) = parse_sql(load("ss_sql.json"), source="sql", fetched_at=T)
    assert estimate_trigger_interval_ms(q.batches) == 2000  # SQL submission times work too
    (shs,) = parse_sql(load("shs/ss_sql.json"), source="sql", fetched_at=T, max_batches=100)
    assert estimate_trigger_interval_ms(shs.batches) == 2000
    assert estimate_trigger_interval_ms(listener[:5]) is None  # too few
    # back-to-back batches of irregular length (default trigger): no interval
    from dataclasses import replace
    t, irregular = 1_000.0, []
    for i, dur in enumerate([0.31, 1.7, 0.45, 2.9, 0.8, 1.13, 0.52, 2.21]):
        irregular.append(replace(listener[i], timestamp=t))
        t += dur
    assert estimate_trigger_interval_ms(irregular) is None
    # seen live (pyspark 4.2, 1 s trigger on an overloaded box): every batch overran its
    # interval, so start times are not aligned -> no estimate rather than a wrong one
    starts_ms = [(1795610509612, 13241), (1795610524275, 4616), (1795610530033, 1843),
                 (1795610532479, 980), (1795610534267, 1418), (1795610536185, 2270)]
    overrun = [replace(listener[0], batch_id=i, origin="sql", timestamp=t / 1000, duration_ms=d)
               for i, (t, d) in enumerate(starts_ms)]
    assert estimate_trigger_interval_ms(overrun) is None
