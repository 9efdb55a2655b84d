"""monitor.web.views: hand-built snapshots and a real History on a tmp SQLite file."""
from __future__ import annotations

from dataclasses import replace

import pytest

from collectors.models import (ClusterState, KafkaClusterSnapshot, KafkaLagView, PartitionMetadata, Snapshot,
                               Status, Topic)
from collectors.spark import models as sm
from collectors.spark.views import source_topics, spark_views
from monitor.web.views import alerts as alerts_data
from monitor.web.views import common
from monitor.web.views import groups as groups_data
from monitor.web.views import overview as overview_data
from monitor.web.views import series as series_data
from monitor.web.views import spark as spark_data
from monitor.web.views import topics as topics_data
from monitor.web.views import topology as topology_data
from tests import dashboard_sample as sample
from monitor.storage import History

END = 1_790_000_000.0
INTERVAL = 10.0


@pytest.fixture
def history(tmp_path):
    h = History(tmp_path / "history.db", clock=lambda: END)
    yield h
    h.close()


@pytest.fixture
def monitor(history):
    return sample.build(history, spec=sample.default_spec(hostile=True), cycles=20,
                        interval=INTERVAL, end=END, spark=True)


def test_the_context_comes_from_the_flask_app(monitor):
    from flask import Flask

    from monitor.web.context import CONTEXT_KEY, current_context

    app = Flask("t")
    app.extensions[CONTEXT_KEY] = monitor
    with app.app_context():
        assert current_context() is monitor


def test_clusters_and_window(monitor):
    snap = monitor.latest()
    assert common.cluster_names(monitor) == ["demo"]
    assert common.resolve_cluster(monitor, "nope", snap) == "demo"
    assert common.resolve_cluster(monitor, "demo", snap) == "demo"
    assert common.window("6h", END) == (END - 21600, END)
    assert common.window("garbage", END) == (END - 3600, END)
    assert monitor.settings.interval_seconds == INTERVAL


def test_cluster_names_fall_back_to_history(history):
    m = sample.build(history, cycles=3, end=END)
    m.snapshots.publish(None)
    assert common.cluster_names(m) == ["demo"]
    assert common.resolve_cluster(m, None) == "demo"
    empty = sample.context(sample.SampleStore())
    assert common.cluster_names(empty) == [] and common.resolve_cluster(empty, None) is None


def test_group_rows_kafka_and_spark(monitor):
    raw = groups_data.group_rows(monitor.latest(), "demo")
    assert groups_data.group_rows(monitor.latest(), "demo") is raw  # memoised per snapshot
    rows = groups_data.display_rows(raw)
    assert all("_obj" not in r and "_key" not in r for r in rows)
    by_name = {r["group"]: r for r in rows}
    assert {r["kind"] for r in rows} == {groups_data.KIND_GROUP, groups_data.KIND_QUERY}
    slow = by_name["clickstream-enricher-slow"]
    assert slow["status"] == "WARN" and slow["_level"] == "warn"
    assert slow["_lag"] == sum(40 * 19 + 25 * p for p in range(6))
    assert slow["time_lag"].endswith("(interpolated)")
    assert slow["eta"] == "not catching up"
    assert by_name["clickstream-archiver"]["eta"] == "keeping pace"  # lag, consume = produce
    assert slow["consume"] == "45 msg/s" and slow["members"] == 1
    billing = by_name["orders-billing"]
    assert billing["_level"] == "err" and billing["state"].startswith("Empty for 10m")
    query = by_name["enrich"]
    assert query["kind"] == groups_data.KIND_QUERY and query["topics"] == "clickstream"
    assert query["_lag"] is not None and query["method"] == "vs topic end offsets"
    assert common.parse_row_id(query["id"]) == [groups_data.KIND_QUERY, "app-20261124-0001",
                                              "3f0c1d2e-0000-4000-8000-000000000001"]
    # the hostile name is data, untouched
    assert sample.HOSTILE_GROUP in by_name


