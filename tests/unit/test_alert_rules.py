"""Rule kinds on hand-built snapshots, matchers, templates, config errors, secrets."""
from __future__ import annotations

import textwrap
from dataclasses import replace as dataclasses_replace

import pytest
import yaml

from tests import snapshot_builders as T
from alerts.config import AlertingConfig, load_alerting_config, parse_alerting_config
from alerts.errors import AlertConfigError
from alerts.inputs import RollingInputs, Sample, window_rows
from alerts.kinds import KIND_FUNCTIONS, evaluate_rule
from alerts.matchers import Matcher, MatcherError
from alerts.notifiers import build_notifiers
from alerts.rules import DEFAULT_RULES_PATH, KIND_INFO, RuleKind, load_rules, rules_from_dicts
from alerts.secrets import Secret, SecretError, redact, resolve_secret
from alerts.templates import TemplateError, compile_template
from collectors.models import Status
from collectors.spark.models import QueryState

NOW = 10_000.0


def rule(kind: str, **kw):
    return rules_from_dicts([{"name": "R", "kind": kind, **kw}]).rules[0]


def run(kind: str, snap, windows=None, now: float = NOW, **kw) -> list[dict]:
    r = rule(kind, **kw)
    inp = T.inputs(snap, windows)
    return sorted(({**s.label_dict, "_value": s.value} for s in evaluate_rule(r, snap, inp.window, now)),
                  key=lambda d: sorted(d.items()))


def kafka(groups=(), topics=(), **kw):
    return T.snapshot(NOW, [T.cluster_state("prod", groups=groups, topics=topics, at=NOW, **kw)])


# ------------------------------------------------------------------------------ rule kinds


def test_every_kind_has_function_and_info():
    assert set(KIND_FUNCTIONS) == set(RuleKind) == set(KIND_INFO)


def test_consumer_lag_messages_per_topic():
    g = T.group_lag("prod", "orders", {("a", 0): 60, ("a", 1): 50, ("b", 0): 5}, at=NOW)
    assert run("consumer_lag_messages", kafka([g]), threshold=100) == [
        {"cluster": "prod", "group": "orders", "topic": "a", "_value": 110.0}]
    assert run("consumer_lag_messages", kafka([g]), threshold=110) == []


def test_consumer_lag_seconds_max_over_partitions():
    g = T.group_lag("prod", "orders", {("a", 0): (10, 400.0), ("a", 1): (10, 20.0), ("b", 0): (1, None)}, at=NOW)
    assert run("consumer_lag_seconds", kafka([g]), threshold=300) == [
        {"cluster": "prod", "group": "orders", "topic": "a", "_value": 400.0}]


def test_consumer_lag_seconds_holds_on_a_topics_lower_bound_and_only_a_timed_partitions():
    """Per topic: a worst time lag at or below the threshold that is only a lower bound is held
    (the alert neither starts nor resolves on it); a lower-bound flag on an untimed partition
    does not make the topic's time lag a lower bound."""
    import dataclasses

    g = T.group_lag("prod", "orders", {("a", 0): (10, 200.0), ("a", 1): (10, 20.0), ("b", 0): (1, 50.0),
                                       ("b", 1): (1, None)}, at=NOW)
    lower = {("a", 1), ("b", 1)}  # a's timed partition, b's untimed one
    g = dataclasses.replace(g, topic_lags=None, partitions=tuple(
        p._replace(time_lag_lower_bound=(p.topic, p.partition) in lower) for p in g.partitions))
    samples = evaluate_rule(rule("consumer_lag_seconds", threshold=300), kafka([g]), T.inputs(kafka([g]), None).window, NOW)
    assert [(s.label_dict["topic"], s.value, s.hold) for s in samples] == [("a", 200.0, True)]
    samples = evaluate_rule(rule("consumer_lag_seconds", threshold=100), kafka([g]), T.inputs(kafka([g]), None).window, NOW)
    assert [(s.label_dict["topic"], s.value, s.hold) for s in samples] == [("a", 200.0, False)]


def test_partition_counts_of_the_derived_view_win_over_the_raw_metadata():
    """Derive counts a topic's partitions once a cycle (under-replicated, offline, under min ISR);
    the rules read those counts, and count from the raw metadata only a topic the view lacks."""
    from collectors.models import TopicConfig

    counted = T.topic_rates("prod", "orders", under_replicated=2, offline=1)
    counted = dataclasses_replace(counted, under_min_isr=3)
    raw = (dataclasses_replace(T.raw_topic("orders"), config=TopicConfig("delete", -1, -1, 2)),
           dataclasses_replace(T.raw_topic("fresh", under_replicated=1), config=TopicConfig("delete", -1, -1, 3)))
    snap = T.snapshot(NOW, [T.cluster_state("prod", topics=[counted], raw_topics=raw, at=NOW)])
    assert run("under_replicated_partitions", snap) == [
        {"cluster": "prod", "topic": "fresh", "_value": 1.0}, {"cluster": "prod", "topic": "orders", "_value": 2.0}]
    assert run("offline_partitions", snap) == [{"cluster": "prod", "topic": "orders", "_value": 1.0}]
    assert run("under_min_isr_partitions", snap) == [
        {"cluster": "prod", "topic": "fresh", "_value": 1.0}, {"cluster": "prod", "topic": "orders", "_value": 3.0}]


@pytest.mark.parametrize("status,fires", [(Status.OK, False), (Status.WARN, False), (Status.ERR, True),
                                          (Status.STOP, True), (Status.STALL, True), (Status.REWIND, True)])
def test_group_status_default_statuses(status, fires):
    g = T.group_lag("prod", "orders", {("a", 0): 5}, status=status, at=NOW)
    out = run("group_status", kafka([g]))
    assert bool(out) == fires
    if fires:
        assert out[0]["status"] == status.value and out[0]["_value"] == status.severity


def test_group_status_custom_statuses_lowercase_accepted():
    g = T.group_lag("prod", "orders", {("a", 0): 5}, status=Status.WARN, at=NOW)
    assert run("group_status", kafka([g]), statuses=["warn"])[0]["status"] == "WARN"


def test_the_kinds_that_make_their_own_labels_make_them_as_sample_of_does():
    """The per-group kinds build their samples' label tuples themselves (a sample per group and
    topic): the same tuples, in the same order, `Sample.of` makes (the fingerprint and the
    alert's identity come from them)."""
    lagging = T.group_lag("prod", "orders", {("a", 0): (20000, 400.0), ("b", 0): (1, 50.0)}, status=Status.STOP,
                          members=0, at=NOW)
    single = dataclasses_replace(T.group_lag("prod", "one", {("a", 0): (20000, 400.0)}, status=Status.ERR, at=NOW),
                                 topic_lags=None)
    snap = kafka([lagging, single])
    for kind, kw in (("consumer_lag_messages", {}), ("consumer_lag_seconds", {}), ("group_status", {}),
                     ("empty_group_with_lag", {})):
        samples = evaluate_rule(rule(kind, **kw), snap, T.inputs(snap, None).window, NOW)
        assert samples, kind
        for s in samples:
            assert s.labels == Sample.of(s.value, **dict(s.labels)).labels and type(s.value) is float, (kind, s)


