"""Benchmark: one `streamscope run --fleet` replica against three, on the same synthetic cluster.

Builds `--groups` consumer groups over `--partitions` partitions on a local broker (as
bench_kafka.py: topics of `--per-topic` partitions, group i on topic i mod topics, every partition
behind), then runs the fleet with one replica, then (a new fleet name, so a fresh coordination
topic) with three, each a real `streamscope run --fleet` process. Once every coordination
partition is owned and every replica has run `--cycles` cycles since, it reads from each replica's
/metrics: the last cycle's duration, the requests it sent, the groups it exports; and from the
processes (the replica and its collector child): CPU seconds per cycle and RSS.

    python bench/bench_fleet.py --groups 3000 --partitions 3000 --cycles 4
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_kafka import broker, build_cluster  # noqa: E402
from demo.kafka_box import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 24


def scrape(port: int) -> dict[str, list]:
    """name -> [(labels, value)] of a replica's /metrics."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(metrics: dict, name: str, default: float = 0.0) -> float:
    samples = metrics.get(name, ())
    return float(samples[0][1]) if samples else default


def cpu_seconds(pid: int) -> float:
    """CPU of a replica and its children (the collector's child process)."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())


def rss_mb(pid: int) -> float:
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in tree) / 2**20


def run_fleet(bootstrap: str, name: str, replicas: int, args, work: Path) -> list[dict]:
    ports = [free_port() for _ in range(replicas)]
    processes = []
    for i, port in enumerate(ports):
        config = work / f"{name}-{i}.json"
        config.write_text(json.dumps({
            "clusters": [{"name": "bench", "bootstrap_servers": bootstrap, "request_timeout_seconds": 60,
                          "groups": {"allow": ["bench-group-.*"]}}],
            "collection": {"interval_seconds": args.interval},
            "history": {"path": str(work / f"{name}-{i}.db")},
            "web": {"port": port},
            "fleet": {"name": name, "partitions": PARTITIONS, "instance": f"r{i}"},
        }))
        log = open(work / f"{name}-{i}.log", "ab")
        processes.append(subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                                          cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + args.timeout
        # every coordination partition owned, by someone
        while time.monotonic() < deadline:
            try:
                owned = sum(value(scrape(p), "streamscope_fleet_partitions_owned") for p in ports)
            except requests.RequestException:
                owned = 0
            if owned == PARTITIONS:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"{name}: the partitions were not all owned within {args.timeout} s")
        start = [value(scrape(p), "streamscope_collector_cycles_total") for p in ports]
        cpu_start = [cpu_seconds(proc.pid) for proc in processes]
        while time.monotonic() < deadline:
            done = [value(scrape(p), "streamscope_collector_cycles_total") - s for p, s in zip(ports, start)]
            if min(done) >= args.cycles:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"{name}: {args.cycles} cycles not done within {args.timeout} s")
        rows = []
        for i, (port, proc) in enumerate(zip(ports, processes)):
            metrics = scrape(port)
            cycles = value(metrics, "streamscope_collector_cycles_total") - start[i]
            groups = {labels["group"] for labels, _ in metrics.get("streamscope_kafka_consumergroup_members", ())}
            rows.append({
                "replica": f"r{i}", "groups": len(groups),
                "cycle_seconds": value(metrics, "streamscope_collector_duration_seconds"),
                "requests": value(metrics, "streamscope_kafka_collector_requests"),
                "cpu_per_cycle": (cpu_seconds(proc.pid) - cpu_start[i]) / max(1.0, cycles),
                "rss_mb": rss_mb(proc.pid),
            })
        return rows
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="existing broker (default: start a local KafkaBox)")
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--partitions", type=int, default=3000)
    parser.add_argument("--per-topic", type=int, default=10)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    bootstrap, box = broker(args.bootstrap)
    try:
        build_cluster(bootstrap, args.groups, args.partitions, args.per_topic, args.messages)
        work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        stamp = int(time.time())
        for replicas in (1, 3):
            rows = run_fleet(bootstrap, f"bench{replicas}-{stamp}", replicas, args, work)
            print(f"\n{replicas} replica(s), {args.groups} groups x {args.partitions} partitions, "
                  f"{args.interval:g} s interval:")
            print("| replica | groups | last cycle | requests | CPU per cycle | RSS |")
            print("|---|---:|---:|---:|---:|---:|")
            for r in rows:
                print(f"| {r['replica']} | {r['groups']} | {r['cycle_seconds']:.2f} s | {r['requests']:.0f} | "
                      f"{r['cpu_per_cycle']:.2f} s | {r['rss_mb']:.0f} MB |")
    finally:
        if box is not None:
            box.stop()


if __name__ == "__main__":
    main()
