"""A snapshot from the collector's child to `run` (`collectors.kafka.wire`): records the parent
already holds are named, not sent again.

The rules:
- Rule 1: the first snapshot, and any sent while the parent holds nothing, goes whole.
- Rule 2: a group's offsets (a topic's partitions) that are the very tuple sent under its name
  in the last two snapshots are named, when the parent holds the last one; the parent puts in
  the tuple it decoded then. Records made anew every cycle are not held by the child.
- Rule 3: when the parent does not hold the last snapshot sent (it gave up on a cycle, or a new
  child starts), everything goes whole.
- Rule 4: bytes that name records the parent does not hold are refused (WireError), and the
  receiver then holds nothing, so the next cycle is asked for whole.
Whatever the sequence, what the parent decodes equals what the child collected, record types
included (the random test below, against a plain pickle of each snapshot).
"""
from __future__ import annotations

import pickle
import random

import pytest

from collectors.kafka.wire import SnapshotReceiver, SnapshotSender, WireError
from collectors.models import CommittedOffset, ConsumerGroup, GroupMember, KafkaClusterSnapshot, PartitionMetadata, Topic


def partitions(topic: str, n: int, end: int) -> tuple[PartitionMetadata, ...]:
    return tuple(PartitionMetadata(topic, p, 1, (1, 2), (1, 2), 0, end + p, stable_offset=end + p) for p in range(n))


def offsets(topic: str, n: int, at: int) -> tuple[CommittedOffset, ...]:
    return tuple(CommittedOffset(topic, p, at + p, True, 3, at + p, 1.7e9 + p) for p in range(n))


def snapshot(topics: list[Topic], groups: list[ConsumerGroup], at: float = 1.7e9) -> KafkaClusterSnapshot:
    return KafkaClusterSnapshot("c1", at, at + 1, topics=tuple(topics), groups=tuple(groups), end_offsets_fetched_at=at)


def group(name: str, records: tuple, at: float = 1.7e9) -> ConsumerGroup:
    return ConsumerGroup(name, "Stable", (GroupMember("m", "c", "/h", (("t", 0),)),), records, at)


def types(s: KafkaClusterSnapshot) -> list:
    return [(type(t), [type(p) for p in t.partitions]) for t in s.topics] + \
        [(type(g), [type(o) for o in g.offsets]) for g in s.groups]


def send(sender: SnapshotSender, receiver: SnapshotReceiver, s: KafkaClusterSnapshot) -> tuple[KafkaClusterSnapshot, int]:
    data = sender.encode(s, receiver.holds)
    return receiver.decode(data), len(data)


def test_rule_1_the_first_snapshot_goes_whole() -> None:
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    s = snapshot([Topic("t", partitions("t", 3, 10))], [group("g", offsets("t", 3, 5))])
    got, _ = send(sender, receiver, s)
    assert got == s and types(got) == types(s)
    assert receiver.holds == 1


def test_rule_2_kept_records_are_named_and_the_parent_keeps_its_own() -> None:
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    parts, still = partitions("t", 50, 10), offsets("t", 50, 5)

    def cycle(n: int) -> KafkaClusterSnapshot:
        # the same tuples for the topic and one group; an equal but new one for the other
        at = 1.7e9 + 5 * n
        return snapshot([Topic("t", parts)], [group("still", still, at), group("moving", offsets("t", 50, 5), at)], at)

    first, size_whole = send(sender, receiver, cycle(0))
    second, size_second = send(sender, receiver, cycle(1))  # sent whole again: not yet seen twice
    assert size_second >= size_whole - 8 and second.groups[0].offsets is not first.groups[0].offsets
    assert sender._held["groups"] == {"still": still} and sender._held["topics"] == {"t": parts}
    s = cycle(2)
    got, size = send(sender, receiver, s)
    assert got == s and types(got) == types(s)
    assert got.topics[0].partitions is second.topics[0].partitions
    assert got.groups[0].offsets is second.groups[0].offsets
    assert got.groups[1].offsets is not second.groups[1].offsets  # sent again: a new tuple in the child
    assert size < size_whole * 0.6, (size, size_whole)
    assert "moving" not in sender._held["groups"]  # made anew every cycle: not kept alive by the child


def test_rule_3_a_parent_that_lost_the_last_snapshot_gets_everything() -> None:
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    parts = partitions("t", 5, 10)
    s = snapshot([Topic("t", parts)], [])
    send(sender, receiver, s)
    sender.encode(s, receiver.holds)  # a cycle the parent gave up on: it never decoded this one
    data = sender.encode(s, receiver.holds)  # asked against snapshot 1; the child's last is 2
    assert pickle.loads(data)[1] is None  # based on nothing: whole
    assert receiver.decode(data) == s
    # a new child (the parent forgets) starts numbering afresh and sends everything
    receiver.forget()
    again, _ = send(SnapshotSender(), receiver, s)
    assert again == s and receiver.holds == 1


