"""Benchmark monitor.history: append cost per cycle, query latency, DB size, RSS.

    python bench/bench_history.py --groups 1000 --partitions 10000 --cycles 50

Synthetic cluster: `--topics` topics (default groups/10) share `--partitions` topic partitions;
each group consumes one topic and owns a contiguous slice of partitions/groups of its partitions,
so every cycle stores `partitions` end offsets AND `partitions` group-partition rows plus one
summary row per group and topic. Cycles are `--interval` seconds apart, ending "now"; offsets grow
each cycle like a live cluster.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from collectors.models import (  # noqa: E402
    ClusterState, CommittedOffset, ConsumerGroup, GroupLag, GroupMember, KafkaClusterSnapshot,
    KafkaLagView, PartitionLag, PartitionMetadata, Status, TimeLagMethod, Topic, TopicRates,
)
from monitor.storage import History  # noqa: E402


def build_state(
    cluster: str, at: float, cycle: int, groups: int, partitions: int, topics: int,
    rng: random.Random,
) -> ClusterState:
    per_topic = max(1, partitions // topics)
    per_group = max(1, partitions // groups)
    ends: dict[tuple[str, int], int] = {}
    topic_objs = []
    topic_rates = []
    for t in range(topics):
        name = f"bench.topic-{t:05d}"
        parts = []
        for p in range(per_topic):
            latest = 1_000_000 + cycle * 500 + p * 7
            ends[(name, p)] = latest
            parts.append(PartitionMetadata(name, p, 1, (1, 2, 3), (1, 2, 3), 1000, latest))
        topic_objs.append(Topic(name, tuple(parts)))
        topic_rates.append(TopicRates(
            cluster, name, per_topic, sum(ends[(name, p)] for p in range(per_topic)),
            per_topic * 999_000, 50.0 * per_topic, tuple([50.0] * per_topic), 0, 0,
        ))
    raw_groups = []
    lag_groups = []
    slices_per_topic = max(1, per_topic // per_group)
    for g in range(groups):
        name = f"bench-group-{g:05d}"
        topic = f"bench.topic-{(g // slices_per_topic) % topics:05d}"
        first = (g % slices_per_topic) * per_group
        offsets = []
        plags = []
        for p in range(first, first + per_group):
            end = ends[(topic, p)]
            lag = rng.randrange(0, 5000)
            offsets.append(CommittedOffset(topic, p, end - lag))
            plags.append(PartitionLag(
                name, topic, p, end - lag, end, lag, lag / 50.0 if lag else None,
                TimeLagMethod.INTERPOLATED if lag else TimeLagMethod.NONE, 49.0, Status.OK,
                f"consumer-{p}",
            ))
        total = sum(pl.lag for pl in plags)
        raw_groups.append(ConsumerGroup(
            name, "Stable", (GroupMember("m-1", "consumer-1", "/10.0.0.1", ()),), tuple(offsets),
            at - 0.5,
        ))
        lag_groups.append(GroupLag(
            cluster, name, "Stable", 1, False, None, total,
            max((pl.time_lag_seconds or 0.0) for pl in plags), TimeLagMethod.INTERPOLATED,
            49.0 * per_group, 50.0 * per_group, None, Status.OK, tuple(plags), (topic,), at - 0.5,
        ))
    raw = KafkaClusterSnapshot(
        cluster, at - 1.0, at, topics=tuple(topic_objs), groups=tuple(raw_groups),
        end_offsets_fetched_at=at - 0.2,
    )
    lag = KafkaLagView(cluster, at, tuple(lag_groups), tuple(topic_rates))
    return ClusterState(raw, lag)


def db_size(path: Path) -> int:
    return sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=10000,
                    help="topic partitions = group-partitions per cycle")
    ap.add_argument("--topics", type=int, default=None, help="default: groups/10")
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between cycles")
    ap.add_argument("--db", type=Path, default=None, help="database file (default: a temp dir)")
    ap.add_argument("--prune", action="store_true",
                    help="also time prune() with downsampling of everything older than 1/4 of "
                         "the stored span")
    ap.add_argument("--cache-kib", default=None, metavar="WRITER,READER",
                    help="SQLite page cache of the writer and of each reader connection, KiB "
                         "(default: monitor.storage.database's)")
    args = ap.parse_args(argv)
    if args.cache_kib:
        from monitor.storage import database

        database.WRITER_CACHE_KIB, database.READER_CACHE_KIB = (int(v) for v in args.cache_kib.split(","))
    topics = args.topics or max(1, args.groups // 10)
    rng = random.Random(42)
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-history-")
        path = Path(tmp.name) / "history.db"
    else:
        path = args.db
    now = time.time()
    first = now - (args.cycles - 1) * args.interval
    proc = psutil.Process()
    print(f"groups={args.groups} partitions={args.partitions} topics={topics} "
          f"cycles={args.cycles} interval={args.interval}s db={path}")

    h = History(path, retention_seconds=86400 * 2, downsample_after_seconds=86400,
                clock=lambda: now)
    append_times = []
    build_times = []
    sizes = []
    for i in range(args.cycles):
        t0 = time.perf_counter()
        state = build_state("bench", first + i * args.interval, i, args.groups, args.partitions,
                            topics, rng)
        t1 = time.perf_counter()
        h.kafka.append(state)
        t2 = time.perf_counter()
        build_times.append(t1 - t0)
        append_times.append(t2 - t1)
        sizes.append(db_size(path))
        del state
    rows = len(h.kafka.groups_latest("bench"))
    print(f"append per cycle: median {statistics.median(append_times) * 1000:.1f} ms, "
          f"p95 {sorted(append_times)[int(0.95 * (len(append_times) - 1))] * 1000:.1f} ms, "
          f"max {max(append_times) * 1000:.1f} ms (state build median "
          f"{statistics.median(build_times) * 1000:.1f} ms, not included)")
    with h.db._lock:  # settle the WAL so the file size is the data size
        h.db._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = db_size(path)
    per_cycle = (sizes[-1] - sizes[0]) / max(1, args.cycles - 1)
    print(f"db size: {total / 1e6:.1f} MB after {args.cycles} cycles "
          f"(~{total / args.cycles / 1e6:.2f} MB/cycle; growth between cycles incl. WAL "
          f"~{per_cycle / 1e6:.2f} MB)")

    start, end = now - 86400, now
    g_mid = f"bench-group-{args.groups // 2:05d}"
    t_mid = f"bench.topic-{topics // 2:05d}"
    for label, fn in [
        ("group_series 24h", lambda: h.kafka.group_series("bench", g_mid, start, end, 500)),
        ("group_series 24h max_points=20", lambda: h.kafka.group_series("bench", g_mid, start, end, 20)),
        ("partition_lag_series 24h", lambda: h.kafka.partition_lag_series("bench", g_mid, start, end)),
        ("topic_series 24h", lambda: h.kafka.topic_series("bench", t_mid, start, end)),
        ("partition_rate_series 24h",
         lambda: h.kafka.partition_rate_series("bench", t_mid, start, end, 200)),
        ("cluster_series 24h", lambda: h.kafka.cluster_series("bench", start, end)),
        ("window group 300s", lambda: h.kafka.window("bench", "group", g_mid, 300, now)),
        ("groups_latest", lambda: h.kafka.groups_latest("bench")),
        ("topics_latest", lambda: h.kafka.topics_latest("bench")),
    ]:
        secs, res = timed(fn)
        print(f"  {label:34s} {secs * 1000:8.1f} ms  ({len(res)} rows)")
    t0 = time.perf_counter()
    n = sum(1 for _ in h.kafka.replay("bench", now - 600))
    print(f"  {'replay last 600 s':34s} {(time.perf_counter() - t0) * 1000:8.1f} ms  "
          f"({n} cycles)")
    if args.prune:
        span = (args.cycles - 1) * args.interval
        h.retention.after_seconds = span * 0.25
        h.retention.step_seconds = max(args.interval * 6, 1.0)
        t0 = time.perf_counter()
        stats = h.prune(now)
        print(f"  {'prune (downsample)':34s} {(time.perf_counter() - t0) * 1000:8.1f} ms  "
              f"{stats}")
    print(f"groups_latest rows: {rows}; RSS {proc.memory_info().rss / 1e6:.0f} MB")
    h.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
