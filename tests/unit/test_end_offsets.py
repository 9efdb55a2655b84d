"""KafkaCollector._end_offsets: the earliest and latest offsets a cycle asks for, and the earliest
ones it keeps between cycles. The broker is a table."""
from __future__ import annotations

from collectors.kafka.collector import KafkaCollector, _CollectedPartitions
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset


class TableBroker:
    """Answers ListOffsets from `earliest` and `latest`, and notes what was asked."""

    def __init__(self, earliest: dict[tuple[str, int], int], latest: dict[tuple[str, int], int]):
        self.offsets = {"earliest": earliest, "latest": latest}
        self.asked: list[tuple[str, list[tuple[str, int]]]] = []
        self.grouped: list[dict | None] = []  # the grouping by leader each call was given, if any

    def answer(self, admin, batched, info, partitions, spec, isolation="read_uncommitted", *, by_leader=None):
        self.asked.append((spec, list(partitions)))
        self.grouped.append(by_leader)
        return {key: self.offsets[spec][key] for key in partitions}


def collected(partitions: list[tuple[str, int]]) -> _CollectedPartitions:
    return _CollectedPartitions(None, {topic for topic, _ in partitions}, partitions, {1: partitions})


def test_a_deleted_partitions_earliest_offset_is_forgotten():
    """What is kept between cycles does not grow with the partitions a cluster ever had."""
    both = [("t", 0), ("t", 1)]
    broker = TableBroker({("t", 0): 3, ("t", 1): 4}, {("t", 0): 10, ("t", 1): 10})
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    collector._offsets = broker.answer
    earliest, latest, _at = collector._end_offsets(None, None, None, collected(both), {})
    assert earliest == {("t", 0): 3, ("t", 1): 4} and latest == {("t", 0): 10, ("t", 1): 10}
    earliest, latest, _at = collector._end_offsets(None, None, None, collected([("t", 0)]), {})
    assert earliest == {("t", 0): 3} and latest == {("t", 0): 10}
    assert collector._earliest == {("t", 0): 3}
    # the second cycle asked the earliest offset of no partition (known, and not near the log start)
    assert [spec for spec, _ in broker.asked] == ["earliest", "latest", "latest"]


def test_earliest_offsets_are_asked_where_a_group_sits_near_the_log_start():
    """Between refreshes (every `earliest_offsets_every` cycles) a cycle asks the earliest offsets
    of the partitions where some group sits in the older half of the retained log; when that is
    every partition, they are asked as the cycle's own partitions, grouped by leader once."""
    three = [("t", 0), ("t", 1), ("t", 2)]
    cycle = collected(three)
    broker = TableBroker(dict.fromkeys(three, 0), dict.fromkeys(three, 10))
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    collector._offsets = broker.answer

    def positions(*offsets: int) -> dict[str, tuple[CommittedOffset, ...]]:
        return {"g": tuple(CommittedOffset("t", p, o) for p, o in enumerate(offsets))}

    collector._end_offsets(None, None, None, cycle, positions(8, 8, 8))  # the first cycle: every one
    collector._end_offsets(None, None, None, cycle, positions(2, 8, 8))
    collector._end_offsets(None, None, None, cycle, positions(8, 8, 8))
    collector._end_offsets(None, None, None, cycle, positions(2, 1, 4))
    earliest = [(asked, grouped) for (spec, asked), grouped in zip(broker.asked, broker.grouped) if spec == "earliest"]
    assert earliest == [(three, cycle.by_leader), ([("t", 0)], None), (three, cycle.by_leader)]
