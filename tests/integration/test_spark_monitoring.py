"""streamscope monitoring a real Kafka -> Spark demo pipeline, seen only through the Monitor.

One DemoPipeline runs for the whole module: its own Kafka broker, the demo producer and
consumer groups, the Spark demo (structured query ``clickstream_stats`` with a small
maxOffsetsPerTrigger and a 2 s trigger, plus the DStream job) and a Monitor whose cycles the
tests drive themselves (``monitor.run_cycle()``; no background loop, no web server), so every
wait is a bounded number of cycles. The tests never ask Spark directly: everything asserted
comes from ``Snapshot``s, the history and the collector health entries.

Order matters: the burst test runs before the crash tests, and the last test restarts the
structured job from its checkpoint.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from typing import Any, Callable, Iterator

import pytest

from collectors.models import GroupLag, Snapshot
from collectors.spark.models import QueryState, SparkAppSnapshot, StreamingQuery
from demo.jars import PrerequisiteMissing
from demo.pipeline import DemoPipeline, DemoSettings
from tests.conftest import missing_prerequisite

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

QUERY = "clickstream_stats"
GROUP = f"spark-{QUERY}"
STRUCTURED_APP = "streamscope-demo-structured"
DSTREAM_APP = "streamscope-demo-dstream"
MAX_OFFSETS = 600  # the query's maxOffsetsPerTrigger (a 3000 burst takes several batches)
TRIGGER = "2 seconds"
PARTITIONS = 6
RATE = 10.0  # producer base rate (+-30 %): well below what even a loaded box drains
PEAK_RATE = RATE * 1.3
CYCLE_LIMIT_SECONDS = 15.0


class SparkMonitoringPipeline(DemoPipeline):
    """DemoPipeline with a test-sized SparkDemo and a monitor driven by the test."""

    def start_spark(self) -> None:
        from demo.spark_pipeline import SparkDemo

        self.spark = SparkDemo(self.bootstrap, data_dir=self.settings.data_dir, trigger=TRIGGER,
                               max_offsets_per_trigger=MAX_OFFSETS,
                               input_partitions=self.settings.partitions, start_timeout=300)
        self._stack.append(self.spark.stop)  # stop even when start() fails half-way
        self.spark.start()

    def start_monitor(self) -> None:
        from monitor.app.root import Monitor

        self.monitor = Monitor(self.monitor_config()).start(serve=False, loop=False)
        self._stack.append(self.monitor.stop)

    def cycle(self) -> tuple[Snapshot, float]:
        started = time.monotonic()
        snapshot = self.monitor.run_cycle()
        return snapshot, time.monotonic() - started


def poll_cycles(pipeline: SparkMonitoringPipeline, what: str, check: Callable[[Snapshot], Any],
                timeout: float, pause: float = 0.5, cycle_limit: float | None = None) -> Any:
    """Run monitor cycles until ``check(snapshot)`` is truthy; fail after ``timeout`` s.
    With ``cycle_limit``, every cycle must also finish within that many seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        snapshot, took = pipeline.cycle()
        if cycle_limit is not None:
            assert took < cycle_limit, f"a monitor cycle took {took:.1f} s"
        last = snapshot
        value = check(snapshot)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last snapshot: "
                                 f"{describe(last)}")
        time.sleep(pause)


def describe(snapshot: Snapshot | None) -> str:
    if snapshot is None:
        return "none"
    apps = [(a.app.name, a.app.id, a.app.discovered_via, a.stale, a.app.completed,
             [(q.label, q.state.value, q.last_batch_id) for q in a.queries]) for a in (v.raw for v in snapshot.spark)]
    groups = [(g.group, g.kind, g.lag) for c in snapshot.clusters for g in c.lag.groups]
    health = [(h.name, h.up, h.error, h.failures_total) for h in snapshot.health if h.kind == "spark"]
    return f"apps={apps} groups={groups} spark health={health}"


def app_named(snapshot: Snapshot, name: str) -> SparkAppSnapshot | None:
    return next((v.raw for v in snapshot.spark if v.raw.app.name == name), None)


def structured_query(snapshot: Snapshot, app_id: str | None = None) -> StreamingQuery | None:
    for app in (v.raw for v in snapshot.spark):
        if app.app.name == STRUCTURED_APP and (app_id is None or app.app.id == app_id):
            return app.query(QUERY)
    return None