def test_group_rows_stale_cluster(history):
    m = sample.build(history, cycles=3, end=END, stale=True)
    rows = groups_data.group_rows(m.latest(), "demo", include_spark=False)
    assert rows and all(r["_level"] == "stale" and r["status"].endswith("(stale)") for r in rows)


def test_partition_lag_rows(monitor):
    g = groups_data.find_group(monitor.latest(), "demo", "clickstream-enricher-slow")
    rows = groups_data.partition_lag_rows(g)
    assert [r["partition"] for r in rows] == list(range(6))
    assert rows[0]["time_lag"].endswith("(exact)") and rows[1]["time_lag"].endswith("(interpolated)")
    assert rows[5]["committed"] == f"{g.partitions[5].committed_offset:,}"
    assert groups_data.partition_lag_rows(None) == []
    assert groups_data.find_group(monitor.latest(), "demo", "missing") is None


def test_topic_and_partition_rows(monitor):
    snap = monitor.latest()
    topics = {r["topic"]: r for r in topics_data.topic_rows(snap, "demo")}
    assert topics["orders"]["urp"] == 1 and topics["clickstream"]["_level"] == "ok"
    # its under-replicated partition has 1 of the 2 in-sync replicas acks=all producers need
    assert topics["orders"]["under_min_isr"] == "1 (min ISR 2)" and topics["orders"]["_level"] == "err"
    assert topics["orders"]["retention"] == "delete · 1h" and topics["__consumer_offsets"]["retention"] == "compact"
    assert topics["orders"]["size"].endswith(" MB") and topics["orders"]["_size"] > 0
    assert topics["__consumer_offsets"]["internal"] is True
    parts = topics_data.partition_rows(snap, "demo", "orders")
    assert [p["partition"] for p in parts] == [0, 1, 2]
    p2 = parts[2]
    assert p2["urp"] == "yes" and p2["isr"] == "1" and p2["replicas"] == "1, 2, 3"
    assert p2["_retained"] == p2["_latest"] - p2["_earliest"]
    assert p2["rate"].endswith("msg/s")
    assert topics_data.partition_rows(snap, "demo", "nope") == []
    assert topics_data.top_topics(snap, "demo", 2) == ["clickstream", "enriched-clicks"]
    assert topics_data.top_topics(snap, "demo", 1, include=["orders"]) == ["clickstream", "orders"]
    assert "__consumer_offsets" not in topics_data.topic_names(snap, "demo")


def test_history_ranges(monitor):
    start, end = common.window("1h", END)
    series = series_data.group_series(monitor, "demo", "clickstream-enricher-slow", start, end)
    assert len(series) == 20 and series[-1]["at"] == END
    parts = series_data.partition_lag_series(monitor, "demo", "clickstream-enricher-slow", start, end, 50)
    assert len(parts) == 20 * 6
    rates = series_data.partition_rate_series(monitor, "demo", "clickstream", start, end)
    assert {r["partition"] for r in rates} == set(range(6))
    tp = series_data.topic_throughput(monitor, "demo", ["clickstream", "orders"], start, end)
    assert set(tp) == {"clickstream", "orders"} and len(tp["orders"]) == 20
    # incremental: only what is newer than `since`
    since = END - 2 * INTERVAL
    new = series_data.topic_throughput(monitor, "demo", ["orders"], start, end, since=since)
    assert [r["at"] for r in new["orders"]] == [END - INTERVAL, END]
    assert len(series_data.cluster_series(monitor, "demo", start, end)) == 20


def test_history_downsampling_respects_max_points(monitor):
    start, end = common.window("1h", END)
    assert len(series_data.group_series(monitor, "demo", "clickstream-enricher-slow", start, end, 5)) <= 5
    assert series_data.points_per_series(1000) == 30 and series_data.points_per_series(6) == 200
    assert series_data.points_per_series(0) == 200


def test_history_failure_is_an_empty_series(monitor, history):
    history.close()  # every read now raises HistoryError
    assert series_data.group_series(monitor, "demo", "g", 0, 1) == []
    assert series_data.cluster_series(replace(monitor, history=None), "demo", 0, 1) == []


