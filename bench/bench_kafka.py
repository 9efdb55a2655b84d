"""Benchmark: one collection cycle against a synthetic cluster on the local broker.

Builds `--groups` consumer groups over `--partitions` partitions (topics of `--per-topic`
partitions; group i consumes topic i mod topics, committed behind the end so every partition has
lag), then runs collection cycles and prints, per cycle: wall time, requests sent (librdkafka's own
per-broker `tx` counters plus the requests answered to the batched group client), CPU time and RSS; then the derive + history append time, the metrics
serialisation time and the scrape time served from the cache; then runs `streamscope run` on the
cluster and prints the RSS and PSS of its processes after 4 cycles (and again after the last cycle
of the CPU measure), the memory they would hold alone (shared libraries counted in full: PSS
splits them with this benchmark's own process), and the CPU time of all of them per cycle
(cycles 6 to 10), which is what the deployment spends: the summary's "CPU, three phases" adds up
collect, derive/history and serialisation only, not alert evaluation or scrapes.

    python bench/bench_kafka.py --groups 1000 --partitions 10000 --cycles 5
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from confluent_kafka import Producer
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings  # noqa: E402
from collectors.memory import unmap_large_blocks  # noqa: E402


PRODUCER_PARTITIONS = 2_000  # partitions one producer of build_cluster writes to


def build_cluster(bootstrap: str, groups: int, partitions: int, per_topic: int, messages: int,
                  replication: int = 1) -> list[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [f"bench-{i:05d}" for i in range(max(1, partitions // per_topic))]
    existing = set(admin.list_topics(timeout=30).topics)
    missing = [t for t in topics if t not in existing]
    started = time.monotonic()
    for i in range(0, len(missing), 200):
        futures = admin.create_topics([NewTopic(t, per_topic, replication) for t in missing[i:i + 200]],
                                      request_timeout=120)
        for f in futures.values():
            f.result(180)
    deadline = time.monotonic() + 600
    while True:  # creation returns before the partitions have leaders
        md = admin.list_topics(timeout=60)
        ready = sum(1 for t in topics if t in md.topics and len(md.topics[t].partitions) == per_topic
                    and all(p.leader >= 0 for p in md.topics[t].partitions.values()))
        if ready == len(topics) or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"created {len(missing)} topics x {per_topic} partitions ({ready} ready) in {time.monotonic() - started:.1f} s", file=sys.stderr)
    started = time.monotonic()
    # A producer's cost per message grows with the partitions it has written to (librdkafka scans
    # them all): at 100,000 partitions one producer had not finished in 25 minutes. A fresh
    # producer per PRODUCER_PARTITIONS keeps the whole linear in the partitions.
    chunk = max(1, PRODUCER_PARTITIONS // per_topic)
    for first in range(0, len(topics), chunk):
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                             "queue.buffering.max.messages": 2_000_000})
        for t in topics[first:first + chunk]:
            for p in range(per_topic):
                for _ in range(messages):
                    producer.produce(t, b"x" * 20, partition=p)
            producer.poll(0)
        assert producer.flush(300) == 0, "messages left unsent"
        del producer
        if len(topics) > chunk:
            print(f"  produced to {min(first + chunk, len(topics))}/{len(topics)} topics "
                  f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(f"produced {len(topics) * per_topic * messages} messages in {time.monotonic() - started:.1f} s", file=sys.stderr)
    started = time.monotonic()
    names = [f"bench-group-{g:05d}" for g in range(groups)]
    pending = []
    for g, name in enumerate(names):
        topic = topics[g % len(topics)]
        request = ConsumerGroupTopicPartitions(name, [TopicPartition(topic, p, messages // 2) for p in range(per_topic)])
        pending.append(admin.alter_consumer_group_offsets([request], request_timeout=60)[name])
        if len(pending) >= 64:
            for f in pending:
                f.result(120)
            pending = []
    for f in pending:
        f.result(120)
    print(f"committed offsets of {groups} groups in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return topics


def broker(bootstrap: str | None):
    """(bootstrap servers, the KafkaBox started for them or None): `bootstrap` when given, else a
    local broker with the heap a benchmark needs (stop it when done)."""
    if bootstrap:
        return bootstrap, None
    from demo.kafka_box import KafkaBox

    box = KafkaBox(jvm_options=("-Xms1g", "-Xmx2g", "-XX:+UseG1GC"), ready_timeout=180)
    box.start()
    return box.bootstrap, box


class RequestCounter:
    """Sums librdkafka's per-broker `tx` (requests sent) over all clients, from their statistics."""

    def __init__(self) -> None:
        self._per_client: dict[str, int] = {}

    def __call__(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        self._per_client[stats["name"]] = sum(b.get("tx", 0) for b in stats.get("brokers", {}).values())

    @property
    def tx(self) -> int:
        return sum(self._per_client.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="existing broker (default: start a local KafkaBox)")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=10000)
    parser.add_argument("--per-topic", type=int, default=10)
    parser.add_argument("--messages", type=int, default=4, help="messages per partition")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=1,
                        help="brokers: 1 = one KafkaBox; more = a KRaft cluster (demo.kafka_cluster), topics "
                             "spread over them with one replica")
    parser.add_argument("--per-group-requests", action="store_true",
                        help="one librdkafka call per group instead of batched group requests (to compare)")
    parser.add_argument("--exact", type=int, default=50,
                        help="moving positions whose time lag is read exactly each cycle")
    parser.add_argument("--remembered", type=int, default=2000,
                        help="positions that stay (new, stuck) read once per cycle and remembered")
    parser.add_argument("--full-cycles", type=int, default=3,
                        help="downstream cycles measured once the status windows are full (their median is reported)")
    parser.add_argument("--synthetic", action="store_true",
                        help="no broker: derive, history and serialisation of a snapshot of this shape built in memory "
                             "(for sizes a broker on this machine cannot hold: it keeps a file open per partition)")
    parser.add_argument("--deployment-cycles", type=int, default=4,
                        help="with --deployment-only: cycles of `streamscope run` before its memory is measured")
    parser.add_argument("--deployment-interval", type=float, default=5.0,
                        help="with --deployment-only: its collection interval, seconds")
    parser.add_argument("--cpu-from", type=int, default=6,
                        help="measure the deployment's CPU from the end of this cycle (later: past the cycles "
                             "that read positions, which the line of positions read shows)")
    parser.add_argument("--cpu-until", type=int, default=10,
                        help="measure the deployment's CPU up to the end of this cycle "
                             "(more cycles, less noise: a cycle's CPU varies by 0.1-0.3 s)")
    parser.add_argument("--deployment-only", action="store_true",
                        help="only measure the memory of `streamscope run` (all its processes) on this cluster")
    args = parser.parse_args()
    # as `streamscope run` and its collector process do (collectors.memory)
    unmap_large_blocks()

    if args.synthetic:
        print(f"synthetic snapshot (no broker): {args.groups} groups, {args.partitions} partitions "
              f"({args.per_topic} per topic), {args.messages - args.messages // 2} records behind every commit")
        measure_downstream(synthetic_snapshot(args.groups, args.partitions, args.per_topic, args.messages), args)
        return
    box = None
    # 10,000 partitions need more heap than the demo's default JVM options give.
    heap = ("-Xms1g", "-Xmx2g", "-XX:+UseG1GC") if args.nodes == 1 else ("-Xms512m", "-Xmx1g", "-XX:+UseG1GC")
    if args.bootstrap:
        bootstrap = args.bootstrap
    elif args.nodes > 1:
        from demo.kafka_cluster import KafkaCluster

        box = KafkaCluster(args.nodes, jvm_options=heap).start()
        bootstrap = box.bootstrap
    else:
        from demo.kafka_box import KafkaBox

        box = KafkaBox(jvm_options=heap, ready_timeout=180)
        box.start()
        bootstrap = box.bootstrap
    try:
        build_cluster(bootstrap, args.groups, args.partitions, args.per_topic, args.messages,
                      replication=1)
        if args.deployment_only:
            measure_deployment(bootstrap, args.deployment_cycles, args.deployment_interval,
                               cpu_cycles=(args.cpu_from, max(args.cpu_from + 1, args.cpu_until)))
        else:
            run_cycles(bootstrap, args)
    finally:
        if box is not None:
            box.stop()


