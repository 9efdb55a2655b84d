"""A fleet's pure parts: units and their stable partitions, the scope a collector applies, the
state records (encoded, bounded, continued exactly), the snapshot cut to a replica's units and
its /metrics labelled with its instance and cluster-wide series from one owner only."""
from __future__ import annotations

from collections import Counter

import pytest

from collectors.kafka.windows import OffsetWindows
from collectors.metrics_text import TextFamily
from collectors.units import SPARK_UNIT, CollectScope, UnitMap, cluster_unit, group_unit, partition_of
from monitor.fleet.fleet import Fleet
from monitor.fleet.membership import MembershipSettings
from monitor.fleet.settings import FleetConfig
from monitor.fleet.state import (MAX_STATE_BYTES, StateError, alerts_key, decode, decode_group, encode_group,
                                 export_group, import_group, parse_key, spread, windows_key)
from monitor.web.metrics import FleetLabels
from tests import snapshot_builders as T


def test_partitions_are_stable_and_spread():
    # the contract between replicas of any version: never Python's salted hash()
    assert partition_of("group/prod/orders", 24) == partition_of("group/prod/orders", 24)
    # pinned: a replica of another version (or another process: no salt) must compute the same owner
    assert (partition_of("group/prod/orders", 24), partition_of(cluster_unit("prod"), 24)) == (18, 3)
    counts = Counter(partition_of(group_unit("prod", f"g{i}"), 10) for i in range(3000))
    assert set(counts) == set(range(10)) and max(counts.values()) < 1.25 * 300


def test_unit_map_and_scope():
    units = UnitMap(partitions=12, whole_clusters=frozenset({"small"}), spark=True)
    assert units.group_unit("big", "orders") == "group/big/orders"
    assert units.group_unit("small", "orders") == "cluster/small"
    assert units.group_unit("big", "spark-clicks") == SPARK_UNIT
    assert UnitMap(partitions=12).group_unit("big", "spark-clicks") == "group/big/spark-clicks"
    owned = frozenset({units.partition("group/big/orders")})
    scope = CollectScope("big", units, owned)
    assert scope.owns_group("orders")
    assert scope.cluster_wide == (units.partition("cluster/big") in owned)
    assert not CollectScope("big", units, frozenset()).owns_group("orders")


def _windows_with_history() -> OffsetWindows:
    w = OffsetWindows(status_window=5)
    for i in range(40):
        at = 1000.0 + 10 * i
        w.record(at, {("t", 0): 100 * i, ("t", 1): 50 * i}, {("g", "t", 0): 80 * i, ("g", "t", 1): 20})
    return w


def test_group_windows_continue_on_the_next_owner():
    old = _windows_with_history()
    record = encode_group(export_group(old, "g", [("t", 0), ("t", 1)], empty_since=1234.5))
    state = decode_group(record)
    new = OffsetWindows(status_window=5)
    import_group(new, state)
    now = 1390.0
    for p in (0, 1):
        assert new.committed_series("g", "t", p) == old.committed_series("g", "t", p)
        assert new.last_changed_at("g", "t", p) == old.last_changed_at("g", "t", p)
        assert new.rate_of_committed("g", "t", p, now, 30) == old.rate_of_committed("g", "t", p, now, 30)
        assert new.rate_of_end_offsets("t", p, now, 60) == old.rate_of_end_offsets("t", p, now, 60)
    assert new.last_changed_at("g", "t", 1) == 1000.0  # partition 1 never moved: STOP/STALL continue
    assert state.empty_since == 1234.5
    assert len(new.end_offset_series("t", 0)) == 16  # recent points plus some spread over the history
    for p in (0, 1):  # points of the old owner's series, none made up
        assert set(new.end_offset_series("t", p)) <= set(old.end_offset_series("t", p))
    assert new.stats()["end_time_arrays"] == 1  # the partitions handed over together share their times


def test_spread_keeps_the_newest_and_the_oldest_reach():
    points = list(range(100))
    kept = spread(points, 8, 16)
    assert kept[-8:] == points[-8:] and kept[0] == 0 and len(kept) == 16
    assert spread(points, 2, 2) == [98, 99] and spread(points, 0, 0) == []


