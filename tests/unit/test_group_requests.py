"""Translation of a cluster's librdkafka `client` settings for the batched group client."""
from __future__ import annotations

import logging

import pytest
from kafka.errors import KafkaTimeoutError

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from collectors.kafka.group_requests import kafka_python_config
from tests.kafka_answers import offset_fetch_body

TRANSLATED = [
    ({}, {}),
    ({"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u",
      "sasl_plain_password": "p"}),
    ({"sasl.mechanisms": "PLAIN"}, {"sasl_mechanism": "PLAIN"}),
    ({"ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/c.pem", "ssl.key.location": "/k.pem",
      "ssl.key.password": "kp", "ssl.endpoint.identification.algorithm": "none"},
     {"ssl_cafile": "/ca.pem", "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem", "ssl_password": "kp",
      "ssl_check_hostname": False}),
    ({"ssl.endpoint.identification.algorithm": "https"}, {"ssl_check_hostname": True}),
    # librdkafka tuning that does not decide how to connect is not kafka-python's business
    ({"statistics.interval.ms": 100, "socket.keepalive.enable": True, "client.id": "me"}, {"client_id": "me"}),
]
UNSUPPORTED = [
    {"sasl.oauthbearer.method": "oidc"},
    {"ssl.keystore.location": "/ks.p12"},
    {"security.protocol": "SSL", "ssl.engine.location": "/engine.so"},
]


@pytest.mark.parametrize("librdkafka, expected", TRANSLATED)
def test_connection_settings_are_translated(librdkafka, expected):
    assert kafka_python_config(librdkafka) == expected


@pytest.mark.parametrize("librdkafka", UNSUPPORTED)
def test_a_connection_setting_without_equivalent_means_one_call_per_group(librdkafka):
    assert kafka_python_config(librdkafka) is None
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                      client_config=librdkafka))
    assert collector._batched_requests() is None


def test_batched_requests_can_be_switched_off():
    off = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                batched_group_requests=False))
    assert off._batched_requests() is None
    on = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    assert on._batched_requests() is not None  # created lazily; connects at its first request


class _StubAdmin:
    """Answers like the collector's kafka-python admin client (`group_requests._AdminClient`): a
    batched OffsetFetch answers each group with its offsets or its own error; DescribeGroups
    reports errors per group."""

    def __init__(self, offsets, failing, describe_errors=()):
        self.offsets, self.failing, self.describe_errors = offsets, set(failing), set(describe_errors)
        self.calls = []

    def list_group_offsets(self, names):
        from kafka.errors import GroupAuthorizationFailedError

        self.calls.append(list(names))
        return {n: GroupAuthorizationFailedError(f"OffsetFetchResponse failed for group '{n}'.") if n in self.failing
                else self.offsets[n] for n in names}

    def describe_groups(self, names):
        return {n: {"group_state": "Empty", "protocol_type": "", "members": [],
                    "error": "[Error 69] GroupIdNotFoundError: not a classic group" if n in self.describe_errors else None}
                for n in names}


def _batched_with(*admins):
    """A batched client whose kafka-python clients are `admins`, one per (re)connection."""
    from collectors.kafka.group_requests import BatchedGroupRequests

    class Stubbed(BatchedGroupRequests):
        def _new_client(self):
            return clients.pop(0)

    clients = list(admins)
    return Stubbed("127.0.0.1:1", {}, 1.0, client_id="t")


def _offset_fetch_response(groups):
    """A real OffsetFetch v8 response, encoded and decoded by kafka-python: `groups` maps a group
    to its error code or to (topic, partition, committed offset, error code) rows."""
    from kafka.protocol.consumer import OffsetFetchResponse as R

    return R.decode(offset_fetch_body(groups), version=8)


def test_each_group_gets_its_offsets_or_its_own_error():
    from kafka.errors import GroupAuthorizationFailedError, UnknownTopicOrPartitionError

    from collectors.kafka.group_requests import offsets_of_groups

    response = _offset_fetch_response({
        "a": [("t", 1, 12, 0), ("s", 0, 3, 0), ("t", 0, 2, 0), ("t", 2, -1, 0)],
        "denied": 30,  # GROUP_AUTHORIZATION_FAILED
        "broken": [("t", 0, 5, 0), ("t", 1, -1, 3)],  # UNKNOWN_TOPIC_OR_PARTITION
        "none": [],
    })
    answer = offsets_of_groups(response)
    # sorted by (topic, partition); a partition without a commit (-1) left out
    assert [(o.topic, o.partition, o.offset) for o in answer["a"]] == [("s", 0, 3), ("t", 0, 2), ("t", 1, 12)]
    assert all(o.committed for o in answer["a"])
    assert isinstance(answer["denied"], GroupAuthorizationFailedError) and "'denied'" in str(answer["denied"])
    assert isinstance(answer["broken"], UnknownTopicOrPartitionError)
    assert answer["none"] == ()


