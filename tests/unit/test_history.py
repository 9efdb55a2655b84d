"""monitor.history: real SQLite files in tmp_path, an injected clock, no sleeps."""
from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from collectors.models import (
    Broker, ClusterState, CommittedOffset, ConsumerGroup, GroupLag, GroupMember, KafkaClusterSnapshot,
    KafkaLagView, PartitionLag, PartitionMetadata, Status, TimeLagMethod, Topic, TopicRates,
)
from monitor.storage import SCHEMA_VERSION, History, HistoryError, check_history_path
from tests.helpers import SQLITE_STATUS_MEMORY_USED, SQLITE_STATUS_PAGECACHE_OVERFLOW, ManualClock, sqlite_status

T0 = 1_700_000_000.0
FETCH = 0.5  # make_state: end offsets fetched this long before the cycle time


# --------------------------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------------------------


def make_state(
    at: float,
    *,
    cluster: str = "c1",
    topics: dict[str, list[int]] | None = None,
    groups: dict[str, dict[tuple[str, int], int]] | None = None,
    group_extra: dict[str, dict] | None = None,
    raw_only_offsets: dict[str, dict[tuple[str, int], int]] | None = None,
    produce_rate: float | None = 10.0,
    stale: bool = False,
    error: str | None = None,
    brokers: int = 3,
) -> ClusterState:
    """A ClusterState from plain dicts.

    topics: topic -> end offset per partition (index = partition; earliest offset 0).
    groups: group -> {(topic, partition): committed}. Lag = end - committed, time lag = lag/10 s.
    group_extra: group -> GroupLag field overrides (status, consume_rate, state, members, ...).
    raw_only_offsets: committed offsets present in the raw snapshot but not in the lag view.
    """
    topics = {"orders": [100, 200]} if topics is None else topics
    groups = {"g1": {("orders", 0): 90, ("orders", 1): 200}} if groups is None else groups
    group_extra = group_extra or {}
    raw_only_offsets = raw_only_offsets or {}
    ends = {(t, p): e for t, es in topics.items() for p, e in enumerate(es)}
    raw_topics = tuple(
        Topic(t, tuple(PartitionMetadata(t, p, 1, (1, 2), (1,) if p else (1, 2), 0, e)
                       for p, e in enumerate(es)))
        for t, es in topics.items()
    )
    raw_groups, lag_groups = [], []
    for g, offsets in {**groups, **{k: {} for k in raw_only_offsets if k not in groups}}.items():
        extra = dict(group_extra.get(g, {}))
        status = extra.pop("status", Status.OK)
        plags = []
        for (t, p), committed in sorted(offsets.items()):
            lag = max(0, ends[(t, p)] - committed)
            plags.append(PartitionLag(
                g, t, p, committed, ends[(t, p)], lag, lag / 10 if lag else None,
                TimeLagMethod.INTERPOLATED if lag else TimeLagMethod.NONE, 5.0, status, readable_lag=lag,
            ))
        raw_offsets = {**offsets, **raw_only_offsets.get(g, {})}
        members = extra.pop("members", 1)
        raw_groups.append(ConsumerGroup(
            g, extra.get("state", "Stable" if members else "Empty"),
            tuple(GroupMember(f"m{i}", f"client{i}", "/h", ()) for i in range(members)),
            tuple(CommittedOffset(t, p, o) for (t, p), o in sorted(raw_offsets.items())),
            at - 1,
        ))
        if g not in groups:
            continue  # only in the raw snapshot
        tls = [pl.time_lag_seconds for pl in plags if pl.time_lag_seconds is not None]
        fields = dict(
            cluster=cluster, group=g, state="Stable" if members else "Empty", members=members,
            is_empty=not members, empty_since=None, lag=sum(pl.lag for pl in plags),
            readable_lag=sum(pl.readable_lag for pl in plags),
            time_lag_seconds=max(tls) if tls else None,
            time_lag_method=TimeLagMethod.INTERPOLATED if tls else TimeLagMethod.NONE,
            consume_rate=5.0, produce_rate=4.0, eta_seconds=None, status=status,
            partitions=tuple(plags), topics=tuple(sorted({t for t, _ in offsets})),
            fetched_at=at - 1,
        )
        fields.update(extra)
        lag_groups.append(GroupLag(**fields))
    rates = tuple(
        TopicRates(cluster, t, len(es), sum(es), sum(es), produce_rate, (produce_rate,) * len(es),
                   len(es) - 1, 0)
        for t, es in topics.items()
    )
    raw = KafkaClusterSnapshot(
        cluster, at - 2, at, brokers=tuple(Broker(i, f"b{i}", 9092) for i in range(brokers)),
        topics=raw_topics, groups=tuple(raw_groups), end_offsets_fetched_at=at - FETCH, error=error,
    )
    return ClusterState(raw, KafkaLagView(cluster, at, tuple(lag_groups), rates), stale=stale)




@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture
def hist(db: Path, clock: ManualClock):
    h = History(db, clock=clock)
    yield h
    h.close()


def growing(i: int, at: float | None = None, **kw) -> ClusterState:
    """Cycle i: end offsets grow by 100 per cycle, the group lags by i on partition 0."""
    return make_state(
        T0 + 10 * i if at is None else at,
        topics={"orders": [1000 + 100 * i, 2000 + 100 * i]},
        groups={"g1": {("orders", 0): 1000 + 100 * i - i, ("orders", 1): 2000 + 100 * i}},
        **kw,
    )


# --------------------------------------------------------------------------------------------
# schema, open, restart, errors
# --------------------------------------------------------------------------------------------


def test_schema_is_versioned_and_wal(hist: History, db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"names", "cycles", "partition_offsets", "group_partitions", "group_summary",
            "topic_summary", "empty_since", "meta"} <= tables
    assert hist.db._writer.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_second_instance_sees_data_and_keeps_appending(db: Path, clock: ManualClock) -> None:
    h = History(db, clock=clock)
    h.kafka.append(growing(0))
    h.set_meta("alerts.state", '{"firing": ["a"]}')
    h.close()
    h2 = History(db, clock=clock)
    try:
        assert [r["group"] for r in h2.kafka.groups_latest("c1")] == ["g1"]
        assert h2.get_meta("alerts.state") == '{"firing": ["a"]}'
        # old and new names mix after the restart
        h2.kafka.append(make_state(T0 + 10, groups={"g1": {("orders", 0): 1}, "g2": {("orders", 1): 5}}))
        assert [r["group"] for r in h2.kafka.groups_latest("c1")] == ["g1", "g2"]
        assert [at for at, *_ in h2.kafka.replay("c1", 0)] == [T0 - FETCH, T0 + 10 - FETCH]
    finally:
        h2.close()


