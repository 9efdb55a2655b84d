"""Benchmark: is the exported time lag true? Checked against the records' own timestamps.

Runs the real monitor (collector child process, windows, derivation, history) against a local
broker, one cycle per `--interval`, and compares every lagging group's exported time lag with the
truth: the age of the oldest readable record after the group's committed offset, at the moment the
cycle fetched its end offsets. A group is counted

  true         |exported - truth| <= one collection interval
  lower bound  flagged as a lower bound (`..._lag_seconds_lower_bound` 1) and not above the truth
               by more than an interval
  wrong        anything else

Scenarios (`--scenario`, default all):
  cold          `--groups` groups x `--partitions` partitions, 12 records per partition written
                over the preceding 30 minutes (CreateTime), each group 6 to 12 records behind;
                the monitor has just started, so no history dates these records. Truth: the
                timestamps the records were written with.
  burst         a live consumer group at ~80 % of a steady producer, then a 10x produce burst;
                truth read from the log at each cycle's committed offsets.
  transactions  a transactional producer (commits and 1 in 4 aborted), one read_committed
                consumer that keeps up (its commits sit on transaction markers) and one that falls
                behind; truth read by a read_committed reader.

    python bench/bench_time_lag.py --scenario cold --groups 1000 --partitions 10000 --cycles 4
    python bench/bench_time_lag.py --scenario burst --cycles 40
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import ConsumerGroupTopicPartitions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.app.root import Monitor  # noqa: E402
from monitor.app.config import Config  # noqa: E402

RECORDS = 12
SPAN = 1800.0  # seconds the cold scenario's records were written over


# ------------------------------------------------------------------------------------ helpers


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for i in range(0, len(names), 200):
        for f in admin.create_topics([NewTopic(t, partitions, 1) for t in names[i:i + 200]],
                                     request_timeout=120).values():
            f.result(180)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=60)
        if all(t in md.topics and len(md.topics[t].partitions) == partitions
               and all(p.leader >= 0 for p in md.topics[t].partitions.values()) for t in names):
            return
        time.sleep(1)
    raise RuntimeError("topics not ready")


def commit(bootstrap: str, offsets: dict[str, dict[tuple[str, int], int]]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    pending = []
    for group, positions in offsets.items():
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in positions.items()])
        pending.append(admin.alter_consumer_group_offsets([request], request_timeout=60)[group])
        if len(pending) >= 64:
            [f.result(120) for f in pending]
            pending = []
    [f.result(120) for f in pending]


def read_truth(bootstrap: str, isolation: str, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], float | None]:
    """Timestamp of the first readable record at or after each position (None: nothing readable)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-truth", "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": isolation,
                         "auto.offset.reset": "earliest"})
    out: dict[tuple[str, int], float | None] = {}
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in positions.items()])
    deadline = time.monotonic() + 30
    while len(out) < len(positions) and time.monotonic() < deadline:
        m = consumer.poll(0.1)
        if m is None:
            continue
        key = (m.topic(), m.partition())
        if key in out or key not in positions:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                out[key] = None
            else:
                continue
        else:
            out[key] = m.timestamp()[1] / 1000.0
        consumer.pause([TopicPartition(*key)])
    consumer.close()
    missing = len(positions) - len(out)
    if missing:
        raise RuntimeError(f"truth reader: {missing} positions unanswered")
    return out


def monitor_for(bootstrap: str, interval: float, groups_regex: str, topics_regex: str, exact: int | None = None,
                **cluster) -> Monitor:
    if exact is not None:  # exact reads of moving positions per cycle (0: interpolation only)
        cluster["exact_time_lag_partitions"] = exact
    tmp = Path(tempfile.mkdtemp(prefix="bench-time-lag-"))
    config = Config.model_validate({
        "clusters": [{"name": "bench", "bootstrap_servers": bootstrap, "request_timeout_seconds": 30,
                      "groups": {"allow": [groups_regex]}, "topics": {"allow": [topics_regex]}, **cluster}],
        "history": {"path": str(tmp / "history.db")}, "web": {"port": 0},
        "collection": {"interval_seconds": interval},
    })
    return Monitor(config).start(serve=False, loop=False)


