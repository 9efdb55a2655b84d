"""Where a cycle of `streamscope run` spends its CPU, part by part: thread CPU time per cycle.

Runs the monitor (`serve`, the parent's work: receiving the snapshot, windows, derive, history,
alerts, /metrics) in this process against a broker holding `bench_kafka.py`'s workload, with the
collector child as `run` has it, scrapes /metrics with gzip once a cycle as Prometheus does, and
wraps each part below in `time.thread_time()`. Prints, per steady cycle, the CPU of this process,
of each part (nested parts are also inside their callers) and of each thread by name (the
collection loop, the publisher's alerts and /metrics, the web server), so nothing goes uncounted.

    python bench/profile_run.py --bootstrap HOST:PORT        # a broker bench_kafka.py filled
    python bench/profile_run.py                              # starts a local broker and fills it

Sampling profilers undercount here (py-spy's --nonblocking sampling counted ~0.2 s of the parent's
~0.26 s a cycle, and the alert evaluation at a third of this measure). The wrappers cost ~1 us a
call themselves: a part called thousands of times a cycle (`_breach`, `_annotations`) reads a few
ms high. See docs/performance.md (seventeenth pass).
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (module, attribute path, label): what is wrapped
PARTS = (
    ("collectors.kafka.process", "IsolatedKafkaCollector.collect", "receive + decode the snapshot (collectors.kafka.wire)"),
    ("collectors.kafka.windows", "OffsetWindows.record_snapshot", "windows: record the cycle"),
    ("monitor.collection.kafka_source", "derive", "derive"),
    ("collectors.kafka.signals", "_topics", "  derive: topics"),
    ("collectors.kafka.signals", "_measure_group", "  derive: measure groups"),
    ("collectors.kafka.windows", "OffsetWindows.judge_commits", "  derive: judge commits"),
    ("collectors.kafka.signals", "_assemble_group", "  derive: assemble groups"),
    ("collectors.kafka.signals", "retention_risks", "  derive: retention"),
    ("monitor.storage.kafka_store", "KafkaStore.append", "history append"),
    ("alerts.service", "AlertingService.evaluate_once", "alert evaluation"),
    ("alerts.engine", "evaluate_rule", "  alerts: rule kinds"),
    ("alerts.engine", "AlertEngine._annotations", "  alerts: annotations"),
    ("alerts.store", "StateStore.commit", "  alerts: store commit"),
    ("monitor.web.metrics", "MetricsCache.refresh", "/metrics refresh"),
    ("monitor.web.metrics", "SnapshotCollector.kafka_text", "  /metrics: Kafka families"),
    ("monitor.web.gzip_segments", "GzipSegments.gzip", "  /metrics: gzip copy, family by family"),
    ("monitor.web.metrics", "_gzip", "  /metrics: gzip of a whole payload"),
)


def wrap_parts(spent: dict[str, float]) -> None:
    for module_name, path, label in PARTS:
        owner = importlib.import_module(module_name)
        *owners, name = path.split(".")
        for part in owners:
            owner = getattr(owner, part)
        wrapped = getattr(owner, name)

        def timed(*args, __wrapped=wrapped, __label=label, **kwargs):
            started = time.thread_time()
            try:
                return __wrapped(*args, **kwargs)
            finally:
                spent[__label] += time.thread_time() - started

        setattr(owner, name, functools.wraps(wrapped)(timed))


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threads_cpu() -> dict[str, float]:
    """CPU seconds of each live Python thread of this process, by thread name (threads of one
    name summed: waitress's workers, the alert receivers')."""
    spent: dict[str, float] = defaultdict(float)
    for thread in threading.enumerate():
        try:
            spent[thread.name.rstrip("0123456789_-") or thread.name] += time.clock_gettime(
                time.pthread_getcpuclockid(thread.ident))
        except (OSError, TypeError):  # ended since it was listed
            pass
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="a broker holding the workload (default: start one and fill it)")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=12)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between cycles")
    parser.add_argument("--from-cycle", type=int, default=6, help="first cycle measured (after warm-up)")
    parser.add_argument("--cycles", type=int, default=20, help="cycles measured")
    args = parser.parse_args()

    import requests

    from bench_kafka import build_cluster
    from collectors.memory import unmap_large_blocks
    from demo.kafka_box import KafkaBox, free_port
    from monitor.app.config import load_config
    from monitor.cli import serve

    unmap_large_blocks()  # as `run` does
    box = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        box = KafkaBox(jvm_options=("-Xms1g", "-Xmx2g", "-XX:+UseG1GC"), ready_timeout=180)
        box.start()
        bootstrap = box.bootstrap
    stop = threading.Event()
    server = None
    try:
        build_cluster(bootstrap, args.groups, args.partitions, 10, args.messages, replication=1)
        spent: dict[str, float] = defaultdict(float)
        wrap_parts(spent)
        tmp = Path(tempfile.mkdtemp(prefix="profile-run-"))
        port = free_port()
        (tmp / "config.yaml").write_text(json.dumps({
            "clusters": [{"name": "bench", "bootstrap_servers": bootstrap, "request_timeout_seconds": 30}],
            "history": {"path": str(tmp / "history.db")}, "web": {"port": port},
            "collection": {"interval_seconds": args.interval}}))
        ready = threading.Event()
        server = threading.Thread(target=serve, args=(load_config(tmp / "config.yaml"),),
                                  kwargs={"ready": ready, "stop": stop}, daemon=True)
        server.start()
        if not ready.wait(120):
            raise SystemExit("the monitor did not start within 120 s")
        last = args.from_cycle + args.cycles
        seen, cpu_at_start, threads_at_start = 0, 0.0, {}
        deadline = time.monotonic() + 60 + last * args.interval * 3
        while seen < last:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {seen} cycles in time")
            time.sleep(0.2)
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
            cycles = max((c["cycles_total"] for c in health["collectors"]), default=0)
            if cycles != seen:
                seen = cycles
                requests.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30)
                if seen == args.from_cycle:
                    spent.clear()
                    cpu_at_start, threads_at_start = process_cpu(), threads_cpu()
        per_cycle = 1000.0 / (seen - args.from_cycle)
        print(f"{args.groups} groups x {args.partitions} partitions, cycles {args.from_cycle}-{seen}, "
              f"every {args.interval:g} s; CPU per cycle, ms")
        print(f"  {'this process (the parent; with the polling of /healthz)':58s} "
              f"{(process_cpu() - cpu_at_start) * per_cycle:7.1f}")
        for _module, _path, label in PARTS:
            print(f"  {label:58s} {spent.get(label, 0.0) * per_cycle:7.1f}")
        print("  by thread (this script's own polling in MainThread):")
        for name, seconds in sorted(threads_cpu().items(), key=lambda kv: -kv[1]):
            print(f"    {name:56s} {(seconds - threads_at_start.get(name, 0.0)) * per_cycle:7.1f}")
    finally:
        stop.set()
        if server is not None:
            server.join(60)
        if box is not None:
            box.stop()


if __name__ == "__main__":
    main()
