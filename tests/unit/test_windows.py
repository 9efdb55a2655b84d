"""OffsetWindows: recording, thinning, interpolation, rates, forgetting. Pure, no I/O."""
from __future__ import annotations

import random

import pytest

from collectors.kafka.windows import CommitPoint, OffsetTime, OffsetWindows
from collectors.models import (
    CommittedOffset,
    ConsumerGroup,
    KafkaClusterSnapshot,
    PartitionMetadata,
    Topic,
)

TP = ("orders", 0)


def windows_with(points, **kw) -> OffsetWindows:
    w = OffsetWindows(**kw)
    for at, end in points:
        w.record_end_offsets(at, {TP: end})
    return w


# --------------------------------------------------------------------------------------------
# offset_time: interpolation math
# --------------------------------------------------------------------------------------------

SERIES = [(100.0, 1000), (130.0, 1300), (160.0, 1300), (190.0, 1900)]


@pytest.mark.parametrize(
    "offset, expected",
    [
        pytest.param(1300, OffsetTime(130.0, True), id="exact point: offset reached at that sample"),
        pytest.param(1900, OffsetTime(190.0, True), id="exact point: newest sample"),
        pytest.param(1150, OffsetTime(115.0, True), id="between points: linear interpolation"),
        pytest.param(1001, OffsetTime(100.1, True), id="between points: just after the oldest"),
        pytest.param(1600, OffsetTime(175.0, True), id="after a plateau: interpolates from the plateau's end"),
        pytest.param(1000, OffsetTime(100.0, False), id="equal to oldest sample -> oldest time, LOWER bound"),
        pytest.param(10, OffsetTime(100.0, False), id="older than history -> oldest time, LOWER bound"),
        pytest.param(1901, OffsetTime(None, False), id="beyond newest sample -> None"),
    ],
)
def test_offset_time(offset, expected):
    w = windows_with(SERIES)
    got = w.offset_time(*TP, offset)
    assert got.within_history is expected.within_history
    if expected.at is None:
        assert got.at is None
    else:
        assert got.at == pytest.approx(expected.at)


def test_offset_time_without_history_is_none():
    w = OffsetWindows()
    assert w.offset_time("nope", 0, 5) == OffsetTime(None, False)
    assert w.offset_time_bracket("nope", 0, 5) is None


def test_offset_time_bracket_is_the_error_bound():
    w = windows_with(SERIES)
    assert w.offset_time_bracket(*TP, 1150) == (100.0, 130.0)
    assert w.offset_time_bracket(*TP, 1000) is None  # lower-bound case: no bracket


# --------------------------------------------------------------------------------------------
# thinning
# --------------------------------------------------------------------------------------------

DT = 30.0
DAY = 86400.0


@pytest.mark.parametrize("samples", [2880, 2880 + 37, 2 * 2880 + 5], ids=lambda n: f"{n} samples of 30 s")
def test_thinning_keeps_cap_horizon_and_relative_error_bound(samples):
    w = OffsetWindows(max_points=256, end_offset_horizon=DAY)
    for i in range(samples):
        w.record_end_offsets(i * DT, {TP: i * 7})
        assert len(w.end_offset_series(*TP)) <= 256
    s = w.end_offset_series(*TP)
    now = s[-1][0]
    assert s[-1] == ((samples - 1) * DT, (samples - 1) * 7)
    # spans the horizon (when there is that much data), not much more
    span = now - s[0][0]
    assert span >= min(DAY, now)
    assert span <= DAY + 2 * 3600
    # recent data dense: at least the last 15 minutes at full resolution
    recent = [t for t, _ in s if now - t <= 900]
    assert len(recent) == 31
    # documented bound: gap between retained samples <= max(2 dt, 4.5 % of the age)
    for (t0, _), (t1, _) in zip(s, s[1:]):
        assert t1 - t0 <= max(2 * DT, 0.045 * (now - t1)), (t0, t1, now)


def test_interpolation_after_thinning_linear_log_is_exact():
    w = OffsetWindows()
    for i in range(2880):
        w.record_end_offsets(1_000.0 + i * DT, {TP: 5_000 + i * 300})  # 10 msg/s
    assert len(w.end_offset_series(*TP)) < 2880
    for offset in (5_001 + 300 * 100, 5_000 + 300 * 1234 + 17, 5_000 + 300 * 2870 + 299):
        got = w.offset_time(*TP, offset)
        assert got.within_history
        assert got.at == pytest.approx(1_000.0 + (offset - 5_000) / 10.0)