def test_a_too_large_record_keeps_fewer_end_points(monkeypatch):
    old = _windows_with_history()
    full = encode_group(export_group(old, "g", [("t", 0), ("t", 1)], None))
    monkeypatch.setattr("monitor.fleet.state.MAX_STATE_BYTES", len(full) - 1)
    smaller = decode_group(encode_group(export_group(old, "g", [("t", 0), ("t", 1)], None)))
    assert all(len(points) == 4 for _, _, points in smaller.ends)
    assert MAX_STATE_BYTES < 1 << 20


@pytest.mark.parametrize("value", [b"not zlib", b"x\x9c\x03\x00\x00\x00\x00\x01"])
def test_a_bad_record_is_refused(value):
    with pytest.raises(StateError):
        decode_group(value)


def test_keys():
    assert parse_key(windows_key("prod", "a|b")) == ("w", "prod", "a|b")
    assert parse_key("a|group/prod/g") == ("a", "group/prod/g", None)
    with pytest.raises(StateError):
        parse_key("nonsense")


class Owned:
    def __init__(self, owned):
        self.stats = None
        self._owned = frozenset(owned)

    def owned(self):
        return self._owned


def _fleet(owned_units: list[str]) -> Fleet:
    units = UnitMap(partitions=64)
    fleet = Fleet(FleetConfig(name="f", partitions=64), units,
                  MembershipSettings("127.0.0.1:9", "t", "g", 64, "me:1", 6.0))
    fleet.membership = Owned(units.partition(u) for u in owned_units)
    return fleet


def test_owned_view_keeps_only_the_replicas_units():
    groups = [T.group_lag("prod", g, {("t", 0): 5}) for g in ("a", "b")]
    snap = T.snapshot(0, [T.cluster_state("prod", groups=groups, topics=[T.topic_rates("prod", "t")])])
    mine = _fleet(["group/prod/a"]).owned_view(snap)
    (state,) = mine.clusters
    assert [g.group for g in state.lag.groups] == ["a"]
    assert state.lag.topics == () and state.raw.brokers == ()  # the cluster unit is another's
    owner = _fleet(["cluster/prod"]).owned_view(snap)
    assert owner.clusters[0].lag.groups == () and len(owner.clusters[0].lag.topics) == 1


def test_alert_units_and_ownership_wait_for_a_collected_cycle():
    fleet = _fleet(["group/prod/a", "cluster/prod"])
    assert fleet.alert_unit({"cluster": "prod", "group": "a"}) == "group/prod/a"
    assert fleet.alert_unit({"cluster": "prod", "topic": "t"}) == "cluster/prod"
    assert fleet.alert_unit({"app": "x"}) == SPARK_UNIT and fleet.alert_unit({}) is None
    labels = {"cluster": "prod", "group": "a"}
    assert not fleet.owns_alert(labels)  # owned, but not collected since: its alerts wait
    fleet.collected("prod", fleet.scope("prod"))
    assert fleet.owns_alert(labels) and not fleet.owns_alert({"cluster": "prod", "group": "zz-other"})
    assert fleet.owns_alert({})  # the replica's own (history) alerts


def test_metrics_carry_the_instance_and_cluster_wide_series_from_the_owner_only():
    labels = FleetLabels("me:1", lambda cluster: cluster == "mine")
    brokers = TextFamily("streamscope_kafka_brokers", "gauge", "b", ("cluster",), [(("mine",), 3), (("other",), 3)])
    requests = TextFamily("streamscope_kafka_collector_requests", "gauge", "r", ("cluster",),
                          [(("mine",), 5), (("other",), 7)])
    lag = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", "l", ("cluster", "group", "topic"),
                     [(("other", "g", "t"), 1)])
    assert labels.text_family(brokers).rows == [(("mine", "me:1"), 3)]
    assert labels.text_family(brokers).labels == ("cluster", "instance")
    assert len(labels.text_family(requests).rows) == 2  # each replica's own collector statistics
    assert labels.text_family(lag).rows == [(("other", "g", "t", "me:1"), 1)]  # its groups: filtered before