def test_empty_group_with_lag():
    empty = T.group_lag("prod", "idle", {("a", 0): 7}, members=0, at=NOW)
    caught_up = T.group_lag("prod", "done", {("a", 0): 0}, members=0, at=NOW)
    active = T.group_lag("prod", "busy", {("a", 0): 7}, members=2, at=NOW)
    assert run("empty_group_with_lag", kafka([empty, caught_up, active])) == [
        {"cluster": "prod", "group": "idle", "_value": 7.0}]


def test_topic_produce_stopped_needs_recent_production():
    snap = kafka(topics=[T.topic_rates("prod", "orders", 0.0), T.topic_rates("prod", "unused", 0.0),
                         T.topic_rates("prod", "live", 5.0)])
    windows = {
        ("prod", "topic", "orders"): [{"at": NOW - 1800, "produce_rate": 12.0}, {"at": NOW, "produce_rate": 0.0}],
        ("prod", "topic", "unused"): [{"at": NOW - 1800, "produce_rate": 0.0}],
        ("prod", "topic", "live"): [{"at": NOW - 60, "produce_rate": 5.0}],
    }
    assert run("topic_produce_stopped", snap, windows) == [{"cluster": "prod", "topic": "orders", "_value": 0.0}]
    # production older than the window does not count
    assert run("topic_produce_stopped", snap, windows, window="10m") == []


def test_under_replicated_and_offline_partitions():
    snap = kafka(topics=[T.topic_rates("prod", "a", under_replicated=2, offline=1), T.topic_rates("prod", "b")])
    assert run("under_replicated_partitions", snap) == [{"cluster": "prod", "topic": "a", "_value": 2.0}]
    assert run("offline_partitions", snap) == [{"cluster": "prod", "topic": "a", "_value": 1.0}]


def test_partition_counts_fall_back_to_raw_metadata():
    snap = kafka(raw_topics=[T.raw_topic("raw", under_replicated=1, offline=2)])
    assert run("under_replicated_partitions", snap) == [{"cluster": "prod", "topic": "raw", "_value": 1.0}]
    assert run("offline_partitions", snap) == [{"cluster": "prod", "topic": "raw", "_value": 2.0}]


def test_partition_counts_of_the_derived_view_win_over_raw_metadata():
    snap = kafka(topics=[T.topic_rates("prod", "both", under_replicated=3, offline=0)],
                 raw_topics=[T.raw_topic("both", under_replicated=1, offline=2), T.raw_topic("raw", offline=1)])
    assert run("under_replicated_partitions", snap) == [{"cluster": "prod", "topic": "both", "_value": 3.0}]
    assert run("offline_partitions", snap) == [{"cluster": "prod", "topic": "raw", "_value": 1.0}]


def _with(snap, **state_changes):
    """`snap` with its (first) cluster state changed: retention risks, raw topics, probe."""
    from dataclasses import replace

    state = snap.clusters[0]
    if "retention" in state_changes:
        state = replace(state, lag=replace(state.lag, retention=state_changes.pop("retention")))
    if "topics" in state_changes:
        state = replace(state, raw=replace(state.raw, topics=state_changes.pop("topics")))
    return replace(snap, clusters=(replace(state, **state_changes),))


def test_under_min_isr_partitions_only_where_min_isr_is_known():
    from collectors.models import PartitionMetadata, Topic, TopicConfig

    def topic(name, isrs, min_isr):
        parts = tuple(PartitionMetadata(name, i, 1, (1, 2, 3), isr, 0, 1) for i, isr in enumerate(isrs))
        return Topic(name, parts, config=None if min_isr is None else TopicConfig("delete", -1, -1, min_isr))

    snap = _with(kafka(), topics=(topic("orders", [(1,), (1, 2), (1, 2, 3)], 2), topic("fine", [(1, 2)], 2),
                                  topic("unknown", [(1,)], None)))
    assert run("under_min_isr_partitions", snap) == [{"cluster": "prod", "topic": "orders", "_value": 1.0}]


def test_retention_headroom_and_records_lost():
    import math

    from collectors.models import RetentionRisk

    snap = _with(kafka(), retention=(
        RetentionRisk("slow", "t", 0, 0, 1200.0, "time"),
        RetentionRisk("fine", "t", 0, 0, 86_000.0, "time"),
        RetentionRisk("caught-up", "t", 0, 0, math.inf, "caught_up"),
        RetentionRisk("compacted", "t", 0, 0, None, "compacted"),
        RetentionRisk("lost", "t", 40, 2, 0.0, "lost"),
        RetentionRisk("bound", "t", 0, 0, 7200.0, "time", upper_bound=True),
    ))
    samples = evaluate_rule(rule("retention_headroom"), snap, T.inputs(snap, None).window, NOW)
    assert [(s.label_dict["group"], s.value) for s in samples if not s.hold] == [("slow", 1200.0)]
    # an upper bound above the threshold holds a firing alert (the truth may be less), starts none
    assert [s.label_dict["group"] for s in samples if s.hold] == ["bound"]
    assert [s for s in evaluate_rule(rule("retention_headroom", threshold=100), snap, T.inputs(snap, None).window, NOW)
            if not s.hold] == []
    assert run("records_lost", snap) == [{"cluster": "prod", "group": "lost", "topic": "t", "_value": 40.0}]


def test_probe_failing():
    from collectors.models import Histogram, ProbeStats

    empty = Histogram((1.0,), (0, 0))

    def probe(up, rounds=3, last_success=None):
        return ProbeStats("p", 1, up, rounds, 3, 3, (), empty, empty, empty, last_success_at=last_success)

    assert run("probe_failing", _with(kafka(), probe=probe(False, last_success=NOW - 90))) == [
        {"cluster": "prod", "_value": 90.0}]
    assert run("probe_failing", _with(kafka(), probe=probe(False))) == [{"cluster": "prod", "_value": 0.0}]
    assert run("probe_failing", _with(kafka(), probe=probe(True, last_success=NOW))) == []
    assert run("probe_failing", _with(kafka(), probe=probe(False, rounds=0))) == []  # not started yet
    assert run("probe_failing", kafka()) == []  # no probe configured
    # while the cluster's collection fails, its state is stale but the probe's counters are fresh
    stale = T.snapshot(NOW, [T.cluster_state("prod", stale=True, at=NOW)])
    assert run("probe_failing", _with(stale, probe=probe(False, last_success=NOW - 30))) == [
        {"cluster": "prod", "_value": 30.0}]