def test_interpolation_after_thinning_step_log_error_within_bracket():
    # bursty log: 1000 messages at once every 10 minutes, nothing in between
    w = OffsetWindows()
    true_time = {}
    end = 0
    for i in range(2880):
        at = i * DT
        if i % 20 == 0:
            true_time[end + 1] = at  # record `end` appended in (at - DT, at]
            end += 1000
        w.record_end_offsets(at, {TP: end})
    now = 2879 * DT
    for offset, appended in true_time.items():
        got = w.offset_time(*TP, offset)
        if not got.within_history:
            continue
        lo, hi = w.offset_time_bracket(*TP, offset)
        assert lo < got.at <= hi
        assert lo < appended <= hi or appended - DT < hi <= appended
        # error bounded by the bracket, itself bounded relative to the age
        assert abs(got.at - appended) <= max(hi - lo, DT)
        assert hi - lo <= max(2 * DT, 0.045 * (now - hi))


def test_offset_older_than_thinned_history_is_lower_bound():
    w = OffsetWindows()
    for i in range(2 * 2880):  # 48 h of 30-s samples, 24 h kept
        w.record_end_offsets(i * DT, {TP: i * 10})
    oldest_at, oldest_offset = w.end_offset_series(*TP)[0]
    now = (2 * 2880 - 1) * DT
    assert now - DAY - 2 * 3600 <= oldest_at <= now - DAY
    got = w.offset_time(*TP, 10 * 100)  # reached ~47 h ago
    assert got == OffsetTime(oldest_at, False)
    assert now - got.at < now - 100 * DT  # a lower bound on the true age


def test_horizon_trim_keeps_one_point_before_cutoff():
    w = OffsetWindows(end_offset_horizon=100.0, max_points=256)
    for i in range(20):
        w.record_end_offsets(i * 10.0, {TP: i})
    s = w.end_offset_series(*TP)
    assert s[0][0] <= 190.0 - 100.0 < s[1][0]


# --------------------------------------------------------------------------------------------
# end-offset recording edge cases
# --------------------------------------------------------------------------------------------


def test_out_of_order_and_same_time_samples():
    w = windows_with([(10.0, 100), (20.0, 200)])
    w.record_end_offsets(15.0, {TP: 150})  # older than newest: dropped
    w.record_end_offsets(20.0, {TP: 210})  # same time: replaces
    assert w.end_offset_series(*TP) == [(10.0, 100), (20.0, 210)]
    assert w.out_of_order_dropped == 1


def test_end_offset_decrease_restarts_series():
    w = windows_with([(10.0, 100), (20.0, 200), (30.0, 5)])  # topic recreated
    assert w.end_offset_series(*TP) == [(30.0, 5)]


# --------------------------------------------------------------------------------------------
# rates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, now, window, expected",
    [
        pytest.param([(0, 0), (30, 300), (60, 600)], 60, 60, 10.0, id="constant rate"),
        pytest.param([(0, 0), (30, 0), (60, 600), (90, 600)], 90, 30, 0.0, id="base = newest point at window start"),
        pytest.param([(0, 0), (30, 0), (60, 600), (90, 600)], 90, 45, 10.0, id="window start between points -> covers whole window"),
        pytest.param([(0, 0), (30, 300)], 30, 300, 10.0, id="history shorter than window -> over what there is"),
        pytest.param([(0, 0), (30, 300), (60, 9000)], 30, 300, 10.0, id="points after now ignored"),
        pytest.param([(0, 100)], 0, 300, None, id="single point -> unknown"),
        pytest.param([], 0, 300, None, id="no history -> unknown"),
    ],
)
def test_rate_of_end_offsets(points, now, window, expected):
    w = windows_with(points)
    got = w.rate_of_end_offsets(*TP, now, window)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_rate_of_committed_uses_points_after_last_rewind():
    w = OffsetWindows()
    for at, off in [(0, 1000), (30, 1300), (60, 100), (90, 400), (120, 700)]:
        w.record_committed("g", at, {TP: off})
    assert w.rate_of_committed("g", *TP, 120, 300) == pytest.approx(10.0)
    assert w.rate_of_committed("g", "other", 0, 120, 300) is None
    assert w.rate_of_committed("nobody", *TP, 120, 300) is None