def synthetic_snapshot(groups: int, partitions: int, per_topic: int, messages: int):
    """A raw snapshot shaped like `build_cluster`'s cluster as the collector reports it once every
    position is known: every topic's partitions `messages` long, group i committed at half of
    topic i mod topics with the rest readable."""
    from collectors.models import CommittedOffset, ConsumerGroup, KafkaClusterSnapshot, PartitionMetadata, Topic

    now = time.time()
    names = [f"bench-{i:05d}" for i in range(max(1, partitions // per_topic))]
    topics = tuple(Topic(name, tuple(PartitionMetadata(name, p, 1, (1,), (1,), 0, messages, messages)
                                     for p in range(per_topic))) for name in names)
    committed = messages // 2
    group_rows = tuple(
        ConsumerGroup(f"bench-group-{g:05d}", "Empty", (), tuple(
            CommittedOffset(names[g % len(names)], p, committed, readable_lag=messages - committed,
                            readable_offset=committed, timestamp=now - 60.0) for p in range(per_topic)),
            now - 0.5, protocol_type="simple")
        for g in range(groups))
    return KafkaClusterSnapshot(cluster="bench", started_at=now - 1, finished_at=now, topics=topics,
                                groups=group_rows, end_offsets_fetched_at=now - 0.2)


def measure_floor(bootstrap: str, cycles: int = 3):
    """The protocol's floors on this cluster (bench/floor.py), median of `cycles` cycles each:
    (decode-only floor, admin-API floor). Ratios are taken against the decode-only one."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from floor import AdminApiFloor, Floor

    medians = []
    for kind, what in ((Floor, "decode-only floor: the requests a cycle needs, answers decoded, nothing more"),
                       (AdminApiFloor, "admin-API floor: the same through kafka-python's public admin calls")):
        floor = kind(bootstrap, "bench-group-.*", "bench-.*")
        try:
            floor.cycle()  # connections and versions
            runs = sorted((floor.cycle() for _ in range(cycles)), key=lambda c: c.wall)
        finally:
            floor.close()
        median = runs[len(runs) // 2]
        print(f"{'' if medians else chr(10)}{what} (bench/floor.py): median of {cycles}: "
              f"wall {median.wall:.3f} s, cpu {median.cpu:.3f} s, {median.requests} requests")
        medians.append(median)
    return medians[0], medians[1]


def run_cycles(bootstrap: str, args) -> None:
    floor, admin_floor = measure_floor(bootstrap)
    counter = RequestCounter()
    settings = KafkaCollectorSettings(
        cluster="bench", bootstrap_servers=bootstrap, request_timeout=30, exact_time_lag_partitions=args.exact,
        remembered_reads_per_cycle=args.remembered,
        batched_group_requests=not args.per_group_requests,
        group_filter=lambda n: n.startswith("bench-group-"), topic_filter=lambda n: n.startswith("bench-"),
        # librdkafka's statistics count the requests; every 100 ms the JSON of a consumer with
        # hundreds of assigned partitions costs enough CPU to slow the reads it measures: 1 s.
        client_config={"statistics.interval.ms": 1000, "stats_cb": counter},
    )
    collector = KafkaCollector(settings)
    proc = psutil.Process()
    print(f"\nsynthetic cluster: {args.nodes} broker(s), {args.groups} groups, {args.partitions} partitions "
          f"({args.per_topic} per topic), {args.messages - args.messages // 2} records behind every commit, "
          f"reads per cycle: {args.remembered} remembered + {args.exact} moving")
    print(f"{'cycle':>5} {'wall s':>7} {'x floor':>7} {'requests':>8} {'cpu s':>6} {'x floor':>7} {'rss MB':>7} "
          f"{'groups':>6} {'partitions':>10} {'reads':>5}")
    raw = None
    steady: list[tuple[float, float, int]] = []  # (wall, cpu, requests) of cycles that read nothing
    for cycle in range(args.cycles):
        collector._admin_client().poll(0.3)  # flush pending stats before measuring
        tx_before = counter.tx + collector.batched_requests_sent
        cpu_before = proc.cpu_times()
        started = time.perf_counter()
        raw = collector.collect()
        wall = time.perf_counter() - started
        cpu = sum(proc.cpu_times()[:2]) - sum(cpu_before[:2])
        time.sleep(0.8)  # the next statistics (1 s interval) carry this cycle's requests
        collector._admin_client().poll(0.5)
        for reader in collector._positions._readers.values():
            reader.poll(0)
        assert raw.ok, raw.error
        parts = sum(len(t.partitions) for t in raw.topics)
        requests_sent = counter.tx + collector.batched_requests_sent - tx_before
        if raw.positions_read == 0:
            steady.append((wall, cpu, requests_sent))
        print(f"{cycle:>5} {wall:>7.2f} {wall / floor.wall:>7.1f} {requests_sent:>8} {cpu:>6.2f} {cpu / floor.cpu:>7.1f} "
              f"{proc.memory_info().rss / 2**20:>7.0f} {len(raw.groups):>6} {parts:>10} {raw.positions_read:>5}   "
              + " ".join(f"{name}={seconds:.2f}" for name, seconds in raw.phase_seconds))
    collector.close()
    downstream = measure_downstream(raw, args)
    deployment = measure_deployment(bootstrap, cpu_cycles=(args.cpu_from, max(args.cpu_from + 1, args.cpu_until)))
    print_summary(floor, admin_floor, steady, downstream, deployment)


def print_summary(floor, admin_floor, steady, downstream, deployment) -> None:
    """The figures of issue 14's table, from this run: the median steady cycle (one that read no
    position), end to end = that cycle + derive and history append (min of 3) + serialisation."""
    print("\nsummary (steady cycles: those that read no position)")
    if not steady:
        print("  no steady cycle: run more cycles (--cycles) so that every position is known")
        return
    wall, cpu, sent = sorted(steady)[len(steady) // 2]
    ingest, ingest_cpu, serialise, serialise_cpu, scrape = downstream
    print(f"  collector cycle      {wall:6.2f} s  ({wall / floor.wall:.1f}x the decode-only floor's {floor.wall:.2f} s;"
          f" {wall / admin_floor.wall:.1f}x the admin-API floor's {admin_floor.wall:.2f} s)")
    print(f"  end to end           {wall + ingest + serialise:6.2f} s  (cycle + derive/history {ingest:.2f} s"
          f" + serialisation {serialise:.2f} s)")
    print(f"  CPU, three phases    {cpu + ingest_cpu + serialise_cpu:6.2f} s  (collector {cpu:.2f} s, {cpu / floor.cpu:.1f}x the"
          f" decode-only floor's {floor.cpu:.2f} s, {cpu / admin_floor.cpu:.1f}x the admin-API floor's"
          f" {admin_floor.cpu:.2f} s; derive/history {ingest_cpu:.2f} s; serialisation {serialise_cpu:.2f} s)")
    print(f"  requests per cycle   {sent:6d}    (floor {floor.requests})")
    print(f"  /metrics scrape      {scrape * 1000:6.1f} ms median (gzip, as Prometheus asks)")
    if deployment is not None:
        print(f"  `streamscope run`    {deployment[0]:6.0f} MB RSS, {deployment[1]:.0f} MB PSS, {deployment[2]:.0f} MB alone"
              " (every process; alone: shared libraries counted in full, as on a machine of its own)")
        if deployment[3] is not None:
            print(f"  CPU per cycle, `run` {deployment[3]:6.2f} s  (every process, alert evaluation and scrapes included)")


def measure_deployment(bootstrap: str, cycles: int = 4, interval: float = 5.0,
                       cpu_cycles: tuple[int, int] | None = (6, 10)) -> tuple[float, float, float, float | None]:
    """`streamscope run` as users run it (collector child process and all, its built-in alert
    rules evaluated, /metrics scraped with gzip once a cycle), on this cluster: RSS and PSS (what
    the processes cost together, shared pages counted once) of every process of it after `cycles`
    cycles (printed again after the last cycle, when that is later); then, with `cpu_cycles`
    (first, last), the CPU time of every process between the end
    of those two cycles, per cycle: everything the deployment spends, alert evaluation included,
    where the summary's per-phase CPU adds up only collect, derive/history and serialisation.
    A cycle's end is seen by asking /healthz 4 times a second, which costs the parent ~2 ms a time:
    it is asked up to the first end and over the last two cycles only, and in between the
    deployment gets one gzip scrape a cycle and nothing else, as under Prometheus.
    Returns (RSS MB, PSS MB, MB alone (see `run_memory`), CPU s per cycle or None)."""
    from demo.kafka_box import free_port

    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    port = free_port()
    run = start_run(bootstrap, port, interval, tmp)
    cpu_by_pid: dict[int, tuple[str, float]] = {}  # CPU seconds of each process seen (a restarted child adds its own)

    def cpu_now() -> dict[int, tuple[str, float]]:
        for p in [psutil.Process(run.pid), *psutil.Process(run.pid).children(recursive=True)]:
            try:
                t = p.cpu_times()
                cpu_by_pid[p.pid] = ("parent" if p.pid == run.pid else "child", t.user + t.system)
            except psutil.NoSuchProcess:
                pass
        return dict(cpu_by_pid)

    def total(cpu: dict[int, tuple[str, float]]) -> float:
        return sum(v for _, v in cpu.values())

    def scrape() -> None:
        """/metrics as Prometheus scrapes it (gzip), which decides what the /metrics cache keeps;
        the positions the cycle it shows read (a cycle that reads some is not a steady one)."""
        text = requests.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30).text
        shown, found = CYCLES_DONE.search(text), _POSITIONS_READ.search(text)
        if shown:
            reads[int(float(shown.group(1)))] = str(int(float(found.group(1)))) if found else "?"

    try:
        last = max(cycles, cpu_cycles[1] if cpu_cycles else 0)
        deadline = time.monotonic() + 120 + last * interval * 3
        seen, memory, cpu_at, reads = 0, None, {}, {}
        machine_at: dict[int, tuple[float, float] | None] = {}  # at each cycle end seen
        while time.monotonic() < deadline and seen < last:
            if cpu_cycles and cpu_cycles[0] <= seen < last - 2:
                # Between the two ends of the CPU measure, nothing but a scrape a cycle, as
                # Prometheus would: /healthz asked 4 times a second (how a cycle's end is seen)
                # cost the parent ~2 ms each, ~40 ms a cycle, that a deployment does not spend.
                time.sleep(interval)
                scrape()
                seen = max(seen, max(reads, default=0))
                continue
            time.sleep(0.25)
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
                now_seen = max((c["cycles_total"] for c in health["collectors"]), default=0)
            except (requests.RequestException, ValueError):
                continue
            if now_seen == seen:
                continue
            seen = now_seen
            cpu_at[seen] = cpu_now()
            machine_at[seen] = _machine_times()
            scrape()
            if seen >= cycles and memory is None:
                memory = _deployment_memory(run.pid, seen, interval, tmp)
        if memory is None:
            memory = _deployment_memory(run.pid, seen, interval, tmp)
        elif seen > cycles:
            # again at the end: what builds up over the first minutes (SQLite's caches, the
            # windows) shows here and not after `cycles`
            _deployment_memory(run.pid, seen, interval, tmp)
        cpu_per_cycle = None
        if cpu_cycles and all(c in cpu_at for c in cpu_cycles):
            first, last = cpu_cycles
            pids0, pids1 = cpu_at[first], cpu_at[last]
            cpu_per_cycle = (total(pids1) - total(pids0)) / (last - first)
            parts = {}
            for pid, (role, value) in pids1.items():
                parts[role] = parts.get(role, 0.0) + value - pids0.get(pid, (role, 0.0))[1]
            steps = [f"{total(cpu_at[c]) - total(cpu_at[c - 1]):.2f}" for c in range(2, first + 1) if c in cpu_at and c - 1 in cpu_at]
            print(f"CPU of every process of it, per cycle (cycles 2-{first}, their ends seen by asking /healthz 4 times "
                  f"a second: {' '.join(steps)} s); between the end of cycles {first} and {last}, scraped once a "
                  f"cycle and not asked: {cpu_per_cycle:.2f} s a cycle ("
                  + ", ".join(f"{role} {value / (last - first):.2f} s" for role, value in sorted(parts.items(),
                                                                                             key=lambda kv: kv[0] != "parent"))
                  + ")")
            contention = _contention(machine_at.get(first), machine_at.get(last))
            if contention:
                print(contention)
            print(f"positions read by the cycle published at each of those ends (cycles 2-{last}): "
                  f"{' '.join(reads.get(c, '?') for c in range(2, last + 1))}; a cycle that reads positions costs "
                  "the child more than a steady one")
        elif cpu_cycles:
            print(f"CPU not measured: the ends of cycles {cpu_cycles} were not both seen (cycles seen: {sorted(cpu_at)})")
        return (*memory, cpu_per_cycle)
    finally:
        run.terminate()
        run.wait(30)


def _machine_times() -> tuple[float, float] | None:
    """(all CPU time, stolen time) of this machine so far, in clock ticks (/proc/stat); None where
    there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0.0


def _contention(start: tuple[float, float] | None, end: tuple[float, float] | None) -> str | None:
    """A line on how busy the machine was while the CPU was measured: a virtual machine whose
    host lends its cores elsewhere (steal) runs the same work in more CPU time."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    total, stolen = end[0] - start[0], end[1] - start[1]
    return (f"the machine meanwhile: {100 * stolen / total:.1f}% of its CPU time stolen by the host, load average "
            f"{' '.join(open('/proc/loadavg').read().split()[:3])}")


CYCLES_DONE = re.compile(  # the cycles a `run` on the benchmark's cluster has finished, in its /metrics
    r'^streamscope_collector_cycles_total\{collector="kafka:bench",kind="kafka"\} ([0-9.e+]+)$', re.M)
_POSITIONS_READ = re.compile(r'^streamscope_kafka_collector_positions_read\{cluster="bench"\} ([0-9.e+]+)$', re.M)


def start_run(bootstrap: str, port: int, interval: float, tmp: Path, cwd: str | None = None):
    """`streamscope run` on the benchmark's cluster as a user starts it (its config in `tmp`, its
    web server on `port`), from the checkout `cwd` (default: this one)."""
    import subprocess

    (tmp / "config.yaml").write_text(json.dumps({
        "clusters": [{"name": "bench", "bootstrap_servers": bootstrap, "request_timeout_seconds": 30}],
        "history": {"path": str(tmp / "history.db")}, "web": {"port": port},
        "collection": {"interval_seconds": interval},
    }))
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(tmp / "config.yaml")],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_memory(pid: int) -> tuple[list[tuple[int, str, int, int]], float]:
    """(pid, command, RSS, PSS) of every process of the `run` at `pid`, and the MB it would hold
    alone. PSS splits a shared library's pages between every process mapping it, this benchmark's
    own among them (it has numpy, librdkafka and libpython loaded): on a machine of its own, `run`
    pays for those pages in full. "Alone" counts each process's private pages and each file's
    shared pages once (the most any of `run`'s processes has resident)."""
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    rows = []
    private, shared_by_path = 0, {}
    for p in tree:
        info = p.memory_full_info()
        rows.append((p.pid, " ".join(p.cmdline()[-3:])[:60], info.rss, info.pss))
        for m in p.memory_maps(grouped=True):
            private += m.private_clean + m.private_dirty
            if m.shared_clean + m.shared_dirty:
                key = m.path or "[anon]"
                shared_by_path[key] = max(shared_by_path.get(key, 0), m.shared_clean + m.shared_dirty)
    return rows, (private + sum(shared_by_path.values())) / 2**20


def _deployment_memory(pid: int, seen: int, interval: float, tmp: Path) -> tuple[float, float, float]:
    """RSS, PSS and the memory `run` would hold alone (MB, every process of it; see `run_memory`),
    printed process by process."""
    rows, alone = run_memory(pid)
    history_bytes = sum(f.stat().st_size for f in (tmp / "history.db", tmp / "history.db-wal") if f.exists())
    print(f"\n`streamscope run` after {seen} cycles ({interval:.0f} s interval), every process of it:")
    for pid_, cmd, rss, pss in rows:
        print(f"  pid {pid_:>7}  RSS {rss / 2**20:6.0f} MB  PSS {pss / 2**20:6.0f} MB  {cmd}")
    print(f"  total    RSS {sum(r[2] for r in rows) / 2**20:6.0f} MB  PSS {sum(r[3] for r in rows) / 2**20:6.0f} MB"
          f"  alone {alone:6.0f} MB  (history file and its WAL {history_bytes / 2**20:.0f} MB)")
    return sum(r[2] for r in rows) / 2**20, sum(r[3] for r in rows) / 2**20, alone


STATUS_WINDOW = 10  # observations in a full status window (collection.status_window's default)


def measure_downstream(raw, args) -> tuple[float, float, float, float, float]:
    """Derive + history append + serialisation + HTTP scrape, through the real Monitor."""
    from dataclasses import replace

    from collectors.models import Snapshot
    from monitor.app.root import Monitor
    from monitor.app.config import Config
    from monitor.web.metrics import GZIP_LEVEL, _deflate, _gzip

    tmp = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    config = Config.model_validate({
        "clusters": [{"name": "bench", "bootstrap_servers": "unused:1"}],
        "history": {"path": str(tmp / "history.db")}, "web": {"port": 0},
        "collection": {"isolate_process": False},
    })
    # the monitor's clock follows the shifted cycles: derive, the windows and the history see a
    # cycle every 15 s, as in `run`, not the few seconds this loop takes
    now = [time.time()]
    monitor = Monitor(config, clock=lambda: now[0]).start(serve=True, loop=False)
    source = monitor.kafka_sources[0]
    try:
        ingest, serialise = [], []
        cycles = STATUS_WINDOW + max(1, args.full_cycles)
        for i in range(cycles):
            # a cycle every 15 s, the monitor's clock 0.5 s after each; every group's offsets
            # fetched anew too, so the windows grow a point a cycle and fill, as they do in `run`
            shift = 15.0 * (i + 1 - cycles) - 15.0
            shifted = replace(raw, started_at=raw.started_at + shift, finished_at=raw.finished_at + shift,
                              end_offsets_fetched_at=raw.end_offsets_fetched_at + shift,
                              groups=tuple(replace(g, offsets_fetched_at=g.offsets_fetched_at + shift)
                                           for g in raw.groups))
            now[0] = shifted.finished_at + 0.5
            started, cpu = time.perf_counter(), time.process_time()
            state, health = source.ingest(shifted)
            ingest.append((time.perf_counter() - started, time.process_time() - cpu))
            monitor.store.publish(Snapshot(at=now[0], clusters=(state,), health=(health,)))
            cpu = time.process_time()
            payload = monitor.metrics.refresh()  # each cycle, as `run` does: the first one is cold
            serialise.append((monitor.metrics.last_refresh_seconds, time.process_time() - cpu))
        plain = _scrape_times(f"{monitor.web.url}/metrics", "identity", payload)
        # Prometheus sends Accept-Encoding: gzip; the refresh after a gzip scrape compresses the
        # next payload, so steady-state gzip scrapes are served from a compressed copy.
        _scrape_times(f"{monitor.web.url}/metrics", "gzip", payload, rounds=1)
        payload = monitor.metrics.refresh()
        zipped = _scrape_times(f"{monitor.web.url}/metrics", "gzip", payload)
        started = time.perf_counter()
        compressed = _gzip(payload)  # as the monitor compresses it
        compress_seconds = time.perf_counter() - started
        warm = sorted(serialise[1:])  # (wall, CPU)
        full = sorted(ingest[STATUS_WINDOW:])  # cycles whose status windows are full
        print(f"\nderive + history append per cycle, status windows full: median {full[len(full) // 2][0] * 1000:.0f} ms, "
              f"min {full[0][0] * 1000:.0f} ms, max {full[-1][0] * 1000:.0f} ms ({len(full)} cycles; "
              f"the first, cold: {ingest[0][0] * 1000:.0f} ms)")
        print(f"metrics serialisation (once per cycle): median {warm[len(warm) // 2][0] * 1000:.0f} ms, min {warm[0][0] * 1000:.0f} ms "
              f"(first, cold: {serialise[0][0] * 1000:.0f} ms), {len(payload) / 1024:.0f} KiB, {len(payload.splitlines())} lines")
        print(f"gzip level {GZIP_LEVEL} of the payload by {_deflate.__name__} (once per cycle while a scraper asks for gzip): "
              f"{compress_seconds * 1000:.0f} ms, {len(compressed) / 1024:.0f} KiB")
        print(f"HTTP scrape of /metrics served from the cache: plain median {plain[len(plain) // 2] * 1000:.1f} ms, "
              f"max {plain[-1] * 1000:.1f} ms; gzip median {zipped[len(zipped) // 2] * 1000:.1f} ms, max {zipped[-1] * 1000:.1f} ms")
        print(f"process RSS after ingest: {psutil.Process().memory_info().rss / 2**20:.0f} MB, "
              f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        return (*full[len(full) // 2], *warm[len(warm) // 2], zipped[len(zipped) // 2])
    finally:
        monitor.stop()


def _scrape_times(url: str, accept_encoding: str, payload: bytes, rounds: int = 21) -> list[float]:
    """Sorted times of GET `url` until the body is received as sent (not decompressed, as
    Prometheus decompresses while parsing), by a client in a process of its own, as a scraper
    is: in this process its reads of a 20 MB body took the GIL from the server's thread and
    mapped new pages under `run`'s mmap threshold (`unmap_large_blocks`), which a scraper does
    not (twice the server's time, the thirtieth pass). Checks the body is `payload`."""
    import subprocess

    client = subprocess.run([sys.executable, "-c", _SCRAPER, url, accept_encoding, str(rounds)],
                            capture_output=True, timeout=60 + rounds * 10, check=True)
    times, _, body = client.stdout.partition(b"\n")
    if accept_encoding == "gzip":
        body = gzip.decompress(body)
    assert body == payload, "the scraped body is not the payload"
    return sorted(json.loads(times))


# The scraping client (`_scrape_times`): prints the times as JSON, then the last body as sent.
_SCRAPER = """
import json, sys, time
import requests
url, accept_encoding, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
session, times = requests.Session(), []
for _ in range(rounds):
    started = time.perf_counter()
    response = session.get(url, headers={"Accept-Encoding": accept_encoding}, stream=True, timeout=10)
    body = response.raw.read(decode_content=False)
    times.append(time.perf_counter() - started)
    response.raise_for_status()
sys.stdout.buffer.write(json.dumps(times).encode() + b"\\n" + body)
"""

if __name__ == "__main__":
    main()
