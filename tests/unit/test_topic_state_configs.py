"""TopicState.configs: the topic settings a cycle asks for, and what it keeps. The broker's
DescribeConfigs answer is a table."""
from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

from collectors.kafka.topic_state import TopicState
from collectors.models import KafkaClusterSnapshot, Topic

DELETE_HOUR = {"cleanup.policy": "delete", "retention.ms": "3600000", "retention.bytes": "-1",
               "min.insync.replicas": "2"}
COMPACT = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1", "min.insync.replicas": "1"}


class TableBatched:
    """Answers DescribeConfigs from `values`; notes the topics asked."""

    def __init__(self, values: dict[str, dict[str, str]], refused: dict[str, str] | None = None):
        self.values, self.asked = values, []
        self.refused = refused or {}  # topic -> the error its settings are refused with
        self.fails: Exception | None = None

    def topic_configs(self, topics, keys):
        self.asked.append(list(topics))
        if self.fails is not None:
            raise self.fails
        return ({t: self.values[t] for t in topics if t not in self.refused},
                {t: e for t, e in self.refused.items() if t in topics})


def test_topics_with_the_same_settings_share_one_config_across_the_process_boundary():
    batched = TableBatched({"a": DELETE_HOUR, "b": dict(DELETE_HOUR), "c": COMPACT})
    state = TopicState("c", configs_every=10, log_dirs_every=10, request_timeout=1.0)
    configs = state.configs(None, batched, ["a", "b", "c"])
    assert configs["a"] is configs["b"] and configs["a"] != configs["c"]
    assert (configs["a"].retention_ms, configs["c"].cleanup_policy) == (3_600_000, "compact")
    snapshot = KafkaClusterSnapshot("c", 1.0, 2.0, topics=tuple(Topic(n, (), config=configs[n]) for n in "abc"))
    got = pickle.loads(ForkingPickler.dumps(snapshot))
    assert got == snapshot and got.topics[0].config is got.topics[1].config


def test_settings_are_asked_for_new_topics_only_until_due():
    batched = TableBatched({"a": DELETE_HOUR, "b": COMPACT})
    state = TopicState("c", configs_every=3, log_dirs_every=10, request_timeout=1.0)
    state.configs(None, batched, ["a"])
    state.configs(None, batched, ["a", "b"])
    state.configs(None, batched, ["a", "b"])
    assert batched.asked == [["a"], ["b"]]
    assert set(state.configs(None, batched, ["b"])) == {"b"}  # a topic gone is forgotten


def test_settings_read_again_unchanged_keep_their_object_and_changed_ones_do_not():
    """Settings asked again when due and found the same are the object kept: a new one, equal but
    for the time it was read, made each topic's model (every partition's record) new, in the
    collector and in the parent, every `configs_every` cycles (docs/performance.md, the
    thirty-second pass)."""
    table = {"a": DELETE_HOUR, "b": dict(DELETE_HOUR), "c": COMPACT}
    batched = TableBatched(table)
    state = TopicState("c", configs_every=2, log_dirs_every=10, request_timeout=1.0)
    first = dict(state.configs(None, batched, ["a", "b", "c"]))
    state.configs(None, batched, ["a", "b", "c"])  # not due: nothing asked
    table["c"] = {**COMPACT, "min.insync.replicas": "2"}
    again = state.configs(None, batched, ["a", "b", "c"])  # due: all three asked again
    assert batched.asked == [["a", "b", "c"], ["a", "b", "c"]]
    assert again["a"] is first["a"] and again["b"] is first["b"]
    assert again["c"] is not first["c"] and (again["c"].min_insync_replicas, first["c"].min_insync_replicas) == (2, 1)
    assert again["c"].fetched_at >= first["c"].fetched_at


def test_topics_whose_settings_are_refused_are_named_and_asked_again_every_cycle():
    batched = TableBatched({"a": DELETE_HOUR, "b": COMPACT}, refused={"b": "TopicAuthorizationFailedError"})
    state = TopicState("c", configs_every=10, log_dirs_every=10, request_timeout=1.0)
    assert set(state.configs(None, batched, ["a", "b"])) == {"a"}
    assert state.configs_error == "settings of 1 topic(s) unknown: b (TopicAuthorizationFailedError)"
    state.configs(None, batched, ["a", "b"])  # not due: only b, whose settings are still unknown
    assert batched.asked == [["a", "b"], ["b"]]
    batched.refused = {}
    assert set(state.configs(None, batched, ["a", "b"])) == {"a", "b"} and state.configs_error is None


def test_a_failed_request_keeps_the_settings_and_says_so_until_one_succeeds():
    from collectors.kafka.group_requests import GroupRequestTimeout

    batched = TableBatched({"a": DELETE_HOUR, "b": COMPACT})
    state = TopicState("c", configs_every=2, log_dirs_every=10, request_timeout=1.0)
    before = dict(state.configs(None, batched, ["a", "b"]))
    batched.fails = GroupRequestTimeout("DescribeConfigs timed out")
    state.configs(None, batched, ["a", "b"])  # not due: nothing asked, nothing failed
    assert state.configs_error is None
    assert state.configs(None, batched, ["a", "b"]) == before  # due: fails, the settings kept
    assert state.configs_error == "DescribeConfigs failed (settings kept from before): DescribeConfigs timed out"
    state.configs(None, batched, ["a", "b"])  # not due: still from before
    assert state.configs_error is not None
    # a new topic then: it cannot be asked either, and is named
    state.configs(None, batched, ["a", "b", "c"])
    assert state.configs_error.endswith("settings of 1 topic(s) unknown: c (no answer)")
    batched.fails, batched.values["c"] = None, COMPACT
    state.configs(None, batched, ["a", "b", "c"])
    assert state.configs_error is None


def test_a_topic_gone_is_no_longer_named():
    batched = TableBatched({"a": DELETE_HOUR}, refused={f"t{i}": "TopicAuthorizationFailedError" for i in range(7)})
    state = TopicState("c", configs_every=10, log_dirs_every=10, request_timeout=1.0)
    state.configs(None, batched, ["a", *batched.refused])
    assert state.configs_error.startswith("settings of 7 topic(s) unknown: t0 (TopicAuthorizationFailedError), ")
    assert state.configs_error.endswith("t4 (TopicAuthorizationFailedError), ...")
    state.configs(None, batched, ["a"])
    assert state.configs_error is None