# --------------------------------------------------------------------------------------------
# committed series
# --------------------------------------------------------------------------------------------


def test_committed_series_keeps_status_window_points_with_lag():
    w = OffsetWindows(status_window=3)
    for i in range(5):
        w.record(i * 30.0, {TP: 1000 + i * 100}, {("g", *TP): 900 + i * 50})
    assert w.committed_series("g", *TP) == [
        CommitPoint(60.0, 1000, 200),
        CommitPoint(90.0, 1050, 250),
        CommitPoint(120.0, 1100, 300),
    ]


def test_committed_lag_unknown_without_end_offset_and_clamped():
    w = OffsetWindows()
    w.record_committed("g", 1.0, {TP: 50})
    assert w.committed_series("g", *TP) == [CommitPoint(1.0, 50, None)]
    w.record_end_offsets(2.0, {TP: 40})
    w.record_committed("g", 2.0, {TP: 50})  # committed beyond end (stale end) -> 0
    assert w.committed_series("g", *TP)[-1] == CommitPoint(2.0, 50, 0)


@pytest.mark.parametrize(
    "values, expected",
    [
        pytest.param([5, 5, 5], 0.0, id="never changed -> first observation"),
        pytest.param([5, 5, 7, 7], 60.0, id="changed -> first time the current value was seen"),
        pytest.param([5, 7, 5], 60.0, id="back to an old value -> counts as a change"),
        pytest.param([5] * 15, 0.0, id="older than the window -> still the first observation"),
    ],
)
def test_last_changed_at(values, expected):
    w = OffsetWindows(status_window=4)
    for i, v in enumerate(values):
        w.record_committed("g", i * 30.0, {TP: v})
    assert w.last_changed_at("g", *TP) == expected
    assert w.last_changed_at("g", "x", 9) is None


def test_record_snapshot_uses_each_fetch_time_and_skips_bad_data():
    raw = KafkaClusterSnapshot(
        cluster="c", started_at=0.0, finished_at=12.0, end_offsets_fetched_at=11.0,
        topics=(Topic("orders", (
            PartitionMetadata("orders", 0, 1, (1,), (1,), 0, 500),
            PartitionMetadata("orders", 1, 1, (1,), (1,), 0, None),  # fetch failed
        )),),
        groups=(
            ConsumerGroup("ok", "Stable", (), (CommittedOffset("orders", 0, 400), CommittedOffset("orders", 1, -1001)), 10.0),
            ConsumerGroup("broken", "Unknown", (), (CommittedOffset("orders", 0, 1),), 10.5, error="timeout"),
        ),
    )
    w = OffsetWindows()
    w.record_snapshot(raw)
    assert w.end_offset_series("orders", 0) == [(11.0, 500)]
    assert w.end_offset_series("orders", 1) == []
    assert w.committed_series("ok", "orders", 0) == [CommitPoint(10.0, 400, 100)]
    assert w.committed_series("ok", "orders", 1) == []
    assert w.committed_series("broken", "orders", 0) == []


# --------------------------------------------------------------------------------------------
# forgetting
# --------------------------------------------------------------------------------------------


def test_forget_group_and_partition():
    w = OffsetWindows()
    w.record(0.0, {TP: 10, ("orders", 1): 10}, {("g1", *TP): 5, ("g2", *TP): 5, ("g2", "orders", 1): 5})
    w.forget_group("g1")
    assert w.committed_series("g1", *TP) == []
    assert w.committed_series("g2", *TP) != []
    w.forget_partition(*TP)
    assert w.end_offset_series(*TP) == []
    assert w.committed_series("g2", *TP) == []
    assert w.committed_series("g2", "orders", 1) != []
    w.forget_partition("orders", 1)
    assert list(w.groups()) == []
    w.forget_group("never-seen")  # no error
    w.forget_partition("never", 0)


def test_prune_drops_old_points_and_silent_series():
    w = OffsetWindows(end_offset_horizon=100.0)
    for i in range(10):
        w.record(i * 10.0, {TP: i}, {("g", *TP): i})
    w.record(150.0, {("other", 0): 1}, {("g2", "other", 0): 1})
    w.prune(195.0)  # cutoff 95: TP and g's newest point (90) are older
    assert w.end_offset_series(*TP) == []
    assert w.committed_series("g", *TP) == []
    assert list(w.groups()) == ["g2"]
    assert w.end_offset_series("other", 0) == [(150.0, 1)]