def query_group(snapshot: Snapshot) -> GroupLag | None:
    for group in snapshot.clusters[0].lag.groups:
        if group.group == GROUP:
            return group
    return None


@pytest.fixture(scope="module")
def pipeline(spark_kafka_jars, tmp_path_factory) -> Iterator[SparkMonitoringPipeline]:
    if importlib.util.find_spec("pyspark") is None:
        missing_prerequisite("pyspark is not installed (pip install pyspark==4.2.0)")
    settings = DemoSettings(web_port=0, data_dir=tmp_path_factory.mktemp("spark-monitoring"),
                            rate=RATE, slow_consumer_rate=RATE * 0.9, partitions=PARTITIONS, interval_seconds=2, spark=True)
    demo = SparkMonitoringPipeline(settings)
    started = time.monotonic()
    try:
        demo.start()
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start the demo pipeline: {error}")
    print(f"pipeline started in {time.monotonic() - started:.1f} s")
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def running(pipeline) -> dict:
    """Waits (bounded) until the monitor sees the query with >= 3 listener batches and its group."""
    def ready(snapshot: Snapshot):
        q = structured_query(snapshot)
        listener = [b for b in q.batches if b.origin == "listener"] if q else []
        return snapshot if len(listener) >= 3 and query_group(snapshot) is not None else None

    snapshot = poll_cycles(pipeline, "3 listener batches of the query and its group", ready, timeout=180)
    return {"snapshot": snapshot, "since": time.time()}


def test_collector_finds_structured_query_and_dstream_app(pipeline, running):
    snapshot = running["snapshot"]
    structured = app_named(snapshot, STRUCTURED_APP)
    assert structured is not None, describe(snapshot)
    assert structured.app.id == pipeline.spark.structured.app_id
    assert not structured.stale and not structured.app.completed
    assert structured.app.discovered_via == "ui"
    query = structured.query(QUERY)
    assert query is not None and query.state == QueryState.ACTIVE, describe(snapshot)
    assert query.id == pipeline.spark.structured.state["query_id"]
    assert query.run_id == pipeline.spark.structured.state["run_id"]

    dstream = app_named(snapshot, DSTREAM_APP)
    assert dstream is not None, describe(snapshot)
    assert dstream.app.id == pipeline.spark.dstream_job.app_id
    assert dstream.is_dstream and not dstream.stale
    assert dstream.dstream.batch_duration_ms == 2000

    health = {h.name: h for h in snapshot.health if h.kind == "spark"}
    assert health and all(h.up for h in health.values()), health


def test_consecutive_batches_with_durations_in_history(pipeline, running):
    app_id = pipeline.spark.structured.app_id
    since = time.time()

    def enough(_snapshot: Snapshot):
        rows = pipeline.monitor.history.spark.batches(app_id, QUERY, since - 60, time.time() + 60)
        listener = [r for r in rows if r["origin"] == "listener"]
        return rows if len(listener) >= 5 else None

    rows = poll_cycles(pipeline, "5 listener batches in history", enough, timeout=120)
    run_id = pipeline.spark.structured.state["run_id"]
    by_id: dict[int, dict] = {}
    for row in rows:
        assert row["batches"] == 1, row  # not bucketed: one row per batch
        if row["run_id"] in (run_id, None):
            by_id.setdefault(row["batch_id"], row)
    ids = sorted(by_id)
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"gaps in batch ids: {ids}"
    ordered = [r["batch_id"] for r in rows]
    assert ordered == sorted(ordered), f"history not in batch order: {ordered}"
    for batch_id in ids:
        duration = by_id[batch_id]["duration_seconds"]
        assert duration is not None and 0 < duration < 120, by_id[batch_id]
    # The snapshot holds the same batches, with the same durations.
    query = structured_query(pipeline.monitor.store.latest())
    snap_ids = [b.batch_id for b in query.batches if b.origin == "listener"]
    assert snap_ids == sorted(set(snap_ids)), snap_ids
    for batch in query.batches:
        if batch.origin == "listener" and batch.batch_id in by_id:
            assert by_id[batch.batch_id]["duration_seconds"] == pytest.approx(batch.duration_ms / 1000)


def comparable_lag(snapshot: Snapshot) -> dict | None:
    """The query group's lag and the batch whose endOffset it is based on, when both known."""
    group, query = query_group(snapshot), structured_query(snapshot)
    if group is None or query is None or not group.partitions:
        return None
    committed = {(p.topic, p.partition): p.committed_offset for p in group.partitions}
    for batch in reversed(query.batches):
        if batch.origin != "listener":
            continue
        for source in batch.sources:
            ends = {(p.topic, p.partition): p.offset for p in source.end_offsets}
            if ends == committed and source.avg_offsets_behind_latest is not None:
                return {"group": group, "batch": batch, "source": source, "ends": ends}
    return None


