"""Benchmark collectors.kafka.signals.derive and OffsetWindows memory.

    python bench/bench_signals.py                      # 1,000 groups x 10 partitions, 2,880 cycles
    python bench/bench_signals.py --cycles 600 --tracemalloc   # cross-check memory with tracemalloc
    python bench/bench_signals.py --record-cost                # only the cost of recording end offsets
    python bench/bench_signals.py --idle-share 0.5             # half the partitions receive nothing

Synthetic cluster: one topic of `--partitions-per-group` partitions per group (10,000 partitions
by default), each consumed by exactly one group. `--cycles` observations `--interval` seconds
apart (default 2,880 x 30 s = 24 h) are replayed through `OffsetWindows.record` exactly as
history replays them at startup (every cycle is recorded, nothing extrapolated); the last cycle is
a full raw `KafkaClusterSnapshot` recorded with `record_snapshot` and then derived.

Printed: replay time (per cycle and total; only the `record` calls are timed, not building the
synthetic offsets), OffsetWindows memory as a getsizeof walk of its containers, series and arrays
(arrays report their allocated capacity) and, with --tracemalloc, as bytes allocated while
replaying and still alive (the two agree within ~2 %; tracemalloc slows the replay ~5-10x, so
it is opt-in and replay time under it is not representative), and derive time (min / median of
--repeat runs). Series stop growing once they reach max_points (256 = 256 cycles), so memory
after >= ~300 cycles is the steady state.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.kafka.signals import SignalSettings, derive  # noqa: E402
from collectors.kafka.windows import OffsetWindows  # noqa: E402
from collectors.models import (  # noqa: E402
    CommittedOffset, ConsumerGroup, GroupMember, KafkaClusterSnapshot, PartitionMetadata, Topic,
)


def windows_bytes(w: OffsetWindows) -> int:
    """Bytes held by the windows' containers, series objects and arrays (sys.getsizeof walk;
    arrays report their allocated capacity; the committed columns their allocated rows). Key strings are shared with the caller: not counted."""
    total = sys.getsizeof(w) + sys.getsizeof(w._ends) + sys.getsizeof(w._commits)
    shared: dict[int, int] = {}  # arrays and key tuples shared by series: counted once
    for key, se in w._ends.items():
        total += sys.getsizeof(se) + sys.getsizeof(se.o)
        shared[id(key)] = sys.getsizeof(key)
        shared[id(se.t)] = sys.getsizeof(se.t)
        shared[id(se.s)] = sys.getsizeof(se.s)
    for gd in w._commits.values():  # group -> partition -> row of the committed columns
        total += sys.getsizeof(gd)
        shared.update((id(key), sys.getsizeof(key)) for key in gd)
    total += sum(shared.values())
    c = w._columns
    return total + c.t.nbytes + c.o.nbytes + c.lag.nbytes + c.n.nbytes + c.changed_at.nbytes


def end_offset_record_cost(partitions: int, apart: bool, cycles: int = 200) -> tuple[float, int]:
    """Median ms of one `record_end_offsets` call over `partitions` partitions with full series
    (256 points), and how many time arrays they hold. `apart`: each partition first misses a
    cycle of its own, so no two share their times (the worst case of the shared arrays)."""
    keys = [(f"t{p // 10}", p % 10) for p in range(partitions)]
    w = OffsetWindows()
    warm = partitions + 2 if apart else 300
    for c in range(warm):
        w.record_end_offsets(c * 30.0, {k: c * 10 for i, k in enumerate(keys) if not apart or i != c})
    times = []
    for c in range(warm, warm + cycles):
        ends = {k: c * 10 for k in keys}
        t0 = time.perf_counter()
        w.record_end_offsets(c * 30.0, ends)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, w.stats().get("end_time_arrays", partitions)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--partitions-per-group", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=2880)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tracemalloc", action="store_true", help="also measure memory with tracemalloc (slow)")
    ap.add_argument("--idle-share", type=float, default=0.0,
                    help="the share of partitions that receive no records (default 0: every one 1-200 a second)")
    ap.add_argument("--record-cost", action="store_true",
                    help="only time recording end offsets: 10,000 partitions sampled together, and 2,000 "
                         "whose histories are all apart (the worst case of the shared time arrays)")
    args = ap.parse_args()
    if not 0.0 <= args.idle_share <= 1.0:
        ap.error("--idle-share: a share from 0 to 1")
    if args.record_cost:
        for partitions, apart in ((10_000, False), (2_000, True)):
            ms, arrays = end_offset_record_cost(partitions, apart)
            print(f"record_end_offsets, {partitions} partitions {'apart' if apart else 'sampled together'}: "
                  f"median {ms:.1f} ms a cycle, {arrays} time array(s)")
        return 0

    rng = random.Random(42)
    G, P = args.groups, args.partitions_per_group
    topics = [f"bench.topic-{g:05d}" for g in range(G)]
    groups = [f"bench-group-{g:05d}" for g in range(G)]
    tps = [(topics[g], p) for g in range(G) for p in range(P)]
    gtps = [(groups[g], topics[g], p) for g in range(G) for p in range(P)]
    prate = [rng.uniform(1, 200) for _ in tps]  # messages/s per partition
    idle = [rng.random() < args.idle_share for _ in tps]  # these keep their end offset
    behind = [rng.random() < 0.2 for _ in tps]  # 20 % of partitions fall behind
    start = 1_700_000_000.0
    n = args.cycles

    def offsets(cycle: int) -> tuple[dict, dict]:
        el = cycle * args.interval
        ends = {}
        commits = {}
        for i, tp in enumerate(tps):
            end = 1000 if idle[i] else int(prate[i] * el) + (cycle % 3)
            ends[tp] = end
            lag = int(prate[i] * (el * 0.01 if behind[i] else 2))
            commits[gtps[i]] = max(0, end - lag)
        return ends, commits

    if args.tracemalloc:
        tracemalloc.start()
    gc.collect()
    base_mem = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    w = OffsetWindows()
    rec_time = 0.0
    rec_cpu = 0.0
    t_start = time.perf_counter()
    for cycle in range(n - 1):
        if cycle and cycle % max(1, n // 10) == 0:
            print(f"  ... {cycle}/{n} cycles, {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
        ends, commits = offsets(cycle)
        t0, c0 = time.perf_counter(), time.process_time()
        w.record(start + cycle * args.interval, ends, commits)
        rec_time += time.perf_counter() - t0
        rec_cpu += time.process_time() - c0
        del ends, commits
    gc.collect()
    mem = (tracemalloc.get_traced_memory()[0] - base_mem) if tracemalloc.is_tracing() else None
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    walk = windows_bytes(w)

    # last cycle: a full raw snapshot
    now = start + (n - 1) * args.interval
    ends, commits = offsets(n - 1)
    topic_objs = tuple(
        Topic(t, tuple(PartitionMetadata(t, p, 1, (1, 2, 3), (1, 2, 3), 0, ends[(t, p)]) for p in range(P)))
        for t in topics
    )
    # exact timestamps for the 100 worst partitions, as the collector annotates positions it read
    worst = set(sorted(range(len(tps)), key=lambda i: ends[tps[i]] - commits[gtps[i]], reverse=True)[:100])
    exact = {gtps[i]: now - 600.0 for i in worst}

    def position(g: int, p: int) -> CommittedOffset:
        key = (groups[g], topics[g], p)
        offset = commits[key]
        if key in exact:
            return CommittedOffset(topics[g], p, offset, readable_lag=ends[(topics[g], p)] - offset,
                                   readable_offset=offset, timestamp=exact[key])
        return CommittedOffset(topics[g], p, offset)

    group_objs = tuple(
        ConsumerGroup(
            name=groups[g], state="Stable",
            members=(GroupMember(f"m-{g}", f"client-{g}", "/10.0.0.1", tuple((topics[g], p) for p in range(P))),),
            offsets=tuple(position(g, p) for p in range(P)),
            offsets_fetched_at=now - 0.5,
        )
        for g in range(G)
    )
    raw = KafkaClusterSnapshot(
        cluster="bench", started_at=now - 1, finished_at=now, topics=topic_objs, groups=group_objs,
        end_offsets_fetched_at=now - 0.2,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    w.record_snapshot(raw)
    rec_time += time.perf_counter() - t0
    rec_cpu += time.process_time() - c0
    del ends, commits
    stats = w.stats()

    settings = SignalSettings()
    times = []
    cpu = []
    view = None
    for _ in range(args.repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        view = derive(raw, w, now, settings, {})
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)

    parts = sum(len(g.partitions) for g in view.groups)
    statuses: dict[str, int] = {}
    for g in view.groups:
        statuses[g.status.value] = statuses.get(g.status.value, 0) + 1
    print(f"groups={G} partitions={len(tps)} group-partitions={parts} cycles={n} interval={args.interval:g}s "
          f"(history span {(n - 1) * args.interval / 3600:.1f} h)")
    print(f"windows: {stats}")
    print(f"replay: wall {rec_time:.1f} s total, {rec_time / n * 1000:.1f} ms per cycle; "
          f"CPU {rec_cpu:.1f} s, {rec_cpu / n * 1000:.1f} ms per cycle"
          f"{' (under tracemalloc: not representative)' if args.tracemalloc else ''}")
    print(f"OffsetWindows memory (getsizeof walk): {walk / 1e6:.1f} MB")
    if mem is not None:
        print(f"OffsetWindows memory after replaying cycles 1..N-1 (tracemalloc): {mem / 1e6:.1f} MB")
    print(f"derive: wall min {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms; "
          f"CPU min {min(cpu) * 1000:.0f} ms, median {statistics.median(cpu) * 1000:.0f} ms "
          f"over {args.repeat} runs; group status counts {statuses}")
    print(f"load average (1/5/15 min) at the end: {os.getloadavg()} on {os.cpu_count()} CPUs "
          f"(wall >> CPU means the machine was shared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