def test_prune_trims_but_keeps_point_at_cutoff():
    w = OffsetWindows(end_offset_horizon=1000.0)
    for i in range(10):
        w.record_end_offsets(i * 10.0, {TP: i})
    w.prune(1045.0)  # cutoff 45
    assert [t for t, _ in w.end_offset_series(*TP)] == [40.0, 50.0, 60.0, 70.0, 80.0, 90.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"end_offset_horizon": 0}, {"max_points": 4}, {"status_window": 1}],
    ids=["horizon must be positive", "max_points too small", "status_window too small"],
)
def test_invalid_construction(kwargs):
    with pytest.raises(ValueError):
        OffsetWindows(**kwargs)


def test_hostile_names_are_plain_keys():
    name = 'g"\n<script>alert(1)</script>'
    topic = "t'\"; DROP TABLE x;--\n"
    w = OffsetWindows()
    w.record(0.0, {(topic, 0): 10}, {(name, topic, 0): 3})
    assert w.committed_series(name, topic, 0) == [CommitPoint(0.0, 3, 7)]
    assert list(w.groups()) == [name]


def _cycle(at: float, ends: dict, commits: dict, *, topic_ids=None, groups_complete=True, readable=None):
    """A raw snapshot: ends {(topic, p): end}, commits {group: {(topic, p): offset}}."""
    topics = {}
    for (t, p), end in ends.items():
        topics.setdefault(t, []).append(PartitionMetadata(t, p, 1, (1,), (1,), 0, end))
    return KafkaClusterSnapshot(
        cluster="c", started_at=at - 1, finished_at=at, end_offsets_fetched_at=at, groups_complete=groups_complete,
        topics=tuple(Topic(t, tuple(ps), topic_id=(topic_ids or {}).get(t)) for t, ps in topics.items()),
        groups=tuple(ConsumerGroup(g, "Empty", (), tuple(
            CommittedOffset(t, p, o, readable_lag=(readable or {}).get((g, t, p))) for (t, p), o in offs.items()), at)
            for g, offs in commits.items()),
    )


def test_a_group_gone_from_a_complete_listing_is_forgotten_and_comes_back_fresh():
    w = OffsetWindows()
    w.record_snapshot(_cycle(10.0, {TP: 100}, {"g": {TP: 90}, "other": {TP: 50}}))
    w.record_snapshot(_cycle(20.0, {TP: 100}, {"other": {TP: 50}}, groups_complete=False))
    assert w.committed_series("g", *TP) != []  # an incomplete listing proves nothing
    w.record_snapshot(_cycle(30.0, {TP: 100}, {"other": {TP: 50}}))
    assert w.committed_series("g", *TP) == []
    w.record_snapshot(_cycle(40.0, {TP: 100}, {"g": {TP: 10}, "other": {TP: 50}}))
    assert [p.offset for p in w.committed_series("g", *TP)] == [10]  # no 90 -> 10 rewind


def test_a_recreated_topic_starts_fresh_series():
    w = OffsetWindows()
    w.record_snapshot(_cycle(10.0, {TP: 100}, {"g": {TP: 90}}, topic_ids={"orders": "id-1"}))
    w.record_snapshot(_cycle(20.0, {TP: 200}, {"g": {TP: 150}}, topic_ids={"orders": "id-1"}))
    assert len(w.end_offset_series(*TP)) == 2
    # deleted and created again; its new end (300) is past the old one, so only the id tells
    w.record_snapshot(_cycle(30.0, {TP: 300}, {"g": {TP: 5}}, topic_ids={"orders": "id-2"}))
    assert w.end_offset_series(*TP) == [(30.0, 300)]
    assert [p.offset for p in w.committed_series("g", *TP)] == [5]


def test_partitions_gone_from_metadata_are_forgotten():
    w = OffsetWindows()
    w.record_snapshot(_cycle(10.0, {TP: 100, ("old", 0): 5}, {"g": {TP: 90, ("old", 0): 1}}))
    w.record_snapshot(_cycle(20.0, {TP: 100}, {"g": {TP: 90}}))
    assert w.end_offset_series("old", 0) == [] and w.committed_series("g", "old", 0) == []
    assert w.stats()["partitions"] == 1 and w.stats()["committed_series"] == 1


