"""monitor.collection.spark_source: targets from config, one cycle with a progress feed (no network),
queries as consumer groups of kind "spark-query", wiring into Monitor.run_cycle."""
from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from collectors.spark.collector import FEED_HEALTH_NAME
from collectors.spark.discovery import HistoryTarget, MasterTarget, PortRangeTarget, UiTarget
from collectors.spark.models import QueryState
from collectors.spark_listener import envelope
from monitor.app.config import Config
from monitor.settings import ConfigError
from monitor.storage import History
from monitor.collection.spark_source import SparkSource, build_targets
from tests.helpers import ManualClock
from tests.unit.test_spark_exporter import (
    T,
    listener_batch,
    make_query,
    sql_batch,
    structured_app,
)




class ListFeed:
    """A ProgressFeed handing out prepared listener envelopes once."""

    def __init__(self, items=(), healthy=True, last_error=None):
        self.items = list(items)
        self.healthy = healthy
        self.last_error = last_error
        self.assigned_partitions = (0,)
        self.closed = False

    def drain(self):
        items, self.items = self.items, []
        return items

    def close(self):
        self.closed = True


def config(**spark) -> Config:
    clusters = spark.pop("clusters", [{"name": "c1", "bootstrap_servers": "127.0.0.1:1"}])
    return Config.model_validate({"clusters": clusters, "spark": spark})


def sections(cfg: Config) -> tuple:
    """What a SparkSource is built from: the spark section and the clusters."""
    return cfg.spark, cfg.clusters


def progress(batch_id: int, *, at: str, end: dict, name="clickstream_stats", qid="q-abc",
             run="run-1", duration=1200) -> dict:
    """A progress.json payload with one Kafka source."""
    return {
        "id": qid, "runId": run, "name": name, "timestamp": at, "batchId": batch_id,
        "batchDuration": duration, "numInputRows": 10, "inputRowsPerSecond": 5.0,
        "processedRowsPerSecond": 8.0,
        "durationMs": {"addBatch": 900, "getBatch": 1, "latestOffset": 10, "queryPlanning": 50,
                       "triggerExecution": duration, "walCommit": 100},
        "eventTime": {}, "stateOperators": [],
        "sources": [{
            "description": "KafkaV2[Subscribe[clicks]]",
            "startOffset": {"clicks": {str(p): max(0, o - 5) for p, o in end.items()}},
            "endOffset": {"clicks": {str(p): o for p, o in end.items()}},
            "latestOffset": {"clicks": {str(p): o + 3 for p, o in end.items()}},
            "numInputRows": 10,
            "metrics": {"minOffsetsBehindLatest": "3", "avgOffsetsBehindLatest": "3.0",
                        "maxOffsetsBehindLatest": "3"},
        }],
        "sink": {"description": "console", "numOutputRows": 1},
    }


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def test_targets_from_config():
    cfg = config(ui_urls=["http://127.0.0.1:4040/", "http://10.0.0.1:4040"],
                 scan_host="127.0.0.1", scan_ports="4041-4043",
                 master_url="http://m:8080", history_server_url="http://shs:18080")
    targets = build_targets(cfg.spark)
    assert targets == (UiTarget("http://127.0.0.1:4040"), UiTarget("http://10.0.0.1:4040"),
                       PortRangeTarget("127.0.0.1", 4041, 4043), MasterTarget("http://m:8080"),
                       HistoryTarget("http://shs:18080"))
    assert build_targets(config(scan_host="h", scan_ports="4040").spark) == \
        (PortRangeTarget("h", 4040, 4040),)
    assert build_targets(config(master_url="master+proxy=http://m:8080").spark) == \
        (MasterTarget("http://m:8080", reverse_proxy=True),)