def test_corrupt_file_raises_naming_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not an sqlite database at all" * 200)
    with pytest.raises(HistoryError, match="corrupt.db"):
        History(bad)


def test_unwritable_path_raises_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="a-file"):
        History(blocker / "sub" / "history.db")
    with pytest.raises(HistoryError, match="is a directory"):
        History(tmp_path)


def test_newer_schema_and_foreign_database_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer"):
        History(newer)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="foreign.db"):
        History(foreign)


def _unusable_paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "corrupt.db").write_bytes(b"this is not an sqlite database at all" * 200)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    conn = sqlite3.connect(tmp_path / "newer.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    conn = sqlite3.connect(tmp_path / "foreign.db")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    return {"not a database": tmp_path / "corrupt.db", "is not a directory": tmp_path / "a-file" / "sub" / "h.db",
            "is a directory": tmp_path / "a-dir", "newer": tmp_path / "newer.db",
            "no streamscope schema version": tmp_path / "foreign.db"}


def test_check_path_refuses_what_opening_refuses_and_changes_nothing(tmp_path: Path) -> None:
    for reason, path in _unusable_paths(tmp_path).items():
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(HistoryError, match=reason) as checked:
            check_history_path(path)
        assert str(path) in str(checked.value)
        assert sorted(tmp_path.rglob("*")) == before, f"check_path changed files for {path}"
        with pytest.raises(HistoryError):
            History(path)


def test_check_path_accepts_new_open_and_closed_histories_without_leaving_files(tmp_path: Path) -> None:
    new = tmp_path / "not" / "yet" / "history.db"
    check_history_path(new)
    assert not (tmp_path / "not").exists()  # opening would create it; checking does not
    h = History(new)
    try:
        check_history_path(new)  # while a writer has it open (as check-config beside a running monitor)
    finally:
        h.close()
    check_history_path(new)
    assert sorted(p.name for p in new.parent.iterdir()) == ["history.db"]  # no -wal/-shm left behind
    check_history_path(":memory:")


def test_closed_history_raises(db: Path) -> None:
    h = History(db)
    h.close()
    h.close()  # idempotent
    with pytest.raises(HistoryError, match="closed"):
        h.kafka.groups_latest("c1")
    with pytest.raises(HistoryError, match="closed"):
        h.kafka.append(growing(0))


def test_bad_arguments(db: Path, hist: History) -> None:
    with pytest.raises(ValueError):
        History(db, retention_seconds=0)
    hist.kafka.append(growing(0))
    with pytest.raises(ValueError):
        hist.kafka.group_series("c1", "g1", T0, T0 + 1, max_points=0)
    with pytest.raises(ValueError, match="kind"):
        hist.kafka.window("c1", "nope", "g1", 60, T0)
    assert hist.kafka.group_series("c1", "g1", T0 + 5, T0) == []  # end < start


# --------------------------------------------------------------------------------------------
# append + latest
# --------------------------------------------------------------------------------------------


def test_append_round_trips_group_summary(hist: History) -> None:
    hist.kafka.append(make_state(
        T0,
        topics={"orders": [100, 200], "payments": [50]},
        groups={"g1": {("orders", 0): 90, ("orders", 1): 200, ("payments", 0): 10}},
        group_extra={"g1": {"status": Status.WARN, "consume_rate": 7.5, "produce_rate": 2.5,
                            "eta_seconds": 10.0, "error": "partial"}},
    ))
    [g] = hist.kafka.groups_latest("c1")
    assert g == {
        "group": "g1", "at": T0, "lag": 50, "readable_lag": 50, "time_lag_seconds": 4.0,
        "time_lag_method": "interpolated", "time_lag_lower_bound": False, "uncommitted_partitions": 0,
        "consume_rate": 7.5, "produce_rate": 2.5,
        "eta_seconds": 10.0, "status": "WARN", "state": "Stable", "members": 1,
        "is_empty": False, "empty_since": None, "fetched_at": T0 - 1, "error": "partial",
        "topics": ["orders", "payments"], "partitions": 3,
    }
    assert hist.kafka.groups_latest("other-cluster") == []
    assert hist.kafka.clusters() == ["c1"]


def test_append_stores_every_field_of_each_partition(hist: History, db: Path) -> None:
    """A group's partition rows keep what derive measured of each partition (the history's schema
    is read by users' own queries too): committed offset, lag, time lag in ms and its method,
    status, readable lag, lower bound and uncommitted, each partition its own."""
    state = make_state(T0, topics={"orders": [100, 200]}, groups={"g1": {("orders", 0): 90, ("orders", 1): 150}})
    [g] = state.lag.groups
    parts = (
        g.partitions[0]._replace(readable_lag=7, time_lag_seconds=1.2346, time_lag_lower_bound=True,
                                 status=Status.WARN, time_lag_method=TimeLagMethod.INTERPOLATED),
        g.partitions[1]._replace(committed_offset=None, readable_lag=49, time_lag_seconds=None,
                                 time_lag_method=TimeLagMethod.NONE, uncommitted=True, status=Status.OK),
    )
    lag = KafkaLagView("c1", T0, (replace(g, partitions=parts),), state.lag.topics)
    hist.kafka.append(ClusterState(state.raw, lag))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT n.name, p.partition, p.committed, p.lag, p.time_lag, p.method, p.status, p.readable_lag,"
            " p.lower_bound, p.uncommitted FROM group_partitions AS p JOIN names AS n ON n.id = p.topic"
            " ORDER BY p.partition").fetchall()
    assert [r[:5] for r in rows] == [("orders", 0, 90, 10, 1235), ("orders", 1, None, 50, None)]
    assert [r[7:] for r in rows] == [(7, 1, 0), (49, 0, 1)]
    assert rows[0][5] != rows[1][5] and rows[0][6] != rows[1][6]  # each its own method and status