def test_query_lag_matches_spark_offsets_behind_latest(pipeline, running):
    found = poll_cycles(pipeline, f"group {GROUP} at the endOffset of a reported batch",
                        comparable_lag, timeout=60)
    group, batch, source, ends = found["group"], found["batch"], found["source"], found["ends"]
    assert group.kind in ("consumer", "spark-query")
    assert len(group.partitions) == PARTITIONS
    assert group.topics == ("clickstream",)
    spark_total = source.avg_offsets_behind_latest * len(ends)  # Spark: latestOffset - endOffset
    ours = {(p.topic, p.partition): p for p in group.partitions}
    ours_total = sum(p.lag for p in ours.values())  # streamscope: topic end now - endOffset
    assert ours_total == group.lag
    for key, p in ours.items():
        assert p.lag == p.end_offset - ends[key] >= 0
    latest = {(p.topic, p.partition): p.offset for p in source.latest_offsets}
    if latest:  # per partition: the topic only grew since Spark looked
        assert sum(latest[k] - ends[k] for k in ends) == pytest.approx(spark_total, abs=len(ends))
        for key, p in ours.items():
            assert p.end_offset >= latest[key], (key, p, latest[key])
    produced_since = ours_total - spark_total
    elapsed = group.fetched_at - (batch.timestamp or batch.received_at)
    print(f"batch {batch.batch_id}: spark behind={spark_total:.0f}, streamscope lag={ours_total}, "
          f"difference={produced_since:.0f} over {elapsed:.1f} s")
    assert produced_since >= -len(ends), (ours_total, spark_total)  # rounding of the average
    # The difference is what was produced since the batch's trigger: at most the producer's
    # peak rate over that time, and normally within one batch's worth.
    assert produced_since <= max(MAX_OFFSETS, PEAK_RATE * elapsed * 1.2 + 20), (
        ours_total, spark_total, elapsed)


def test_burst_raises_query_lag_then_it_drains(pipeline, running):
    base = poll_cycles(pipeline, f"group {GROUP}", query_group, timeout=30)
    baseline = base.lag
    pipeline.producer.burst(3000)
    threshold = baseline + 1500
    peak = poll_cycles(pipeline, f"{GROUP} lag above {threshold} after a burst of 3000",
                       lambda s: (g := query_group(s)) is not None and g.lag > threshold and g,
                       timeout=60)
    print(f"baseline lag {baseline}, after burst {peak.lag}")
    peak_lag = [peak.lag]

    def draining(snapshot: Snapshot):
        group = query_group(snapshot)
        if group is None:
            return None
        peak_lag[0] = max(peak_lag[0], group.lag)
        return group if group.lag <= peak_lag[0] - 2 * MAX_OFFSETS else None

    drained = poll_cycles(pipeline, f"{GROUP} lag falling from its peak", draining, timeout=150)
    print(f"peak lag {peak_lag[0]}, later {drained.lag}")
    assert drained.lag < peak_lag[0]


def test_dstream_batches_collected(pipeline, running):
    def completed(snapshot: Snapshot):
        app = app_named(snapshot, DSTREAM_APP)
        if app is None or app.dstream is None:
            return None
        done = [b for b in app.dstream.batches if b.status == "COMPLETED"
                and b.scheduling_delay_ms is not None and b.processing_time_ms is not None]
        return app if len(done) >= 2 else None

    app = poll_cycles(pipeline, "completed DStream batches", completed, timeout=90)
    stats = app.dstream
    assert stats.total_completed_batches >= 2
    assert stats.avg_processing_time_ms is not None and stats.avg_scheduling_delay_ms is not None
    batch = stats.last_completed_batch
    assert batch.processing_time_ms >= 0 and batch.scheduling_delay_ms >= 0
    rows = pipeline.monitor.history.spark.dstream_batches(app.app.id, 0, time.time() + 60)
    assert rows, "no DStream batch in history"
    assert all(r["processing_time_seconds"] is not None for r in rows)
    assert all(r["scheduling_delay_seconds"] is not None for r in rows)