def test_broker_count_dropped():
    snap = kafka(brokers=2)
    windows = {("prod", "cluster", ""): [{"at": NOW - 600, "brokers": 3}, {"at": NOW, "brokers": 2}]}
    assert run("broker_count_dropped", snap, windows) == [{"cluster": "prod", "_value": 1.0}]
    assert run("broker_count_dropped", snap, windows, threshold=2) == []
    assert run("broker_count_dropped", snap, {}) == []  # no history, no claim
    stale = T.snapshot(NOW, [T.cluster_state("prod", brokers=0, stale=True, at=NOW)])
    assert run("broker_count_dropped", stale, windows) == []


def test_collector_down_from_health_and_stale_clusters():
    snap = T.snapshot(NOW, [T.cluster_state("prod", at=NOW), T.cluster_state("dev", stale=True, at=NOW)],
                      health=[T.health("kafka:prod", up=False, last_success_at=NOW - 100),
                              T.health("spark:http://x:4040", "spark", up=True, last_success_at=NOW)])
    assert run("collector_down", snap) == [
        {"cluster": "dev", "collector": "kafka:dev", "kind": "kafka", "_value": 1.0},
        {"cluster": "prod", "collector": "kafka:prod", "kind": "kafka", "_value": 1.0},
    ]


def test_group_offsets_unavailable_counts_failed_groups_of_successful_cycles_only():
    from dataclasses import replace

    from collectors.models import ConsumerGroup

    def with_groups(state, *errors):
        groups = tuple(ConsumerGroup(name=f"g{i}", state="Stable", members=(), offsets=(), offsets_fetched_at=NOW,
                                     error=e) for i, e in enumerate(errors))
        return replace(state, raw=replace(state.raw, groups=groups))

    prod = with_groups(T.cluster_state("prod", at=NOW), "CoordinatorLoadInProgressError", None, "GroupAuthorizationFailedError")
    fine = with_groups(T.cluster_state("fine", at=NOW), None, None)
    stale = with_groups(T.cluster_state("down", stale=True, at=NOW), "KafkaTimeoutError")  # collector_down's
    assert run("group_offsets_unavailable", T.snapshot(NOW, [prod, fine, stale])) == [
        {"cluster": "prod", "_value": 2.0}]


def test_log_dirs_unavailable_fires_for_clusters_whose_last_round_left_directories_unknown():
    from dataclasses import replace

    def with_error(state, error):
        return replace(state, raw=replace(state.raw, log_dirs_error=error))

    prod = with_error(T.cluster_state("prod", at=NOW), "log directories of broker(s) not given (kept from before): 2: no answer")
    fine = T.cluster_state("fine", at=NOW)
    stale = with_error(T.cluster_state("down", stale=True, at=NOW), "DescribeLogDirs failed: timed out")  # collector_down's
    assert run("log_dirs_unavailable", T.snapshot(NOW, [prod, fine, stale])) == [{"cluster": "prod", "_value": 1.0}]


def test_topic_configs_unavailable_fires_for_clusters_with_topics_whose_settings_are_unknown():
    from dataclasses import replace

    from collectors.models import Topic, TopicConfig

    config = TopicConfig("delete", 3_600_000, -1, 2)
    known = (Topic("orders", (), config=config),)

    def with_topics(state, topics, error=None):
        return replace(state, raw=replace(state.raw, topics=topics, topic_configs_error=error))

    prod = with_topics(T.cluster_state("prod", at=NOW), (*known, Topic("secret", ())),
                       "settings of 1 topic(s) unknown: secret (TopicAuthorizationFailedError)")
    fine = with_topics(T.cluster_state("fine", at=NOW), known)
    off = with_topics(T.cluster_state("off", at=NOW), (Topic("orders", ()),))  # topic_configs_every 0
    stale = with_topics(T.cluster_state("down", stale=True, at=NOW), known, "DescribeConfigs failed: timed out")
    assert run("topic_configs_unavailable", T.snapshot(NOW, [prod, fine, off, stale])) == [{"cluster": "prod", "_value": 1.0}]


def test_data_stale():
    snap = T.snapshot(NOW, health=[T.health("kafka:prod", last_success_at=NOW - 400),
                                   T.health("spark:u", "spark", last_success_at=NOW - 10),
                                   T.health("kafka:never", up=False, last_success_at=None)])
    assert run("data_stale", snap) == [{"cluster": "prod", "collector": "kafka:prod", "kind": "kafka", "_value": 400.0}]


def _spark(*queries, failed_jobs=None):
    return T.snapshot(NOW, spark=[T.spark_app("etl", queries, failed_jobs=failed_jobs)])


def _batches(durations_ms, inp=100.0, proc=200.0, start=NOW - 60, step=10.0):
    return tuple(T.spark_batch(i, d, inp, proc, start + i * step) for i, d in enumerate(durations_ms))


def test_spark_batch_over_trigger_consecutive():
    slow = T.spark_query("slow", batches=_batches([1000, 3000, 2500, 4000]), trigger_interval_ms=2000)
    blip = T.spark_query("blip", batches=_batches([3000, 3000, 1000, 3000]), trigger_interval_ms=2000)
    asap = T.spark_query("asap", batches=_batches([9000] * 4), trigger_interval_ms=None)  # default trigger
    stopped = T.spark_query("stopped", state=QueryState.TERMINATED, batches=_batches([9000] * 4))
    assert run("spark_batch_over_trigger", _spark(slow, blip, asap, stopped)) == [
        {"app": "etl", "query": "slow", "_value": 4.0}]
    assert run("spark_batch_over_trigger", _spark(slow), consecutive=4) == []


def test_spark_processing_below_input_window():
    behind = T.spark_query("behind", batches=_batches([1000] * 3, inp=100, proc=80))
    mixed = T.spark_query("mixed", batches=_batches([1000] * 3, inp=100, proc=80)[:2]
                          + (T.spark_batch(2, 1000, 100, 150, NOW - 30),))
    idle = T.spark_query("idle", batches=_batches([1000] * 3, inp=0, proc=0))
    assert run("spark_processing_below_input", _spark(behind, mixed, idle)) == [
        {"app": "etl", "query": "behind", "_value": 0.8}]
    # batches older than the window are ignored
    assert run("spark_processing_below_input", _spark(behind), window="5s") == []