@pytest.mark.parametrize("spark, key", [
    ({"ui_urls": ["ftp://x"]}, "spark.ui_urls.0"),
    ({"ui_urls": ["http://a:1", "http://a:1/"]}, "spark.ui_urls.1"),
    ({"master_url": "m:8080"}, "spark.master_url"),
    ({"progress_topic": "p", "progress_cluster": "nope"}, "spark.progress_cluster"),
])
def test_invalid_spark_config_names_the_key(spark, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        SparkSource(*sections(config(**spark)), History(":memory:"))


def test_progress_topic_needs_a_cluster():
    with pytest.raises(ConfigError, match="spark.progress_topic"):
        SparkSource(*sections(config(progress_topic="p", clusters=[])), History(":memory:"))


# --------------------------------------------------------------------------------------------
# one cycle: collector + feed + history
# --------------------------------------------------------------------------------------------


def test_cycle_with_feed_only_stores_history_and_reports_health():
    clock = ManualClock(T)
    feed = ListFeed([
        envelope("started", {"id": "q-abc", "runId": "run-1", "name": "clickstream_stats",
                             "timestamp": "2027-01-15T08:00:00.000Z"},
                 app_id="local-9", app_name="clicks", wall=T - 30),
        envelope("progress", progress(4, at="2027-01-15T08:00:00.000Z", end={0: 40, 1: 44}),
                 app_id="local-9", app_name="clicks", wall=T - 20),
        envelope("progress", progress(5, at="2027-01-15T08:00:02.000Z", end={0: 50, 1: 55}),
                 app_id="local-9", app_name="clicks", wall=T - 10),
    ])
    history = History(":memory:", clock=clock)
    source = SparkSource(*sections(config(progress_topic="ignored-here")), history, clock=clock, feed=feed)
    source.start()
    try:
        apps, health = source.cycle()
        assert [(a.app.id, a.app.name, a.app.discovered_via) for a in apps] == \
            [("local-9", "clicks", "progress-feed")]
        (q,) = apps[0].queries
        assert (q.name, q.state, q.last_batch_id) == ("clickstream_stats", QueryState.ACTIVE, 5)
        assert [h.name for h in health] == [FEED_HEALTH_NAME] and health[0].up
        # stored
        (app,) = history.spark.apps_latest()
        assert (app["app_id"], app["label"], app["kind"]) == ("local-9", "clicks", "structured")
        assert [b["batch_id"] for b in history.spark.batches("local-9", "clickstream_stats",
                                                             0, T + 60)] == [4, 5]
        # as a consumer group
        (g,) = source.consumer_groups(apps, "c1")
        assert (g.name, g.kind, g.state, g.members) == \
            ("spark-clickstream_stats", "spark-query", "Stable", ())
        assert [(o.topic, o.partition, o.offset) for o in g.offsets] == \
            [("clicks", 0, 50), ("clicks", 1, 55)]
        assert g.offsets_fetched_at == T - 10  # when the listener reported batch 5
        # broker unreachable: the feed's health entry goes down with the feed's error
        feed.healthy, feed.last_error = False, "all brokers down"
        clock.t += 15
        _, health = source.cycle()
        assert not health[0].up and health[0].error == "all brokers down"
    finally:
        source.stop()
    assert not feed.closed  # a feed passed in belongs to the caller


def test_cycle_survives_history_errors():
    clock = ManualClock(T)
    history = History(":memory:", clock=clock)
    source = SparkSource(*sections(config(progress_topic="p")), history, clock=clock, feed=ListFeed())
    source.start()
    history.close()  # every append now raises HistoryError
    try:
        apps, health = source.cycle()
        assert apps == () and health[0].up
    finally:
        source.stop()


# --------------------------------------------------------------------------------------------
# consumer_groups
# --------------------------------------------------------------------------------------------


def _source(**spark) -> SparkSource:
    return SparkSource(*sections(config(**spark)), History(":memory:"))


def test_offsets_are_the_latest_batch_end_offsets():
    app = structured_app()  # ingest: batches 7, 8 (Kafka), 9 running (sql); broken: sql only
    (g,) = _source(ui_urls=["http://127.0.0.1:4040"]).consumer_groups([app], "c1")
    assert g.name == "spark-ingest" and g.kind == "spark-query"
    assert [(o.topic, o.partition, o.offset) for o in g.offsets] == \
        [("events", 0, 100), ("events", 1, 250)]
    assert g.offsets_fetched_at == T - 10 + 2  # received_at of batch 8
    assert g.state == "Stable" and g.members == () and g.error is None


@pytest.mark.parametrize("state, expected", [
    (QueryState.ACTIVE, "Stable"), (QueryState.TERMINATED, "Empty"),
    (QueryState.FAILED, "Dead"), (QueryState.UNKNOWN, "Unknown"),
])
def test_group_state_follows_the_query_state(state, expected):
    q = make_query("q", "id-1", state=state,
                   batches=(listener_batch(1, T - 5, end={("t", 0): 7}),))
    (g,) = _source(ui_urls=["http://x:1"]).consumer_groups([structured_app(queries=(q,))], "c1")
    assert g.state == expected and g.offsets[0].offset == 7


def test_unnamed_query_uses_its_id_and_rate_source_queries_are_skipped():
    unnamed = make_query(None, "4f2e", batches=(listener_batch(1, T, end={("t", 0): 1}),))
    rate = make_query("rate", "r-1", batches=(listener_batch(1, T),))  # no Kafka source
    sql_only = make_query("sqlonly", "s-1", batches=(sql_batch(1, T),))
    groups = _source(ui_urls=["http://x:1"]).consumer_groups(
        [structured_app(queries=(unnamed, rate, sql_only))], "c1")
    assert [g.name for g in groups] == ["spark-4f2e"]


def test_progress_cluster_pins_the_cluster():
    clusters = [{"name": "c1", "bootstrap_servers": "a:1"}, {"name": "c2", "bootstrap_servers": "b:1"}]
    src = _source(clusters=clusters, progress_topic="p", progress_cluster="c2")
    app = structured_app()
    assert src.consumer_groups([app], "c1", topics={"events"}) == ()
    # pinned: the topics are not checked
    assert [g.name for g in src.consumer_groups([app], "c2", topics=set())] == ["spark-ingest"]


def test_without_progress_cluster_the_topics_decide():
    clusters = [{"name": "c1", "bootstrap_servers": "a:1"}, {"name": "c2", "bootstrap_servers": "b:1"}]
    src = _source(clusters=clusters, ui_urls=["http://x:1"])
    q = make_query("two", "q-2t", batches=(listener_batch(
        1, T, end={("events", 0): 5, ("other", 0): 9}),))
    app = structured_app(queries=(q,))
    (g,) = src.consumer_groups([app], "c1", topics={"events", "unrelated"})
    assert [(o.topic, o.offset) for o in g.offsets] == [("events", 5)]  # only what c1 has
    assert src.consumer_groups([app], "c2", topics={"unrelated"}) == ()
    # topics not given, several clusters, nothing in history yet: no guess
    assert src.consumer_groups([app], "c1") == ()
    # one cluster configured: it takes every query
    single = _source(ui_urls=["http://x:1"])
    assert [g.name for g in single.consumer_groups([app], "c1")] == ["spark-two"]


def test_same_group_name_from_two_apps_keeps_the_active_query():
    stopped = make_query("ingest", "q-a", state=QueryState.TERMINATED,
                         batches=(listener_batch(9, T, end={("events", 0): 900},
                                                 received_at=T + 50),))
    active = make_query("ingest", "q-b", batches=(listener_batch(
        2, T - 100, end={("events", 0): 20}),))
    apps = [structured_app("local-1", "a", queries=(stopped,)),
            structured_app("local-2", "b", queries=(active,))]
    (g,) = _source(ui_urls=["http://x:1"]).consumer_groups(apps, "c1")
    assert (g.state, g.offsets[0].offset) == ("Stable", 20)


def _ingest_with_real_group(real, queries):
    """KafkaSource.ingest of one raw cycle holding `real`, with the queries' groups joined in."""
    from collectors.models import KafkaClusterSnapshot
    from monitor.collection.settings import CollectionConfig
    from monitor.collection.kafka_source import KafkaSource

    cfg = config(ui_urls=["http://x:1"])
    history = History(":memory:", clock=ManualClock(T))
    kafka = KafkaSource(cfg.clusters[0], CollectionConfig(), history, clock=ManualClock(T))
    raw = KafkaClusterSnapshot(cluster="c1", started_at=T - 1, finished_at=T, groups=(real,),
                               end_offsets_fetched_at=T)
    extra = SparkSource(cfg.spark, cfg.clusters, history).consumer_groups([structured_app(queries=queries)], "c1")
    state, _ = kafka.ingest(raw, extra_groups=extra)
    return state


@pytest.mark.parametrize("query_state, group_state, empty", [
    (QueryState.ACTIVE, "Stable", False), (QueryState.TERMINATED, "Empty", True),
    (QueryState.FAILED, "Dead", True),
])
def test_the_listeners_committed_group_is_shown_as_the_query(query_state, group_state, empty):
    """The listener (commit_offsets=True) commits the query's offsets to a real group without
    members: it is shown as the query, with the committed offsets and the query's state, so a
    live query is not an Empty consumer group."""
    from collectors.models import CommittedOffset, ConsumerGroup

    real = ConsumerGroup(name="spark-ingest", state="Empty", members=(),
                         offsets=(CommittedOffset("events", 0, 98),), offsets_fetched_at=T,
                         protocol_type="")
    q = make_query("ingest", "q-1", state=query_state, batches=(
        listener_batch(8, T - 10, end={("events", 0): 100}),))
    state = _ingest_with_real_group(real, (q,))
    (g,) = state.raw.groups
    assert (g.name, g.kind, g.state) == ("spark-ingest", "spark-query", group_state)
    assert g.offsets == real.offsets and g.offsets_fetched_at == T  # what Kafka tools see
    (lag,) = state.lag.groups
    assert (lag.group, lag.kind, lag.state, lag.is_empty) == ("spark-ingest", "spark-query",
                                                              group_state, empty)


def test_a_real_group_with_members_is_not_taken_for_the_query():
    from collectors.models import ConsumerGroup, GroupMember

    member = GroupMember(member_id="m-1", client_id="someone", host="/127.0.0.1", assignment=())
    real = ConsumerGroup(name="spark-ingest", state="Stable", members=(member,), offsets=(),
                         offsets_fetched_at=T)
    state = _ingest_with_real_group(real, None)
    (g,) = state.raw.groups
    assert g is real


# --------------------------------------------------------------------------------------------
# Monitor wiring
# --------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_monitor_run_cycle_with_an_unreachable_spark_ui(tmp_path):
    from monitor.app.root import Monitor

    cfg = Config.model_validate({
        "spark": {"ui_urls": [f"http://127.0.0.1:{_closed_port()}"], "request_timeout_seconds": 1},
        "history": {"path": str(tmp_path / "h.db")},
    })
    monitor = Monitor(cfg, clock=ManualClock(T))
    monitor.start(serve=False, loop=False)
    try:
        snap = monitor.run_cycle()
        assert snap.spark == ()
        (h,) = [h for h in snap.health if h.kind == "spark"]
        assert not h.up and "refused" in (h.error or "").lower()
        text = monitor.metrics.latest().decode()
        assert 'streamscope_collector_up{collector="spark:ui:http://127.0.0.1:' in text
    finally:
        monitor.stop()


def test_the_web_layer_gets_the_progress_topic_as_internal(tmp_path):
    """The dashboard hides the configured progress topic (and its readers) like Kafka's own."""
    from monitor.app.root import Monitor

    def settings(**spark):
        cfg = Config.model_validate({"clusters": [{"name": "c", "bootstrap_servers": "127.0.0.1:1"}],
                                     "spark": spark, "history": {"path": ":memory:"}})
        monitor = Monitor(cfg)
        try:
            return monitor.web_context().settings
        finally:
            monitor.stop()

    plain = settings()
    assert plain.internal_topics == frozenset() and not plain.spark_configured
    with_feed = settings(progress_topic="spark-progress")
    assert with_feed.internal_topics == frozenset({"spark-progress"}) and with_feed.spark_configured


def test_the_down_app_ttl_reaches_the_collector():
    src = _source(ui_urls=["http://127.0.0.1:1"], down_app_ttl_seconds=120)
    src.start()
    try:
        assert src.collector.down_app_ttl == 120
    finally:
        src.stop()


def test_stop_closes_a_feed_it_built(monkeypatch):
    import collectors.spark.feed_kafka as fk

    made = []

    class FakeFeed(ListFeed):
        def __init__(self, bootstrap, topic, *, client_config=None):
            super().__init__()
            made.append((bootstrap, topic, client_config))

    monkeypatch.setattr(fk, "KafkaProgressFeed", FakeFeed)
    src = SparkSource(*sections(config(progress_topic="progress",
                             clusters=[{"name": "c1", "bootstrap_servers": "h:9092",
                                        "client": {"security.protocol": "PLAINTEXT"}}])),
                      History(":memory:"))
    src.start()
    feed = src.feed
    src.stop()
    assert made == [("h:9092", "progress", {"security.protocol": "PLAINTEXT"})]
    assert feed.closed and src.feed is None


def test_stale_apps_still_map_to_groups():
    app = replace(structured_app(), stale=True)
    (g,) = _source(ui_urls=["http://x:1"]).consumer_groups([app], "c1")
    assert g.offsets[0].offset == 100
