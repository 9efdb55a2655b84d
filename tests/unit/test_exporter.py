"""Exporter: fresh families per snapshot, escaping, cached serialisation."""
import math
from dataclasses import replace

import pytest

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor.web.metrics import MetricsCache, SnapshotCollector
from collectors.models import (
    ClusterState, CollectorHealth, GroupLag, KafkaClusterSnapshot, KafkaLagView, PartitionLag, Snapshot,
    Status, TimeLagMethod, TopicRates,
)


def partition(group, topic, p, lag, seconds, method=TimeLagMethod.EXACT):
    return PartitionLag(group=group, topic=topic, partition=p, committed_offset=100, end_offset=100 + lag, lag=lag,
                        time_lag_seconds=seconds, time_lag_method=method, consume_rate=5.0, status=Status.OK)


def group(name, parts, *, status=Status.OK, eta=None, consume=10.0, produce=5.0, members=1):
    lag = sum(p.lag for p in parts)
    return GroupLag(cluster="c1", group=name, state="Stable" if members else "Empty", members=members,
                    is_empty=not members, empty_since=None, lag=lag,
                    time_lag_seconds=max((p.time_lag_seconds or 0) for p in parts), time_lag_method=TimeLagMethod.EXACT,
                    consume_rate=consume, produce_rate=produce, eta_seconds=eta, status=status,
                    partitions=tuple(parts), topics=tuple(sorted({p.topic for p in parts})), fetched_at=1.0)


def snapshot(groups, topics=()):
    raw = KafkaClusterSnapshot(cluster="c1", started_at=0.0, finished_at=1.0, controller_id=1)
    state = ClusterState(raw=raw, lag=KafkaLagView(cluster="c1", at=1.0, groups=tuple(groups), topics=tuple(topics)))
    health = CollectorHealth(name="kafka:c1", kind="kafka", up=True, last_attempt_at=0.0, last_success_at=1.0,
                             duration_seconds=0.5, cycles_total=3, failures_total=1)
    return Snapshot(at=1.0, clusters=(state,), health=(health,))


def scrape(current, **kw):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: current[0], **kw))
    cache = MetricsCache(registry)
    cache.refresh()
    text = cache.latest().decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def values(families, name, **labels):
    family = families.get(name.removesuffix("_total"))  # the parser names counter families without _total
    if family is None:  # a histogram's series are in the family named without _bucket/_sum/_count
        family = families[name.rsplit("_", 1)[0]]
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples
            if all(s.labels.get(k) == v for k, v in labels.items()) and s.name == name}


def test_group_lag_is_summed_per_topic_and_time_lag_is_the_worst_partition():
    g = group("g1", [partition("g1", "a", 0, 10, 3.0), partition("g1", "a", 1, 5, 7.0, TimeLagMethod.INTERPOLATED),
                     partition("g1", "b", 0, 1, 1.0)])
    _, families = scrape([snapshot([g])])
    lag = values(families, "streamscope_kafka_consumergroup_lag")
    assert lag == {(("cluster", "c1"), ("group", "g1"), ("topic", "a")): 15,
                   (("cluster", "c1"), ("group", "g1"), ("topic", "b")): 1}
    assert values(families, "streamscope_kafka_consumergroup_lag_seconds", topic="a") == {
        (("cluster", "c1"), ("group", "g1"), ("topic", "a")): 7.0}
    assert list(values(families, "streamscope_kafka_consumergroup_lag_seconds_exact", topic="a").values()) == [0.0]
    assert list(values(families, "streamscope_kafka_consumergroup_consume_rate", topic="a").values()) == [10.0]


def test_status_is_a_stateset_with_exactly_one_active_value():
    _, families = scrape([snapshot([group("g1", [partition("g1", "a", 0, 1, 1.0)], status=Status.WARN)])])
    status = {dict(k)["status"]: v for k, v in values(families, "streamscope_kafka_consumergroup_status").items()}
    assert status == {"OK": 0, "WARN": 1, "STALL": 0, "STOP": 0, "REWIND": 0, "ERR": 0}


def test_eta_is_infinite_when_not_catching_up_and_absent_when_unknown():
    catching = group("up", [partition("up", "a", 0, 100, 1.0)], eta=20.0)
    losing = group("down", [partition("down", "a", 0, 100, 1.0)], eta=None, consume=1.0, produce=5.0)
    unknown = group("new", [partition("new", "a", 0, 100, 1.0)], eta=None, consume=None, produce=None)
    _, families = scrape([snapshot([catching, losing, unknown])])
    eta = {dict(k)["group"]: v for k, v in values(families, "streamscope_kafka_consumergroup_eta_seconds").items()}
    assert eta["up"] == 20.0 and math.isinf(eta["down"]) and "new" not in eta