def test_spark_processing_below_input_uses_history_without_batch_times():
    q = T.spark_query("q", batches=(T.spark_batch(1, 1000, 100, 50, None),))
    windows = {("etl", "spark_query", "q"): [
        {"at": NOW - 60, "input_rows_per_second": 100.0, "processed_rows_per_second": 60.0}]}
    assert run("spark_processing_below_input", _spark(q), windows) == [{"app": "etl", "query": "q", "_value": 0.6}]


def test_spark_query_lag_and_failed():
    behind = (T.kafka_source("events", end=[0], latest=[20000]), T.kafka_source("small", end=[0], latest=[5]))
    lagging = T.spark_query("ingest", batches=(T.spark_batch(1, sources=behind),))
    failed = T.spark_query("broken", state=QueryState.TERMINATED, exception="java.lang.RuntimeException: boom")
    stopped_ok = T.spark_query("stopped", state=QueryState.TERMINATED)
    snap = _spark(lagging, failed, stopped_ok)
    assert run("spark_query_lag", snap) == [{"app": "etl", "query": "ingest", "topic": "events", "_value": 20000.0}]
    assert run("spark_query_failed", snap) == [{"app": "etl", "query": "broken", "_value": 1.0}]


def test_spark_query_lag_from_sparks_own_source_metric():
    """No Kafka positions in the progress: Spark's maxOffsetsBehindLatest of the source."""
    q = T.spark_query("q", batches=(T.spark_batch(1, sources=[T.kafka_source("t1", max_behind=50000)]),))
    snap = T.snapshot(NOW, spark=[T.spark_app("app", [q])])
    assert run("spark_query_lag", snap) == [{"app": "app", "query": "q", "topic": "t1", "_value": 50000.0}]


def test_spark_failed_jobs_counter_window_and_reset():
    windows = {("etl", "spark_app", "etl"): [{"at": NOW - 500, "failed_jobs": 3}, {"at": NOW, "failed_jobs": 5}]}
    assert run("spark_failed_jobs", _spark(failed_jobs=5), windows) == [{"app": "etl", "_value": 2.0}]
    assert run("spark_failed_jobs", _spark(failed_jobs=3), {("etl", "spark_app", "etl"): [
        {"at": NOW - 500, "failed_jobs": 3}]}) == []
    assert run("spark_failed_jobs", _spark(failed_jobs=1), windows) == [{"app": "etl", "_value": 1.0}]  # restart
    assert run("spark_failed_jobs", _spark(failed_jobs=5), {}) == []  # no baseline


def test_spark_failed_jobs_from_job_list():
    app = T.spark_app("etl", failed_job_times=[NOW - 40, NOW - 5000])
    assert run("spark_failed_jobs", T.snapshot(NOW, spark=[app])) == [{"app": "etl", "_value": 1.0}]


def test_spark_rules_on_partial_data():
    """Apps without queries or jobs, queries without batches or a known state: no samples, no error."""
    partial = T.snapshot(NOW, spark=[T.spark_app("bare"), T.spark_app("idle", [
        T.spark_query("new", state=QueryState.UNKNOWN, trigger_interval_ms=None),
        T.spark_query("running", batches=(T.spark_batch(1, None, None, None, None, status="RUNNING"),))])])
    for kind in ("spark_batch_over_trigger", "spark_processing_below_input", "spark_query_lag",
                 "spark_query_failed", "spark_failed_jobs", "spark_app_down"):
        assert run(kind, partial) == []


def test_window_rows_and_rolling_inputs_feed_duration_rules():
    inp = RollingInputs(max_age=7200)
    for t, rate, brokers in ((NOW - 1200, 10.0, 3), (NOW - 600, 0.0, 3), (NOW, 0.0, 2)):
        inp.observe(T.snapshot(t, [T.cluster_state("prod", brokers=brokers,
                                                    topics=[T.topic_rates("prod", "orders", rate)], at=t)]))
    snap = inp.latest_snapshot()
    kinds = {k for _, k, _, _ in window_rows(snap)}
    assert {"cluster", "topic"} <= kinds
    r = rule("topic_produce_stopped")
    assert [s.label_dict for s in evaluate_rule(r, snap, inp.window, NOW)] == [{"cluster": "prod", "topic": "orders"}]
    r = rule("broker_count_dropped")
    assert [s.value for s in evaluate_rule(r, snap, inp.window, NOW)] == [1.0]



@pytest.mark.parametrize("kinds", [None, ("spark_query", "spark_app"), ("group",), ("cluster", "spark_app"), ()])
def test_window_rows_of_some_kinds_are_those_of_all_kinds(kinds):
    """The app keeps only Spark rows in memory and asks for those alone; the rows are the same."""
    snap = T.snapshot(NOW, [T.cluster_state("prod", brokers=3, topics=[T.topic_rates("prod", "orders", 5.0)],
                                            groups=[T.group_lag("prod", "g1", {("orders", 0): 7}, at=NOW)], at=NOW)],
                      spark=[T.spark_app("etl", [T.spark_query("q", batches=_batches([1000, 2000]))], failed_jobs=2)])
    every = window_rows(snap)
    assert {k for _, k, _, _ in every} == {"cluster", "topic", "group", "spark_query", "spark_app"}
    expected = every if kinds is None else [r for r in every if r[1] in kinds]
    assert window_rows(snap, kinds) == expected

# ------------------------------------------------------------------------------ matchers


@pytest.mark.parametrize("text,labels,ok", [
    ('group=~"orders-.*"', {"group": "orders-eu"}, True),
    ('group=~"orders-.*"', {"group": "xorders-eu"}, False),  # anchored
    ('group!~"orders-.*"', {"group": "billing"}, True),
    ('cluster="prod"', {"cluster": "prod"}, True),
    ("cluster=prod", {"cluster": "prod"}, True),
    ('cluster!="prod"', {}, True),
    ('topic=""', {}, True),  # absent label == empty string
    ('topic=~".+"', {}, False),
    (r'q="a\"b"', {"q": 'a"b'}, True),
])
def test_matchers(text, labels, ok):
    assert Matcher.parse(text).matches(labels) is ok


def test_matcher_errors_and_roundtrip():
    with pytest.raises(MatcherError, match="invalid regex"):
        Matcher.parse('group=~"("')
    with pytest.raises(MatcherError, match="invalid matcher"):
        Matcher.parse("not a matcher")
    m = Matcher.parse('group=~"a.*"')
    assert Matcher.from_dict(m.to_dict()) == m and str(m) == 'group=~"a.*"'