def test_owned_view_cuts_log_dirs_the_probe_and_retention_to_the_owners():
    """issue 15's series in a fleet: log directories and the probe are cluster-wide (the cluster
    unit's owner only); lag against retention is per group (the group's owner only)."""
    from dataclasses import replace

    from collectors.models import Histogram, LogDir, ProbeStats, RetentionRisk

    empty = Histogram(bounds=(1.0,), counts=(0, 0))
    probe = ProbeStats(topic="streamscope-probe", partitions=1, up=True, rounds_total=1, sent_total=1,
                       received_total=1, failures=(), roundtrip=empty, produce=empty, commit=empty)
    groups = [T.group_lag("prod", g, {("t", 0): 5}) for g in ("a", "b")]
    state = T.cluster_state("prod", groups=groups, topics=[T.topic_rates("prod", "t")])
    state = replace(state, probe=probe,
                    raw=replace(state.raw, log_dirs=(LogDir(broker=1, path="/d", size_bytes=10),),
                                log_dirs_fetched_at=1.0, probe=probe),
                    lag=replace(state.lag, retention=tuple(RetentionRisk(group=g, topic="t", lost=0, lost_partitions=0,
                                                                         headroom_seconds=60.0, basis="time")
                                                           for g in ("a", "b"))))
    snap = T.snapshot(0, [state])
    (mine,) = _fleet(["group/prod/a"]).owned_view(snap).clusters
    assert [r.group for r in mine.lag.retention] == ["a"]
    assert mine.raw.log_dirs == () and mine.raw.log_dirs_fetched_at is None
    assert mine.probe is None and mine.raw.probe is None
    (owner,) = _fleet(["cluster/prod"]).owned_view(snap).clusters
    assert owner.lag.retention == () and len(owner.raw.log_dirs) == 1 and owner.probe == probe


class RecordingMembership(Owned):
    """Owns partitions, records what is written and flushed, in order."""

    def __init__(self, owned):
        super().__init__(owned)
        self.settings = MembershipSettings("127.0.0.1:9", "t", "g", 64, "me:1", 6.0, request_timeout=3.0)
        self.events: list[tuple] = []

    def write(self, key, value, partition):
        self.events.append(("write", key, None if value is None else decode(value)["s"], partition))
        return True

    def flush(self, timeout):
        self.events.append(("flush", timeout))
        return 0


def test_revoked_partitions_hand_their_last_alert_state_over_lost_ones_do_not():
    """Revoked in a rebalance, a partition goes to its next owner when `released` returns: the
    alert state of its units as it is then (a notification sent since the last cycle's write
    included) is written and acknowledged first, with a tombstone for a unit whose state is gone,
    and only then are its alerts dropped. Lost, it may be another's already: nothing is written."""
    units = UnitMap(partitions=64)
    a = "group/prod/a"
    a_partition = units.partition(a)
    b, kept = (next(f"group/prod/{n}{i}" for i in range(1000) if units.partition(f"group/prod/{n}{i}") == p)
               for n, p in (("b", a_partition), ("kept", (a_partition + 1) % 64)))
    fleet = Fleet(FleetConfig(name="f", partitions=64), units,
                  MembershipSettings("127.0.0.1:9", "t", "g", 64, "me:1", 6.0))
    fleet.membership = membership = RecordingMembership({a_partition, units.partition(kept)})
    fleet.write_alert_states({a: {"nflog": []}, b: {"nflog": []}, kept: {"nflog": []}})  # a cycle's write
    membership.events.clear()
    now = {a: {"nflog": ["told firing"]}, kept: {"nflog": ["told"]}}  # b resolved and forgotten since
    released = []
    fleet.on_hand_over = lambda partitions: fleet.hand_over_alert_states(now, partitions)
    fleet.on_release = lambda partitions: released.append((partitions, list(membership.events)))

    fleet.released(frozenset({a_partition}), lost=False)
    assert membership.events == [("write", alerts_key(a), {"nflog": ["told firing"]}, a_partition),
                                 ("write", alerts_key(b), None, a_partition), ("flush", 3.0)]
    assert released == [(frozenset({a_partition}), membership.events)]  # written before dropped

    membership.events.clear()
    fleet.released(frozenset({units.partition(kept)}), lost=True)
    assert membership.events == [] and len(released) == 2