def test_topics_latest_and_latest_cycle(hist: History) -> None:
    hist.kafka.append(make_state(T0, topics={"orders": [100, 200]}, produce_rate=3.5))
    [t] = hist.kafka.topics_latest("c1")
    assert t == {"topic": "orders", "at": T0, "partitions": 2, "produce_rate": 3.5,
                 "end_offset_sum": 300, "message_count": 300, "under_replicated": 1,
                 "offline": 0}
    c = hist.kafka.latest_cycle("c1")
    assert c is not None
    assert (c["at"], c["ok"], c["stale"], c["has_data"], c["total_lag"], c["groups"],
            c["brokers"]) == (T0, True, False, True, 10, 1, 3)
    assert c["max_time_lag_seconds"] == 1.0 and c["offsets_fetched_at"] == T0 - 0.5
    assert hist.kafka.latest_cycle("nope") is None


def test_time_lag_kept_to_the_millisecond(hist: History) -> None:
    hist.kafka.append(make_state(T0, groups={"g1": {("orders", 0): 100}},
                           group_extra={"g1": {"time_lag_seconds": 12.3456}}))
    assert hist.kafka.groups_latest("c1")[0]["time_lag_seconds"] == pytest.approx(12.346, abs=1e-9)


def test_stale_state_stores_only_a_cycle_row(hist: History, clock: ManualClock) -> None:
    hist.kafka.append(growing(0))
    clock.t = T0 + 30
    hist.kafka.append(ClusterState(growing(0).raw, growing(0).lag, stale=True))
    c = hist.kafka.latest_cycle("c1")
    assert c is not None
    assert (c["at"], c["ok"], c["stale"], c["has_data"]) == (T0 + 30, False, True, False)
    # latest data is still the good cycle, replay only yields data cycles
    assert hist.kafka.groups_latest("c1")[0]["at"] == T0
    assert [at for at, *_ in hist.kafka.replay("c1", 0)] == [T0 - FETCH]
    assert [r["ok"] for r in hist.kafka.cluster_series("c1", T0, T0 + 60)] == [True, False]


def test_failed_cycle_with_error(hist: History) -> None:
    hist.kafka.append(make_state(T0, topics={}, groups={}, error="broker down"))
    c = hist.kafka.latest_cycle("c1")
    assert c is not None
    assert (c["ok"], c["error"], c["has_data"]) == (False, "broker down", False)
    assert hist.kafka.groups_latest("c1") == []


def test_duplicate_append_is_ignored(hist: History) -> None:
    hist.kafka.append(growing(0))
    hist.kafka.append(growing(0))
    assert len(hist.kafka.cluster_series("c1", T0 - 1, T0 + 1)) == 1
    assert len(list(hist.kafka.replay("c1", 0))) == 1


def test_append_failure_records_an_outage(hist: History) -> None:
    hist.kafka.append(growing(0))
    hist.kafka.append(make_state(T0 + 10, brokers=2, topics={"orders": [1100, 2100]}))
    hist.kafka.append_failure("c1", T0 + 20, "KafkaException: timed out")
    hist.kafka.append_failure("c1", T0 + 20, "again")  # same time: ignored
    hist.kafka.append(growing(3))
    rows = hist.kafka.window("c1", "cluster", "", 60, T0 + 30)
    assert [(r["ok"], r["stale"], r["brokers"], r["error"]) for r in rows] == [
        (True, False, 3, None), (True, False, 2, None),
        (False, True, None, "KafkaException: timed out"), (True, False, 3, None)]
    assert [r["brokers"] for r in hist.kafka.cluster_series("c1", T0, T0 + 30, max_points=2)] == [2, 3]
    assert [at + FETCH for at, *_ in hist.kafka.replay("c1", 0)] == [T0, T0 + 10, T0 + 30]
    assert hist.kafka.groups_latest("c1")[0]["at"] == T0 + 30
    hist.kafka.append_failure("c2", T0, None)  # a cluster that never succeeded
    assert hist.kafka.clusters() == ["c1", "c2"]
    assert hist.kafka.groups_latest("c2") == [] and list(hist.kafka.replay("c2", 0)) == []


# --------------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------------


def test_replay_yields_cycles_in_time_order_with_offsets(hist: History) -> None:
    # appended out of order on purpose
    for i in (2, 0, 1, 3):
        hist.kafka.append(growing(i))
    cycles = list(hist.kafka.replay("c1", T0 + 10))  # `since` applies to the cycle time
    assert [at for at, *_ in cycles] == [T0 + 10 - FETCH, T0 + 20 - FETCH, T0 + 30 - FETCH]
    at, ends, committed, _topic_ids = cycles[0]
    assert ends == {("orders", 0): 1100, ("orders", 1): 2100}
    assert committed == {("g1", "orders", 0): 1099, ("g1", "orders", 1): 2100}
    assert list(hist.kafka.replay("unknown", 0)) == []


def test_commit_history_keeps_the_last_changes_per_partition(hist: History) -> None:
    # partition 0 commits 10, 10, 20, 20, 20, 35, 50 over seven cycles; partition 1 stays at 5
    offsets = [10, 10, 20, 20, 20, 35, 50]
    for i, committed in enumerate(offsets):
        hist.kafka.append(make_state(T0 + 10 * i, topics={"orders": [100, 100]},
                                     groups={"g1": {("orders", 0): committed, ("orders", 1): 5}}))
    commits = hist.kafka.commit_history("c1", "g1", T0, T0 + 100, limit=3)
    assert [(c["partition"], c["offset"], c["at"], c["after"]) for c in commits] == [
        (0, 20, T0 + 20, T0 + 10),  # committed between the cycle at +10 (still 10) and +20
        (0, 35, T0 + 50, T0 + 40),
        (0, 50, T0 + 60, T0 + 50),
        (1, 5, T0, None),  # the oldest in the range: committed at or before it
    ]
    # a range that starts later: its first observation has no lower end
    assert [(c["offset"], c["after"]) for c in hist.kafka.commit_history("c1", "g1", T0 + 30, T0 + 100)
            if c["partition"] == 0] == [(20, None), (35, T0 + 40), (50, T0 + 50)]
    assert hist.kafka.commit_history("c1", "unknown", T0, T0 + 100) == []
    with pytest.raises(ValueError, match="limit"):
        hist.kafka.commit_history("c1", "g1", T0, T0 + 100, limit=0)


