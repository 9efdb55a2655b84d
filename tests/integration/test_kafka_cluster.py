"""The collector and monitor against a real three-node Apache Kafka 4.x cluster (KRaft, every
node broker and controller): what one broker cannot show — partition leaders and group
coordinators on different brokers, replication, a broker leaving and coming back.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
import yaml
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.http_standin import RecordingReceiver
from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from demo.jars import PrerequisiteMissing
from demo.kafka_cluster import KafkaCluster
from demo.kafka_tools import describe_group, quorum_leader
from monitor.app.root import Monitor
from monitor.app.config import Config
from tests.conftest import missing_prerequisite
from tests.helpers import wait_until
from tests.kafka_helpers import commit, produce

pytestmark = pytest.mark.integration

PARTITIONS, PER_PARTITION = 6, 30


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    try:
        triad = KafkaCluster.started(nodes=3)
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start a real Kafka cluster: {error}")
    try:
        yield triad
    finally:
        triad.stop()


def create_replicated_topic(bootstrap: str, topic: str, config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 3, config=config or {})])[topic].result(30)

    def ready():
        t = admin.list_topics(topic, timeout=5).topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == PARTITIONS and all(
            p.leader >= 0 and len(p.isrs) == 3 for p in t.partitions.values())

    wait_until(ready, 30, f"topic {topic} with leaders and full ISRs")


def leaders_on_preferred_replicas(bootstrap: str) -> None:
    """Every partition's leader back on its preferred replica, where Kafka spread them when the
    topic was made, and `__consumer_offsets` (the group coordinators) led by two brokers or more.
    With heartbeats this short (`broker.session.timeout.ms` 3 s), a node held up on a loaded
    machine is fenced for a moment and its leaders move to the others; Kafka moves them back only
    after `leader.imbalance.check.interval.seconds` (5 minutes): seen once in CI, every group
    then had broker 1 as coordinator. A node can be fenced again after the election (seen in CI:
    still one leader 30 s later), so the election is asked again every few seconds until the
    coordinators are spread."""
    from confluent_kafka import ElectionType, KafkaException

    admin = AdminClient({"bootstrap.servers": bootstrap})
    elected_at = [float("-inf")]

    def coordinators_spread():
        if time.monotonic() - elected_at[0] >= 5:
            elected_at[0] = time.monotonic()
            try:
                admin.elect_leaders(ElectionType.PREFERRED, None).result(30)  # per partition: done, or not needed
            except KafkaException:  # no controller this moment: asked again next time
                pass
        offsets = admin.list_topics("__consumer_offsets", timeout=5).topics.get("__consumer_offsets")
        return offsets is not None and len({p.leader for p in offsets.partitions.values() if p.leader >= 0}) >= 2

    wait_until(coordinators_spread, 90, "__consumer_offsets led by two brokers or more", interval=0.5)


def test_leaders_and_coordinators_on_three_brokers(cluster, unique_name):
    bootstrap = cluster.bootstrap
    topic = unique_name("spread")
    create_replicated_topic(bootstrap, topic)
    produce(bootstrap, topic, per_partition=PER_PARTITION, partitions=PARTITIONS)
    groups = [unique_name(f"g{i}") for i in range(40)]
    for i, group in enumerate(groups):
        commit(bootstrap, group, {(topic, p): (i + p) % (PER_PARTITION + 1) for p in range(PARTITIONS)})
    leaders_on_preferred_replicas(bootstrap)

    mine = set(groups).__contains__
    seen = {}
    for batched in (True, False):
        collector = KafkaCollector(KafkaCollectorSettings(cluster="triad", bootstrap_servers=bootstrap,
                                                          request_timeout=10, group_filter=mine,
                                                          batched_group_requests=batched))
        raw = collector.collect()
        assert raw.ok, raw.error
        seen[batched] = (raw, collector.batched_requests_sent)
        collector.close()
    raw, batched_requests = seen[True]

    assert [b.id for b in raw.brokers] == [1, 2, 3] and raw.controller_id in (1, 2, 3)
    (mine_topic,) = [t for t in raw.topics if t.name == topic]
    assert {p.leader for p in mine_topic.partitions} == {1, 2, 3}
    assert all(len(p.replicas) == 3 and len(p.isr) == 3 for p in mine_topic.partitions)
    assert [p.latest_offset for p in mine_topic.partitions] == [PER_PARTITION] * PARTITIONS

    by_name = {g.name: g for g in raw.groups}
    coordinators = {g.coordinator for g in by_name.values()}
    assert len(coordinators) >= 2 and coordinators <= {1, 2, 3}, coordinators
    # the batched client's requests for 40 groups on 3 brokers: its connections (versions,
    # bootstrap metadata), one Metadata, one FindCoordinator, one OffsetFetch and DescribeGroups
    # per coordinator, and one ListOffsets per leader for the earliest, latest and last stable
    # offsets: a handful per broker, not per group, and fewer in all than the per-group path
    assert batched_requests <= 26, batched_requests
    assert raw.requests < seen[False][0].requests, (raw.requests, seen[False][0].requests)
    single = {g.name: g for g in seen[False][0].groups}
    for name in groups:
        a, b = by_name[name], single[name]
        assert (a.state, a.coordinator, a.offsets) == (b.state, b.coordinator, b.offsets), name

    # Kafka's own tool agrees on the lag of groups on different coordinators
    latest = {(p.topic, p.partition): p.latest_offset for p in mine_topic.partitions}
    checked = {}
    for name in groups:
        coordinator = by_name[name].coordinator
        if coordinator in checked:
            continue
        oracle = {(r["topic"], r["partition"]): r["lag"] for r in describe_group(bootstrap, name)}
        assert oracle == {(o.topic, o.partition): latest[(o.topic, o.partition)] - o.offset
                          for o in by_name[name].offsets}, name
        checked[coordinator] = name
    assert len(checked) == len(coordinators)


def test_metadata_is_decoded_again_only_when_it_changed_though_each_answer_names_another_controller(cluster):
    """KRaft brokers cannot name the active controller to a client: each Metadata answer names a
    broker picked at random. Answers that differ in that alone give back the kept ClusterInfo with
    the answer's controller id (`collectors.kafka.metadata_answers`, rule 4): the collector decodes
    a steady cluster's metadata once, not in most cycles."""
    from collectors.kafka.group_requests import BatchedGroupRequests

    batched = BatchedGroupRequests(cluster.bootstrap, {}, 10.0, client_id="test-metadata-triad")
    try:
        infos = [batched.metadata() for _ in range(24)]
        answers = batched.metadata_answers
        assert answers.decoded + answers.unchanged == len(infos)
        controllers = {info.controller_id for info in infos}
        assert len(controllers) >= 2 and controllers <= {1, 2, 3}, controllers
        # an answer whose topics are the previous ones was not decoded again (a leader or ISR
        # that really moved meanwhile is a new answer, and decoded)
        wasted = [k for k in range(1, len(infos))
                  if infos[k].topics == infos[k - 1].topics and infos[k].topics is not infos[k - 1].topics]
        assert not wasted, (wasted, answers.decoded)
        assert answers.decoded <= 3, answers.decoded
    finally:
        batched.close()