def test_headline(monitor):
    h = overview_data.headline(monitor, monitor.latest(), "demo")
    assert h.produce_rate == pytest.approx(50 + 12 + 40)
    assert h.topics == 3  # internal topic left out
    assert h.groups == 4 and h.groups_by_level == {"ok": 2, "warn": 1, "err": 1}
    assert h.worst_time_lag[0] == "clickstream-enricher-slow"
    assert h.queries == 1 and h.alerts_firing is None


def test_topology(monitor):
    nodes, edges = topology_data.topology(monitor.latest(), "demo")
    by_id = {n.id: n for n in nodes}
    assert by_id["producers"].layer == 0
    assert by_id["t:clickstream"].layer == 1
    assert by_id["g:clickstream-enricher-slow"].layer == 2
    assert by_id["g:clickstream-enricher-slow"].level == "warn"
    assert by_id["g:orders-billing"].level == "err"
    q = next(n for n in nodes if n.kind == "query")
    assert q.layer == 2 and q.link == {"page": "/spark", "app": "app-20261124-0001"}
    assert by_id["t:enriched-clicks"].layer == 3  # the query's output topic
    pairs = {(e.source, e.target) for e in edges}
    assert ("t:clickstream", q.id) in pairs and (q.id, "t:enriched-clicks") in pairs
    assert ("producers", "t:clickstream") in pairs
    assert ("producers", "t:enriched-clicks") not in pairs  # written by the query
    assert "t:__consumer_offsets" not in by_id
    assert by_id["g:" + sample.HOSTILE_GROUP].link == {"page": "/groups", "group": sample.HOSTILE_GROUP}


@pytest.mark.parametrize("name", ["__consumer_offsets", "__transaction_state", "_schemas", "connect-offsets",
                                  "connect-configs", "connect-cluster-a-status", "_confluent-command",
                                  "streamscope-progress", "streamscope-anything"])
def test_internal_topic_names(name):
    assert topology_data.is_internal_topic(name)


@pytest.mark.parametrize("name", ["clickstream", "connect-orders", "schemas", "orders__v2", "my-streamscope-x"])
def test_user_topic_names(name):
    assert not topology_data.is_internal_topic(name)
    assert topology_data.is_internal_topic(name, extra={name})  # e.g. a progress topic with its own name


def test_topology_hides_internal_topics_and_their_readers_until_asked(history):
    spec = sample.ClusterSpec("demo", topics=[
        sample.TopicSpec("clickstream", 3, 50.0), sample.TopicSpec("spark-progress", 1, 2.0),
        sample.TopicSpec("_schemas", 1, 0.1), sample.TopicSpec("connect-offsets", 25, 1.0),
        sample.TopicSpec("__consumer_offsets", 50, 3.0, internal=True)],
        groups=[sample.GroupSpec("archiver", "clickstream", 50.0),
                sample.GroupSpec("connect-cluster", "connect-offsets", 1.0),
                sample.GroupSpec("progress-reader", "spark-progress", 2.0)])
    m = sample.build(None, spec=spec, cycles=2, end=END)
    snap = m.latest()
    nodes, edges = topology_data.topology(snap, "demo", extra_internal=frozenset({"spark-progress"}))
    assert {n.id for n in nodes} == {"producers", "t:clickstream", "g:archiver"}
    assert {(e.source, e.target) for e in edges} == {("producers", "t:clickstream"), ("t:clickstream", "g:archiver")}
    shown = {n.id for n in topology_data.topology(snap, "demo", show_internal=True,
                                         extra_internal=frozenset({"spark-progress"}))[0]}
    assert {"t:spark-progress", "t:_schemas", "t:connect-offsets", "t:__consumer_offsets",
            "g:connect-cluster", "g:progress-reader"} <= shown



