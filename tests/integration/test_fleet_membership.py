"""A fleet's membership against the real broker: the coordination topic is created compacted
with its partitions (and refused with another count), Kafka shares the partitions between the
replicas (cooperative-sticky: a joining replica takes only what it must), a partition counts as
owned only after its changelog was read back (the states its last owner wrote), a replica that
leaves hands its partitions over at once, and a silent replica owns nothing."""
from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from monitor.fleet.membership import FleetMembership, MembershipError, MembershipSettings
from tests.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PARTITIONS = 6


class Listener:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: dict[int, dict[str, bytes]] = {}
        self.given_up: list[tuple[frozenset[int], bool]] = []

    def acquired(self, partition, states):
        with self.lock:
            self.states[partition] = dict(states)

    def released(self, partitions, lost):
        with self.lock:
            self.given_up.append((partitions, lost))


def member(bootstrap: str, topic: str, instance: str, listener, partitions: int = PARTITIONS,
           session: float = 6.0) -> FleetMembership:
    return FleetMembership(MembershipSettings(bootstrap_servers=bootstrap, topic=topic, group_id=f"{topic}-group",
                                              partitions=partitions, instance=instance, session_timeout=session),
                           listener)


def test_partitions_are_shared_and_handed_over_with_their_state(kafka_broker, unique_name):
    topic = unique_name("fleet")
    first_listener, second_listener = Listener(), Listener()
    first = member(kafka_broker.bootstrap, topic, "one", first_listener)
    first.start()
    try:
        wait_until(lambda: first.owned() == frozenset(range(PARTITIONS)), 60, "the only replica to own all")
        assert first_listener.states == {p: {} for p in range(PARTITIONS)}  # empty changelog, read to its end
        admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
        config = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        (described,) = [f.result(10) for f in config.values()]
        assert described["cleanup.policy"].value == "compact"
        for p in range(PARTITIONS):
            assert first.write(f"unit-{p}", f"state-{p}".encode(), p)
        assert first.flush(10) == 0

        second = member(kafka_broker.bootstrap, topic, "two", second_listener)
        second.start()
        try:
            wait_until(lambda: len(first.owned()) == 3 and len(second.owned()) == 3, 60, "a share of three each")
            moved = second.owned()
            assert not moved & first.owned()
            # cooperative: the first replica gave up exactly what moved, and lost nothing
            assert first_listener.given_up == [(moved, False)]
            assert second_listener.states == {p: {f"unit-{p}": f"state-{p}".encode()} for p in moved}
        finally:
            second.stop()
        wait_until(lambda: first.owned() == frozenset(range(PARTITIONS)), 60, "the partitions back after leaving")
    finally:
        first.stop()


def test_a_topic_with_another_partition_count_is_refused(kafka_broker, unique_name):
    topic = unique_name("fleet")
    FleetMembership(MembershipSettings(kafka_broker.bootstrap, topic, "g", 4, "x", 6.0), Listener()).ensure_topic()
    with pytest.raises(MembershipError, match="fleet.partitions: .* has 4 partitions, the config says 6"):
        FleetMembership(MembershipSettings(kafka_broker.bootstrap, topic, "g", 6, "x", 6.0), Listener()).ensure_topic()


def test_a_silent_replica_owns_nothing(kafka_broker, unique_name):
    topic = unique_name("fleet")
    now = [0.0]
    listener = Listener()
    real_clock = time.monotonic
    membership = FleetMembership(MembershipSettings(kafka_broker.bootstrap, topic, f"{topic}-g", 2, "x", 6.0),
                                 listener, clock=lambda: real_clock() + now[0])
    membership.start()
    try:
        wait_until(lambda: membership.owned() == frozenset({0, 1}), 60, "ownership")
        membership._stop.set()  # the loop stops polling: silent from now on
        membership._thread.join(10)
        now[0] += 7.0  # longer than the session timeout
        assert membership.owned() == frozenset()
    finally:
        membership._stop.set()