def test_a_failing_group_costs_only_its_own_offsets():
    from collectors.models import CommittedOffset

    names = [f"g{i}" for i in range(5)]
    offsets = {n: (CommittedOffset("t", 0, i), CommittedOffset("t", 1, 10 + i)) for i, n in enumerate(names)}
    admin = _StubAdmin(offsets, failing={"g3"})
    result = _batched_with(admin).committed_offsets(names)
    assert admin.calls == [names]  # one batched request, no retry for the others
    assert set(result.offsets) == {"g0", "g1", "g2", "g4"} and set(result.fetched_at) == set(result.offsets)
    assert "g3" in result.errors["g3"] and "GroupAuthorizationFailed" in result.errors["g3"]
    assert result.offsets["g2"] == offsets["g2"]


def test_groups_describe_groups_cannot_describe_are_handed_back():
    described, failed = _batched_with(_StubAdmin({}, (), describe_errors={"new"})).describe(["old", "new"])
    assert set(described) == {"old"} and described["old"].protocol_type == "simple"
    assert list(failed) == ["new"] and "not a classic group" in failed["new"]


def test_the_batched_client_never_logs_the_sasl_password(caplog):
    """kafka-python logs its whole configuration at DEBUG when a client starts; the SASL password
    is in it. The record is dropped (the broker here is unreachable: the client fails fast)."""
    import logging

    from collectors.kafka.group_requests import BatchedGroupRequests, GroupRequestTimeout

    config = kafka_python_config({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                  "sasl.username": "u", "sasl.password": "hunter2-secret"})
    batched = BatchedGroupRequests("127.0.0.1:1", config, 0.5, client_id="t")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(GroupRequestTimeout):
            batched.committed_offsets(["g"])
    assert caplog.records, "kafka-python logged nothing at DEBUG: the test would prove nothing"
    assert not [r for r in caplog.records if "hunter2-secret" in r.getMessage()]


def test_a_moved_coordinator_is_found_again_by_a_new_client():
    """kafka-python does not forget a cached coordinator: after NOT_COORDINATOR the client is
    replaced, and the group-by-group retry of the same cycle already gets the offsets."""
    from kafka.errors import NotCoordinatorError

    from collectors.models import CommittedOffset

    class Moved(_StubAdmin):
        closed = False

        def list_group_offsets(self, names):
            self.calls.append(list(names))
            raise NotCoordinatorError("coordinator moved")

        def close(self):
            self.closed = True

    stale = Moved({}, ())
    fresh = _StubAdmin({"a": (CommittedOffset("t", 0, 5),), "b": ()}, ())
    result = _batched_with(stale, fresh).committed_offsets(["a", "b"])
    assert stale.calls == [["a", "b"]] and stale.closed
    assert fresh.calls == [["a"], ["b"]]
    assert result.errors == {} and [o.offset for o in result.offsets["a"]] == [5] and result.offsets["b"] == ()


def test_a_group_whose_coordinator_moved_is_asked_again_through_a_new_client():
    """NOT_COORDINATOR as one group's answer in a batch: that group, and only it, is asked again
    through a new client in the same cycle."""
    from kafka.errors import NotCoordinatorError

    from collectors.models import CommittedOffset

    class OneMoved(_StubAdmin):
        closed = False

        def list_group_offsets(self, names):
            answer = super().list_group_offsets(names)
            answer["b"] = NotCoordinatorError("OffsetFetchResponse failed for group 'b'.")
            return answer

        def close(self):
            self.closed = True

    offsets = {"a": (CommittedOffset("t", 0, 5),), "b": (CommittedOffset("t", 0, 7),)}
    stale, fresh = OneMoved(offsets, ()), _StubAdmin(offsets, ())
    result = _batched_with(stale, fresh).committed_offsets(["a", "b"])
    assert stale.calls == [["a", "b"]] and stale.closed and fresh.calls == [["b"]]
    assert result.errors == {} and result.offsets == offsets