def test_the_lag_kept_with_a_commit_is_its_readable_lag_when_known():
    w = OffsetWindows()
    w.record_snapshot(_cycle(10.0, {TP: 101}, {"g": {TP: 100}}, readable={("g", *TP): 0}))
    assert w.committed_series("g", *TP) == [CommitPoint(10.0, 100, 0)]


# --------------------------------------------------------------------------------------------
# shared time arrays: series sampled together share their times, never each other's changes
# --------------------------------------------------------------------------------------------


def test_partitions_sampled_together_share_one_time_array():
    w = OffsetWindows(max_points=32, end_offset_horizon=600.0)
    partitions = [("t", p) for p in range(500)]
    for i in range(400):  # thinned and trimmed many times over
        w.record_end_offsets(i * DT, {tp: i * (p + 1) for p, tp in enumerate(partitions)})
    assert w.stats()["end_time_arrays"] == 1
    series = [w.end_offset_series(*tp) for tp in partitions]
    assert [t for t, _ in series[0]] == [t for t, _ in series[-1]]
    assert series[3][-1] == (399 * DT, 399 * 4)


def test_sharing_changes_no_series_against_each_partition_recorded_alone():
    """Gaps, restarts, late and same-time samples, thinning and trimming: every partition's
    series is what a window recording that partition alone holds."""
    import random

    rng = random.Random(7)
    partitions = [("t", p) for p in range(12)]
    together = OffsetWindows(max_points=16, end_offset_horizon=900.0)
    alone = {tp: OffsetWindows(max_points=16, end_offset_horizon=900.0) for tp in partitions}
    ends = dict.fromkeys(partitions, 0)
    at = 0.0
    for _ in range(1500):
        at += rng.choice((DT, DT, DT, 0.0, -DT))  # same-time and late samples too
        sample = {}
        for tp in partitions:
            roll = rng.random()
            if roll < 0.08:
                continue  # this partition's offset unknown this cycle
            ends[tp] = rng.randrange(0, 50) if roll > 0.995 else ends[tp] + rng.randrange(0, 40)  # rare restart
            sample[tp] = ends[tp]
        together.record_end_offsets(at, sample)
        for tp, offset in sample.items():
            alone[tp].record_end_offsets(at, {tp: offset})
        if rng.random() < 0.01:
            together.prune(at)
            for w in alone.values():
                w.prune(at)
    for tp in partitions:
        assert together.end_offset_series(*tp) == alone[tp].end_offset_series(*tp), tp
        assert together.offset_time(*tp, ends[tp]) == alone[tp].offset_time(*tp, ends[tp])
    assert together.out_of_order_dropped == sum(w.out_of_order_dropped for w in alone.values())
    assert 1 < together.stats()["end_time_arrays"] < len(partitions) + 1


# --------------------------------------------------------------------------------------------
# end offsets stored as deltas of 1, 2, 4 or 8 bytes
# --------------------------------------------------------------------------------------------

def test_end_offsets_take_four_bytes_a_point_and_stay_exact_at_any_magnitude():
    base = 2**62 + 12345  # an offset no 4-byte number holds; the deltas do
    points = [(i * DT, base + i * 1000 + i * i) for i in range(100)]
    w = windows_with(points, max_points=256)
    assert w.end_offset_series(*TP) == points
    assert w.stats()["end_offset_bytes"] == 4 * len(points)
    assert w.offset_time(*TP, base + 1000 + 1) == OffsetTime(30.0, True)
    assert w.offset_time(*TP, base + 1500) == OffsetTime(30.0 + 499 / 1003 * DT, True)
    assert w.offset_time(*TP, base) == OffsetTime(0.0, False)
    assert w.offset_time_bracket(*TP, base + 1500) == (30.0, 60.0)
    assert w.rate_of_end_offsets(*TP, 99 * DT, 99 * DT) == (points[-1][1] - base) / (99 * DT)
    w.record_committed("g", 99 * DT + 1, {TP: base})
    assert w.committed_series("g", *TP)[-1].lag == points[-1][1] - base