def test_deleted_group_disappears_from_the_next_serialisation():
    current = [snapshot([group("kept", [partition("kept", "a", 0, 1, 1.0)]),
                         group("deleted", [partition("deleted", "a", 0, 1, 1.0)])])]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: current[0]))
    cache = MetricsCache(registry)
    assert 'group="deleted"' in cache.refresh().decode()
    current[0] = snapshot([group("kept", [partition("kept", "a", 0, 1, 1.0)])])
    assert 'group="deleted"' in cache.latest().decode()  # scrapes serve the cycle's bytes...
    text = cache.refresh().decode()  # ...until the next cycle serialises again
    assert 'group="deleted"' not in text and 'group="kept"' in text


def test_hostile_label_values_round_trip():
    names = ['quote"d', "new\nline", "<script>x</script>", "back\\slash"]
    groups = [group(n, [partition(n, "a", 0, 1, 1.0)]) for n in names]
    text, families = scrape([snapshot(groups)])
    got = {dict(k)["group"] for k in values(families, "streamscope_kafka_consumergroup_members")}
    assert got == set(names)
    assert 'group="new\\nline"' in text and 'group="quote\\"d"' in text


def test_partition_series_only_when_enabled():
    snap = [snapshot([group("g", [partition("g", "a", 0, 4, 1.0)])])]
    text, _ = scrape(snap)
    assert "streamscope_kafka_consumergroup_partition_lag" not in text
    _, families = scrape(snap, partition_metrics=True)
    assert list(values(families, "streamscope_kafka_consumergroup_partition_lag").values()) == [4]


def test_health_metrics():
    _, families = scrape([snapshot([])])
    assert list(values(families, "streamscope_collector_up").values()) == [1]
    assert list(values(families, "streamscope_collector_failures_total").values()) == [1]
    assert list(values(families, "streamscope_collector_last_success_timestamp_seconds").values()) == [1.0]


def test_empty_registry_before_first_cycle():
    text, families = scrape([None])
    assert "streamscope_build_info" in families
    assert "streamscope_kafka_consumergroup_lag" not in text


def with_health(**changes):

    snap = snapshot([])
    return replace(snap, health=(replace(snap.health[0], **changes),))


def test_restarts_are_counted_per_reason_only_for_collectors_with_a_child_process():
    _, families = scrape([with_health(restarts=(("exit", 0), ("signal", 2), ("timeout", 1)))])
    assert values(families, "streamscope_collector_restarts_total") == {
        (("collector", "kafka:c1"), ("kind", "kafka"), ("reason", "exit")): 0,
        (("collector", "kafka:c1"), ("kind", "kafka"), ("reason", "signal")): 2,
        (("collector", "kafka:c1"), ("kind", "kafka"), ("reason", "timeout")): 1}
    _, families = scrape([snapshot([])])  # in-process collector: nothing restarts
    assert values(families, "streamscope_collector_restarts_total") == {}


def test_last_error_info_names_the_kind_of_error_only_while_failing():
    failing = with_health(up=False, error="authentication failed: SASL authentication error", error_kind="authentication")
    _, families = scrape([failing])
    assert values(families, "streamscope_collector_last_error_info") == {
        (("collector", "kafka:c1"), ("error", "authentication"), ("kind", "kafka")): 1}
    # a kind outside the documented set (or none, e.g. from Spark) stays a bounded label
    _, families = scrape([with_health(up=False, error="boom", error_kind="a fresh idea")])
    assert [dict(k)["error"] for k in values(families, "streamscope_collector_last_error_info")] == ["other"]
    _, families = scrape([snapshot([])])
    assert values(families, "streamscope_collector_last_error_info") == {}


