"""derive(): raw snapshot + windows -> KafkaLagView. Pure, no I/O, explicit `now`."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest

from collectors.kafka.partition_health import replication_factor, topic_under_min_isr
from collectors.kafka.signals import SignalSettings, derive, next_empty_since
from collectors.kafka.windows import OffsetWindows
from collectors.models import (
    CommittedOffset,
    ConsumerGroup,
    GroupMember,
    KafkaClusterSnapshot,
    PartitionMetadata,
    Status,
    TimeLagMethod,
    Topic,
    TopicConfig,
)

DT = 30.0
T0 = 1_700_000_000.0


class Read(NamedTuple):
    """What the collector read at a group's position: the record's timestamp."""

    group: str
    topic: str
    partition: int
    offset: int
    timestamp: float


def _with_reads(g, reads):
    """The group's offsets annotated as the collector annotates a position it read."""
    by_position = {(r.topic, r.partition, r.offset): r.timestamp for r in reads if r.group == g.name}
    if not by_position:
        return g
    offsets = tuple(
        o._replace(timestamp=by_position[(o.topic, o.partition, o.offset)], readable_offset=o.offset)
        if (o.topic, o.partition, o.offset) in by_position else o
        for o in g.offsets
    )
    return dataclasses.replace(g, offsets=offsets)


def member(client, *assignment):
    return GroupMember(member_id=f"{client}-id", client_id=client, host="/10.0.0.1", assignment=tuple(assignment))


def group(name, offsets, *, members=(), at=None, error=None, state=None):
    return ConsumerGroup(
        name=name,
        state=state or ("Stable" if members else "Empty"),
        members=tuple(members),
        offsets=tuple(CommittedOffset(t, p, o) for (t, p), o in offsets.items()),
        offsets_fetched_at=at,
        error=error,
    )


def snapshot(at, ends, groups=(), record_timestamps=(), *, partitions=None, error=None):
    """`ends`: {(topic, p): end offset or None}; end offsets fetched 0.2 s after commits."""
    topics = {}
    for (t, p), end in ends.items():
        meta = (partitions or {}).get((t, p)) or {}
        topics.setdefault(t, []).append(
            PartitionMetadata(
                topic=t, partition=p, leader=meta.get("leader", 1), replicas=meta.get("replicas", (1, 2, 3)),
                isr=meta.get("isr", (1, 2, 3)), earliest_offset=meta.get("earliest", 0), latest_offset=end,
            )
        )
    return KafkaClusterSnapshot(
        cluster="local", started_at=at - 1.0, finished_at=at, end_offsets_fetched_at=at,
        topics=tuple(Topic(t, tuple(ps)) for t, ps in topics.items()),
        groups=tuple(_with_reads(dataclasses.replace(g, offsets_fetched_at=at - 0.2 if g.offsets_fetched_at is None
                                                     else g.offsets_fetched_at), record_timestamps) for g in groups),
        error=error,
    )


def run(cycles, make, windows=None, settings=SignalSettings(), empty_since=None):
    """Record `cycles` snapshots made by make(i, at) (as the collector loop would), derive the last."""
    w = windows or OffsetWindows()
    raw = None
    for i in range(cycles):
        at = T0 + i * DT
        raw = make(i, at)
        w.record_snapshot(raw)
    return derive(raw, w, raw.finished_at, settings, empty_since or {}), w, raw


def only_group(view, name="g"):
    (g,) = [g for g in view.groups if g.group == name]
    return g


TP = ("orders", 0)


# --------------------------------------------------------------------------------------------
# offset lag and time lag
# --------------------------------------------------------------------------------------------


def test_lag_is_end_minus_committed_clamped():
    def make(i, at):
        return snapshot(at, {TP: 100, ("orders", 1): 50},
                        [group("g", {TP: 40, ("orders", 1): 60}, members=[member("c1", TP, ("orders", 1))])])

    view, _, _ = run(1, make)
    g = only_group(view)
    p0, p1 = g.partitions
    assert (p0.partition, p0.committed_offset, p0.end_offset, p0.lag) == (0, 40, 100, 60)
    assert (p1.partition, p1.lag) == (1, 0)
    assert g.lag == 60