def test_replay_includes_raw_committed_offsets_missing_from_the_view(hist: History) -> None:
    hist.kafka.append(make_state(
        T0, topics={"orders": [100, 200]},
        groups={"g1": {("orders", 0): 90}},
        raw_only_offsets={"g1": {("orders", 1): 150}, "ghost": {("orders", 0): 7}},
    ))
    [(_, _, committed, _)] = hist.kafka.replay("c1", 0)
    assert committed == {("g1", "orders", 0): 90, ("g1", "orders", 1): 150,
                         ("ghost", "orders", 0): 7}
    # the view's summary is unaffected by raw-only rows
    assert [g["group"] for g in hist.kafka.groups_latest("c1")] == ["g1"]


def test_replay_skips_unknown_offsets(hist: History) -> None:
    s = make_state(T0)
    t = s.raw.topics[0]
    parts = (t.partitions[0], PartitionMetadata("orders", 1, -1, (1,), (), None, None))
    raw = KafkaClusterSnapshot("c1", T0 - 2, T0, topics=(Topic("orders", parts),),
                               groups=s.raw.groups)
    hist.kafka.append(ClusterState(raw, s.lag))
    [(_, ends, _, _)] = hist.kafka.replay("c1", 0)
    assert ends == {("orders", 0): 100}


def test_replay_skips_negative_offset_sentinels(hist: History) -> None:
    hist.kafka.append(make_state(T0, topics={"orders": [100, 200]}, groups={},
                           raw_only_offsets={"g1": {("orders", 0): -1001, ("orders", 1): 5}}))
    [(_, ends, committed, _)] = hist.kafka.replay("c1", 0)
    assert committed == {("g1", "orders", 1): 5}
    assert ends == {("orders", 0): 100, ("orders", 1): 200}


# --------------------------------------------------------------------------------------------
# range queries and downsampling
# --------------------------------------------------------------------------------------------


def test_group_series_unaggregated_when_few_points(hist: History) -> None:
    for i in range(5):
        hist.kafka.append(growing(i, group_extra={"g1": {"consume_rate": float(i)}}))
    rows = hist.kafka.group_series("c1", "g1", T0, T0 + 40)
    assert [r["at"] for r in rows] == [T0 + 10 * i for i in range(5)]
    assert [r["lag"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["consume_rate"] for r in rows] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert rows[1]["time_lag_seconds"] == 0.1 and rows[0]["time_lag_seconds"] is None
    assert set(rows[0]) == {"at", "lag", "readable_lag", "time_lag_seconds", "time_lag_method",
                            "time_lag_lower_bound", "consume_rate", "produce_rate", "eta_seconds", "status"}
    assert hist.kafka.group_series("c1", "g1", T0 + 15, T0 + 25) == [rows[2]]
    assert hist.kafka.group_series("c1", "nobody", T0, T0 + 40) == []


def test_group_series_downsampled_to_max_points(hist: History) -> None:
    n = 100
    for i in range(n):
        extra = {"consume_rate": float(i), "status": Status.ERR if i == 37 else Status.OK}
        hist.kafka.append(growing(i, group_extra={"g1": extra}))
    # a request much wider than the data still gets max_points points over the data
    rows = hist.kafka.group_series("c1", "g1", T0 - 86400, T0 + 86400, max_points=10)
    assert len(rows) == 10
    ats = [r["at"] for r in rows]
    assert ats == sorted(ats) and ats[-1] == T0 + 10 * (n - 1)
    assert max(r["lag"] for r in rows) == n - 1  # max kept
    assert sum(r["status"] == "ERR" for r in rows) == 1  # worst status survives the bucket
    # each bucket: lag = max = at's cycle index, rate = average of the bucket's cycles
    prev = -1
    for r in rows:
        last = int((r["at"] - T0) / 10)
        assert r["lag"] == last
        assert r["consume_rate"] == pytest.approx((prev + 1 + last) / 2)
        prev = last
    for mp in (1, 3, 7, 99, 100, 500):
        assert len(hist.kafka.group_series("c1", "g1", T0, T0 + 10 * n, max_points=mp)) == min(mp, n)


def test_partition_lag_series_heatmap(hist: History) -> None:
    n = 50
    for i in range(n):
        hist.kafka.append(growing(i))
    rows = hist.kafka.partition_lag_series("c1", "g1", T0, T0 + 10 * n)
    assert len(rows) == 2 * n
    assert {(r["topic"], r["partition"]) for r in rows} == {("orders", 0), ("orders", 1)}
    p0 = [r for r in rows if r["partition"] == 0]
    assert [r["lag"] for r in p0] == list(range(n))
    assert p0[3]["time_lag_seconds"] == 0.3
    rows = hist.kafka.partition_lag_series("c1", "g1", T0, T0 + 10 * n, max_points=8)
    for part in (0, 1):
        series = [r for r in rows if r["partition"] == part]
        assert len(series) == 8
        assert [r["at"] for r in series] == sorted(r["at"] for r in series)
    assert max(r["lag"] for r in rows if r["partition"] == 0) == n - 1
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)


def test_topic_series_and_partition_rates(hist: History) -> None:
    n = 30
    for i in range(n):
        hist.kafka.append(growing(i))
    rows = hist.kafka.topic_series("c1", "orders", T0, T0 + 10 * n)
    assert len(rows) == n
    assert rows[0] == {"at": T0, "produce_rate": 10.0, "end_offset_sum": 3000,
                       "message_count": 3000, "under_replicated": 1, "offline": 0}
    assert len(hist.kafka.topic_series("c1", "orders", T0, T0 + 10 * n, max_points=4)) == 4
    rates = hist.kafka.partition_rate_series("c1", "orders", T0 + 50, T0 + 10 * n, max_points=200)
    # 100 messages per 10 s = 10/s, including the first point (uses the sample before start)
    assert {r["rate"] for r in rates} == {10.0}
    assert {r["partition"] for r in rates} == {0, 1}
    assert rates[0]["end_offset"] == 1500
    coarse = hist.kafka.partition_rate_series("c1", "orders", T0, T0 + 10 * n, max_points=5)
    assert len([r for r in coarse if r["partition"] == 0]) == 5
    assert [r["rate"] for r in coarse if r["partition"] == 0][1:] == [10.0] * 4
    assert coarse[0]["rate"] is None  # nothing before the range


