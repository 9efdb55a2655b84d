"""TopicState.refresh_log_dirs: what a round of DescribeLogDirs keeps when brokers do not give
their directories, and how it says so (`log_dirs_error`, which the snapshot, /healthz, /metrics
and the StreamscopeLogDirsUnavailable alert carry). The brokers' answers are a table here; the
answers of a real broker are tested in tests/integration/test_peers.py.

Rule 1 - every broker answers: its directories and its leaders' sizes, no error.
Rule 2 - a broker that does not answer, or answers with an error of its own (no directories,
         e.g. CLUSTER_AUTHORIZATION_FAILED), keeps what it gave before: its directories and the
         sizes of the partitions it leads; the error names it. Never an empty broker.
Rule 3 - the request failing as a whole keeps everything from before, with the error.
Rule 4 - the next round where every broker answers clears the error.
"""
from __future__ import annotations

from kafka.errors import KafkaConnectionError

from collectors.kafka.answer_decoding import LogDirAnswer
from collectors.kafka.cluster import ClusterInfo, PartitionInfo, TopicInfo
from collectors.kafka.group_requests import GroupRequestTimeout
from collectors.kafka.topic_state import TopicState
from collectors.models import Broker

# orders-0 is led by broker 1, orders-1 by broker 2; each broker holds both replicas
INFO = ClusterInfo(brokers=(Broker(1, "h1", 9092), Broker(2, "h2", 9092)), controller_id=1, topics={
    "orders": TopicInfo({0: PartitionInfo(1, (1, 2), (1, 2)), 1: PartitionInfo(2, (2, 1), (2, 1))})})


def _dirs(size: int) -> list[LogDirAnswer]:
    return [LogDirAnswer(0, "/data", [("orders", [(0, size, False), (1, size + 1, False)])], -1, -1)]


class TableBatched:
    """Answers DescribeLogDirs from `answers` (broker -> its directories); `missing`: broker ->
    why it gave none; `fails`: the request fails as a whole."""

    def __init__(self):
        self.answers: dict[int, list[LogDirAnswer]] = {1: _dirs(100), 2: _dirs(200)}
        self.missing: dict[int, str] = {}
        self.fails: Exception | None = None

    def log_dirs(self, brokers):
        if self.fails is not None:
            raise self.fails
        return ([(b, self.answers[b]) for b in brokers if b not in self.missing],
                {b: why for b, why in self.missing.items() if b in brokers})


def _state() -> TopicState:
    return TopicState("c", configs_every=0, log_dirs_every=1, request_timeout=1.0)


def _by_broker(state: TopicState) -> dict[int, int]:
    return {d.broker: d.size_bytes for d in state.log_dirs}


def test_rule_1_every_broker_answers():
    state, batched = _state(), TableBatched()
    state.refresh_log_dirs(batched, INFO, {"orders"})
    assert _by_broker(state) == {1: 201, 2: 401}
    assert state.sizes == {("orders", 0): 100, ("orders", 1): 201}
    assert state.log_dirs_error is None and state.log_dirs_fetched_at is not None


def test_rule_2_a_broker_without_its_directories_keeps_what_it_gave_before_and_is_named():
    state, batched = _state(), TableBatched()
    state.refresh_log_dirs(batched, INFO, {"orders"})
    batched.answers = {1: _dirs(150), 2: _dirs(250)}
    batched.missing = {2: "ClusterAuthorizationFailedError"}
    state.refresh_log_dirs(batched, INFO, {"orders"})
    assert _by_broker(state) == {1: 301, 2: 401}  # broker 2's directory as it was, not gone
    assert state.sizes == {("orders", 0): 150, ("orders", 1): 201}  # the partition broker 2 leads: kept
    assert state.log_dirs_error == ("log directories of broker(s) not given (kept from before): "
                                    "2: ClusterAuthorizationFailedError")
    # a broker that never gave them is named, and has nothing to keep: not an empty directory
    fresh = _state()
    batched.missing = {1: "no answer: KafkaConnectionError"}
    fresh.refresh_log_dirs(batched, INFO, {"orders"})
    assert _by_broker(fresh) == {2: 501} and fresh.sizes == {("orders", 1): 251}
    assert "1: no answer" in fresh.log_dirs_error


def test_rule_3_the_request_failing_keeps_everything_with_the_error():
    state, batched = _state(), TableBatched()
    state.refresh_log_dirs(batched, INFO, {"orders"})
    before = (state.log_dirs, dict(state.sizes), state.log_dirs_fetched_at)
    for failure in (GroupRequestTimeout("DescribeLogDirs timed out"), KafkaConnectionError("refused")):
        batched.fails = failure
        state.refresh_log_dirs(batched, INFO, {"orders"})
        assert (state.log_dirs, state.sizes, state.log_dirs_fetched_at) == before
        assert state.log_dirs_error.startswith("DescribeLogDirs failed: ") and str(failure) in state.log_dirs_error
    never = _state()
    never.refresh_log_dirs(batched, INFO, {"orders"})
    assert never.log_dirs == () and never.log_dirs_fetched_at is None and never.log_dirs_error is not None


def test_rule_4_a_complete_round_clears_the_error():
    state, batched = _state(), TableBatched()
    batched.missing = {2: "no answer: timed out"}
    state.refresh_log_dirs(batched, INFO, {"orders"})
    assert state.log_dirs_error is not None
    batched.missing = {}
    state.refresh_log_dirs(batched, INFO, {"orders"})
    assert state.log_dirs_error is None and _by_broker(state) == {1: 201, 2: 401}