def test_caught_up_time_lag_is_zero_seconds_method_none():
    view, _, _ = run(3, lambda i, at: snapshot(at, {TP: 100 + i}, [group("g", {TP: 100 + i})]))
    p = only_group(view).partitions[0]
    assert p.lag == 0
    assert p.time_lag_seconds == 0.0
    assert p.time_lag_method is TimeLagMethod.NONE
    assert p.time_lag_lower_bound is False


def test_exact_time_lag_takes_precedence_and_is_clamped():
    def make(i, at):
        rts = [Read("g", "orders", 0, 40, at - 125.0), Read("g", "orders", 1, 10, at + 5.0)]
        return snapshot(at, {TP: 10 * i + 100, ("orders", 1): 50}, [group("g", {TP: 40, ("orders", 1): 10})], rts)

    view, _, raw = run(5, make)
    p0, p1 = only_group(view).partitions
    assert p0.time_lag_method is TimeLagMethod.EXACT
    assert p0.time_lag_seconds == pytest.approx(125.0)
    assert p1.time_lag_method is TimeLagMethod.EXACT
    assert p1.time_lag_seconds == 0.0  # record timestamp in the future (clock skew): clamped
    g = only_group(view)
    assert (g.time_lag_seconds, g.time_lag_method) == (pytest.approx(125.0), TimeLagMethod.EXACT)


def test_interpolated_time_lag_dates_the_record_at_the_committed_offset():
    # end offset grows 10 msg/s: end = 300 * i at T0 + 30 i. Record 1234 was appended when the
    # end went 1234 -> 1235, i.e. at T0 + 123.5; the group committed 1234 (next to read).
    def make(i, at):
        return snapshot(at, {TP: 300 * i}, [group("g", {TP: 1234}, members=[member("c", TP)])])

    view, _, raw = run(10, make)
    p = only_group(view).partitions[0]
    assert p.time_lag_method is TimeLagMethod.INTERPOLATED
    assert p.time_lag_lower_bound is False
    assert p.time_lag_seconds == pytest.approx(raw.finished_at - (T0 + 123.5))


def test_interpolated_time_lag_older_than_history_is_a_flagged_lower_bound():
    def make(i, at):
        return snapshot(at, {TP: 5000 + 300 * i}, [group("g", {TP: 10})])

    view, w, raw = run(4, make)
    g = only_group(view)
    p = g.partitions[0]
    assert p.time_lag_method is TimeLagMethod.INTERPOLATED
    assert p.time_lag_lower_bound is True
    assert p.time_lag_seconds == pytest.approx(raw.finished_at - T0)  # oldest sample
    assert g.time_lag_lower_bound is True


def test_prefer_exact_false_uses_interpolation_when_available():
    def make(i, at):
        return snapshot(at, {TP: 300 * i}, [group("g", {TP: 1234})], [Read("g", "orders", 0, 1234, at - 7.0)])

    settings = SignalSettings(prefer_exact_time_lag=False)
    p = only_group(run(10, make, settings=settings)[0]).partitions[0]
    assert p.time_lag_method is TimeLagMethod.INTERPOLATED


def test_no_end_offset_history_and_no_exact_means_unknown_time_lag():
    # windows never saw this partition (e.g. derive on a fresh OffsetWindows)
    raw = snapshot(T0, {TP: 100}, [group("g", {TP: 40})])
    view = derive(raw, OffsetWindows(), T0, SignalSettings(), {})
    p = only_group(view).partitions[0]
    assert (p.lag, p.time_lag_seconds, p.time_lag_method) == (60, None, TimeLagMethod.NONE)
    assert p.consume_rate is None and p.status is Status.OK


def test_partitions_without_end_offset_or_commit_are_left_out():
    def make(i, at):
        return snapshot(
            at, {TP: 100, ("orders", 1): None},
            [group("g", {TP: 10, ("orders", 1): 10, ("orders", 2): -1001, ("deleted", 0): 5})],
        )

    g = only_group(run(2, make)[0])
    assert [(p.topic, p.partition) for p in g.partitions] == [TP]
    assert g.topics == ("deleted", "orders")


