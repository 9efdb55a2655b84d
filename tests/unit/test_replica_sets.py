"""Replica lists are shared within one metadata answer: a snapshot carries one tuple per distinct
list, not two per partition, and pickle sends each once to the parent."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

from collectors.kafka.cluster import ReplicaSets, from_librdkafka


def _metadata(partitions: int) -> SimpleNamespace:
    def partition(pid):  # three brokers, replication factor 2, as librdkafka reports lists
        first = pid % 3
        return SimpleNamespace(leader=first, replicas=[first, (first + 1) % 3], isrs=[first, (first + 1) % 3])

    topic = SimpleNamespace(error=None, partitions={pid: partition(pid) for pid in range(partitions)})
    return SimpleNamespace(brokers={i: SimpleNamespace(id=i, host="h", port=9092 + i) for i in range(3)},
                           topics={"t": topic}, controller_id=0)


def test_equal_replica_lists_are_one_tuple_and_unequal_ones_stay_apart():
    shared = ReplicaSets()
    a, b, c = shared([1, 2]), shared((1, 2)), shared([2, 1])
    assert a == (1, 2) and a is b and c == (2, 1) and c is not a


def test_a_metadata_answer_holds_one_tuple_per_distinct_replica_list():
    info = from_librdkafka(_metadata(3000))
    parts = info.topics["t"].partitions
    assert parts[4].replicas == (1, 2) and parts[4].isr == (1, 2)
    distinct = {id(p.replicas) for p in parts.values()} | {id(p.isr) for p in parts.values()}
    assert len(distinct) == 3
    # what crosses to the parent: each list once, still shared when unpickled
    loaded = pickle.loads(pickle.dumps(info)).topics["t"].partitions
    assert len({id(p.replicas) for p in loaded.values()} | {id(p.isr) for p in loaded.values()}) == 3


# One (topic, partition) key object per partition, the same every cycle.

def test_partition_keys_are_one_object_per_partition_from_cycle_to_cycle():
    from collectors.kafka.cluster import PartitionKeys

    key = PartitionKeys()
    first = [key("t", p) for p in range(3)]
    again = [key("t", p) for p in range(3)]
    assert first == [("t", 0), ("t", 1), ("t", 2)] and all(a is b for a, b in zip(first, again))
    key.keep_only(first[:2])  # partition 2 is gone: forgotten, and a new key if it comes back
    assert key("t", 0) is first[0] and key("t", 2) is not first[2]


def test_partitions_grouped_by_leader_are_the_callers_own_keys():
    info = from_librdkafka(_metadata(6))
    asked = [("t", p) for p in range(6)] + [("gone", 0)]
    grouped = info.leaders(asked)
    assert grouped == {0: [("t", 0), ("t", 3)], 1: [("t", 1), ("t", 4)], 2: [("t", 2), ("t", 5)], -1: [("gone", 0)]}
    mine = {id(k) for k in asked}
    assert all(id(k) in mine for keys in grouped.values() for k in keys)