def test_the_controller_is_the_metadata_quorums_leader_and_follows_it_when_it_leaves(cluster):
    """The active controller is what `kafka-metadata-quorum describe --status` names (LeaderId),
    cycle after cycle; not the random broker each Metadata answer names on KRaft. When that node
    leaves, the next leader the quorum elects is shown."""
    bootstrap = cluster.bootstrap
    collector = KafkaCollector(KafkaCollectorSettings(cluster="triad", bootstrap_servers=bootstrap,
                                                      request_timeout=10, group_filter=lambda _name: False))
    try:
        leader = quorum_leader(bootstrap)
        assert [collector.collect().controller_id for _ in range(8)] == [leader] * 8
        cluster.stop_node(leader - 1)
        try:
            def new_leader_shown():
                shown = collector.collect().controller_id
                return shown not in (None, leader) and shown == quorum_leader(bootstrap)

            wait_until(new_leader_shown, 90, f"a controller other than node {leader}, as the quorum names it",
                       interval=0.5)
        finally:
            cluster.start_node(leader - 1)
        wait_until(lambda: len(collector.collect().brokers) == 3, 60, "the node back among the brokers", interval=0.5)
    finally:
        collector.close()


def _families(monitor: Monitor) -> dict:
    text = requests.get(f"{monitor.web.url}/metrics", timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict, name: str, **labels) -> float | None:
    family = families.get(name)
    for sample in family.samples if family else ():
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def notified(hook: RecordingReceiver) -> set[tuple[str, str]]:
    """(alertname, status) of every alert in the webhook notifications received so far."""
    return {(a["labels"]["alertname"], a["status"]) for r in hook.requests for a in r.json()["alerts"]}