# --------------------------------------------------------------------------------------------
# rates and ETA
# --------------------------------------------------------------------------------------------


def test_rates_and_eta():
    # produce 10 msg/s on each of 2 partitions; the group consumes 15 msg/s on each
    def make(i, at):
        ends = {TP: 10_000 + 300 * i, ("orders", 1): 20_000 + 300 * i}
        commits = {TP: 1_000 + 450 * i, ("orders", 1): 2_000 + 450 * i}
        return snapshot(at, ends, [group("g", commits, members=[member("c", TP, ("orders", 1))])])

    view, _, _ = run(12, make)
    g = only_group(view)
    for p in g.partitions:
        assert p.consume_rate == pytest.approx(15.0)
    assert g.consume_rate == pytest.approx(30.0)
    assert g.produce_rate == pytest.approx(20.0)
    assert g.lag == (10_000 + 300 * 11 - 1_000 - 450 * 11) + (20_000 + 300 * 11 - 2_000 - 450 * 11)
    assert g.eta_seconds == pytest.approx(g.lag / 10.0)
    (t,) = view.topics
    assert t.produce_rate == pytest.approx(20.0)
    assert t.partition_produce_rates == (pytest.approx(10.0), pytest.approx(10.0))


def test_eta_none_when_not_catching_up_and_zero_when_caught_up():
    def make(i, at):
        return snapshot(at, {TP: 300 * i, ("other", 0): 5}, [
            group("slow", {TP: 100 * i}),  # consumes 3.3/s < 10/s
            group("done", {("other", 0): 5}),
        ])

    view, _, _ = run(12, make)
    assert only_group(view, "slow").eta_seconds is None
    assert only_group(view, "done").eta_seconds == 0.0


def test_rates_unknown_on_first_cycle():
    view, _, _ = run(1, lambda i, at: snapshot(at, {TP: 100}, [group("g", {TP: 40})]))
    g = only_group(view)
    assert (g.consume_rate, g.produce_rate, g.eta_seconds) == (None, None, None)
    assert view.topics[0].produce_rate is None


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "members, expected",
    [
        pytest.param([member("c", TP)], Status.STALL, id="stuck offset, member owns partition -> STALL"),
        pytest.param([member("c", ("orders", 9))], Status.STOP, id="stuck offset, partition owned by nobody -> STOP"),
        pytest.param([], Status.STOP, id="stuck offset, group empty -> STOP"),
        pytest.param([member("c")], Status.STALL, id="stuck offset, members without known assignment -> STALL"),
    ],
)
def test_status_stall_vs_stop(members, expected):
    def make(i, at):
        return snapshot(at, {TP: 1000 + 100 * i}, [group("g", {TP: 500}, members=members)])

    g = only_group(run(12, make)[0])
    assert g.partitions[0].status is expected
    assert g.status is Status.ERR


def test_status_warn_when_falling_behind():
    def make(i, at):
        return snapshot(at, {TP: 1000 + 100 * i}, [group("g", {TP: 500 + 50 * i}, members=[member("c", TP)])])

    g = only_group(run(10, make)[0])
    assert g.partitions[0].status is Status.WARN
    assert g.status is Status.WARN


def test_status_ok_before_window_is_full():
    def make(i, at):
        return snapshot(at, {TP: 1000 + 100 * i}, [group("g", {TP: 500}, members=[member("c", TP)])])

    assert only_group(run(9, make)[0]).status is Status.OK


def test_status_rewind():
    def make(i, at):
        return snapshot(at, {TP: 1000 + 100 * i}, [group("g", {TP: 900 if i < 3 else 10 + i}, members=[member("c", TP)])])

    g = only_group(run(5, make)[0])
    assert g.partitions[0].status is Status.REWIND
    assert g.status is Status.ERR


# --------------------------------------------------------------------------------------------
# groups: membership, owner, empty TTL, errors
# --------------------------------------------------------------------------------------------


