"""Where `streamscope run`'s parent spends its CPU, phase by phase, in one process.

The parent as `bench_parent_memory.py` runs it (`parent_monitor`: the collector in its child as
in `run`), cycles back to back, each followed by the gzip `/metrics` a scrape asks for. After
`--warmup` cycles (the first ones read positions and fill the windows), the CPU time of the
thread each phase runs in is added up over `--cycles` cycles and printed per cycle: the snapshot
received and decoded, the offset windows, derive, the history append, the alert evaluation and
`/metrics` (of it, the gzip copy: since the thirty-sixth pass made family by family, the families
that changed written in it), with the whole process's CPU. Phases are timed by wrapping
them here, not by a profiler, which would slow the many small calls most. Compare two codes by
running each tree's copy alternately: the machine's speed moves a run by a third within minutes
(docs/performance.md, the thirtieth pass).

    python bench/bench_parent_phases.py --bootstrap HOST:PORT [--warmup 8] [--cycles 10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import monitor.collection.kafka_source as kafka_source  # noqa: E402
import monitor.web.metrics as web_metrics  # noqa: E402
from bench_parent_memory import parent_monitor  # noqa: E402

PHASES = ("received", "windows", "derive", "history", "alerts", "metrics", "gzip")


class PhaseClock:
    """Thread CPU seconds per phase, added up while `counting`."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.counting = False

    def wrap(self, owner, name: str, phase: str) -> None:
        """Time `owner.name` (a method of an object, or a module's function) as `phase`."""
        real = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                if self.counting:
                    self.seconds[phase] += time.thread_time() - started

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--warmup", type=int, default=8, help="cycles before the measure")
    parser.add_argument("--cycles", type=int, default=10, help="cycles measured")
    args = parser.parse_args()
    if args.cycles < 1 or args.warmup < 0:
        parser.error("--cycles: 1 or more; --warmup: 0 or more")
    monitor = parent_monitor(args.bootstrap)
    try:
        clock = PhaseClock()
        source = monitor.kafka_sources[0]
        clock.wrap(source, "collect_raw", "received")
        clock.wrap(source.windows, "record_snapshot", "windows")
        clock.wrap(kafka_source, "derive", "derive")
        clock.wrap(monitor.history.kafka, "append", "history")
        if monitor.alerting is not None:
            clock.wrap(monitor.alerting, "evaluate_once", "alerts")
        clock.wrap(monitor.metrics, "refresh", "metrics")
        clock.wrap(web_metrics, "_gzip", "gzip")
        if monitor.metrics._segments is not None:  # the gzip copy family by family: changed ones written too
            clock.wrap(monitor.metrics._segments, "gzip", "gzip")
        for _ in range(args.warmup):
            monitor.collection.run_cycle()
            monitor.metrics.latest_gzip()
        clock.counting = True
        started = time.process_time()
        for _ in range(args.cycles):
            monitor.collection.run_cycle()
            monitor.metrics.latest_gzip()
        process = time.process_time() - started
        clock.counting = False
        per_cycle = {phase: 1000 * seconds / args.cycles for phase, seconds in clock.seconds.items()}
        print(f"CPU per cycle over {args.cycles} cycles after {args.warmup}: "
              f"the process {1000 * process / args.cycles:.1f} ms; "
              + ", ".join(f"{phase} {per_cycle[phase]:.1f} ms" for phase in PHASES[:-1])
              + f" (of it the gzip copy {per_cycle['gzip']:.1f} ms: the families that changed written and "
                "compressed, the others reused)")
    finally:
        monitor.stop()


if __name__ == "__main__":
    main()