def test_rule_matchers_filter_samples():
    g1 = T.group_lag("prod", "orders-eu", {("a", 0): 500}, at=NOW)
    g2 = T.group_lag("prod", "billing", {("a", 0): 500}, at=NOW)
    out = run("consumer_lag_messages", kafka([g1, g2]), threshold=1, matchers=['group=~"orders-.*"', 'cluster="prod"'])
    assert [o["group"] for o in out] == ["orders-eu"]


# ------------------------------------------------------------------------------ templates


def test_template_rendering():
    tpl = compile_template("{group} on {labels.cluster} at {value:.1f} > {threshold:.0f} ({value_human}) "
                           "{labels[topic]}{missing} {{literal}} {dashboard_url}")
    ctx = {"value": 12345.678, "threshold": 100.0, "value_human": "12.3k", "dashboard_url": "http://d/x"}
    assert tpl.render(ctx, {"group": "g", "cluster": "c", "topic": "t"}) == \
        "g on c at 12345.7 > 100 (12.3k) t {literal} http://d/x"


def test_template_spec_mismatch_falls_back_to_text():
    assert compile_template("{group:.2f}").render({}, {"group": "abc"}) == "abc"


@pytest.mark.parametrize("rule, source, context, labels, expected", [
    ("Rule 1 - a bare name is a label, labels.NAME and labels[NAME] too; a missing one is ''",
     "{group}/{labels.group}/{labels['group']}/{nope}", {}, {"group": "g"}, "g/g/g/"),
    ("Rule 2 - a reserved name is the context's, never a label", "{value}", {}, {"value": "label"}, ""),
    ("Rule 3 - None is ''", "[{value}] [{value:.1f}]", {"value": None}, {}, "[] []"),
    ("Rule 4 - a whole float reads as an integer below 1e15, else 4 significant digits",
     "{value} {threshold}", {"value": 3.0, "threshold": 1e15}, {}, "3 1e+15"),
    ("Rule 5 - other floats: 4 significant digits", "{value}", {"value": 0.123456}, {}, "0.1235"),
    ("Rule 6 - NaN and infinities read as such, without failing", "{value} {threshold}",
     {"value": float("nan"), "threshold": float("-inf")}, {}, "nan -inf"),
    ("Rule 7 - a spec formats the value", "{value:.2f}|{value:>8,.0f}", {"value": 12345.678}, {}, "12345.68|  12,346"),
    ("Rule 8 - a spec that does not fit the value falls back to the plain text", "{value:.2f}",
     {"value": "n/a"}, {}, "n/a"),
    ("Rule 9 - !s makes text first, so the spec applies to text", "{value!s:>6}|{value!s}", {"value": 2.5}, {},
     "   2.5|2.5"),
    ("Rule 10 - {{ and }} are literal braces", "{{x}} {value}", {"value": 1}, {}, "{x} 1"),
])
def test_template_render_rules(rule, source, context, labels, expected):
    assert compile_template(source).render(context, labels) == expected, rule


@pytest.mark.parametrize("bad", ["{value.__class__}", "{labels.group.__init__}", "{value!r}", "{0}",
                                 "{value:{threshold}}", "{__import__('os')}", "{value[0]}", "{unclosed"])
def test_template_rejects_unsafe_fields(bad):
    with pytest.raises(TemplateError):
        compile_template(bad)


def test_engine_annotations_use_templates(tmp_path):
    from alerts.engine import AlertEngine
    from alerts.store import StateStore

    rs = rules_from_dicts([{"name": "Lag", "kind": "consumer_lag_messages", "threshold": 10,
                            "summary": "{group} is {value_human} behind", "description": "see {dashboard_url}",
                            "annotations": {"runbook_url": "https://wiki/{alertname}"}, "labels": {"team": "data"}}])
    cfg = parse_alerting_config({"dashboard_url": "http://dash:8050/"})
    eng = AlertEngine(cfg, rs, StateStore())
    g = T.group_lag("prod", "orders & <b>", {("a", 0): 25000}, at=NOW)
    res = eng.evaluate(T.inputs(kafka([g])), NOW)
    a = res.alerts[0]
    assert a.labels == {"alertname": "Lag", "severity": "warning", "team": "data", "cluster": "prod",
                        "group": "orders & <b>", "topic": "a"}
    assert a.annotations["summary"] == "orders & <b> is 25k behind"
    assert a.annotations["description"] == "see http://dash:8050/groups?cluster=prod&group=orders%20%26%20%3Cb%3E"
    assert a.annotations["runbook_url"] == "https://wiki/Lag"


def test_engine_annotations_work_out_only_the_fields_the_templates_use_and_render_the_same(tmp_path):
    """The engine's context holds only the fields a rule's templates use (`context_fields`);
    what they render is what the whole context renders, for a first value and for a changed one
    (the dashboard link then reused)."""
    from alerts.engine import AlertEngine
    from alerts.routing import dashboard_link
    from alerts.store import StateStore
    from alerts.templates import RESERVED, template_context

    every_field = " ".join(f"{{{name}}}" for name in sorted(RESERVED))
    rs = rules_from_dicts([{"name": "Lag", "kind": "consumer_lag_messages", "threshold": 10, "for": "5m",
                            "summary": "{group}: {value_duration} ({value:.1f})", "description": every_field},
                           {"name": "Quiet", "kind": "consumer_lag_messages", "threshold": 10,
                            "summary": "{group}", "description": "{threshold:.0f}"}])
    lag, quiet = rs.rules
    assert lag.context_fields == RESERVED and quiet.context_fields == {"threshold"}
    cfg = parse_alerting_config({"dashboard_url": "http://dash:8050/"})
    eng = AlertEngine(cfg, rs, StateStore())
    for at, value in ((NOW, 25000), (NOW + 10, 26500.5)):
        g = T.group_lag("prod", "orders", {("a", 0): value}, at=at)
        by_rule = {a.alertname: a for a in eng.evaluate(T.inputs(kafka([g])), at).alerts}
        for rule in rs.rules:
            alert = by_rule[rule.name]
            everything = template_context(value=alert.value, threshold=rule.effective_threshold, alertname=rule.name,
                                          severity=rule.severity, kind=rule.kind.value, for_seconds=rule.for_,
                                          dashboard_url=dashboard_link(cfg.dashboard_url, alert.labels))
            assert alert.annotations == {key: t.render(everything, alert.labels) for key, t in rule.templates.items()}
        assert by_rule["Lag"].annotations["summary"] == f"orders: {'6h56m' if value == 25000 else '7h21m'} ({value:.1f})"
    assert "http://dash:8050/groups?cluster=prod&group=orders" in by_rule["Lag"].annotations["description"]
    assert "5m" in by_rule["Lag"].annotations["description"]  # `for`


# ------------------------------------------------------------------------------ rule files