def test_rule_4_names_the_parent_does_not_hold_are_refused() -> None:
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    s = snapshot([Topic("t", partitions("t", 5, 10))], [group("g", offsets("t", 5, 1))])
    send(sender, receiver, s)
    send(sender, receiver, s)
    data = sender.encode(s, receiver.holds)  # names "t" and "g"
    stranger = SnapshotReceiver()
    with pytest.raises(WireError, match="sent against snapshot 2"):
        stranger.decode(data)
    assert stranger.holds is None
    # a receiver that holds the number but not the name (it cannot, but the check is by name)
    receiver._held = {"topics": {}, "groups": {}}
    with pytest.raises(WireError, match="KeyError"):
        receiver.decode(data)
    assert receiver.holds is None
    with pytest.raises(WireError, match="could not decode"):
        SnapshotReceiver().decode(b"not a pickle")
    with pytest.raises(WireError, match="instead of a cluster snapshot"):
        SnapshotReceiver().decode(pickle.dumps((1, None, (Topic, ("t", ())))))


def test_a_name_listed_twice_gets_its_own_records() -> None:
    """Names are unique in a real cluster; when a snapshot lists one twice, each entry still gets
    its own records (the name refers to the last one's)."""
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    a, b = offsets("t", 2, 1), offsets("t", 3, 7)
    s = snapshot([], [group("g", a), group("g", b)])
    send(sender, receiver, s)
    got, _ = send(sender, receiver, s)
    assert got == s and [len(g.offsets) for g in got.groups] == [2, 3]


@pytest.mark.parametrize("seed", range(40))
def test_what_the_parent_decodes_is_what_the_child_collected(seed: int) -> None:
    """30 cycles of random changes: owners kept, changed, made again equal, added, removed,
    renamed onto another's records, listed twice; cycles the parent gave up on; new children.
    Every decoded snapshot equals the collected one as a plain pickle carries it, and every
    record tuple named is the one the parent decoded the cycle before."""
    rnd = random.Random(seed)
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    topics = {f"t{i}": partitions(f"t{i}", rnd.randint(0, 4), 10) for i in range(6)}
    groups = {f"g{i}": offsets("t0", rnd.randint(0, 4), i) for i in range(8)}
    last_decoded: KafkaClusterSnapshot | None = None
    named_total = 0
    for cycle in range(30):
        for table, make in ((topics, lambda k: partitions(k, rnd.randint(0, 4), rnd.randint(0, 3))),
                            (groups, lambda k: offsets("t0", rnd.randint(0, 4), rnd.randint(0, 3)))):
            for name in list(table):
                roll = rnd.random()
                if roll < 0.15:
                    table[name] = make(name)  # changed (or equal, but a new tuple)
                elif roll < 0.2:
                    del table[name]
                elif roll < 0.23:
                    table[name] = tuple(table[name])  # equal, new tuple... or the same when empty
            if rnd.random() < 0.3:
                table[f"new{cycle}"] = make(f"new{cycle}")
            if rnd.random() < 0.1 and len(table) >= 2:  # another owner's very records, under this name
                x, y = rnd.sample(sorted(table), 2)
                table[x] = table[y]
        topic_list = [Topic(k, v) for k, v in topics.items()]
        group_list = [group(k, v, 1.7e9 + cycle) for k, v in groups.items()]
        if rnd.random() < 0.1 and group_list:
            group_list.append(group_list[0])  # listed twice
        rnd.shuffle(topic_list)
        rnd.shuffle(group_list)
        s = snapshot(topic_list, group_list, 1.7e9 + cycle)
        event = rnd.random()
        if event < 0.08:
            sender.encode(s, receiver.holds)  # the parent gave up on this cycle
            continue
        if event < 0.12:  # a new child
            sender = SnapshotSender()
            receiver.forget()
        data = sender.encode(s, receiver.holds)
        based_on = pickle.loads(data)[1]
        before = dict(receiver._held.get("topics", {})), dict(receiver._held.get("groups", {}))
        got = receiver.decode(data)
        assert got == pickle.loads(pickle.dumps(s)) == s
        assert types(got) == types(s)
        if based_on is not None:
            assert last_decoded is not None and based_on == receiver.holds - 1
            for owners, records, held in ((got.topics, "partitions", before[0]), (got.groups, "offsets", before[1])):
                for owner, sent in zip(owners, s.topics if records == "partitions" else s.groups):
                    kept = getattr(owner, records)
                    if kept is held.get(owner.name) and kept:
                        named_total += 1
        last_decoded = got
    assert named_total > 0  # the sequences did exercise naming