def structured_gone(snapshot: Snapshot, app_id: str) -> bool:
    """The killed app no longer counts as running: absent, stale or ended, query not active."""
    for app in (v.raw for v in snapshot.spark):
        if app.app.id != app_id:
            continue
        query = app.query(QUERY)
        if query is not None and query.state == QueryState.ACTIVE and not (app.stale or app.app.completed):
            return False
    return True


def target_health(snapshot: Snapshot, ui_url: str):
    port = ui_url.rsplit(":", 1)[1]
    return [h for h in snapshot.health if h.kind == "spark" and port in h.name]


def test_killed_structured_job_leaves_the_monitor(pipeline, running, caplog):
    spark = pipeline.spark
    app_id, ui_url = spark.structured.app_id, spark.ui_url
    spark.kill_structured()
    killed_at = time.monotonic()
    poll_cycles(pipeline, "the killed app to be gone/stale and its query not active",
                lambda s: structured_gone(s, app_id), timeout=60, cycle_limit=CYCLE_LIMIT_SECONDS)
    print(f"killed app left the monitor after {time.monotonic() - killed_at:.1f} s")
    # Once gone, the following cycles: bounded, app stays gone, the UI target is reported down
    # with an error, and nothing is logged at WARNING or above every cycle.
    caplog.clear()
    caplog.set_level(logging.WARNING)
    cycles = 4
    for _ in range(cycles):
        snapshot, took = pipeline.cycle()
        assert took < CYCLE_LIMIT_SECONDS, f"cycle took {took:.1f} s with the driver gone"
        assert structured_gone(snapshot, app_id), describe(snapshot)
        group = query_group(snapshot)
        if group is not None and group.kind == "spark-query":
            assert group.state != "Stable", group
        dstream = app_named(snapshot, DSTREAM_APP)
        assert dstream is not None and not dstream.stale  # the other app is unaffected
    entries = target_health(snapshot, ui_url)
    assert entries, describe(snapshot)
    for h in entries:
        assert not h.up and h.error, h
        assert h.stale(snapshot.at, 2 * pipeline.settings.interval_seconds) or \
            h.last_success_at < snapshot.at, h
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING
             and r.name.startswith(("collectors", "monitor"))]
    assert len(noisy) < cycles, [r.getMessage() for r in noisy]


def test_unreachable_ui_is_bounded_and_restart_recovers(pipeline, running):
    spark = pipeline.spark
    old = dict(spark.structured.state)
    old_url = spark.ui_url
    # The driver's port refuses connections: every cycle bounded, the target down, then stale
    # (no success for longer than the collection interval).
    max_age = pipeline.settings.interval_seconds
    snapshot = poll_cycles(pipeline, "the unreachable UI target reported down and stale", lambda s: (
        (entries := target_health(s, old_url)) and all(not h.up and h.error and h.stale(s.at, max_age)
                                                      for h in entries) and s),
        timeout=30, cycle_limit=CYCLE_LIMIT_SECONDS)
    structured = [v.raw for v in snapshot.spark if v.raw.app.id == old["app_id"]]
    assert all(a.app.discovered_via != "ui" or a.stale for a in structured), describe(snapshot)

    started = time.monotonic()
    spark.start_structured(timeout=240)
    print(f"structured job restarted in {time.monotonic() - started:.1f} s")
    new = spark.structured.state
    assert spark.ui_url == old_url, "restart moved the UI: the configured ui_url no longer fits"
    assert new["query_id"] == old["query_id"] and new["run_id"] != old["run_id"]

    def back(snapshot: Snapshot):
        app = next((v.raw for v in snapshot.spark if v.raw.app.id == new["app_id"]), None)
        query = app.query(QUERY) if app else None
        if app is None or app.stale or query is None or query.state != QueryState.ACTIVE:
            return None
        if query.run_id != new["run_id"] or not [b for b in query.batches if b.run_id == new["run_id"]]:
            return None
        return app

    app = poll_cycles(pipeline, "the restarted app with an active query and a batch", back, timeout=120)
    print(f"monitor saw the restarted query {time.monotonic() - started:.1f} s after restart began")
    query = app.query(QUERY)
    old_batches = [b.batch_id for b in query.batches if b.run_id == old["run_id"]]
    new_batches = [b.batch_id for b in query.batches if b.run_id == new["run_id"]]
    if old_batches:  # same checkpoint: numbering goes on
        assert min(new_batches) > max(old_batches)
    health = target_health(pipeline.monitor.store.latest(), old_url)
    assert health and all(h.up for h in health)