def test_partition_rate_is_none_when_offsets_go_backwards(hist: History) -> None:
    hist.kafka.append(make_state(T0, topics={"t": [500]}, groups={}))
    hist.kafka.append(make_state(T0 + 10, topics={"t": [20]}, groups={}))  # topic recreated
    hist.kafka.append(make_state(T0 + 20, topics={"t": [70]}, groups={}))
    rates = hist.kafka.partition_rate_series("c1", "t", T0, T0 + 20)
    assert [r["rate"] for r in rates] == [None, None, 5.0]


def test_cluster_series(hist: History, clock: ManualClock) -> None:
    for i in range(6):
        hist.kafka.append(growing(i))
    clock.t = T0 + 55
    hist.kafka.append(make_state(T0 + 55, topics={}, groups={}, error="timeout"))
    rows = hist.kafka.cluster_series("c1", T0, T0 + 60)
    assert [r["ok"] for r in rows] == [True] * 6 + [False]
    assert [r["total_lag"] for r in rows] == [0, 1, 2, 3, 4, 5, None]
    rows = hist.kafka.cluster_series("c1", T0, T0 + 60, max_points=2)
    assert len(rows) == 2 and rows[-1]["ok"] is False and rows[0]["ok"] is True


def test_window_for_alert_engine(hist: History) -> None:
    for i in range(10):
        hist.kafka.append(growing(i))
    now = T0 + 90
    rows = hist.kafka.window("c1", "group", "g1", 30, now)
    assert [r["at"] for r in rows] == [T0 + 60, T0 + 70, T0 + 80, T0 + 90]
    assert rows[-1]["lag"] == 9 and rows[-1]["state"] == "Stable" and rows[-1]["status"] == "OK"
    trows = hist.kafka.window("c1", "topic", "orders", 10, now)
    assert [r["end_offset_sum"] for r in trows] == [4600, 4800]
    crows = hist.kafka.window("c1", "cluster", "", 15, now)
    assert [(r["at"], r["brokers"]) for r in crows] == [(T0 + 80, 3), (T0 + 90, 3)]
    assert hist.kafka.window("c1", "group", "missing", 30, now) == []
    assert len(hist.kafka.window("c1", "group", "g1", 1000, T0 + 45)) == 5  # `now` bounds the end


def test_window_peaks_are_the_greatest_finite_value_of_each_topics_window_rows(hist: History) -> None:
    """One query gives what every topic's `window` rows give: the greatest finite value of the
    field in [now - seconds, now], per topic (topics without one left out)."""
    from collectors.values import finite_float

    rates = [None, 0.0, 3.5, 0.0, 7.25, 0.0, None, 1.0, 0.0, 0.0]
    for i, rate in enumerate(rates):
        topics = {"orders": [100 + i, 200], "idle": [5]} if i % 3 else {"orders": [100 + i, 200]}
        hist.kafka.append(make_state(T0 + 10 * i, topics=topics, groups={}, produce_rate=rate))
    for seconds, now in ((1000, T0 + 90), (45, T0 + 90), (20, T0 + 40), (0, T0 + 40), (15, T0 + 65), (5, T0 + 200)):
        expected = {}
        for topic in ("orders", "idle"):
            values = [v for r in hist.kafka.window("c1", "topic", topic, seconds, now)
                      if (v := finite_float(r["produce_rate"])) is not None]
            if values:
                expected[topic] = max(values)
        assert hist.kafka.window_peaks("c1", "topic", "produce_rate", seconds, now) == expected, (seconds, now)
    assert hist.kafka.window_peaks("c1", "topic", "produce_rate", 1000, T0 + 90) == {"orders": 7.25, "idle": 7.25}
    assert hist.kafka.window_peaks("c1", "topic", "offline", 1000, T0 + 90) == {"orders": 0.0, "idle": 0.0}
    assert hist.kafka.window_peaks("other", "topic", "produce_rate", 1000, T0 + 90) == {}
    with pytest.raises(ValueError, match="no peaks"):
        hist.kafka.window_peaks("c1", "group", "lag", 1000, T0 + 90)
    with pytest.raises(ValueError, match="no peaks"):
        hist.kafka.window_peaks("c1", "topic", "produce_rate; DROP TABLE cycles", 1000, T0 + 90)


def test_window_peaks_stay_exact_over_hours_of_cycles_downsampling_and_late_cycles(db: Path,
                                                                                   clock: ManualClock) -> None:
    """`window_peaks` keeps bucket maxima between calls (`monitor.storage.peaks`). Called each
    cycle for three windows over 3 h of cycles every 15 s, with a second cluster writing between,
    downsampling thinning cycles inside the windows, expired cycles pruned and a cycle stored late
    into an old bucket, every answer equals the greatest finite value among each topic's `window`
    rows. Reading a whole 1 h window each call would read its 240 cycles; the kept buckets read
    at most the new cycle and one bucket of 20 again."""
    from dataclasses import replace

    from collectors.values import finite_float

    h = History(db, clock=clock, retention_seconds=7000, downsample_after_seconds=1200,
                downsample_step_seconds=60)
    rates = [0.0, 0.0, 3.5, None, 0.0, 7.25, float("inf"), 0.0, 1.0, 0.0, 0.0, 12.0, 0.0]
    LATE = 9999
    topics = ("orders", "payments", "idle")

    def state(i: int, at: float, cluster: str = "c1") -> ClusterState:
        s = make_state(at, cluster=cluster, topics={t: [100 + i] for t in topics}, groups={})
        # each topic its own rate, produced now and then
        view = replace(s.lag, topics=tuple(replace(t, produce_rate=99.0 if i == LATE else rates[(i * (n + 2) + n) % len(rates)])
                                           for n, t in enumerate(s.lag.topics)))
        return replace(s, lag=view)

    def expected(seconds: float, now: float) -> dict[str, float]:
        out = {}
        for topic in topics:
            values = [v for r in h.kafka.window("c1", "topic", topic, seconds, now)
                      if (v := finite_float(r["produce_rate"])) is not None]
            if values:
                out[topic] = max(values)
        return out

    statements: list[str] = []
    try:
        for i in range(720):
            now = T0 + 15 * i
            clock.t = now
            h.kafka.append(state(i, now))
            h.kafka.append(state(i + 3, now + 7, cluster="c2"))
            if i % 40 == 39:
                h.prune(now)
            if i == 500:
                h.kafka.append(state(LATE, now - 1700))  # stored late into an old bucket, the greatest rate
            for seconds in (3600.0, 900.0, 20.0):
                if i % 7 and seconds != 3600.0:
                    continue
                with h.kafka._db.read() as conn:  # count the rows each call reads
                    conn.set_trace_callback(statements.append)
                try:
                    statements.clear()
                    assert h.kafka.window_peaks("c1", "topic", "produce_rate", seconds, now) == \
                        expected(seconds, now), (i, seconds)
                finally:
                    with h.kafka._db.read() as conn:
                        conn.set_trace_callback(None)
                if seconds == 3600.0 and i > 0 and i != 500 and i % 40 != 39:
                    asked = [re.search(r"IN \(([^)]*)\)", s).group(1) for s in statements if "FROM topic_summary" in s]
                    assert sum(ids.count(",") + 1 for ids in asked) <= 21, (i, asked)
    finally:
        h.close()