def test_kafka_families_written_as_text_are_the_same_series():
    """What /metrics serves (the Kafka families written directly) equals the registry's own
    serialisation of them, series for series, hostile names included."""
    from monitor.web.metrics import snapshot_metrics

    parts = [partition(name, "t", i, 10 * i, 1.5 * i) for i, name in enumerate(['a"b', "new\nline", "back\\s"])]
    current = [snapshot([group(p.group, [p]) for p in parts], [TopicRates("c1", "t", 3, 30, 30, 2.0, (1.0,) * 3, 0, 0)])]
    _, reference = scrape(current, partition_metrics=True)
    _, cache = snapshot_metrics(lambda: current[0], partition_metrics=True)
    served = {f.name: f for f in text_string_to_metric_families(cache.refresh().decode())}

    def series(families):
        return {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families.values() for s in f.samples
                if not (isinstance(s.value, float) and math.isnan(s.value))}

    assert series(served) == series(reference)
    assert values(served, "streamscope_kafka_consumergroup_lag", group="new\nline") == {
        (("cluster", "c1"), ("group", "new\nline"), ("topic", "t")): 10.0}


def test_the_metrics_keep_no_snapshot_once_serialised():
    """/metrics serialises a snapshot and lets it go: the last cycle's snapshot, held by the
    collector until the next serialisation, stayed alive while the next one was published and its
    alerts evaluated (the parent's peak, docs/performance.md, the thirty-second pass)."""
    import gc

    from monitor.web.metrics import snapshot_metrics

    first = snapshot([group("g1", [partition("g1", "t", 0, 5, 1.0)])])
    current = [first]
    collector, cache = snapshot_metrics(lambda: current[0], partition_metrics=False)
    assert b'group="g1"' in cache.refresh()
    current[0] = None  # published no more: nothing but the metrics could hold it now
    assert collector not in gc.get_referrers(first)
    assert b'group="g1"' in cache.latest()  # the bytes served are kept, not the snapshot


# --------------------------------------------------------------------- what the peers show (issue 15)

def peers_snapshot(*, probe=True):
    """A cluster with topic settings, log dirs, a group at risk and one that lost records, a probe."""

    from collectors.models import (ConsumerGroup, GroupMember, Histogram, LogDir, PartitionMetadata,
                                   PartitionRetention, ProbeStats, RetentionRisk, Topic, TopicConfig)

    topics = (
        Topic("orders", (PartitionMetadata("orders", 0, 1, (1, 2, 3), (1, 2, 3), 0, 100, size_bytes=1000),
                         PartitionMetadata("orders", 1, 2, (1, 2, 3), (2,), 0, 100, size_bytes=900)),
              config=TopicConfig("delete", 86_400_000, -1, 2)),
        Topic("changelog", (PartitionMetadata("changelog", 0, 3, (3, 1, 2), (3, 1, 2), 0, 10),),
              config=TopicConfig("compact", -1, -1, 1)),
        Topic("unknown", (PartitionMetadata("unknown", 0, 1, (1,), (1,), 0, 10),)),
    )
    dirs = (LogDir(1, "/data", 5000, 10_000, 4000, topic_bytes=(("orders", 1000),)),
            LogDir(2, "/data", 6000, topic_bytes=(("orders", 1900),)),
            LogDir(3, "/bad", 0, error="KafkaStorageError"))
    h = Histogram((0.01, 0.1), (3, 4, 5), 1.25)
    stats = ProbeStats("streamscope-probe", 3, False, 7, 21, 19, (("setup", 0), ("produce", 0), ("timeout", 2), ("commit", 1)),
                       h, h, h, last_round_at=5.0, last_success_at=4.0, error="2 of 3 record(s) not back within 5 s")
    risks = (RetentionRisk("g", "orders", 0, 0, 1800.0, "time", partitions=(PartitionRetention("orders", 0, 0, 1800.0, "time"),)),
             RetentionRisk("lost", "orders", 12, 1, 0.0, "lost", partitions=(PartitionRetention("orders", 1, 12, 0.0, "lost"),)),
             RetentionRisk("g", "changelog", 0, 0, None, "compacted", partitions=(PartitionRetention("changelog", 0, 0, None, "compacted"),)),
             RetentionRisk("ok", "orders", 0, 0, math.inf, "caught_up"))
    snap = snapshot([group(name, [partition(name, "orders", 0, 1, 1.0)]) for name in ("g", "lost", "ok")])
    state = snap.clusters[0]
    member = GroupMember("m1", "c1", "/h", (("orders", 0),))
    raw = replace(state.raw, topics=topics, log_dirs=dirs, log_dirs_fetched_at=3.0, groups=(
        ConsumerGroup("g", "Stable", (member,), (), 1.0, coordinator=2, assignor="cooperative-sticky"),
        ConsumerGroup("lost", "Empty", (), (), 1.0, protocol_type="simple", coordinator=1)))
    state = replace(state, raw=raw, lag=replace(state.lag, retention=risks), probe=stats if probe else None)
    return replace(snap, clusters=(state,))