def _listener_batch(batch_id: int, *, sink: str | None = None, sink_topics=(), sources=(), duration_ms=None):
    return sm.BatchProgress(batch_id=batch_id, run_id="r", origin="listener", received_at=END, timestamp=END,
                            duration_ms=duration_ms, sink_description=sink, sink_topics=tuple(sink_topics),
                            sources=tuple(sources))


def _query(*batches, trigger_ms=None, state=sm.QueryState.ACTIVE) -> sm.StreamingQuery:
    return sm.StreamingQuery(id="q-1", name="q1", run_id="r", state=state, exception=None,
                             last_batch_id=batches[-1].batch_id if batches else None, batches=tuple(batches),
                             updated_at=END, trigger_interval_ms=trigger_ms)


def _one_query(query: sm.StreamingQuery, clusters=()) -> spark_data.QueryView:
    app = sm.SparkAppSnapshot(app=sm.SparkApp("a1", "app", None, None, END - 60, None, "4.2.0", False, END),
                              collected_at=END, queries=(query,))
    return spark_data.spark_apps(Snapshot(at=END, spark=spark_views([app], clusters)))[0].queries[0]


def test_query_sink_from_the_listener():
    kafka = "org.apache.spark.sql.kafka010.KafkaSourceProvider$KafkaTable@6f"
    q = _one_query(_query(_listener_batch(1, sink=kafka, sink_topics=["clickstream-stats"])))
    assert q.sink_kind == "kafka" and q.output_topics == ["clickstream-stats"] and q.sink == "clickstream-stats (Kafka)"
    unnamed = _one_query(_query(_listener_batch(1, sink=kafka)))
    assert unnamed.output_topics == [] and unnamed.sink == "Kafka (topic not named)"
    console = _one_query(_query(_listener_batch(1, sink="org.apache.spark.sql.execution.streaming.ConsoleTable$@1e1b7389")))
    assert console.sink == "console"
    assert _one_query(_query()).sink == "unknown" and _one_query(_query()).sink_kind is None


def test_topology_folds_the_rest(history):
    spec = sample.ClusterSpec("demo", topics=[sample.TopicSpec(f"t{i}", 1, 1.0 + i) for i in range(20)],
                              groups=[sample.GroupSpec(f"g{i}", f"t{i % 20}", 1.0) for i in range(40)])
    m = sample.build(None, spec=spec, cycles=2, end=END)
    nodes, edges = topology_data.topology(m.latest(), "demo", max_topics=5, max_consumers=6)
    kinds = [n.kind for n in nodes]
    assert kinds.count("group") == 6 and kinds.count("topic") == 5
    more = {n.id: n for n in nodes if n.kind == "more"}
    assert more["more:consumers"].label == "+34 more consumers"
    assert more["more:topics"].label == "+15 more topics"
    assert topology_data.topology(None, None) == ([], [])


def test_health_rows_and_status_line(history):
    ok = sample.build(history, cycles=2, end=END)
    rows = overview_data.health_rows(ok, ok.latest(), END + 5)
    assert rows[0]["up"] == "up" and rows[0]["stale"] == "no" and rows[0]["age"] == "5s ago"
    line = overview_data.status_line(ok, ok.latest(), END + 5)
    assert line.level == "ok" and line.banner is None and "1/1 collectors up" in line.text
    stale = sample.build(None, cycles=2, end=END, stale=True)
    line = overview_data.status_line(stale, stale.latest(), END)
    assert line.level == "err" and "last good data for demo" in line.banner
    assert "broker down" in line.banner
    assert overview_data.status_line(ok, None, END).text.startswith("waiting")


def test_spark_apps_read_models(monitor):
    apps = spark_data.spark_apps(monitor.latest())
    assert len(apps) == 1
    app = apps[0]
    assert app.name == "streamscope-demo-enricher" and app.jobs_failed == 1
    assert app.failed_stages[0]["stage"] == "33 (attempt 0)"
    assert app.executors[0]["memory"] == "1.5 MB / 400 MB"
    q = app.queries[0]
    assert q.label == "enrich" and q.state == "active" and q.source_topics == ["clickstream"]
    assert q.output_topics == ["enriched-clicks"]
    assert q.trigger_interval_s == pytest.approx(2.0)
    assert q.batches[-1].batch_id == 129 and q.watermark_delay_s == pytest.approx(12.0)
    assert q.state_rows == 120 + 3 * 29 and q.keeping_up is True and q.level == "ok"


