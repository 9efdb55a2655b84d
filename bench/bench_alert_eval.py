"""Alert evaluation against history as a deployment accumulates it.

`bench_kafka.py` runs `streamscope run` for 10-30 cycles, so the rules' history windows (1 h for
TopicProduceStopped) hold a few rows. A deployment that has run for an hour holds 240 cycles at
the default 15 s interval. This script feeds the real `Monitor` the synthetic snapshot of
`bench_kafka.synthetic_snapshot` (1,000 groups x 10,000 partitions by default, nothing produced:
every topic idle, every group lagging), one cycle per `--interval` seconds of an injected clock,
and prints the CPU time of the built-in rules' evaluation after 10 cycles and after
`--history-cycles` of history, with the process's RSS at both points: what an hour of history
adds to the parent's memory (the end-offset windows, the history's caches), which a benchmark of
a few cycles does not see.

    python bench/bench_alert_eval.py                      # 1,000 x 10,000, 250 cycles of 15 s
    python bench/bench_alert_eval.py --history-cycles 40  # quicker
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kafka import synthetic_snapshot  # noqa: E402
from collectors.memory import gc_paused  # noqa: E402
from collectors.models import Snapshot  # noqa: E402
from monitor.app.config import Config  # noqa: E402
from monitor.app.root import Monitor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=10000)
    parser.add_argument("--per-topic", type=int, default=10)
    parser.add_argument("--history-cycles", type=int, default=250, help="cycles of history before the last measure")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between cycles (the injected clock)")
    parser.add_argument("--repeat", type=int, default=6, help="evaluations measured at each point (median)")
    args = parser.parse_args()

    raw = synthetic_snapshot(args.groups, args.partitions, args.per_topic, 12)
    now = [time.time() - args.interval * args.history_cycles]
    tmp = Path(tempfile.mkdtemp(prefix="bench-alert-eval-"))
    config = Config.model_validate({
        "clusters": [{"name": "bench", "bootstrap_servers": "unused:1"}],
        "history": {"path": str(tmp / "history.db")}, "collection": {"isolate_process": False},
    })
    monitor = Monitor(config, clock=lambda: now[0]).start(serve=False, loop=False)
    source = monitor.kafka_sources[0]
    print(f"synthetic snapshot: {args.groups} groups, {args.partitions} partitions, every topic idle; "
          f"a cycle every {args.interval:g} s of the injected clock")
    measured: dict[int, list[float]] = {}
    rss: dict[int, float] = {}
    checkpoints = sorted({min(10, args.history_cycles), args.history_cycles})
    try:
        for cycle in range(1, args.history_cycles + 1):
            shift = now[0] - raw.finished_at
            shifted = replace(raw, started_at=raw.started_at + shift, finished_at=now[0],
                              end_offsets_fetched_at=raw.end_offsets_fetched_at + shift,
                              groups=tuple(replace(g, offsets_fetched_at=g.offsets_fetched_at + shift)
                                           for g in raw.groups))
            state, health = source.ingest(shifted)
            snapshot = Snapshot(at=now[0], clusters=(state,), health=(health,))
            monitor.store.publish(snapshot)
            started = time.process_time()
            with gc_paused():  # evaluated each cycle, as `run` does (Monitor._publish)
                monitor.alerting.evaluate_once(snapshot.at)
            spent = time.process_time() - started
            for at in checkpoints:
                if 0 <= at - cycle < args.repeat:
                    measured.setdefault(at, []).append(spent)
                if at == cycle:
                    rss[at] = psutil.Process().memory_info().rss / 2**20
            now[0] += args.interval
        counts = monitor.alerting.engine.tally(now[0])[0]
        for at, times in sorted(measured.items()):
            print(f"after {at} cycles ({at * args.interval / 60:.0f} min of history): alert evaluation CPU median "
                  f"{statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; "
                  f"{len(times)} evaluations), {sum(counts.values())} alerts; process RSS {rss[at]:.0f} MB")
    finally:
        monitor.stop()


if __name__ == "__main__":
    main()