# --------------------------------------------------------------------------------------------
# prune: retention and downsampling
# --------------------------------------------------------------------------------------------


def test_prune_applies_retention(db: Path, clock: ManualClock) -> None:
    h = History(db, clock=clock, retention_seconds=100, downsample_after_seconds=1000)
    try:
        for i in range(20):  # T0 .. T0+190
            h.kafka.append(growing(i))
        stats = h.prune(T0 + 200)  # keeps at >= T0+100
        assert stats == {"expired_cycles": 10, "downsampled_cycles": 0}
        assert [at for at, *_ in h.kafka.replay("c1", 0)][0] == T0 + 100 - FETCH
        assert h.kafka.group_series("c1", "g1", 0, T0 + 1000)[0]["at"] == T0 + 100
        conn = sqlite3.connect(db)
        try:
            for table in ("partition_offsets", "group_partitions", "group_summary",
                          "topic_summary"):
                n = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE cycle NOT IN (SELECT id FROM cycles)"
                ).fetchone()[0]
                assert n == 0, table
        finally:
            conn.close()
        assert h.prune(T0 + 200) == {"expired_cycles": 0, "downsampled_cycles": 0}
    finally:
        h.close()


def test_downsampling_keeps_last_cycle_per_bucket(db: Path, clock: ManualClock) -> None:
    h = History(db, clock=clock, retention_seconds=10_000, downsample_after_seconds=300,
                downsample_step_seconds=60)
    base = 1_700_000_040.0  # a multiple of 60: buckets are [base + 60k, base + 60(k+1))
    try:
        for i in range(60):  # every 10 s for 600 s
            h.kafka.append(growing(i, at=base + 10 * i))
        # a failed cycle inside an old bucket: kept (outage stays visible) besides the data one
        clock.t = base + 125
        h.kafka.append(make_state(base + 125, topics={}, groups={}, error="down"))
        now = base + 600
        stats = h.prune(now)
        # cutoff = base + 300: buckets 0..4 complete (6 cycles each) -> 5 kept, 25 removed
        assert stats == {"expired_cycles": 0, "downsampled_cycles": 25}
        ats = [at + FETCH for at, *_ in h.kafka.replay("c1", 0)]
        assert ats[:5] == [base + 50, base + 110, base + 170, base + 230, base + 290]
        assert ats[5:] == [base + 10 * i for i in range(30, 60)]  # recent cycles untouched
        # the kept cycle carries its true offsets (last value of the bucket)
        at, ends, committed, _ = next(iter(h.kafka.replay("c1", 0)))
        assert ends == {("orders", 0): 1500, ("orders", 1): 2500}
        assert committed[("g1", "orders", 0)] == 1495
        assert h.kafka.group_series("c1", "g1", base, base + 60)[0]["lag"] == 5
        assert [r["ok"] for r in h.kafka.cluster_series("c1", base + 120, base + 180)] == [False, True]
        assert h.prune(now) == {"expired_cycles": 0, "downsampled_cycles": 0}  # idempotent
    finally:
        h.close()


def test_prune_defaults_to_clock(db: Path, clock: ManualClock) -> None:
    h = History(db, clock=clock, retention_seconds=50)
    try:
        for i in range(10):
            h.kafka.append(growing(i))
        clock.t = T0 + 100
        assert h.prune()["expired_cycles"] == 5
    finally:
        h.close()


# --------------------------------------------------------------------------------------------
# empty_since, meta
# --------------------------------------------------------------------------------------------


def test_empty_since_persists_across_reopen(db: Path) -> None:
    h = History(db)
    h.kafka.set_empty_since("c1", {"idle": T0, "gone": T0 + 5})
    h.kafka.set_empty_since("c2", {"other": T0 + 1})
    h.close()
    h = History(db)
    try:
        assert h.kafka.empty_since("c1") == {"idle": T0, "gone": T0 + 5}
        h.kafka.set_empty_since("c1", {"idle": T0})  # "gone" no longer empty: row removed
        assert h.kafka.empty_since("c1") == {"idle": T0}
        assert h.kafka.empty_since("c2") == {"other": T0 + 1}
        assert h.kafka.empty_since("nope") == {}
        h.kafka.append(make_state(T0 + 10, groups={"idle": {("orders", 0): 100}},
                            group_extra={"idle": {"members": 0}}))
        [g] = h.kafka.groups_latest("c1")
        assert (g["is_empty"], g["members"], g["state"], g["empty_since"]) == (
            True, 0, "Empty", T0)
        h.kafka.set_empty_since("c1", {})
        assert h.kafka.empty_since("c1") == {}
    finally:
        h.close()


def test_meta(hist: History) -> None:
    assert hist.get_meta("missing") is None
    hist.set_meta("k", '{"a": 1}')
    hist.set_meta("k", "[1, 2]")
    assert hist.get_meta("k") == "[1, 2]"
    with pytest.raises(ValueError):
        hist.set_meta("k", "{not json")
    with pytest.raises(TypeError):
        hist.set_meta("k", {"a": 1})  # type: ignore[arg-type]