def test_owner_is_the_client_id_of_the_assigned_member():
    def make(i, at):
        return snapshot(at, {TP: 10, ("orders", 1): 10}, [
            group("g", {TP: 1, ("orders", 1): 1}, members=[member("alpha", TP), member("beta", ("orders", 1))])
        ])

    g = only_group(run(1, make)[0])
    assert [p.owner for p in g.partitions] == ["alpha", "beta"]
    assert (g.members, g.is_empty, g.empty_since, g.state) == (2, False, None, "Stable")


@pytest.mark.parametrize(
    "empty_since, in_view, expected_since",
    [
        pytest.param({}, True, "now", id="empty, no empty_since recorded -> now"),
        pytest.param({"g": T0 - 3600}, True, T0 - 3600, id="empty for 1 h -> reported with empty_since"),
        pytest.param({"g": T0 - 7 * 86400}, True, T0 - 7 * 86400, id="empty exactly TTL -> still reported"),
        pytest.param({"g": T0 - 7 * 86400 - 1}, False, None, id="empty longer than TTL -> dropped"),
    ],
)
def test_empty_groups_reported_until_ttl(empty_since, in_view, expected_since):
    raw = snapshot(T0, {TP: 100}, [group("g", {TP: 40})])
    w = OffsetWindows()
    w.record_snapshot(raw)
    view = derive(raw, w, T0, SignalSettings(), empty_since)
    names = [g.group for g in view.groups]
    assert ("g" in names) is in_view
    if in_view:
        g = only_group(view)
        assert g.is_empty and g.members == 0
        assert g.empty_since == (T0 if expected_since == "now" else expected_since)
        assert g.lag == 60


def test_empty_since_ignored_for_groups_with_members():
    raw = snapshot(T0, {TP: 100}, [group("g", {TP: 40}, members=[member("c", TP)])])
    view = derive(raw, OffsetWindows(), T0, SignalSettings(empty_group_ttl=1.0), {"g": 0.0})
    g = only_group(view)
    assert g.is_empty is False and g.empty_since is None


def test_group_with_error_is_kept_with_its_error_and_no_partitions():
    def make(i, at):
        return snapshot(at, {TP: 100}, [
            group("bad", {TP: 999_999}, members=[member("c", TP)], error="OffsetFetch timed out", state="Unknown"),
            group("good", {TP: 40}),
        ])

    view, w, _ = run(3, make)
    bad = only_group(view, "bad")
    assert bad.error == "OffsetFetch timed out"
    assert bad.partitions == ()
    assert (bad.lag, bad.time_lag_seconds, bad.consume_rate, bad.eta_seconds) == (0, None, None, None)
    assert bad.topics == ("orders",)
    assert w.committed_series("bad", *TP) == []  # bad data never recorded either
    assert only_group(view, "good").error is None


@pytest.mark.parametrize(
    "groups, previous, expected",
    [
        pytest.param([group("a", {})], {}, {"a": 50.0}, id="newly empty -> now"),
        pytest.param([group("a", {})], {"a": 10.0}, {"a": 10.0}, id="still empty -> keeps first time"),
        pytest.param([group("a", {}, members=[member("c")])], {"a": 10.0}, {}, id="has members again -> removed"),
        pytest.param([], {"a": 10.0}, {}, id="group gone -> removed"),
        pytest.param([group("a", {}, error="boom")], {"a": 10.0}, {"a": 10.0}, id="fetch error -> keeps previous"),
        pytest.param([group("a", {}, error="boom")], {}, {}, id="fetch error, no previous -> nothing started"),
    ],
)
def test_next_empty_since(groups, previous, expected):
    raw = snapshot(50.0, {}, groups)
    assert next_empty_since(raw, previous, 50.0) == expected


def test_next_empty_since_failed_cycle_changes_nothing():
    raw = snapshot(50.0, {}, [], error="cluster unreachable")
    assert next_empty_since(raw, {"a": 10.0, "b": 20.0}, 50.0) == {"a": 10.0, "b": 20.0}


# --------------------------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------------------------