def test_spark_failed_query_and_dstream():
    snap = Snapshot(at=END, spark=spark_views([sample.spark_app(END, failed=True, dstream=True)]))
    app = spark_data.spark_apps(snap)[0]
    q = app.queries[0]
    assert q.keeping_up is False and q.level == "err" and "boom" in q.exception
    d = app.dstream
    assert d.batch_interval_s == 2.0 and d.keeping_up is True
    times = [b["batch_time"] for b in d.batches]
    assert times == sorted(times)  # oldest first (Spark lists newest first)
    assert d.receivers[0]["name"] == "SocketReceiver-0"
    row = groups_data.query_row(q)
    assert row["status"] == "ERR" and row["kind"] == groups_data.KIND_QUERY


def test_spark_partial_query():
    """A query known from the SQL listing only: no listener progress, no gauges. What is not
    known is None; the batch duration is still compared with the trigger."""
    batch = sm.BatchProgress(batch_id=3, run_id="r", origin="sql", received_at=END, timestamp=END,
                             duration_ms=None, durations=sm.TriggerDurations(trigger_execution_ms=1500))
    q = _one_query(_query(batch, trigger_ms=2000))
    assert q.last_duration_s == 1.5 and q.trigger_interval_s == 2.0
    assert q.kafka_lag is None and q.kafka_lag_method == "none" and q.source_topics == []
    assert q.input_rate is None and q.keeping_up is True  # 1.5 s within the 2 s trigger


def test_spark_query_lag_against_the_topics_end_offsets():
    source = sm.SourceProgress(description="KafkaV2[Subscribe[t]]", start_offset=None, end_offset=None,
                               latest_offset=None, end_offsets=(sm.PartitionOffset("t", 0, 90), sm.PartitionOffset("t", 1, 40)),
                               latest_offsets=(sm.PartitionOffset("t", 0, 95), sm.PartitionOffset("t", 1, 41)))
    query = _query(_listener_batch(1, sources=[source]))
    assert (_one_query(query).kafka_lag, _one_query(query).kafka_lag_method) == (6, "vs latest offsets at batch")
    topic = Topic("t", (PartitionMetadata("t", 0, 1, (1,), (1,), 0, 100), PartitionMetadata("t", 1, 1, (1,), (1,), 0, 43)))
    cluster = ClusterState(KafkaClusterSnapshot("c", END, END, topics=(topic,)), KafkaLagView("c", END, (), ()))
    q = _one_query(query, [cluster])
    assert (q.kafka_lag, q.kafka_lag_method, q.source_topics) == (13, "vs topic end offsets", ["t"])


def test_source_topics():
    def source(description):
        return sm.SourceProgress(description=description, start_offset=None, end_offset=None, latest_offset=None)

    assert source_topics(source("KafkaV2[Subscribe[a, b]]")) == ["a", "b"]
    assert source_topics(source("RateStreamV2[rowsPerSecond=50]")) == []


def test_alerts_evaluation_off(monitor):
    view = alerts_data.alerts_view(monitor)
    assert not view.configured and "alerting.enabled: false" in view.notice
    assert view.firing == view.pending == view.resolved == view.silences == view.notifications == []