def test_broker_leaving_shows_in_health_metrics_and_alerts_then_clears(cluster, unique_name, tmp_path):
    bootstrap = cluster.bootstrap
    topic, group, single = unique_name("replicated"), unique_name("reader"), unique_name("only-on-node-3")
    create_replicated_topic(bootstrap, topic)
    # acks=all producers need all three replicas in sync here: with one broker away they fail
    strict = unique_name("strict")
    create_replicated_topic(bootstrap, strict, {"min.insync.replicas": "3"})
    # a topic with one replica, on node 3: while node 3 is away its partitions have no leader
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(single, num_partitions=2, replica_assignment=[[3], [3]])])[single].result(30)
    produce(bootstrap, topic, per_partition=PER_PARTITION, partitions=PARTITIONS)
    commit(bootstrap, group, {(topic, p): 10 for p in range(PARTITIONS)})
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "UnderReplicated", "kind": "under_replicated_partitions", "threshold": 0, "for": "0s",
         "matchers": [f'topic="{topic}"']},
        {"name": "BrokerLeft", "kind": "broker_count_dropped", "threshold": 1, "window": "10m", "for": "0s",
         "severity": "critical"},
        {"name": "Offline", "kind": "offline_partitions", "threshold": 0, "for": "0s", "severity": "critical"},
        {"name": "UnderMinIsr", "kind": "under_min_isr_partitions", "threshold": 0, "for": "0s", "severity": "critical"},
    ]}))
    with RecordingReceiver(path="/hook") as hook:
        config = Config.model_validate({
            "clusters": [{"name": "triad", "bootstrap_servers": bootstrap}],
            "history": {"path": str(tmp_path / "history.db")}, "web": {"port": 0},
            "collection": {"interval_seconds": 1}, "exporter": {"partition_metrics": True},
            "alerting": {"include_default_rules": False, "rules_files": [str(rules)],
                         "receivers": {"webhook": [{"name": "hook", "url": hook.url}]},
                         "route": {"receivers": ["hook"], "group_by": ["alertname"], "group_wait": "0s",
                                   "group_interval": "1s"}},
        })
        monitor = Monitor(config).start(serve=True, loop=False)
        try:
            def cycle(predicate):
                state = monitor.run_cycle().clusters[0]
                # While a broker is away, ListGroups may miss the groups it coordinated: they are
                # carried from the cycle before, never dropped from a cycle that succeeded.
                if not state.stale:
                    assert group in {g.name for g in state.raw.groups}, (
                        f"the group vanished from a cycle (listing complete: {state.raw.groups_complete})")
                return predicate(_families(monitor))

            def health(brokers: int, under_replicated: float, offline: float, under_min_isr: float):
                return lambda f: (
                    _value(f, "streamscope_kafka_brokers", cluster="triad") == brokers
                    and _value(f, "streamscope_kafka_topic_partitions_under_replicated", topic=topic) == under_replicated
                    and _value(f, "streamscope_kafka_topic_partitions_offline", topic=single) == offline
                    and _value(f, "streamscope_kafka_topic_partitions_under_min_isr", topic=strict) == under_min_isr
                    and _value(f, "streamscope_kafka_topic_partitions_under_min_isr", topic=topic) == 0)

            wait_until(lambda: cycle(health(3, 0, 0, 0)), 30,
                       "3 brokers, no under-replicated, offline or under-min-ISR partition", interval=0.2)
            assert _value(_families(monitor), "streamscope_kafka_topic_min_insync_replicas", topic=strict) == 3
            assert monitor.alerting.list_alerts("firing") == []

            cluster.stop_node(2)  # controlled shutdown: leaders move, node 3 leaves every ISR
            wait_until(lambda: cycle(health(2, PARTITIONS, 2, PARTITIONS)), 60,
                       "2 brokers, every partition under-replicated and (min ISR 3) under min ISR, the single-replica "
                       "topic offline", interval=0.2)
            families = _families(monitor)
            # per partition (kafka_exporter's view): two replicas in sync everywhere, and the
            # partitions node 3 led (its preferred replica first) are led by another broker now
            partitions = [str(p) for p in range(PARTITIONS)]
            assert [_value(families, "streamscope_kafka_partition_in_sync_replicas", topic=topic, partition=p)
                    for p in partitions] == [2] * PARTITIONS
            moved = [p for p in partitions if _value(families, "streamscope_kafka_partition_leader_is_preferred",
                                                     topic=topic, partition=p) == 0]
            assert moved and all(_value(families, "streamscope_kafka_partition_leader", topic=topic, partition=p)
                                 in (1, 2) for p in partitions), moved
            # consumption state is intact with a broker gone: the lag is still exact
            assert _value(families, "streamscope_kafka_consumergroup_lag", group=group, topic=topic) == \
                PARTITIONS * (PER_PARTITION - 10)
            alerts = monitor.alerting.list_alerts("firing")
            firing = {a["alertname"]: a for a in alerts}
            # one alert per rule: the offline single-replica topic is offline, not under min ISR
            assert len(alerts) == 4, "\n".join(str((a["alertname"], a["labels"].get("topic"), a["value"])) for a in alerts)
            assert set(firing) == {"UnderReplicated", "BrokerLeft", "Offline", "UnderMinIsr"}
            assert firing["UnderReplicated"]["value"] == PARTITIONS and firing["BrokerLeft"]["value"] == 1
            assert firing["UnderMinIsr"]["value"] == PARTITIONS and firing["UnderMinIsr"]["labels"]["topic"] == strict
            assert firing["Offline"]["value"] == 2 and firing["Offline"]["labels"]["topic"] == single
            wait_until(lambda: notified(hook) >= {(name, "firing") for name in firing}, 20,
                       "the webhook to get the four FIRING notifications")

            cluster.start_node(2)
            wait_until(lambda: cycle(health(3, 0, 0, 0)), 90, "node 3 back in every ISR and leading its topic",
                       interval=0.5)
            assert monitor.alerting.list_alerts("firing") == []
            states = {a["alertname"]: a["state"] for a in monitor.alerting.list_alerts()}
            assert states == {"UnderReplicated": "resolved", "BrokerLeft": "resolved", "Offline": "resolved",
                              "UnderMinIsr": "resolved"}
            wait_until(lambda: notified(hook) >= {(name, "resolved") for name in states}, 20,
                       "the webhook to get the four RESOLVED notifications")
            assert notified(hook) == {(name, status) for name in states for status in ("firing", "resolved")}
        finally:
            monitor.stop()