def test_topic_rates_counts_and_partition_index():
    parts = {
        ("t", 0): {"earliest": 10},
        ("t", 1): {"isr": (1, 2)},  # under-replicated
        ("t", 3): {"leader": -1, "isr": ()},  # offline (and under-replicated); partition 2 missing
    }

    def make(i, at):
        return snapshot(at, {("t", 0): 100 + 30 * i, ("t", 1): 50, ("t", 3): 7}, partitions=parts)

    view, _, _ = run(3, make)
    (t,) = view.topics
    assert (t.cluster, t.topic, t.partitions) == ("local", "t", 3)
    assert t.end_offset_sum == 160 + 50 + 7
    assert t.message_count == 150 + 50 + 7
    assert (t.under_replicated, t.offline) == (2, 1)
    assert t.partition_produce_rates == (pytest.approx(1.0), 0.0, None, 0.0)
    assert t.produce_rate == pytest.approx(1.0)


def test_topic_replication_and_min_isr_counts_are_partition_healths():
    """derive counts each topic's replication factor and partitions under min.insync.replicas in
    its own pass: the same figures as `partition_health`, whose definitions they are. An offline
    partition (no leader) is offline, not under min ISR; without the setting the count is unknown."""
    parts = {
        ("t", 0): {},
        ("t", 1): {"isr": (1,)},  # one in sync of three: under min ISR 2
        ("t", 2): {"leader": -1, "isr": ()},  # offline: counted there only
        ("t", 3): {"replicas": (1, 2, 3, 4), "isr": (1, 2, 3, 4)},  # a reassignment adds a replica
        ("u", 0): {"isr": (1,)},
    }
    raw = snapshot(T0, {tp: 5 for tp in parts}, partitions=parts)
    config = TopicConfig(cleanup_policy="delete", retention_ms=-1, retention_bytes=-1, min_insync_replicas=2)
    raw = dataclasses.replace(raw, topics=tuple(dataclasses.replace(t, config=config) if t.name == "t" else t
                                                for t in raw.topics))
    t, u = derive(raw, OffsetWindows(), T0, SignalSettings(), {}).topics
    assert (t.replication_factor, t.under_min_isr, t.offline, t.under_replicated) == (4, 1, 1, 2)
    assert (u.replication_factor, u.under_min_isr) == (3, None)
    for view, topic in ((t, raw.topics[0]), (u, raw.topics[1])):
        assert (view.replication_factor, view.under_min_isr) == (replication_factor(topic), topic_under_min_isr(topic))


def test_topic_figures_count_only_the_offsets_known():
    """A partition whose log start or end the cycle could not read adds nothing to the topic's
    retained messages, nor (end unknown or negative) to its end offset sum, and gets no lag."""
    parts = {("t", 1): {"earliest": None}, ("t", 2): {"earliest": 3}}
    ends = {("t", 0): 100, ("t", 1): 40, ("t", 2): None, ("t", 3): -1, ("u", 0): 10, ("u", 1): -1}
    raw = snapshot(T0, ends, [group("g", {tp: 0 for tp in ends})], partitions=parts)
    view = derive(raw, OffsetWindows(), T0, SignalSettings(), {})
    t, u = view.topics
    assert (t.partitions, t.end_offset_sum, t.message_count) == (4, 140, 100)
    assert (u.partitions, u.end_offset_sum, u.message_count) == (2, 10, 10)
    assert [(p.topic, p.partition) for p in only_group(view).partitions] == [("t", 0), ("t", 1), ("u", 0)]


# --------------------------------------------------------------------------------------------
# misc
# --------------------------------------------------------------------------------------------


def test_hostile_names_pass_through_untouched():
    g_name = 'grp"; DROP TABLE groups;--\n<script>alert("x")</script>'
    topic = "t'\"\n<img src=x onerror=alert(1)>"
    client = "</td><script>steal()</script>\r\n"

    def make(i, at):
        return snapshot(at, {(topic, 0): 100 + i}, [group(g_name, {(topic, 0): 50}, members=[member(client, (topic, 0))])])

    view, _, _ = run(2, make)
    (g,) = view.groups
    assert g.group == g_name
    assert g.topics == (topic,)
    assert g.partitions[0].topic == topic
    assert g.partitions[0].owner == client
    assert view.topics[0].topic == topic