def key(**labels):
    return tuple(sorted({"cluster": "c1", **labels}.items()))


def test_topic_settings_and_min_isr():
    _, families = scrape([peers_snapshot()])
    assert values(families, "streamscope_kafka_topic_info") == {
        key(topic="orders", cleanup_policy="delete", retention_ms="86400000", retention_bytes="-1"): 1,
        key(topic="changelog", cleanup_policy="compact", retention_ms="-1", retention_bytes="-1"): 1}
    assert values(families, "streamscope_kafka_topic_retention_seconds") == {
        key(topic="orders"): 86400.0, key(topic="changelog"): math.inf}
    assert values(families, "streamscope_kafka_topic_min_insync_replicas") == {key(topic="orders"): 2, key(topic="changelog"): 1}
    # a topic whose settings are not known has no under-min-ISR count, rather than a false 0
    assert values(families, "streamscope_kafka_topic_partitions_under_min_isr") == {
        key(topic="orders"): 1, key(topic="changelog"): 0}
    assert values(families, "streamscope_kafka_topic_replication_factor")[key(topic="orders")] == 3


def test_partition_health_is_opt_in():
    text, _ = scrape([peers_snapshot()])
    assert "streamscope_kafka_partition_leader" not in text and "streamscope_kafka_partition_log_bytes" not in text
    _, families = scrape([peers_snapshot()], partition_metrics=True)
    orders1 = key(topic="orders", partition="1")
    assert {name: values(families, name)[orders1] for name in (
        "streamscope_kafka_partition_leader", "streamscope_kafka_partition_replicas",
        "streamscope_kafka_partition_in_sync_replicas", "streamscope_kafka_partition_leader_is_preferred",
        "streamscope_kafka_partition_under_replicated", "streamscope_kafka_partition_under_min_isr",
        "streamscope_kafka_partition_log_bytes")} == {
        "streamscope_kafka_partition_leader": 2, "streamscope_kafka_partition_replicas": 3,
        "streamscope_kafka_partition_in_sync_replicas": 1, "streamscope_kafka_partition_leader_is_preferred": 0,
        "streamscope_kafka_partition_under_replicated": 1, "streamscope_kafka_partition_under_min_isr": 1,
        "streamscope_kafka_partition_log_bytes": 900}
    assert values(families, "streamscope_kafka_partition_leader_is_preferred")[key(topic="orders", partition="0")] == 1


def test_an_offline_partition_is_not_under_min_isr_per_topic_or_per_partition():

    from collectors.models import PartitionMetadata, Topic, TopicConfig

    snap = peers_snapshot()
    offline = Topic("gone", (PartitionMetadata("gone", 0, -1, (3,), (), 0, 10),), config=TopicConfig("delete", 1, -1, 1))
    state = snap.clusters[0]
    snap = replace(snap, clusters=(replace(state, raw=replace(state.raw, topics=state.raw.topics + (offline,))),))
    _, families = scrape([snap], partition_metrics=True)
    assert values(families, "streamscope_kafka_topic_partitions_under_min_isr")[key(topic="gone")] == 0
    assert values(families, "streamscope_kafka_partition_under_min_isr")[key(topic="gone", partition="0")] == 0


def test_log_dirs():
    _, families = scrape([peers_snapshot()])
    assert values(families, "streamscope_kafka_broker_log_dir_bytes") == {
        key(broker="1", log_dir="/data"): 5000, key(broker="2", log_dir="/data"): 6000}
    # volume sizes only where the broker reports them (Kafka 3.3+)
    assert values(families, "streamscope_kafka_broker_log_dir_usable_bytes") == {key(broker="1", log_dir="/data"): 4000}
    assert values(families, "streamscope_kafka_broker_log_dir_online")[key(broker="3", log_dir="/bad")] == 0
    assert values(families, "streamscope_kafka_topic_log_bytes") == {key(topic="orders"): 2900}
    assert values(families, "streamscope_kafka_log_dirs_complete") == {key(): 1}


