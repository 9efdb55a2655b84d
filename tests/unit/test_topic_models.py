"""KafkaCollector._topic_models: the topics of a snapshot, cycle after cycle.

- Rule 1: a topic whose metadata (the same decoded answer), id, settings, and partitions' offsets
  and sizes are the last cycle's keeps its model, the same object: an idle topic's, most cycles.
- Rule 2: anything of these that changes makes that topic's model again, and no other's.
- Random cycles: every model equals the one made afresh.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.cluster import ClusterInfo, PartitionInfo, TopicInfo
from collectors.kafka.collector import KafkaCollector
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import TopicConfig


def collector() -> KafkaCollector:
    return KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))


def metadata(leaders: dict[str, list[int]]) -> ClusterInfo:
    return ClusterInfo(brokers=(), controller_id=1, topics={
        name: TopicInfo(partitions={p: PartitionInfo(leader, (1, 2), (1, 2) if leader >= 0 else (2,))
                                    for p, leader in enumerate(of_topic)}, topic_id=f"id-{name}")
        for name, of_topic in leaders.items()})


KEEP = TopicConfig("delete", 604_800_000, -1, 1)


def test_rule_1_an_idle_topic_keeps_its_model_and_rule_2_what_moves_makes_it_again():
    c = collector()
    info = metadata({"a": [1, 1], "b": [1]})
    ids, configs = {"a": "id-a", "b": "id-b"}, {"a": KEEP, "b": KEEP}
    earliest, latest, stable, sizes = {("a", 0): 0, ("a", 1): 0, ("b", 0): 0}, \
        {("a", 0): 10, ("a", 1): 12, ("b", 0): 5}, {}, {("a", 0): 100}
    first = c._topic_models(info, {"a", "b"}, ids, configs, earliest, latest, stable, sizes)
    again = c._topic_models(info, {"a", "b"}, dict(ids), dict(configs), dict(earliest), dict(latest), {}, dict(sizes))
    assert again[0] is first[0] and again[1] is first[1]
    moved = c._topic_models(info, {"a", "b"}, ids, configs, earliest, {**latest, ("b", 0): 6}, stable, sizes)
    assert moved[0] is first[0] and moved[1] is not first[1]
    assert [p.latest_offset for p in moved[1].partitions] == [6]
    grown = c._topic_models(info, {"a", "b"}, ids, configs, earliest, {**latest, ("b", 0): 6}, stable,
                            {**sizes, ("a", 0): 200})
    assert grown[1] is moved[1] and [p.size_bytes for p in grown[0].partitions] == [200, None]
    retuned = c._topic_models(info, {"a", "b"}, ids, {**configs, "a": TopicConfig("compact", -1, -1, 2)},
                              earliest, {**latest, ("b", 0): 6}, stable, {**sizes, ("a", 0): 200})
    assert retuned[1] is moved[1] and retuned[0].config.cleanup_policy == "compact"
    led = c._topic_models(metadata({"a": [1, -1], "b": [1]}), {"a", "b"}, ids, configs, earliest,
                          {**latest, ("b", 0): 6}, stable, {**sizes, ("a", 0): 200})
    assert [p.leader for p in led[0].partitions] == [1, -1]  # another metadata answer: made again


@pytest.mark.parametrize("seed", range(30))
def test_models_over_random_cycles_equal_those_made_afresh(seed):
    rng = random.Random(seed)
    keeping, afresh = collector(), collector()
    keys = [(t, p) for t in "abc" for p in range(2)]
    leaders = {t: [1, 1] for t in "abc"}
    info = metadata(leaders)
    maps = [{k: rng.randint(0, 9) for k in keys} for _ in range(4)]  # earliest, latest, stable, sizes
    ids = {t: f"id-{t}" for t in "abc"}
    configs = {t: KEEP for t in "abc"}
    names = set("abc")
    for cycle in range(25):
        for m in maps:
            if rng.random() < 0.3:
                key = rng.choice(keys)
                m[key] = rng.choice([None, rng.randint(0, 9)]) if m is maps[2] else rng.randint(0, 9)
        if rng.random() < 0.15:
            leaders[rng.choice("abc")][rng.randint(0, 1)] = rng.choice([1, 2, -1])
            info = metadata(leaders)  # a changed answer, decoded again
        if rng.random() < 0.1:
            ids[rng.choice("abc")] = f"id-{rng.random()}"  # re-created
        if rng.random() < 0.1:
            configs[rng.choice("abc")] = TopicConfig("delete", rng.randint(1, 5), -1, 1)
        if rng.random() < 0.1:
            names = set(rng.sample("abc", rng.randint(1, 3)))
        afresh._last_topics = ({}, (), {})  # nothing kept: every model made afresh
        args = [dict(m) for m in maps]
        got = keeping._topic_models(info, set(names), dict(ids), dict(configs), *args)
        assert got == afresh._topic_models(info, set(names), dict(ids), dict(configs), *args), (seed, cycle)

