"""Translation of a cluster's librdkafka `client` settings for the batched group client."""
from __future__ import annotations

import pytest

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from collectors.kafka.group_requests import kafka_python_config

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
    """Answers like kafka-python's KafkaAdminClient: raises on the first group-level error of a
    batched OffsetFetch; DescribeGroups reports errors per group."""

    def __init__(self, offsets, failing, describe_errors=()):
        self.offsets, self.failing, self.describe_errors = offsets, set(failing), set(describe_errors)
        self.calls = []

    def list_group_offsets(self, names):
        from kafka.errors import GroupAuthorizationFailedError

        self.calls.append(list(names))
        if self.failing & set(names):
            raise GroupAuthorizationFailedError(f"OffsetFetchResponse failed for group '{sorted(self.failing & set(names))[0]}'.")
        return {n: self.offsets[n] for n in names}

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


def test_a_failing_group_costs_only_its_own_offsets():
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP

    names = [f"g{i}" for i in range(5)]
    offsets = {n: {KTP("t", 1): OffsetAndMetadata(10 + i, "", -1), KTP("t", 0): OffsetAndMetadata(i, "", -1),
                   KTP("t", 2): OffsetAndMetadata(-1, "", -1)} for i, n in enumerate(names)}
    admin = _StubAdmin(offsets, failing={"g3"})
    result = _batched_with(admin).committed_offsets(names)
    assert admin.calls[0] == names  # one batched request first, then group by group
    assert admin.calls[1:] == [[n] for n in names]
    assert set(result.offsets) == {"g0", "g1", "g2", "g4"} and set(result.fetched_at) == set(result.offsets)
    assert "g3" in result.errors["g3"] and "GroupAuthorizationFailed" in result.errors["g3"]
    # sorted by (topic, partition); offsets without a commit (-1) left out
    assert [(o.partition, o.offset) for o in result.offsets["g2"]] == [(0, 2), (1, 12)]


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
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP

    class Moved(_StubAdmin):
        closed = False

        def list_group_offsets(self, names):
            self.calls.append(list(names))
            raise NotCoordinatorError("coordinator moved")

        def close(self):
            self.closed = True

    stale = Moved({}, ())
    fresh = _StubAdmin({"a": {KTP("t", 0): OffsetAndMetadata(5, "", -1)}, "b": {}}, ())
    result = _batched_with(stale, fresh).committed_offsets(["a", "b"])
    assert stale.calls == [["a", "b"]] and stale.closed
    assert fresh.calls == [["a"], ["b"]]
    assert result.errors == {} and [o.offset for o in result.offsets["a"]] == [5] and result.offsets["b"] == ()