class Tally:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.worst_error = 0.0
        self.rows: list[str] = []

    def judge(self, cycle: int, view, truths: dict[str, float], elapsed: float) -> None:
        true = lower = wrong = flagged = 0
        errors = []
        examples = []
        for g in view.groups:
            if g.group not in truths:
                continue
            truth = truths[g.group]
            flagged += bool(g.time_lag_lower_bound)
            exported = g.time_lag_seconds if g.time_lag_seconds is not None else float("nan")
            error = exported - truth
            if abs(error) <= self.interval:
                true += 1
                errors.append(abs(error))
            elif g.time_lag_lower_bound and error <= self.interval:
                lower += 1
            else:
                wrong += 1
                if len(examples) < 3:
                    examples.append(f"{g.group}: exported {exported:.1f} s truth {truth:.1f} s "
                                    f"method {g.time_lag_method.value} lower={g.time_lag_lower_bound}")
        worst = max(errors, default=0.0)
        self.worst_error = max(self.worst_error, worst)
        self.rows.append(f"{cycle:>5} {elapsed:>8.1f} {len(truths):>8} {true:>6} {lower:>11} {wrong:>6} "
                         f"{flagged:>8} {worst:>12.2f}" + ("   " + "; ".join(examples) if examples else ""))

    def print(self, title: str) -> None:
        print(f"\n{title}")
        print(f"{'cycle':>5} {'t s':>8} {'lagging':>8} {'true':>6} {'lower bound':>11} {'wrong':>6} "
              f"{'flagged':>8} {'max |err| s':>12}")
        print("(flagged: exported with lower_bound 1, whether or not the value is already within an interval)")
        for row in self.rows:
            print(row)
        print(f"worst error of a 'true' group: {self.worst_error:.2f} s (interval {self.interval:.0f} s)")


def paced_cycles(monitor: Monitor, cycles: int, interval: float, on_cycle) -> None:
    started = time.monotonic()
    for cycle in range(cycles):
        begin = time.monotonic()
        snapshot = monitor.run_cycle()
        on_cycle(cycle, snapshot, time.monotonic() - started)
        time.sleep(max(0.0, interval - (time.monotonic() - begin)))


def truths_from_snapshot(bootstrap: str, raw, isolation: str = "read_uncommitted") -> dict[str, float]:
    """Per group: the truth read from the log at this cycle's committed offsets."""
    positions: dict[tuple[str, int], int] = {}
    per_group: dict[str, list[tuple[str, int, int]]] = {}
    by_offset: dict[int, dict[tuple[str, int], int]] = {}
    for g in raw.groups:
        for o in g.offsets:
            if o.committed:
                per_group.setdefault(g.name, []).append((o.topic, o.partition, o.offset))
    # one read per (partition, offset): groups at different offsets of one partition read apart
    for rows in per_group.values():
        for t, p, off in rows:
            by_offset.setdefault(off, {})[(t, p)] = off
    found: dict[tuple[str, int, int], float | None] = {}
    for _off, positions in by_offset.items():
        for (t, p), ts in read_truth(bootstrap, isolation, positions).items():
            found[(t, p, positions[(t, p)])] = ts
    ref = raw.end_offsets_fetched_at
    out = {}
    for group, rows in per_group.items():
        ages = [ref - found[(t, p, off)] for t, p, off in rows if found.get((t, p, off)) is not None]
        if ages:
            out[group] = max(0.0, max(ages))
    return out


# ------------------------------------------------------------------------------------ scenarios