def test_output_order_is_deterministic():
    def make(i, at):
        return snapshot(at, {("b", 1): 5, ("b", 0): 5, ("a", 0): 5}, [
            group("zeta", {("b", 1): 1, ("b", 0): 1, ("a", 0): 1}),
            group("alpha", {("a", 0): 1}),
        ])

    view, _, _ = run(1, make)
    assert [g.group for g in view.groups] == ["alpha", "zeta"]
    assert [(p.topic, p.partition) for p in only_group(view, "zeta").partitions] == [("a", 0), ("b", 0), ("b", 1)]
    assert [t.topic for t in view.topics] == ["a", "b"]
    assert (view.cluster, view.at) == ("local", T0)


def test_derive_does_not_mutate_windows():
    def make(i, at):
        return snapshot(at, {TP: 100 * i}, [group("g", {TP: 10 * i})])

    view, w, raw = run(5, make)
    before = (w.stats(), w.end_offset_series(*TP), w.committed_series("g", *TP))
    again = derive(raw, w, raw.finished_at, SignalSettings(), {})
    assert (w.stats(), w.end_offset_series(*TP), w.committed_series("g", *TP)) == before
    assert again == view


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_window": 0}, {"status_window": 1}, {"status_window": 2.5}, {"empty_group_ttl": -1}],
    ids=["rate_window must be positive", "status_window >= 2", "status_window integer", "ttl >= 0"],
)
def test_settings_validation_names_the_field(kwargs):
    (field,) = kwargs
    with pytest.raises(ValueError, match=field):
        SignalSettings(**kwargs)


_HAS_KIND = "kind" in ConsumerGroup.__dataclass_fields__


@pytest.mark.skipif(not _HAS_KIND, reason="ConsumerGroup.kind not in collectors.models yet")
@pytest.mark.parametrize(
    "state, is_empty, expected",
    [
        pytest.param("Stable", False, Status.STALL, id="Spark query running, offsets stuck -> STALL (it is the consumer)"),
        pytest.param("Inactive", True, Status.STOP, id="Spark query not running, offsets stuck -> STOP, empty"),
    ],
)
def test_spark_query_groups(state, is_empty, expected):
    def make(i, at):
        q = dataclasses.replace(group("spark-q", {TP: 500}, state=state), kind="spark-query")
        return snapshot(at, {TP: 1000 + 100 * i}, [q])

    g = only_group(run(12, make)[0], "spark-q")
    assert g.is_empty is is_empty
    assert g.partitions[0].status is expected
    if "kind" in type(g).__dataclass_fields__:
        assert g.kind == "spark-query"


# ------------------------------------------------------------------------------ readable lag


def _annotated(g, **fields):
    """The group's single position annotated as the collector annotates it."""
    [o] = g.offsets
    return dataclasses.replace(g, offsets=(o._replace(**fields),))


def test_caught_up_on_a_transaction_marker_is_zero_readable_lag_ok_and_no_time_lag():
    # committed 100, end 101: only the commit marker is left (the collector read to the end)
    def make(i, at):
        g = _annotated(group("g", {TP: 100}, members=[member("c", TP)]), readable_lag=0, readable_offset=101)
        return snapshot(at, {TP: 101}, [g])

    view, _, _ = run(12, make)
    g = only_group(view)
    p = g.partitions[0]
    assert (p.lag, p.readable_lag, p.time_lag_seconds, p.time_lag_method) == (1, 0, 0.0, TimeLagMethod.NONE)
    assert p.status is Status.OK and g.status is Status.OK  # not STALL: nothing is left to read
    assert (g.lag, g.readable_lag) == (1, 0)


def test_without_readable_knowledge_a_marker_tail_would_stall():
    view, _, _ = run(12, lambda i, at: snapshot(at, {TP: 101}, [group("g", {TP: 100}, members=[member("c", TP)])]))
    assert only_group(view).partitions[0].status is Status.STALL  # the behaviour readable lag fixes