def test_a_thread_done_reading_releases_its_reader_and_a_later_read_opens_a_new_one(hist: History) -> None:
    """The monitor's start reads on its main thread (the replay), which then only waits: its
    connection and page cache are released, not kept for the life of the process."""
    for i in range(3):
        hist.kafka.append(growing(i))
    assert len(list(hist.kafka.replay("c1", 0))) == 3
    elsewhere: list[int] = []
    other = threading.Thread(target=lambda: elsewhere.append(len(list(hist.kafka.replay("c1", 0)))))
    other.start()
    other.join()
    mine = hist.db._readers[threading.current_thread()]
    assert other in hist.db._readers and elsewhere == [3]

    hist.release_reader()
    assert threading.current_thread() not in hist.db._readers
    assert other in hist.db._readers  # another thread's is its own
    with pytest.raises(sqlite3.ProgrammingError):
        mine.execute("SELECT 1")  # closed
    hist.release_reader()  # nothing left to release: no error
    hist.kafka.append(growing(3))
    assert len(list(hist.kafka.replay("c1", 0))) == 4  # a new connection, seeing what was written since
    assert hist.db._readers[threading.current_thread()] is not mine


def test_a_started_monitor_keeps_no_reader_of_its_replay_on_the_starting_thread(db: Path, clock: ManualClock) -> None:
    from monitor.app.config import Config
    from monitor.app.root import Monitor

    with History(db, clock=clock) as h:
        for i in range(3):
            h.kafka.append(growing(i))
    clock.t = T0 + 40
    monitor = Monitor(Config.model_validate({
        "clusters": [{"name": "c1", "bootstrap_servers": "127.0.0.1:9"}], "history": {"path": str(db)},
    }), clock=clock)
    monitor.start(serve=False, loop=False)
    try:
        assert len(monitor.kafka_sources[0].windows.committed_series("g1", "orders", 0)) == 3  # replayed
        assert threading.current_thread() not in monitor.history.db._readers
    finally:
        monitor.stop()


def test_an_in_memory_history_has_no_reader_to_release(clock: ManualClock) -> None:
    with History(":memory:", clock=clock) as h:
        h.kafka.append(growing(0))
        h.release_reader()
        assert len(list(h.kafka.replay("c1", 0))) == 1


# --------------------------------------------------------------------------------------------
# hostile names
# --------------------------------------------------------------------------------------------

HOSTILE = [
    "it's \"quoted\"", "line\nbreak\r\ttab", "<script>alert(1)</script>", "ünïcødé-日本語-🚀",
    "'; DROP TABLE cycles; --", "%s %d {0} ?", "nul\x00byte", " padded ", "",
]


def test_hostile_names_round_trip_exactly(hist: History) -> None:
    cluster = "cl'\n<b>ü"
    topics = {f"t{i}{n}": [100 + i] for i, n in enumerate(HOSTILE)}
    groups = {f"g{i}{n}": {(t, 0): 50} for i, (n, t) in enumerate(zip(HOSTILE, topics))}
    groups[HOSTILE[0]] = {(next(iter(topics)), 0): 1}
    hist.kafka.append(make_state(T0, cluster=cluster, topics=topics, groups=groups))
    hist.kafka.set_empty_since(cluster, {g: T0 for g in groups})
    assert hist.kafka.clusters() == [cluster]
    assert [g["group"] for g in hist.kafka.groups_latest(cluster)] == sorted(groups)
    assert {t["topic"] for t in hist.kafka.topics_latest(cluster)} == set(topics)
    assert hist.kafka.empty_since(cluster) == {g: T0 for g in groups}
    [(_, ends, committed, _)] = hist.kafka.replay(cluster, 0)
    assert set(ends) == {(t, 0) for t in topics}
    assert set(committed) == {(g, t, 0) for g, offs in groups.items() for t, _ in offs}
    for g in groups:
        assert len(hist.kafka.group_series(cluster, g, T0, T0)) == 1
        assert hist.kafka.partition_lag_series(cluster, g, T0, T0)[0]["topic"] in topics
        assert len(hist.kafka.window(cluster, "group", g, 10, T0)) == 1
    for t in topics:
        assert hist.kafka.topic_series(cluster, t, T0, T0)[0]["end_offset_sum"] >= 100
    for n in HOSTILE:
        hist.set_meta(n, '"x"')
        assert hist.get_meta(n) == '"x"'
    # a prefix / LIKE-ish name does not match
    assert hist.kafka.group_series(cluster, "g%", T0, T0) == []


# --------------------------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------------------------


def _wide_state(i: int) -> ClusterState:
    groups = {f"g{k}": {("orders", p): 1000 * i + k + i % 7 for p in range(4)} for k in range(20)}
    return make_state(T0 + 10 * i, topics={"orders": [1000 * i + 100] * 4}, groups=groups)