def cold(bootstrap: str, args) -> None:
    per_topic = 10
    topics = [f"cold-{i:05d}" for i in range(max(1, args.partitions // per_topic))]
    create_topics(bootstrap, topics, per_topic)
    written_from = time.time() - SPAN
    stamp = [int((written_from + i * SPAN / RECORDS) * 1000) for i in range(RECORDS)]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "queue.buffering.max.messages": 2_000_000})
    for t in topics:
        for p in range(per_topic):
            for i in range(RECORDS):
                producer.produce(t, b"x" * 20, partition=p, timestamp=stamp[i])
        producer.poll(0)
    assert producer.flush(300) == 0
    offsets = {}
    for g in range(args.groups):
        topic = topics[g % len(topics)]
        offsets[f"cold-group-{g:05d}"] = {(topic, p): (g + p) % (RECORDS - 5) for p in range(per_topic)}
    commit(bootstrap, offsets)
    print(f"cold: {len(topics)} topics x {per_topic} partitions, {RECORDS} records each written over the last "
          f"{SPAN / 60:.0f} min, {args.groups} groups 6-12 records behind", file=sys.stderr)
    monitor = monitor_for(bootstrap, args.interval, "cold-group-.*", "cold-.*")
    tally = Tally(args.interval)
    try:
        def on_cycle(cycle, snapshot, elapsed):
            state = snapshot.clusters[0]
            assert not state.stale, snapshot.health
            ref = state.raw.end_offsets_fetched_at
            # a group's time lag is its oldest unread record's age: the smallest committed offset's
            truths = {g: ref - min(stamp[o] for o in positions.values()) / 1000.0 for g, positions in offsets.items()}
            tally.judge(cycle, state.lag, truths, elapsed)
            phases = dict(state.raw.phase_seconds)
            tally.rows[-1] += f"   read {state.raw.positions_read} positions in {phases.get('exact_time_lag', 0):.2f} s"

        paced_cycles(monitor, args.cycles, args.interval, on_cycle)
    finally:
        monitor.stop()
    tally.print(f"cold start: {args.groups} groups x {args.partitions} partitions, interval {args.interval:.0f} s")


def burst(bootstrap: str, args) -> None:
    run = int(time.time())
    topic, group = f"burst-{run}", f"burst-group-{run}"
    create_topics(bootstrap, [topic], 4)
    stop = threading.Event()
    rate = {"value": 40.0}

    def produce():
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        while not stop.is_set():
            producer.produce(topic, b"x" * 50)
            producer.poll(0)
            time.sleep(1.0 / rate["value"])
        producer.flush(10)

    def consume():  # about 80 % of the steady rate... until the burst, then what it can
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([topic])
        last_commit = time.monotonic()
        while not stop.is_set():
            m = consumer.poll(0.1)
            if m is not None and not m.error():
                time.sleep(1.0 / 32.0)
            if time.monotonic() - last_commit > 0.5:
                try:
                    consumer.commit(asynchronous=False)
                except Exception:
                    pass
                last_commit = time.monotonic()
        consumer.close()

    threads = [threading.Thread(target=produce, daemon=True), threading.Thread(target=consume, daemon=True)]
    for t in threads:
        t.start()
    monitor = monitor_for(bootstrap, args.interval, group, topic, args.exact)
    tally = Tally(args.interval)
    burst_at = args.cycles // 4
    try:
        def on_cycle(cycle, snapshot, elapsed):
            rate["value"] = 400.0 if burst_at <= cycle < burst_at + 5 else 40.0
            state = snapshot.clusters[0]
            tally.judge(cycle, state.lag, truths_from_snapshot(bootstrap, state.raw), elapsed)
            g = next((g for g in state.lag.groups if g.group == group), None)
            if g is not None:
                tally.rows[-1] += (f"   lag {g.lag:>5} time lag {g.time_lag_seconds or 0:6.1f} s "
                                   f"({g.time_lag_method.value}){' burst' if rate['value'] > 40 else ''}")

        paced_cycles(monitor, args.cycles, args.interval, on_cycle)
    finally:
        stop.set()
        monitor.stop()
    tally.print(f"10x produce burst (40 -> 400 msg/s for 5 cycles) against a consumer at ~32 msg/s, "
                f"interval {args.interval:.0f} s, exact_time_lag_partitions {args.exact}")


def transactions(bootstrap: str, args) -> None:
    run = int(time.time())
    topic = f"tx-{run}"
    keeping_up, behind = f"tx-keeping-up-{run}", f"tx-behind-{run}"
    create_topics(bootstrap, [topic], 2)
    stop = threading.Event()

    def produce():
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{topic}", "linger.ms": 0})
        producer.init_transactions(30)
        n = 0
        while not stop.is_set():
            producer.begin_transaction()
            for i in range(5):
                producer.produce(topic, b"x" * 50, partition=i % 2)
            producer.flush(10)
            if n % 4 == 3:
                producer.abort_transaction(30)
            else:
                producer.commit_transaction(30)
            n += 1
            time.sleep(0.25)

    def consume(group: str, delay: float):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "isolation.level": "read_committed"})
        consumer.subscribe([topic])
        while not stop.is_set():
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                time.sleep(delay)
                try:
                    consumer.commit(asynchronous=False)
                except Exception:
                    pass
        consumer.close()

    threads = [threading.Thread(target=produce, daemon=True),
               threading.Thread(target=consume, args=(keeping_up, 0.0), daemon=True),
               threading.Thread(target=consume, args=(behind, 0.12), daemon=True)]
    for t in threads:
        t.start()
    monitor = monitor_for(bootstrap, args.interval, f"tx-.*-{run}", topic, args.exact)
    tally = Tally(args.interval)
    try:
        def on_cycle(cycle, snapshot, elapsed):
            state = snapshot.clusters[0]
            truths = truths_from_snapshot(bootstrap, state.raw, "read_committed")
            for g in state.lag.groups:
                truths.setdefault(g.group, 0.0)  # nothing readable left: the truth is 0
            tally.judge(cycle, state.lag, truths, elapsed)
            tally.rows[-1] += "   " + ", ".join(
                f"{g.group}: lag {g.lag} readable {g.readable_lag} time lag {g.time_lag_seconds or 0:.1f} s"
                for g in state.lag.groups)

        paced_cycles(monitor, args.cycles, args.interval, on_cycle)
    finally:
        stop.set()
        monitor.stop()
    tally.print(f"transactions (1 in 4 aborted), read_committed consumers, interval {args.interval:.0f} s, "
                f"exact_time_lag_partitions {args.exact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="existing broker (default: start a local KafkaBox)")
    parser.add_argument("--scenario", choices=("cold", "burst", "transactions", "all"), default="all")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--exact", type=int, help="exact_time_lag_partitions (default: the config default, 50; "
                                                   "0 shows interpolation alone)")
    args = parser.parse_args()
    from bench.bench_kafka import broker

    bootstrap, box = broker(args.bootstrap)
    try:
        for name, fn in (("cold", cold), ("burst", burst), ("transactions", transactions)):
            if args.scenario in (name, "all"):
                fn(bootstrap, args)
    finally:
        if box is not None:
            box.stop()


if __name__ == "__main__":
    main()