def _described(state, protocol_type="consumer"):
    from collectors.kafka.group_requests import GroupDescription

    return GroupDescription(state=state, members=(), protocol_type=protocol_type, coordinator=1)


@pytest.mark.parametrize("previous, listed_empty, kept", [
    # Rule 1 - described Empty and listed Empty with the same kind: not described again
    ({"g": _described("Empty")}, {"g": False}, {"g"}),
    ({"g": _described("Empty", "simple")}, {"g": True}, {"g"}),
    # Rule 2 - listed in another state (members joined, rebalancing): described again
    ({"g": _described("Empty")}, {}, set()),
    # Rule 3 - the kind changed (simple <-> consumer): described again
    ({"g": _described("Empty", "simple")}, {"g": False}, set()),
    # Rule 4 - newly Empty (not described Empty before): described
    ({}, {"g": False}, set()),
])
def test_still_empty_descriptions(previous, listed_empty, kept):
    from collectors.kafka.collector import still_empty_descriptions

    assert set(still_empty_descriptions(previous, listed_empty)) == kept


@pytest.mark.parametrize("listed, complete, previous, collected", [
    # Rule 1 - a complete listing is the truth: a group collected before and not listed is gone
    (["a", "b"], True, frozenset({"a", "c"}), ["a", "b"]),
    # Rule 2 - an incomplete listing (a broker did not answer ListGroups) hides groups, it does
    # not delete them: the groups collected last cycle are collected again
    (["a"], False, frozenset({"a", "c"}), ["a", "c"]),
    ([], False, frozenset({"c", "a"}), ["a", "c"]),
    # Rule 3 - nothing collected before (first cycle): only what was listed
    (["b", "a"], False, frozenset(), ["b", "a"]),
    # Rule 4 - new groups listed during an incomplete listing are collected as well
    (["d"], False, frozenset({"c"}), ["c", "d"]),
])
def test_groups_to_collect(listed, complete, previous, collected):
    from collectors.kafka.collector import groups_to_collect

    assert groups_to_collect(listed, complete, previous) == collected


# -- ListOffsets requests sent again every cycle ------------------------------------------------

def _kafka_python_offsets_request(partitions, spec, level):
    from kafka import KafkaAdminClient, TopicPartition

    return KafkaAdminClient._list_partition_offsets_request(
        {TopicPartition(t, p): spec for t, p in partitions}, level.value)


def _assert_encoded_alike(ours, theirs, versions) -> None:
    """Our reused request encodes to kafka-python's bytes at every version, with or without a
    header and frame, its body reused while the header is new every time."""
    for version in versions:
        for correlation_id in (1, 2, 70000):
            for request in (ours, theirs):
                request.API_VERSION = version
                request.with_header(correlation_id=correlation_id, client_id="streamscope-test")
            assert ours.encode(framed=True, header=True) == bytes(theirs.encode(framed=True, header=True))
            assert ours.encode() == bytes(theirs.encode())


@pytest.mark.parametrize("spec_name", ["LATEST", "EARLIEST"])
@pytest.mark.parametrize("level_name", ["READ_UNCOMMITTED", "READ_COMMITTED"])
def test_a_reused_offsets_request_encodes_as_kafka_python_does(spec_name, level_name):
    from kafka.protocol.consumer.offsets import IsolationLevel, ListOffsetsRequest, OffsetSpec

    from collectors.kafka.group_requests import list_offsets_request

    spec, level = OffsetSpec[spec_name], IsolationLevel[level_name]
    partitions = [("orders", 0), ("orders", 2), ("clicks", 1), ("orders", 1), ("b" * 200, 7)]
    ours, theirs = list_offsets_request(partitions, spec, level), _kafka_python_offsets_request(partitions, spec, level)
    assert ours._min_version == theirs._min_version
    low = max(ours._min_version or 0, ListOffsetsRequest.min_version)
    _assert_encoded_alike(ours, theirs, range(low, ListOffsetsRequest.max_version + 1))
    # encoded for every version, one after the other: its partition objects are not kept, and
    # each new version was encoded from partitions built again
    assert ours.topics == [] and theirs.topics