def test_default_rules_load_and_cover_every_kind():
    rs = load_rules()
    assert {r.kind for r in rs.rules} == set(RuleKind)
    assert all(r.summary and r.description for r in rs.rules)


def test_user_file_merges_by_name(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(textwrap.dedent("""
        rules:
          - {name: StreamscopeConsumerLagHigh, threshold: 50, matchers: ['group=~"orders.*"']}
          - {name: StreamscopeSparkJobsFailed, enabled: false}
          - name: MyLag
            kind: consumer_lag_seconds
            threshold: 60
            for: 30s
    """))
    rs = load_rules([f])
    lag = rs.by_name("StreamscopeConsumerLagHigh")
    assert lag.effective_threshold == 50 and lag.for_ == 300 and lag.matchers == ('group=~"orders.*"',)
    assert not rs.by_name("StreamscopeSparkJobsFailed").enabled
    assert "StreamscopeSparkJobsFailed" not in {r.name for r in rs.enabled}
    assert rs.by_name("MyLag").for_ == 30
    assert rs.origins["MyLag"] == str(f)


@pytest.mark.parametrize("body,expected", [
    ("rules:\n  - {name: X, kind: consumer_lag_messages, thresold: 5}\n",
     "rules[0] (X): thresold: unknown key 'thresold' (did you mean 'threshold'?)"),
    ("rules:\n  - {name: X, kind: lag}\n", "rules[0] (X): kind:"),
    ("rules:\n  - {name: X}\n", "rules[0] (X): kind: required key is missing"),
    ("rules:\n  - {name: X, kind: consumer_lag_messages, for: soon}\n", "for: invalid duration 'soon'"),
    ("rules:\n  - {name: X, kind: consumer_lag_messages, consecutive: 3}\n",
     "'consecutive' is only valid for kind spark_batch_over_trigger"),
    ("rules:\n  - {name: X, kind: consumer_lag_messages, matchers: ['group=~\"(\"']}\n", "invalid regex"),
    ("rules:\n  - {name: X, kind: consumer_lag_messages, summary: '{value.__class__}'}\n", "summary:"),
    ("rules:\n  - {name: X, kind: consumer_lag_messages}\n  - {name: X, kind: group_status}\n",
     "duplicate rule name 'X'"),
    ("rule:\n  - {name: X}\n", "rule: unknown key 'rule' (did you mean 'rules'?)"),
    ("rules: [\n", "invalid YAML"),
])
def test_rule_file_errors_name_file_and_key(tmp_path, body, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(AlertConfigError) as exc:
        load_rules([f], include_defaults=False)
    assert str(f) in str(exc.value)
    assert expected in str(exc.value)


def test_override_with_bad_value_names_user_file(tmp_path):
    f = tmp_path / "o.yaml"
    f.write_text("rules:\n  - {name: StreamscopeConsumerLagHigh, severity: 'not ok'}\n")
    with pytest.raises(AlertConfigError, match=r"o\.yaml: rules\[0\] \(StreamscopeConsumerLagHigh\): severity"):
        load_rules([f])


def test_missing_rule_file():
    with pytest.raises(AlertConfigError, match="cannot read rule file"):
        load_rules(["/nonexistent/rules.yaml"])


# ------------------------------------------------------------------------------ config


def test_config_unknown_key_is_named(tmp_path):
    f = tmp_path / "streamscope.yaml"
    f.write_text(yaml.safe_dump({"alerting": {"receivers": {"slack": [
        {"name": "s", "url_env": "X", "chanel": "#ops"}]}}}))
    with pytest.raises(AlertConfigError) as exc:
        load_alerting_config(f)
    assert str(exc.value) == f"{f}: alerting.receivers.slack[0].chanel: unknown key 'chanel' (did you mean 'channel'?)"


@pytest.mark.parametrize("data,expected", [
    ({"route": {"receivers": ["nope"]}}, "unknown receiver 'nope'"),
    ({"route": {"group_wait": "later"}}, "alerting.route.group_wait: invalid duration"),
    ({"receivers": {"slack": [{"name": "s", "url": "https://hooks.slack.com/x"}]}}, "unknown key 'url'"),
    ({"receivers": {"slack": [{"name": "s"}]}}, "one of url_env, url_file is required"),
    ({"receivers": {"email": [{"name": "e", "host": "h", "from": "a@b", "to": ["c@d"], "username": "u",
                               "password_env": "P", "tls": "none"}]}}, "clear text"),
    ({"receivers": {"webhook": [{"name": "a", "url": "http://x"}], "slack": [{"name": "a", "url_env": "X"}]}},
     "receiver name 'a' used twice"),
    ({"receivers": {"alertmanager": [{"name": "am", "url": "http://x"}]}, "route": {"receivers": ["am"]}},
     "alertmanager receiver"),
    ({"inhibit_rules": [{"equal": ["cluster"]}]}, "needs source_matchers or source_kinds"),
    ({"evaluation_interval": 0}, "alerting.evaluation_interval: Input should be greater than 0"),
    # a receiver's timeout is bounded: it is how long one send may hold up that receiver
    ({"receivers": {"webhook": [{"name": "w", "url": "http://x", "timeout": "10m"}]}},
     "alerting.receivers.webhook[0].timeout: Input should be less than or equal to 120"),
    ({"receivers": {"slack": [{"name": "s", "url_env": "X", "timeout": float("inf")}]}},
     "alerting.receivers.slack[0].timeout: duration must be a finite number"),
    ({"receivers": {"email": [{"name": "e", "host": "h", "from": "a@b", "to": ["c@d"], "timeout": float("nan")}]}},
     "alerting.receivers.email[0].timeout: duration must be a finite number"),
    ({"receivers": {"alertmanager": [{"name": "am", "url": "http://x", "timeout": 0}]}},
     "alerting.receivers.alertmanager[0].timeout: Input should be greater than 0"),
    ({"route": {"group_wait": float("inf")}}, "alerting.route.group_wait: duration must be a finite number"),
])
def test_config_errors(data, expected):
    with pytest.raises(AlertConfigError, match=None) as exc:
        parse_alerting_config(data, source="s.yaml")
    assert expected in str(exc.value), str(exc.value)
    assert str(exc.value).startswith("s.yaml: alerting")


def test_config_defaults_and_nested_routes():
    cfg = parse_alerting_config({
        "receivers": {"webhook": [{"name": "w", "url": "http://127.0.0.1:9/x"}],
                      "email": [{"name": "m", "host": "smtp", "from": "a@b.c", "to": "ops@b.c"}]},
        "route": {"receivers": ["w"], "routes": [{"matchers": ['severity="critical"'], "receivers": ["m"],
                                                  "continue": True}]},
    })
    assert isinstance(cfg, AlertingConfig)
    assert cfg.receivers.email[0].to == ("ops@b.c",) and cfg.receivers.email[0].from_ == "a@b.c"
    assert cfg.route.routes[0].continue_ is True
    assert cfg.inhibit_rules and RuleKind.COLLECTOR_DOWN in cfg.inhibit_rules[0].source_kinds


# ------------------------------------------------------------------------------ secrets


def test_secret_never_printed():
    s = Secret("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    assert repr(s) == "Secret('***')" and str(s) == "***" and f"{s}" == "***" and "%s" % s == "***"
    assert "XXXX" not in repr([s]) and "XXXX" not in repr({"k": s})
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)
    err = "ConnectionError: HTTPSConnectionPool(host='hooks.slack.com'): Max retries with url: /services/T000/B000/XXXXSECRET"
    assert "XXXXSECRET" not in redact(err, s) and "T000" not in redact(err, s)


def test_secret_resolution_env_and_file(tmp_path):
    assert resolve_secret(value_env="A", environ={"A": " v1 \n"}).get() == "v1"
    p = tmp_path / "pw"
    p.write_text("v2\n")
    assert resolve_secret(value_file=str(p)).get() == "v2"
    with pytest.raises(SecretError, match="environment variable MISSING"):
        resolve_secret(value_env="MISSING", environ={})
    with pytest.raises(SecretError, match="cannot read file"):
        resolve_secret(value_file=str(tmp_path / "nope"))


def test_secrets_absent_from_config_and_notifier_reprs(tmp_path):
    secret_url = "https://hooks.slack.com/services/T1/B2/SUPERSECRETTOKEN"
    pw = tmp_path / "smtp-pw"
    pw.write_text("hunter2-password")
    cfg = parse_alerting_config({"receivers": {
        "slack": [{"name": "s", "url_env": "SLACK_URL"}],
        "email": [{"name": "m", "host": "smtp", "from": "a@b.c", "to": ["x@y.z"], "username": "u",
                   "password_file": str(pw)}],
        "webhook": [{"name": "w", "url_env": "HOOK", "bearer_token_env": "TOKEN"}],
        "alertmanager": [{"name": "am", "url_env": "AM_URL"}],
    }})
    env = {"SLACK_URL": secret_url, "HOOK": "http://h/secret-path-123", "TOKEN": "tok-abcdef",
           "AM_URL": "http://user:am-pass@am:9093"}
    notifiers = build_notifiers(cfg, env)
    blob = repr(cfg) + repr(notifiers) + str(notifiers) + repr(cfg.model_dump())
    for secret in (secret_url, "SUPERSECRETTOKEN", "hunter2-password", "secret-path-123", "tok-abcdef", "am-pass"):
        assert secret not in blob
    assert cfg.receivers.slack[0].resolve_url(env).get() == secret_url
    with pytest.raises(SecretError, match="SLACK_URL"):
        cfg.receivers.slack[0].resolve_url({})


def test_default_rule_names_match_prometheus_rule_file():
    prom = yaml.safe_load((DEFAULT_RULES_PATH.parent / "prometheus" / "streamscope-rules.yml").read_text())
    prom_alerts = {r["alert"]: r for g in prom["groups"] for r in g["rules"]}
    defaults = {r.name: r for r in load_rules().rules}
    assert set(prom_alerts) == set(defaults)
    for name, r in defaults.items():
        assert prom_alerts[name]["labels"]["severity"] == r.severity, name
    tested = set()
    for f in (DEFAULT_RULES_PATH.parent / "prometheus" / "tests").glob("*.yml"):
        for t in yaml.safe_load(f.read_text())["tests"]:
            tested |= {c["alertname"] for c in t.get("alert_rule_test", [])}
    assert tested == set(prom_alerts), "every Prometheus alert needs a promtool test"


def test_sample_of_drops_none_labels():
    assert Sample.of(1, a="x", b=None).labels == (("a", "x"),)


# ------------------------------------------------------------------------------ real Spark models


def test_spark_rules_on_collectors_spark_models():
    sm = pytest.importorskip("collectors.spark.models")
    from collectors.models import PartitionMetadata, Topic

    def batch(i, dur_ms, inp, proc, end=None, latest=None):
        src = ()
        if end is not None:
            src = (sm.SourceProgress(
                description="KafkaV2[Subscribe[events]]", start_offset=None, end_offset=None, latest_offset=None,
                end_offsets=tuple(sm.PartitionOffset("events", p, o) for p, o in enumerate(end)),
                latest_offsets=tuple(sm.PartitionOffset("events", p, o) for p, o in enumerate(latest or end))),)
        return sm.BatchProgress(batch_id=i, run_id="r", origin="listener", received_at=NOW - 60 + i * 10,
                                timestamp=NOW - 60 + i * 10, duration_ms=dur_ms, input_rows_per_second=inp,
                                processed_rows_per_second=proc, sources=src)

    running = sm.BatchProgress(batch_id=9, run_id="r", origin="sql", received_at=NOW, timestamp=NOW,
                               duration_ms=None, status="RUNNING")
    ingest = sm.StreamingQuery(
        id="id-1", name="ingest", run_id="r", state=sm.QueryState.ACTIVE, exception=None, last_batch_id=3,
        batches=(batch(1, 900, 100.0, 60.0), batch(2, 900, 100.0, 70.0, end=[100, 200], latest=[150, 200]),
                 running),
        updated_at=NOW)
    broken = sm.StreamingQuery(id="id-2", name=None, run_id="r", state=sm.QueryState.FAILED,
                               exception="StreamingQueryException: boom", last_batch_id=1, batches=(),
                               updated_at=NOW)
    app = sm.SparkAppSnapshot(
        app=sm.SparkApp(id="app-1", name="etl", ui_url=None, attempt=None, start_time=NOW - 999, end_time=None,
                        spark_version="4.2.0", completed=False, fetched_at=NOW),
        collected_at=NOW, queries=(ingest, broken),
        jobs=sm.JobSummary(active=1, failed=2, succeeded=None, fetched_at=NOW, failed_jobs=(
            sm.FailedJob(1, "j1", None, NOW - 100, NOW - 90, 1, 1),
            sm.FailedJob(2, "j2", None, NOW - 9000, NOW - 8990, 1, 1))))
    # the Kafka side knows the topic end offsets: 12_000 + 30_000 ahead of the query
    topic = Topic("events", (PartitionMetadata("events", 0, 1, (1,), (1,), 0, 12_100),
                             PartitionMetadata("events", 1, 1, (1,), (1,), 0, 30_200)))
    snap = T.snapshot(NOW, [T.cluster_state("prod", at=NOW, raw_topics=[topic])], spark=[app])

    assert run("spark_query_failed", snap) == [{"app": "etl", "query": "id-2", "_value": 1.0}]
    assert run("spark_query_lag", snap) == [{"app": "etl", "query": "ingest", "topic": "events", "_value": 42000.0}]
    assert run("spark_processing_below_input", snap) == [{"app": "etl", "query": "ingest", "_value": 0.7}]
    assert run("spark_failed_jobs", snap) == [{"app": "etl", "_value": 1.0}]
    # no trigger interval in the model yet: nothing to compare the batch durations with
    assert run("spark_batch_over_trigger", snap, consecutive=2) == []
    # without the Kafka side, the source's own latestOffset is used
    alone = T.snapshot(NOW, spark=[app])
    assert run("spark_query_lag", alone, threshold=1) == [
        {"app": "etl", "query": "ingest", "topic": "events", "_value": 50.0}]


def test_spark_app_down_fires_for_a_running_app_that_does_not_answer():
    from dataclasses import replace

    from collectors.spark import models as sm
    from collectors.spark.views import spark_views

    def app(app_id, name, **kw):
        return sm.SparkAppSnapshot(app=sm.SparkApp(
            id=app_id, name=name, ui_url=None, attempt=None, start_time=NOW - 999, end_time=None,
            spark_version="4.3.0", completed=kw.pop("completed", False), fetched_at=NOW),
            collected_at=NOW, **kw)

    refused = sm.SourceStatus(source="applications", url="u", fetched_at=NOW, ok=False,
                              error="connection refused")
    killed = app("app-1", "etl", stale=True, sources=(refused,))  # last data, driver gone
    restarted = app("app-2", "etl")
    done = app("app-3", "report", completed=True, stale=True)  # finished: not "down"
    hung = app("app-4", "batch", sources=(refused,))  # listed by a master, driver unreachable
    apps = [killed, restarted, done, hung]
    snap = T.snapshot(NOW, spark=apps)
    assert run("spark_app_down", snap) == [{"app": "batch", "_value": 1.0},
                                           {"app": "etl (app-1)", "_value": 1.0}]
    # labelled exactly like the exported series
    assert {a.label for a in spark_views(apps) if a.unreachable} == {"etl (app-1)", "batch"}
    assert run("spark_app_down", T.snapshot(NOW, spark=[restarted, replace(done, stale=False)])) == []
    # stale (no answer this cycle) and not finished: down
    assert run("spark_app_down", T.snapshot(NOW, spark=[
        T.spark_app("a", stale=True), T.spark_app("b", stale=True, completed=True),
        T.spark_app("c")])) == [{"app": "a", "_value": 1.0}]


def test_history_inputs_route_kafka_windows_to_history_and_keep_spark_in_memory():
    from alerts.inputs import HistoryInputs

    calls = []

    def history_window(cluster, kind, key, seconds, now):
        calls.append((cluster, kind, key))
        if kind not in ("group", "topic", "cluster"):
            raise ValueError(f"window kind must be 'group', 'topic' or 'cluster', not {kind!r}")
        return [{"at": now - 100, "brokers": 3}] if kind == "cluster" else []

    snaps = [T.snapshot(NOW - 300, [T.cluster_state("prod", brokers=2, at=NOW - 300)],
                        spark=[T.spark_app("etl", failed_jobs=1)]),
             T.snapshot(NOW, [T.cluster_state("prod", brokers=2, at=NOW)],
                        spark=[T.spark_app("etl", failed_jobs=4)])]
    current = [snaps[0]]
    inp = HistoryInputs(lambda: current[0], history_window)
    inp.latest_snapshot()
    current[0] = snaps[1]
    snap = inp.latest_snapshot()
    assert [s.value for s in evaluate_rule(rule("broker_count_dropped"), snap, inp.window, NOW)] == [1.0]
    assert [s.value for s in evaluate_rule(rule("spark_failed_jobs"), snap, inp.window, NOW)] == [3.0]
    assert ("prod", "cluster", "") in calls and not any(k.startswith("spark") for _, k, _ in calls)
    # a history that rejects a kind yields no rows instead of failing the rule
    assert evaluate_rule(rule("spark_failed_jobs"), snap, history_window, NOW) == []


def test_topic_produce_stopped_over_a_real_history_reads_peaks_and_answers_as_the_rows_do(tmp_path):
    """Through the app's inputs (a real SQLite history) the rule asks the greatest produce rate
    of every topic in one query, and finds what the per-topic rows give, window by window."""
    from alerts.inputs import HistoryInputs
    from monitor.storage import History

    history = History(tmp_path / "history.db", clock=lambda: NOW)
    try:
        # orders: produced until 30 min ago; spiky: once, 50 min ago, at 0.5 msg/s; unused: never;
        # live: produces now; late: produced 2 h ago only (outside the 1 h window)
        series = {"orders": lambda age: 12.0 if age >= 1800 else 0.0, "spiky": lambda age: 0.5 if age == 3000 else 0.0,
                  "unused": lambda age: 0.0, "live": lambda age: 5.0, "late": lambda age: 3.0 if age >= 7200 else 0.0}
        for age in range(7800, -1, -300):
            history.kafka.append(T.cluster_state("prod", at=NOW - age, topics=[
                T.topic_rates("prod", name, rate(age)) for name, rate in series.items()]))
        # fresh: in no cycle of the history yet, and (as no rate is) below a negative threshold
        snap = kafka(topics=[T.topic_rates("prod", name, rate(0)) for name, rate in series.items()]
                     + [T.topic_rates("prod", "fresh", -1.0)])
        rows_read = []

        def window(*args):
            rows_read.append(args[2])
            return history.kafka.window(*args)

        with_peaks = HistoryInputs(lambda: snap, window, history_peaks=history.kafka.window_peaks)
        rows_only = HistoryInputs(lambda: snap, window)
        for window_text, threshold in (("1h", 0), ("10m", 0), ("3h", 0), ("1h", 1), ("2h", 2.9), ("1h", -0.5)):
            r = rule("topic_produce_stopped", window=window_text, threshold=threshold)
            rows_read.clear()
            peaks = sorted(s.label_dict["topic"] for s in evaluate_rule(r, snap, with_peaks.window, NOW, with_peaks.peaks))
            assert rows_read == [] or threshold < 0
            rows = sorted(s.label_dict["topic"] for s in evaluate_rule(r, snap, rows_only.window, NOW))
            assert rows_read  # (the rows were read this time)
            assert peaks == rows, window_text
        assert sorted(s.label_dict["topic"] for s in evaluate_rule(rule("topic_produce_stopped"), snap, with_peaks.window,
                                                                 NOW, with_peaks.peaks)) == ["orders", "spiky"]
    finally:
        history.close()