def test_alerts_shapes(monitor):
    monitor = replace(monitor, alerts=sample.SampleAlerting(
        alerts=[
            sample.alert("LagHigh", "firing", severity="critical", labels={"group": "g", "cluster": "demo"},
                         value=1234.5, active_at=END - 300, summary="lag high"),
            sample.alert("Slow", "pending", active_at=END - 30),
            sample.alert("Old", "resolved", active_at=END - 900, resolved_at=END - 600),
            sample.alert("Obj", "firing", active_at=END - 10),
        ],
        silences=[{"id": "s1", "matchers_text": ["group=g"], "starts_at": END - 60, "ends_at": END + 60,
                   "createdBy": "ops", "comment": "deploy", "status": {"state": "active"}}],
    ))
    view = alerts_data.alerts_view(monitor)
    assert view.configured and view.error is None
    assert [a["alertname"] for a in view.firing] == ["LagHigh", "Obj"]  # critical first
    lag = view.firing[0]
    assert lag["labels"] == "cluster=demo, group=g" and lag["value"] == "1.2k" and "5m ago" in lag["since"]
    assert lag["summary"] == "lag high"
    assert view.pending[0]["alertname"] == "Slow" and view.pending[0]["value"] == ""
    assert view.resolved[0]["alertname"] == "Old" and view.resolved[0]["resolved"]
    assert view.silences[0]["matchers"] == "group=g" and view.silences[0]["state"] == "active"


def test_alerts_notification_log(monitor):
    def entry(**kw):  # as alerts_data.notification_log.notification_entry gives it
        return {"next_attempt_at": None, "error": None, "delivered_at": None, "last_attempt_at": None,
                "http_status": None, **kw}

    monitor = replace(monitor, alerts=sample.SampleAlerting(receivers=("hook", "mail"), notifications=[
        entry(id=2, receiver="mail", receiver_type="email", created_at=END - 30, status="FIRING",
              alerts=["LagHigh group=g"], alerts_total=7, attempts=2, result="failed",
              next_attempt_at=END + 30, error="SMTPServerDisconnected: gone"),
        entry(id=1, receiver="hook", receiver_type="webhook", created_at=END - 60, status="RESOLVED",
              alerts=["LagHigh group=g"], alerts_total=1, attempts=1, result="delivered"),
        entry(id=0, receiver="hook", receiver_type="webhook", created_at=END, status="FIRING",
              alerts=[], alerts_total=0, attempts=0, result="pending"),
    ]))
    view = alerts_data.alerts_view(monitor)
    failed, delivered, pending = view.notifications
    assert failed["receiver"] == "mail (email)" and failed["result"].startswith("failed, retry ")
    assert failed["alerts"] == "LagHigh group=g; +6 more" and failed["error"].startswith("SMTPServer")
    assert failed["_level"] == "err" and "30s ago" in failed["time"]
    assert delivered["result"] == "delivered" and delivered["status"] == "RESOLVED" and delivered["_level"] == "ok"
    assert pending["result"] == "pending (not tried yet)" and pending["_level"] == "warn"
    assert view.receivers == ("hook", "mail")


def test_alerts_engine_errors_become_a_notice(monitor):
    class Broken(sample.SampleAlerting):
        def list_alerts(self, state=None):
            raise RuntimeError("db locked")

    monitor = replace(monitor, alerts=Broken())
    view = alerts_data.alerts_view(monitor)
    assert view.configured and "db locked" in view.error and view.firing == []


def test_status_level_mapping():
    assert common.status_level(Status.OK) == "ok"
    assert common.status_level(Status.STALL) == "err"
    assert common.status_level("WARN") == "warn"
    assert common.status_level("weird") == "unknown"
    assert common.worst_level(["ok", "warn", "stale"]) == "warn"


def test_snapshot_without_clusters():
    snap = Snapshot(at=END)
    assert groups_data.group_rows(snap, None) == [] and topics_data.topic_rows(snap, None) == []
    assert common.cluster_state(snap, "x") is None
    assert isinstance(sample.cluster_state(sample.default_spec(), END, 1), ClusterState)