def test_the_same_partitions_reuse_their_request_and_new_ones_get_a_new_one():
    from kafka.protocol.consumer.offsets import IsolationLevel, OffsetSpec

    from collectors.kafka.group_requests import BatchedGroupRequests

    batched = BatchedGroupRequests("127.0.0.1:1", {}, 1.0, "test")
    latest, committed = OffsetSpec.LATEST, IsolationLevel.READ_UNCOMMITTED
    first = batched._offsets_request(1, [("a", 0), ("a", 1)], latest, committed)
    assert batched._offsets_request(1, [("a", 0), ("a", 1)], latest, committed) is first
    assert batched._offsets_request(2, [("a", 0), ("a", 1)], latest, committed) is not first  # other leader
    assert batched._offsets_request(1, [("a", 0), ("a", 1)], OffsetSpec.EARLIEST, committed) is not first
    grown = batched._offsets_request(1, [("a", 0), ("a", 1), ("a", 2)], latest, committed)
    assert grown is not first and [p.partition_index for p in grown.topics[0].partitions] == [0, 1, 2]
    assert len(batched._offset_requests) == 3  # one per leader and kind: the grown set replaced the first


def _kafka_python_offset_fetches(group_specs, api_version=8):
    """kafka-python's own OffsetFetch requests for `group_specs`, for a broker of `api_version`."""
    from types import SimpleNamespace

    from kafka import KafkaAdminClient

    admin = SimpleNamespace(_manager=SimpleNamespace(
        broker_version_data=SimpleNamespace(api_version=lambda _request: api_version)))
    return list(KafkaAdminClient._list_group_offsets_requests(admin, group_specs))


def test_a_reused_offset_fetch_encodes_as_kafka_python_does():
    from kafka.protocol.consumer import OffsetFetchRequest

    from collectors.kafka.group_requests import ReusedOffsetFetchRequest

    names = ("orders-app", "b" * 300, "clicks", "ünïcode-group")
    ((_, theirs),) = _kafka_python_offset_fetches(dict.fromkeys(names))
    ours = ReusedOffsetFetchRequest(names)
    assert (ours._min_version, ours._max_version) == (theirs._min_version, theirs._max_version) == (8, 8)
    _assert_encoded_alike(ours, theirs, range(8, OffsetFetchRequest.max_version + 1))
    # its group objects are not kept once encoded; each version was encoded from groups built again
    assert ours.groups == [] and theirs.groups and ours.group_ids == names


def test_the_same_groups_reuse_their_offset_fetch_for_a_cycle_after_the_last_one_asking():
    from collectors.kafka.group_requests import ReusedOffsetFetches

    fetches = ReusedOffsetFetches()
    fetches.new_cycle()
    first = fetches.request(["b", "a"])
    assert first.group_ids == ("a", "b")  # in name order: the listing's order does not matter
    assert fetches.request(["a", "b"]) is first
    other = fetches.request(["a", "b", "c"])
    assert other is not first
    fetches.new_cycle()
    assert fetches.request(["a", "b"]) is first  # asked last cycle: sent again
    fetches.new_cycle()
    fetches.new_cycle()
    assert fetches.request(["a", "b", "c"]) is not other  # not asked for a whole cycle: let go


def test_the_batched_client_sends_the_reused_offset_fetch_only_for_whole_groups_on_kafka_3():
    from types import SimpleNamespace

    from kafka import TopicPartition

    from collectors.kafka.group_requests import ReusedOffsetFetches, ReusedOffsetFetchRequest, _AdminClient

    def requests(group_specs, api_version=8):
        admin = _AdminClient.__new__(_AdminClient)  # not connected: only what choosing the request reads
        admin._offset_fetches = fetches
        admin._manager = SimpleNamespace(broker_version_data=SimpleNamespace(api_version=lambda _request: api_version))
        return list(admin._list_group_offsets_requests(group_specs))

    fetches = ReusedOffsetFetches()
    ((group_id, reused),) = requests({"a": None, "b": None})
    assert group_id is None and isinstance(reused, ReusedOffsetFetchRequest)
    assert requests({"b": None, "a": None})[0][1] is reused
    # some partitions only, or a broker before Kafka 3.0 (one group a request): kafka-python's own
    ((_, partial),) = requests({"a": [TopicPartition("t", 0)], "b": None})
    assert not isinstance(partial, ReusedOffsetFetchRequest) and partial.groups[0].topics
    old = requests({"a": None, "b": None}, api_version=7)
    assert [g for g, _ in old] == ["a", "b"] and not any(isinstance(r, ReusedOffsetFetchRequest) for _, r in old)