def test_log_dirs_complete_is_0_while_some_are_unknown_and_absent_when_never_asked():
    snap = peers_snapshot()
    state = snap.clusters[0]
    partial = replace(state.raw, log_dirs_error="log directories of broker(s) not given (kept from before): 2: no answer")
    _, families = scrape([replace(snap, clusters=(replace(state, raw=partial),))])
    assert values(families, "streamscope_kafka_log_dirs_complete") == {key(): 0}
    # the request failed before any answer: no directories and no fetch time, still 0
    failed = replace(partial, log_dirs=(), log_dirs_fetched_at=None, log_dirs_error="DescribeLogDirs failed: timed out")
    _, families = scrape([replace(snap, clusters=(replace(state, raw=failed),))])
    assert values(families, "streamscope_kafka_log_dirs_complete") == {key(): 0}
    never = replace(failed, log_dirs_error=None)  # log_dirs_every 0, or the librdkafka client
    text, _ = scrape([replace(snap, clusters=(replace(state, raw=never),))])
    assert "\nstreamscope_kafka_log_dirs_complete{" not in text


def test_topic_configs_complete_is_0_while_some_settings_are_unknown_and_absent_when_never_asked():
    snap = peers_snapshot()
    state = snap.clusters[0]
    _, families = scrape([snap])
    assert values(families, "streamscope_kafka_topic_configs_complete") == {key(): 1}
    refused = replace(state.raw, topic_configs_error="settings of 1 topic(s) unknown: x (TopicAuthorizationFailedError)")
    _, families = scrape([replace(snap, clusters=(replace(state, raw=refused),))])
    assert values(families, "streamscope_kafka_topic_configs_complete") == {key(): 0}
    never = replace(state.raw, topics=tuple(replace(t, config=None) for t in state.raw.topics))  # topic_configs_every 0
    text, _ = scrape([replace(snap, clusters=(replace(state, raw=never),))])
    assert "\nstreamscope_kafka_topic_configs_complete{" not in text


def test_retention_headroom_and_records_lost():
    _, families = scrape([peers_snapshot()], partition_metrics=True)
    assert values(families, "streamscope_kafka_consumergroup_retention_headroom_seconds") == {
        key(group="g", topic="orders"): 1800.0, key(group="lost", topic="orders"): 0.0,
        key(group="ok", topic="orders"): math.inf}  # compacted: absent, not a number
    assert values(families, "streamscope_kafka_consumergroup_records_lost") == {
        key(group="g", topic="orders"): 0, key(group="lost", topic="orders"): 12,
        key(group="g", topic="changelog"): 0, key(group="ok", topic="orders"): 0}
    assert values(families, "streamscope_kafka_consumergroup_partition_records_lost") == {
        key(group="g", topic="orders", partition="0"): 0, key(group="lost", topic="orders", partition="1"): 12,
        key(group="g", topic="changelog", partition="0"): 0}


def test_group_coordinator_protocol_and_assignor():
    _, families = scrape([peers_snapshot()])
    assert values(families, "streamscope_kafka_consumergroup_coordinator") == {key(group="g"): 2, key(group="lost"): 1}
    assert values(families, "streamscope_kafka_consumergroup_protocol_info") == {
        key(group="g", protocol_type="consumer", assignor="cooperative-sticky"): 1,
        key(group="lost", protocol_type="simple", assignor=""): 1}


def test_probe_histograms_and_counters():
    _, families = scrape([peers_snapshot()])
    assert values(families, "streamscope_kafka_probe_up") == {key(): 0}
    assert values(families, "streamscope_kafka_probe_roundtrip_seconds_bucket") == {
        key(le="0.01"): 3, key(le="0.1"): 4, key(le="+Inf"): 5}
    assert values(families, "streamscope_kafka_probe_roundtrip_seconds_sum") == {key(): 1.25}
    assert values(families, "streamscope_kafka_probe_records_sent_total") == {key(): 21}
    assert values(families, "streamscope_kafka_probe_failures_total")[key(reason="timeout")] == 2
    text, _ = scrape([peers_snapshot(probe=False)])
    assert "streamscope_kafka_probe_up{" not in text


def test_peer_families_written_as_text_are_the_same_series():
    from monitor.web.metrics import snapshot_metrics

    current = [peers_snapshot()]
    _, reference = scrape(current, partition_metrics=True)
    _, cache = snapshot_metrics(lambda: current[0], partition_metrics=True)
    served = {f.name: f for f in text_string_to_metric_families(cache.refresh().decode())}

    def series(families):
        return {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families.values() for s in f.samples}

    assert series(served) == series(reference)
    assert any(name == "streamscope_kafka_probe_commit_seconds_count" for name, _, _ in series(served))