def test_alerts_in_the_alert_engines_shape(monitor):
    """The dicts alerts_data.engine.AlertView.to_dict / alerts_data.silences.Silence.to_dict return."""
    monitor = replace(monitor, alerts=sample.SampleAlerting(
        alerts=[{
            "fingerprint": "abc", "alertname": "ConsumerLagHigh", "state": "firing", "severity": "warning",
            "labels": {"alertname": "ConsumerLagHigh", "cluster": "demo", "group": "g"},
            "annotations": {"summary": "lag of g is 5000"}, "value": 5000.0, "active_at": END - 600,
            "fired_at": END - 300, "resolved_at": None, "startsAt": "2026-11-24T10:00:00Z", "endsAt": None,
            "status": {"state": "suppressed", "silencedBy": ["s1"], "inhibitedBy": []},
            "dashboard_url": None,
        }, {
            "fingerprint": "def", "alertname": "TopicOffline", "state": "resolved", "severity": "critical",
            "labels": {}, "annotations": {}, "value": 0.0, "active_at": END - 900, "fired_at": END - 800,
            "resolved_at": END - 100, "status": {"state": "resolved"},
        }],
        silences=[{
            "id": "s1", "matchers": [{"name": "group", "value": "g.*", "isRegex": True, "isEqual": True}],
            "matchers_text": ['group=~"g.*"'], "startsAt": "2026-11-24T10:00:00Z", "endsAt": "2026-11-24T12:00:00Z",
            "starts_at": END - 60, "ends_at": END + 3600, "createdBy": "ops", "comment": "deploy",
            "status": {"state": "active"},
        }],
    ))
    view = alerts_data.alerts_view(monitor)
    firing = view.firing[0]
    assert firing["state"] == "firing (silenced)" and firing["summary"] == "lag of g is 5000"
    assert firing["labels"] == "cluster=demo, group=g" and "10m ago" in firing["since"]
    assert view.resolved[0]["alertname"] == "TopicOffline" and view.resolved[0]["resolved"]
    sil = view.silences[0]
    assert sil["matchers"] == 'group=~"g.*"' and sil["created_by"] == "ops" and sil["state"] == "active"


@pytest.mark.parametrize("headroom, basis, lost, upper, text", [
    (5400.0, "time", 0, False, "1h 30m (by retention.ms)"),
    (120.0, "size", 0, True, "≤ 2m (by retention.bytes)"),
    (float("inf"), "caught_up", 0, False, "∞ (nothing unread)"),
    (float("inf"), "unlimited", 0, False, "∞ (no retention limit)"),
    (None, "compacted", 0, False, "— (compacted: does not apply)"),
    (0.0, "lost", 1234, False, "lost 1,234 records"),
])
def test_headroom_text(headroom, basis, lost, upper, text):
    from monitor.web.views import format as fmt
    from monitor.web.views.peers import headroom_text

    assert headroom_text(headroom, basis, lost, upper) == text.replace("—", fmt.MISSING)


def test_worst_risk_and_its_level():
    from collectors.models import RetentionRisk
    from monitor.web.views.peers import risk_level, worst_risk

    fine = RetentionRisk("a", "t", 0, 0, 90_000.0, "time")
    close = RetentionRisk("b", "t", 0, 0, 600.0, "time")
    lost = RetentionRisk("c", "t", 5, 1, 0.0, "lost")
    compacted = RetentionRisk("d", "t", 0, 0, None, "compacted")
    assert worst_risk([fine, close, compacted]) is close and risk_level(close) == "warn"
    assert worst_risk([fine, close, lost]) is lost and risk_level(lost) == "err"
    assert worst_risk([compacted]) is None and risk_level(None) == "ok" and risk_level(fine) == "ok"


def test_probe_summary():
    from collectors.models import Histogram, ProbeStats
    from monitor.web.views.peers import probe_summary

    h = Histogram((0.1,), (4, 4), 0.2)
    up = ProbeStats("p", 3, True, 4, 12, 12, (), h, h, h)
    assert probe_summary(up) == ("OK", "mean round trip 50 ms · 3 partition(s)", "ok")
    assert probe_summary(replace(up, up=False, error="3 of 3 record(s) not back within 5 s")) == (
        "FAILING", "3 of 3 record(s) not back within 5 s", "err")
    assert probe_summary(replace(up, rounds_total=0))[0] == "starting"
    assert probe_summary(None) is None