def _quorum_response(leader: int = 2, error: int = 0, partition_error: int = 0, version: int = 2):
    """A real DescribeQuorum response, encoded and decoded by kafka-python."""
    from kafka.protocol.admin import DescribeQuorumResponse as R

    T = R.TopicData
    P = T.PartitionData
    messages = {"error_message": None} if version >= 2 else {}
    partition = P(version=version, partition_index=0, error_code=partition_error, leader_id=leader,
                  leader_epoch=4, high_watermark=100, current_voters=[], observers=[], **messages)
    response = R(version=version, error_code=error, topics=[T(version=version, topic_name="__cluster_metadata",
                                                              partitions=[partition])],
                 **({"nodes": []} if version >= 2 else {}), **messages)
    return R.decode(response.encode(version=version), version=version)


class _QuorumManager:
    """kafka-python's connection manager as `active_controller` uses it: the broker's API versions
    and one answer (or error) to DescribeQuorum."""

    def __init__(self, answer, *, offers_quorum: bool = True):
        from kafka.errors import IncompatibleBrokerVersion

        self.answer, self.sent = answer, []

        class Versions:
            @staticmethod
            def api_version(operation):
                if not offers_quorum:
                    raise IncompatibleBrokerVersion("Kafka broker does not support the 'DescribeQuorum' Kafka protocol.")
                return 2

        self.broker_version_data = Versions()

    def send(self, request):
        self.sent.append(request)
        return request

    def run(self, fn, *args):
        fn(*args)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _QuorumAdmin:
    def __init__(self, manager):
        self._manager = manager


@pytest.mark.parametrize("manager, expected, asked", [
    # Rule 1 - the active controller is the metadata quorum's leader, whatever the Metadata answer named
    pytest.param(_QuorumManager(_quorum_response(leader=3)), 3, True, id="the quorum's leader"),
    pytest.param(_QuorumManager(_quorum_response(leader=3, version=0)), 3, True, id="the quorum's leader, v0"),
    pytest.param(_QuorumManager(_quorum_response(error=31, version=0)), None, True, id="not authorised, v0"),
    # Rule 2 - a quorum without a leader now: no controller
    pytest.param(_QuorumManager(_quorum_response(leader=-1)), None, True, id="no leader"),
    # Rule 3 - brokers without DescribeQuorum (ZooKeeper mode): the controller the Metadata answer named
    pytest.param(_QuorumManager(None, offers_quorum=False), 1, False, id="ZooKeeper mode"),
    # Rule 4 - the quorum could not be described (not authorised, an error, no answer): not known
    pytest.param(_QuorumManager(_quorum_response(error=31)), None, True, id="not authorised"),
    pytest.param(_QuorumManager(_quorum_response(partition_error=6)), None, True, id="the partition's error"),
    pytest.param(_QuorumManager(KafkaTimeoutError("no answer")), None, True, id="no answer"),
])
def test_the_active_controller(manager, expected, asked):
    named = 1  # the controller the Metadata answer named
    assert _batched_with(_QuorumAdmin(manager)).active_controller(named) == expected
    sent = [(t.topic_name, [p.partition_index for p in t.partitions]) for r in manager.sent for t in r.topics]
    assert sent == ([("__cluster_metadata", [0])] if asked else [])


def test_a_failing_quorum_description_is_logged_once_until_it_changes(caplog):
    manager = _QuorumManager(_quorum_response(error=31))
    batched = _batched_with(_QuorumAdmin(manager))
    with caplog.at_level(logging.INFO, logger="collectors.kafka.group_requests"):
        for _ in range(3):
            assert batched.active_controller(1) is None
        manager.answer = KafkaTimeoutError("no answer")
        assert batched.active_controller(1) is None
        manager.answer = _quorum_response(leader=2)
        assert batched.active_controller(1) == 2
        manager.answer = _quorum_response(error=31)
        assert batched.active_controller(1) is None
    logged = [r.getMessage() for r in caplog.records if "metadata quorum" in r.getMessage()]
    assert len(logged) == 3 and "ClusterAuthorizationFailedError" in logged[0] and "KafkaTimeoutError" in logged[1]