def test_interpolation_dates_the_first_readable_record_not_the_committed_offset():
    # end grows 10 msg/s (300 per 30 s cycle); records 1000-1199 were aborted: the first readable
    # record is 1200, appended when the end went 1200 -> 1201, i.e. at T0 + 120.1
    def make(i, at):
        g = _annotated(group("g", {TP: 1000}), readable_lag=300 * i - 1200, readable_offset=1200)
        return snapshot(at, {TP: 300 * i}, [g])

    view, _, raw = run(10, make)
    p = only_group(view).partitions[0]
    assert p.time_lag_method is TimeLagMethod.INTERPOLATED
    assert p.time_lag_seconds == pytest.approx(raw.finished_at - (T0 + 120.1))
    assert p.readable_lag == 1500 and p.lag == 1700


def test_eta_uses_readable_lag():
    def make(i, at):
        g = _annotated(group("g", {TP: 100 + 20 * i}, members=[member("c", TP)]), readable_lag=0,
                       readable_offset=200 + 20 * i)
        return snapshot(at, {TP: 200 + 20 * i}, [g])

    g = only_group(run(5, make)[0])
    assert g.lag == 100 and g.readable_lag == 0 and not g.eta_seconds


def test_group_time_lag_is_a_lower_bound_when_any_lagging_partition_is():
    other = ("orders", 1)

    def make(i, at):
        # partition 0: exact, 500 s old; partition 1: committed before the history, 60 s old at most
        g = group("g", {TP: 10, other: 10})
        exact = g.offsets[0]._replace(timestamp=at - 500.0, readable_offset=10)
        g = dataclasses.replace(g, offsets=(exact, g.offsets[1]))
        return snapshot(at, {TP: 100 + i, other: 100 + i}, [g])

    g = only_group(run(3, make)[0])
    p0, p1 = g.partitions
    assert p0.time_lag_method is TimeLagMethod.EXACT and not p0.time_lag_lower_bound
    assert p1.time_lag_lower_bound
    assert g.time_lag_seconds == pytest.approx(500.0) and g.time_lag_lower_bound


def test_uncommitted_partitions_are_kept_flagged_and_counted_by_their_rule():
    other = ("orders", 1)

    def make(i, at):
        g = group("g", {TP: 40})
        # the collector added partition 1 at its earliest offset (rule "earliest")
        start = g.offsets[0]._replace(partition=1, offset=0, committed=False)
        return snapshot(at, {TP: 50, other: 30}, [dataclasses.replace(g, offsets=g.offsets + (start,))])

    g = only_group(run(3, make)[0])
    assert g.uncommitted_partitions == 1
    p0, p1 = g.partitions
    assert (p0.committed_offset, p0.uncommitted, p0.lag) == (40, False, 10)
    assert (p1.committed_offset, p1.uncommitted, p1.lag) == (None, True, 30)
    assert g.lag == 40 and p1.consume_rate is None


def test_a_partition_without_commit_history_between_others_leaves_theirs_to_them():
    """Consume rates and statuses are judged for the partitions with a committed series, and go
    back to each of them in order, past an uncommitted partition between them."""
    def make(i, at):
        g = group("g", {("orders", 0): 100 + 10 * i, ("orders", 2): 500}, members=[
            member("c1", ("orders", 0), ("orders", 1), ("orders", 2))])
        middle = g.offsets[0]._replace(partition=1, offset=0, committed=False)
        return snapshot(at, {("orders", 0): 1000, ("orders", 1): 30, ("orders", 2): 1000},
                        [dataclasses.replace(g, offsets=g.offsets + (middle,))])

    g = only_group(run(12, make)[0])  # a full status window
    p0, p1, p2 = g.partitions
    assert [p.partition for p in g.partitions] == [0, 1, 2]
    assert p0.consume_rate == pytest.approx(10 / DT) and p0.status is Status.OK
    assert (p1.uncommitted, p1.consume_rate, p1.status) == (True, None, Status.OK)
    # stopped with 500 messages left while its owner is connected: not consuming
    assert p2.consume_rate == 0.0 and p2.status is Status.STALL
