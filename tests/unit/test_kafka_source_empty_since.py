"""When each group went Empty is kept in the history (the TTL of Empty groups counts from it across
restarts) and written only when it changes: groups stay Empty for hours."""
from __future__ import annotations

import pytest

from collectors.models import CommittedOffset, ConsumerGroup, GroupMember, KafkaClusterSnapshot, PartitionMetadata, Topic
from monitor.app.config import Config
from monitor.collection.kafka_source import KafkaSource
from monitor.storage import History, HistoryError
from tests.helpers import ManualClock

T0 = 1_790_000_000.0


def raw(at: float, members: dict[str, int]) -> KafkaClusterSnapshot:
    """Groups with their member counts (0: Empty), each committed at 5 of a 10-record partition."""
    topic = Topic("t", (PartitionMetadata("t", 0, 1, (1,), (1,), 0, 10, 10),))
    groups = tuple(ConsumerGroup(
        name, "Stable" if n else "Empty",
        tuple(GroupMember(f"m{i}", "c", "/127.0.0.1", (("t", 0),)) for i in range(n)),
        (CommittedOffset("t", 0, 5),), at - 0.5) for name, n in members.items())
    return KafkaClusterSnapshot(cluster="c", started_at=at - 1, finished_at=at, topics=(topic,), groups=groups,
                                end_offsets_fetched_at=at - 0.2)


@pytest.fixture
def setup(tmp_path):
    config = Config.model_validate({"clusters": [{"name": "c", "bootstrap_servers": "unused:1"}],
                                    "history": {"path": str(tmp_path / "h.db")},
                                    "collection": {"isolate_process": False}})
    clock = ManualClock(T0)
    history = History(tmp_path / "h.db", clock=clock)
    writes = []
    real = history.kafka.set_empty_since

    def counted(cluster, mapping):
        writes.append(dict(mapping))
        return real(cluster, mapping)

    history.kafka.set_empty_since = counted

    def source() -> KafkaSource:
        s = KafkaSource(config.clusters[0], config.collection, history, clock=clock)
        s.start()
        return s

    yield source, history, clock, writes
    history.close()


def test_empty_since_is_written_when_it_changes_and_survives_a_restart(setup):
    source, history, clock, writes = setup
    first = source()
    for i in range(3):  # "idle" Empty three cycles running: one write
        clock.t = T0 + 10 * i
        first.ingest(raw(clock.t, {"idle": 0, "busy": 1}))
    assert writes == [{"idle": T0}]
    assert history.kafka.empty_since("c") == {"idle": T0}
    first.stop()
    second = source()  # a restart: "idle" is Empty since T0, not since now
    clock.t = T0 + 30
    second.ingest(raw(clock.t, {"idle": 0, "busy": 1}))
    assert len(writes) == 1
    clock.t = T0 + 40
    second.ingest(raw(clock.t, {"idle": 1, "busy": 0}))  # members move: both change
    assert writes[-1] == {"busy": T0 + 40} and history.kafka.empty_since("c") == {"busy": T0 + 40}
    second.stop()


def test_a_failed_write_is_written_again_next_cycle(setup):
    source, history, clock, writes = setup
    s = source()
    real = history.kafka.set_empty_since
    failing = [True]

    def flaky(cluster, mapping):
        if failing.pop() if failing else False:
            writes.append("failed")
            raise HistoryError("disk full")
        return real(cluster, mapping)

    history.kafka.set_empty_since = flaky
    s.ingest(raw(T0, {"idle": 0}))
    assert history.kafka.empty_since("c") == {}
    clock.t = T0 + 10
    s.ingest(raw(clock.t, {"idle": 0}))
    assert history.kafka.empty_since("c") == {"idle": T0}
    s.stop()