@pytest.mark.parametrize("memory", [False, True])
def test_concurrent_readers_while_writer_appends(db: Path, memory: bool) -> None:
    h = History(":memory:" if memory else db)
    h.kafka.append(_wide_state(0))
    n_cycles = 40
    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0]

    def writer() -> None:
        try:
            for i in range(1, n_cycles):
                h.kafka.append(_wide_state(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while True:
                finished = done.is_set()
                latest = h.kafka.groups_latest("c1")
                # one consistent snapshot: every group from the same cycle, lags of that cycle
                assert len(latest) == 20
                assert len({g["at"] for g in latest}) == 1
                i = round((latest[0]["at"] - T0) / 10)
                assert {g["group"]: g["lag"] for g in latest} == {
                    f"g{k}": 4 * (100 - k - i % 7) for k in range(20)}, i
                series = h.kafka.group_series("c1", "g3", T0, T0 + 10 * n_cycles, max_points=10)
                assert 1 <= len(series) <= 10
                for _at, ends, committed, _ in h.kafka.replay("c1", T0 + 10 * (n_cycles - 3)):
                    assert len(ends) == 4 and len(committed) == 80
                reads[0] += 1
                if finished:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                   for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert reads[0] >= 3
        assert len(h.kafka.group_series("c1", "g0", T0, T0 + 10 * n_cycles)) == n_cycles
    finally:
        h.close()


@pytest.mark.parametrize("count", [0, 1, 89, 90, 91, 277])
def test_rows_go_in_many_per_statement_all_of_them_the_last_of_a_key_kept(count: int) -> None:
    """`_insert_rows`: 90 rows of 11 parameters per statement (999 at most), the rest one by one;
    every row stored; a key given twice (across a statement boundary too) keeps the later row."""
    import sqlite3

    from monitor.storage.kafka_store import _insert_rows

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (cycle INTEGER, k INTEGER, " + ", ".join(f"c{i} INTEGER" for i in range(10))
                 + ", PRIMARY KEY (cycle, k)) WITHOUT ROWID")
    rows = [(i, *(i * 10 + j for j in range(10))) for i in range(count)]
    if count > 1:
        rows.append((0, *([-1] * 10)))  # key 0 again, in the last statement: replaces the first row
    _insert_rows(conn, "INSERT OR REPLACE INTO t VALUES", 7, 11, rows)
    stored = conn.execute("SELECT * FROM t ORDER BY k").fetchall()
    expected = {r[0]: (7, *r) for r in rows}  # later rows win
    assert stored == [expected[k] for k in sorted(expected)]
    assert len(stored) == count


def test_rows_are_made_a_statement_at_a_time() -> None:
    """`_insert_rows` takes its rows as SQLite asks for each statement's parameters: a cycle's
    partition rows (20,000 at 10,000 partitions) are never all made at once, which set the
    parent's peak (docs/performance.md, the thirty-second pass)."""
    import sqlite3

    from monitor.storage.kafka_store import _insert_rows

    made = 0

    def rows():
        nonlocal made
        for k in range(1000):
            made += 1
            yield (k, k * 3)

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (cycle INTEGER, k INTEGER, v INTEGER, PRIMARY KEY (cycle, k)) WITHOUT ROWID")
    ahead = []  # rows made but not yet handed to SQLite, each time it takes a statement's parameters

    class Watching:
        def executemany(self, sql: str, params):
            def watched():
                for p in params:
                    handed[0] += (len(p) - 1) // 2
                    ahead.append(made - handed[0])
                    yield p
            return conn.executemany(sql, watched())

    handed = [0]
    _insert_rows(Watching(), "INSERT OR REPLACE INTO t VALUES", 5, 2, rows())
    assert conn.execute("SELECT count(*), sum(v) FROM t WHERE cycle = 5").fetchone() == (1000, 3 * 499500)
    assert len(ahead) == 4  # two statements of 499 rows, then the last 2 rows one by one
    assert max(ahead) <= 2  # never more made than the statement being run takes (the last 2 are made together)


def test_a_cycles_rows_go_in_by_the_same_statements_every_cycle() -> None:
    """The cycle is a parameter of the statements that insert its rows, not part of their text:
    SQLite compiles each once, and the connection's statement cache (128 of them) does not fill
    with statements of up to 999 parameters that no later cycle runs again."""
    import sqlite3

    from monitor.storage.kafka_store import _insert_rows

    class Recording:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn, self.texts = conn, []

        def executemany(self, sql: str, params):
            self.texts.append(sql)
            return self.conn.executemany(sql, params)

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (cycle INTEGER, k INTEGER, v INTEGER, PRIMARY KEY (cycle, k)) WITHOUT ROWID")
    texts = []
    for cycle in (1, 2, 3):
        recording = Recording(conn)
        _insert_rows(recording, "INSERT OR REPLACE INTO t VALUES", cycle, 2, [(k, k * cycle) for k in range(1000)])
        texts.append(recording.texts)
    assert len(texts[0]) == 2  # 499 rows a statement, then the last 2 rows one by one
    assert texts[0] == texts[1] == texts[2]
    assert conn.execute("SELECT count(*), count(DISTINCT cycle), sum(v) FROM t").fetchone() == (3000, 3, 6 * 499500)


def test_the_historys_page_caches_stay_small_as_the_file_grows(tmp_path) -> None:
    """Appends touch the right edge of each table, and what they read again is in the OS's page
    cache: the writer's SQLite page cache is bounded at `WRITER_CACHE_KIB` (512 KiB) while the
    file grows past several MB, and a reader's at `READER_CACHE_KIB` (512 KiB) while it reads all
    of it. Every cycle is stored and read back."""
    before = sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW)
    if before is None:
        pytest.skip("SQLite's counters cannot be read here (tests.helpers.sqlite_status)")
    h = History(tmp_path / "h.db")
    topics = {f"t{t}": [1000] * 20 for t in range(100)}
    groups = {f"g{g}": {(f"t{g}", p): 990 for p in range(20)} for g in range(100)}
    try:
        for i in range(30):
            h.kafka.append(make_state(T0 + 10 * i, topics=topics, groups=groups))
        assert sum(f.stat().st_size for f in tmp_path.glob("h.db*")) > 4 * 2**20  # the file and its WAL
        grown = sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW) - before
        assert grown < 768 * 1024, f"the writer's: {grown / 2**20:.2f} MB of page cache"
        assert sum(1 for _ in h.kafka.replay("c1", T0 - 1)) == 30  # every page, on this thread's reader
        grown = sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW) - before
        assert grown < 1280 * 1024, f"the writer's and a reader's: {grown / 2**20:.2f} MB of page cache"
        assert len(h.kafka.group_series("c1", "g7", T0, T0 + 300)) == 30
    finally:
        h.close()


def test_the_history_writers_sqlite_memory_besides_page_caches_stays_flat_as_cycles_go_by(tmp_path) -> None:
    """SQLite's memory besides its page caches (`sqlite3_status64`: memory used less page cache
    overflow, i.e. compiled statements, schemas and the like, of the library the sqlite3 module
    uses) does not grow from cycle to cycle: what a cycle compiles the next one uses again. With the
    cycle in each statement's text it grew ~0.4 MB a cycle at 1,000 groups x 10,000 partitions,
    for as long as the statement cache (128) took new ones."""
    if sqlite_status(SQLITE_STATUS_MEMORY_USED) is None:
        pytest.skip("SQLite's counters cannot be read here (tests.helpers.sqlite_status)")

    def besides_page_caches() -> int:
        return sqlite_status(SQLITE_STATUS_MEMORY_USED) - sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW)

    h = History(tmp_path / "h.db")
    topics = {f"t{t}": [1000] * 10 for t in range(40)}
    groups = {f"g{g}": {(f"t{g}", p): 990 for p in range(10)} for g in range(40)}
    try:
        used = []
        for i in range(20):
            h.kafka.append(make_state(T0 + 10 * i, topics=topics, groups=groups))
            used.append(besides_page_caches())
        assert used[-1] - used[4] < 64 * 1024, [round(u / 2**10) for u in used]
    finally:
        h.close()
