"""`streamscope run` from several checkouts at once against one cluster: the memory each would hold
alone, after the same cycles.

The deployment benchmark (`bench_kafka.py --deployment-only`) runs one checkout at a time, and
each of its runs produces more records first: two codes measured one after the other see other
offsets, and one code spreads over ~5 MB from run to run. Here every checkout's `run` starts
together against the same broker, is scraped (gzip `/metrics`) once per interval as Prometheus
would, and is measured when it has finished each of `--cycles`: so the codes are compared on the
same offsets, at the same time (docs/performance.md, the thirty-third pass).

    python bench/bench_side_by_side.py --bootstrap HOST:PORT [--cycles 4,46] CHECKOUT [CHECKOUT ...]

A checkout is a directory with this repository's code (`git worktree add /tmp/before <commit>`);
give the same one twice to see how far two runs of one code spread. Each `run` uses this Python
(the same installed libraries) and its checkout's code. Prints one line per checkout and cycle.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_kafka import CYCLES_DONE, run_memory, start_run  # noqa: E402
from demo.kafka_box import free_port  # noqa: E402


def cycles_done(port: int) -> int | None:
    """The cycles the `run` on `port` has finished, from its /metrics (gzip, as Prometheus asks);
    None while it does not answer."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30).text
    except requests.RequestException:
        return None
    found = CYCLES_DONE.search(text)
    return int(float(found.group(1))) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--cycles", default="4,46", help="comma-separated cycles to measure after")
    parser.add_argument("--interval", type=float, default=5.0, help="collection interval (s)")
    parser.add_argument("checkouts", nargs="+", type=Path)
    args = parser.parse_args()
    marks = sorted({int(c) for c in args.cycles.split(",")})
    if not marks or marks[0] < 1:
        parser.error("--cycles: one or more cycle counts, each 1 or more")
    for checkout in args.checkouts:
        if not (checkout / "monitor" / "cli.py").is_file():
            parser.error(f"{checkout}: not a checkout of streamscope (no monitor/cli.py)")

    runs = []
    try:
        for checkout in args.checkouts:
            port = free_port()
            tmp = Path(tempfile.mkdtemp(prefix="bench-sbs-"))
            runs.append({"checkout": checkout, "port": port, "left": list(marks),
                         "process": start_run(args.bootstrap, port, args.interval, tmp, cwd=str(checkout))})
        deadline = time.monotonic() + 120 + marks[-1] * args.interval * 2
        while any(r["left"] for r in runs):
            if time.monotonic() > deadline:
                sys.exit(f"gave up: not every run reached cycle {marks[-1]} in time")
            for r in runs:
                if r["process"].poll() is not None:
                    sys.exit(f"{r['checkout']}: `run` ended with exit code {r['process'].returncode}")
                done = cycles_done(r["port"]) if r["left"] else None
                while done is not None and r["left"] and done >= r["left"][0]:
                    r["left"].pop(0)
                    rows, alone = run_memory(r["process"].pid)
                    rss, pss = sum(row[2] for row in rows) / 2**20, sum(row[3] for row in rows) / 2**20
                    parent = rows[0][2] / 2**20
                    print(f"{r['checkout']}: after cycle {done}: alone {alone:.1f} MB, RSS {rss:.1f} MB "
                          f"(parent {parent:.1f} MB), PSS {pss:.1f} MB", flush=True)
            time.sleep(args.interval)
    finally:
        for r in runs:  # only the processes this script started
            r["process"].terminate()
        for r in runs:
            try:
                r["process"].wait(30)
            except subprocess.TimeoutExpired:
                r["process"].kill()
                r["process"].wait(30)


if __name__ == "__main__":
    main()