def test_incomplete_group_listing_and_failed_groups_are_counted_not_silent():

    from collectors.models import ConsumerGroup

    groups = (ConsumerGroup(name="ok", state="Stable", members=(), offsets=(), offsets_fetched_at=1.0),
              ConsumerGroup(name="loading", state="Unknown", members=(), offsets=(), offsets_fetched_at=1.0,
                            error="CoordinatorLoadInProgressError"))
    current = [snapshot([])]
    state = current[0].clusters[0]
    complete = replace(state, raw=replace(state.raw, groups=groups))
    current[0] = replace(current[0], clusters=(complete,))
    _, families = scrape(current)
    assert values(families, "streamscope_kafka_consumergroups_listing_complete") == {(("cluster", "c1"),): 1.0}
    assert values(families, "streamscope_kafka_consumergroups_failed") == {(("cluster", "c1"),): 1.0}
    partial = replace(state, raw=replace(state.raw, groups=groups[:1], groups_complete=False))
    current[0] = replace(current[0], clusters=(partial,))
    _, families = scrape(current)
    assert values(families, "streamscope_kafka_consumergroups_listing_complete") == {(("cluster", "c1"),): 0.0}
    assert values(families, "streamscope_kafka_consumergroups_failed") == {(("cluster", "c1"),): 0.0}
    failed_cycle = replace(state, raw=replace(state.raw, error="unreachable", error_kind="unreachable"))
    current[0] = replace(current[0], clusters=(failed_cycle,))
    _, families = scrape(current)
    assert values(families, "streamscope_kafka_consumergroups_listing_complete") == {}  # collector_up says why


def test_per_topic_families_equal_a_plain_reference_over_random_groups():
    """lag and readable lag summed per (group, topic); lag_seconds the worst timed partition's (the
    first of equals), exact from that partition's method, lower_bound if any timed partition is
    one; consume rate summed over the known rates; absent when nothing is known."""
    import random

    rng = random.Random(14)
    methods = [TimeLagMethod.EXACT, TimeLagMethod.INTERPOLATED]
    groups = []
    for g in range(60):
        parts = []
        for i in range(rng.randint(1, 9)):
            seconds = rng.choice([None, 0.0, 5.0, 5.0, rng.uniform(0, 50)])
            parts.append(partition(f"g{g}", rng.choice("abc"), i, rng.randint(0, 9), seconds,
                                   rng.choice(methods) if seconds is not None else TimeLagMethod.NONE)._replace(
                                 readable_lag=rng.randint(0, 9), time_lag_lower_bound=rng.random() < 0.3,
                                 consume_rate=rng.choice([None, 0.0, rng.uniform(0, 9)])))
        groups.append(group(f"g{g}", parts))
    _, families = scrape([snapshot(groups)])
    expected: dict[str, dict] = {name: {} for name in ("lag", "readable_lag", "lag_seconds", "lag_seconds_exact",
                                                       "lag_seconds_lower_bound", "consume_rate")}
    for g in groups:
        for topic in sorted({p.topic for p in g.partitions}):
            parts = [p for p in g.partitions if p.topic == topic]
            key = (("cluster", "c1"), ("group", g.group), ("topic", topic))
            expected["lag"][key] = sum(p.lag for p in parts)
            expected["readable_lag"][key] = sum(p.readable_lag for p in parts)
            timed = [p for p in parts if p.time_lag_seconds is not None]
            if timed:
                worst = next(p for p in timed if p.time_lag_seconds == max(q.time_lag_seconds for q in timed))
                expected["lag_seconds"][key] = worst.time_lag_seconds
                expected["lag_seconds_exact"][key] = float(worst.time_lag_method is TimeLagMethod.EXACT)
                expected["lag_seconds_lower_bound"][key] = float(any(p.time_lag_lower_bound for p in timed))
            rates = [p.consume_rate for p in parts if p.consume_rate is not None]
            if rates:
                expected["consume_rate"][key] = sum(rates)
    for name, want in expected.items():
        got = values(families, f"streamscope_kafka_consumergroup_{name}")
        assert got.keys() == want.keys(), name
        for key, value in want.items():
            assert got[key] == pytest.approx(value), (name, key)
    assert len(expected["lag_seconds_exact"]) > 20 and 0 < sum(expected["lag_seconds_exact"].values()) < 100