def test_a_window_spanning_2_32_records_takes_eight_bytes_until_thinned_past_it():
    w = OffsetWindows(max_points=16, end_offset_horizon=600.0)
    offset = 7
    points = []
    for i in range(10):
        offset += 2**32 if i == 5 else 10  # a jump no 4-byte delta holds
        points.append((i * DT, offset))
        w.record_end_offsets(i * DT, {TP: offset})
    assert w.end_offset_series(*TP) == points
    assert w.stats()["end_offset_bytes"] == 8 * len(points)
    assert w.offset_time(*TP, offset - 5) == OffsetTime(8.5 * DT, True)
    for i in range(10, 80):  # the jump leaves the horizon and a thinning pass narrows the deltas
        offset += 10
        w.record_end_offsets(i * DT, {TP: offset})
    series = w.end_offset_series(*TP)
    assert series[-1] == (79 * DT, offset)
    assert series[-1][1] - series[0][1] < 2**16  # what the kept points span now: 2 bytes a point
    assert w.stats()["end_offset_bytes"] == 2 * len(series)


def test_deltas_that_overflow_change_no_answer(monkeypatch):
    """With deltas as narrow as the window's span allows (1, 2 or 4 bytes here: widened on
    overflow, rebased, narrowed again) every answer equals that of a window of 8-byte deltas,
    which never overflows on these offsets."""
    import random

    import collectors.kafka.windows as windows_module

    def feed(w: OffsetWindows, rng: random.Random, point_sizes: set) -> list:
        answers = []
        end, at = 10**12, 0.0
        for _ in range(600):
            at += rng.choice((DT, DT, DT, 0.0, -DT))  # same-time and late samples too
            roll = rng.random()
            if roll < 0.01:
                end = rng.randrange(0, end)  # the partition restarts lower
            elif roll < 0.05:
                end = max(0, end - rng.randrange(0, 3))  # a same-time sample may come in lower
            else:
                end += rng.choice((0, 1, 700, 20_000, 70_000))  # some steps overflow 2 bytes
            w.record_end_offsets(at, {TP: end})
            series = w.end_offset_series(*TP)
            asked = [series[0][1] - 1, series[-1][1], (series[0][1] + series[-1][1]) // 2]
            answers.append((series, [w.offset_time(*TP, x) for x in asked],
                            [w.offset_time_bracket(*TP, x) for x in asked],
                            w.rate_of_end_offsets(*TP, at, 300.0), w.out_of_order_dropped))
            point_sizes.add(w.stats()["end_offset_bytes"] // len(series))
        return answers

    sizes_narrow: set = set()
    narrow = feed(OffsetWindows(max_points=16, end_offset_horizon=1800.0), random.Random(11), sizes_narrow)
    monkeypatch.setattr(windows_module, "_DELTA_TYPES", (("q", 2**63 - 1),))
    monkeypatch.setattr(windows_module, "_NARROWEST", "q")
    sizes_wide: set = set()
    assert feed(OffsetWindows(max_points=16, end_offset_horizon=1800.0), random.Random(11), sizes_wide) == narrow
    assert sizes_wide == {8}
    assert sizes_narrow == {1, 2, 4}  # widened on overflow, narrowed again by thinning and restarts


def test_the_groups_reading_a_partition_share_its_key_with_the_end_series():
    """One (topic, partition) tuple per partition is kept, however many groups read it and however
    many tuples each cycle's snapshot makes; a partition committed before its end offset is known
    keeps the group's own."""
    w = OffsetWindows()
    partitions = [("t", p) for p in range(20)]
    for cycle in range(3):
        at = cycle * DT
        w.record_end_offsets(at, {(t, p): 100 + cycle for t, p in partitions})  # fresh tuples each cycle
        for g in range(5):
            w.record_committed(f"g{g}", at, {(t, p): 90 for t, p in partitions})
    w.record_committed("early", 0.0, {("u", 0): 5})
    stats = w.stats()
    assert stats["committed_series"] == 5 * 20 + 1
    assert stats["partition_keys"] == 20 + 1
    assert w.committed_series("g3", "t", 7)[-1] == CommitPoint(2 * DT, 90, 12)


def test_end_offset_rates_of_a_cycle_equal_each_partitions_rate():
    """`end_offset_rates_of` looks the window's ends up once per shared time array: for partitions
    sampled together, apart, restarted, thinned, and unknown, at many `now` and windows, it gives
    what `rate_of_end_offsets` gives partition by partition."""
    rng = random.Random(5)
    w = OffsetWindows(max_points=16, end_offset_horizon=3600.0)
    ends = {("a", p): 1000 * p for p in range(6)} | {("b", 0): 0}
    at = 0.0
    for i in range(80):
        at += rng.choice((10.0, 10.0, 15.0))
        for key in ends:
            ends[key] += rng.choice((0, 0, 3, 50))
        sample = dict(ends)
        if i % 3:
            del sample[("b", 0)]  # sampled apart: a time array of its own
        if i == 40:
            sample[("a", 5)] = ends[("a", 5)] = 7  # re-created: its series restarts
        w.record_end_offsets(at, sample)
    keys = [*ends, ("a", 99), ("gone", 0)]
    for now in (at, at - 10.0, at - 200.0, 5.0, at + 100.0):
        for window in (0.0, 10.0, 60.0, 300.0, 10_000.0):
            assert w.end_offset_rates_of(keys, now, window) == [w.rate_of_end_offsets(*key, now, window)
                                                                for key in keys], (now, window)
    rates = dict(zip(keys, w.end_offset_rates_of(keys, at, 300.0)))
    assert rates["a", 1] is not None and rates["b", 0] is not None and rates["a", 99] is None


def test_the_rates_of_series_that_did_not_move_are_one_float():
    """A cycle keeps a produce rate per partition and a consume rate per committed series: of an
    idle partition and a still group, 0.0, one float object for all of them, equal to the rate
    worked out alone; moving series keep their own rates."""
    w = OffsetWindows()
    keys = [("idle", p) for p in range(3)] + [("busy", 0)]
    for cycle in range(4):
        at = cycle * DT
        w.record_end_offsets(at, {**{k: 500 for k in keys[:3]}, ("busy", 0): 100 * cycle})
        w.record_committed("still", at, {k: 400 for k in keys[:3]})
        w.record_committed("moving", at, {("busy", 0): 90 * cycle})
    now = 3 * DT
    produce = w.end_offset_rates_of(keys, now, 300.0)
    assert produce == [0.0, 0.0, 0.0, pytest.approx(100 / DT)]
    assert len({id(r) for r in produce[:3]}) == 1
    assert produce == [w.rate_of_end_offsets(*k, now, 300.0) for k in keys]
    still, moving = w._group_series("still"), w._group_series("moving")
    rows = [*still.values(), *moving.values()]
    rates, _ = w.judge_commits(rows, [100, 100, 100, 10], [True] * 4, now, 300.0, 10)
    assert rates == [0.0, 0.0, 0.0, pytest.approx(90 / DT)]
    assert len({id(r) for r in rates[:3]}) == 1 and rates[0] is produce[0]
    assert rates[:3] == [w.rate_of_committed("still", *k, now, 300.0) for k in keys[:3]]


def test_an_idle_partition_takes_one_byte_a_point_and_a_quiet_one_two():
    """The deltas take the fewest bytes that hold what the window spans: a day of an idle
    partition's points (max_points of them, thinned) is max_points bytes, not 4 x that; a partition
    that receives a few records a minute, 2 bytes a point. The answers are those of any width."""
    base = 2**62 + 12345
    idle, quiet = ("t", 0), ("t", 1)
    w = OffsetWindows(max_points=64, end_offset_horizon=86400.0)
    for i in range(1000):  # thinned many times over
        w.record_end_offsets(i * DT, {idle: base, quiet: 500 + 3 * i})
    idle_series, quiet_series = w.end_offset_series(*idle), w.end_offset_series(*quiet)
    assert {o for _, o in idle_series} == {base} and 32 < len(idle_series) <= 64
    assert 255 < quiet_series[-1][1] - quiet_series[0][1] < 2**16
    assert w.stats()["end_offset_bytes"] == len(idle_series) + 2 * len(quiet_series)
    assert w.rate_of_end_offsets(*idle, 999 * DT, 300.0) == 0.0
    assert w.rate_of_end_offsets(*quiet, 999 * DT, 300.0) == pytest.approx(3 / DT)
    assert w.offset_time(*quiet, 500 + 3 * 990) == OffsetTime(990 * DT, True)
    w.record_end_offsets(1000 * DT, {idle: base + 300})  # records again: widened to 2 bytes
    assert w.end_offset_series(*idle)[-1] == (1000 * DT, base + 300)
    assert w.stats()["end_offset_bytes"] == 2 * len(w.end_offset_series(*idle)) + 2 * len(quiet_series)
