"""The memory of `streamscope run`'s parent process, cycle by cycle, by allocator.

The parent's work in this process: `Monitor.start(serve=False, loop=False)` against a cluster,
the Kafka collector in its child process as in `run`, cycles back to back (a collection, then the
gzip `/metrics` a Prometheus scrape would ask for). After each cycle it prints this process's
anonymous memory (`/proc/self/status` RssAnon: what the parent holds beyond mapped files),
pymalloc's arenas and the bytes in their allocated blocks (`sys._debugmallocstats`), glibc's heap
(`mallinfo2`) and SQLite's own count. The mean of cycles 3 and later repeats within ~0.5 MB in a
set of runs on one machine, where the deployment benchmark (`bench_kafka.py --deployment-only`)
spreads over ~5 MB: this one compares two codes (run it from each tree, alternately); that one
says where the target stands (docs/performance.md, the twenty-ninth pass).

    python bench/bench_parent_memory.py --bootstrap HOST:PORT [--cycles 10] [--pause 0]

`--pause S` waits S seconds after each cycle (alerts move on with real time: 5 s a cycle as
`run`'s default interval). Linux and glibc only (RssAnon, mallinfo2).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.memory import freeze_each_cycle, freeze_startup_objects, unmap_large_blocks  # noqa: E402
from monitor.app.config import Config  # noqa: E402
from monitor.app.root import Monitor  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def anonymous_mb() -> float:
    return int(re.search(r"RssAnon:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def pymalloc() -> tuple[int, float]:
    """(arenas allocated now, MB in allocated blocks), from `sys._debugmallocstats` (on stderr)."""
    read, write = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(write, 2)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    text = b"".join(chunks).decode()

    def field(name: str) -> int:
        return int(re.search(name + r"\s+=\s+([\d,]+)", text).group(1).replace(",", ""))
    return field("# arenas allocated current"), field("# bytes in allocated blocks") / 2**20


def _libraries():
    """glibc, and the system SQLite library when it is the one the sqlite3 module uses (else None:
    its count would not see the monitor's connections)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")
    except OSError:  # the sqlite3 module linked statically: no separate library to ask
        return libc, None
    sqlite.sqlite3_libversion.restype = ctypes.c_char_p
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    return libc, (sqlite if sqlite.sqlite3_libversion().decode() == sqlite3.sqlite_version else None)


def glibc_and_sqlite(libc, sqlite) -> str:
    info = libc.mallinfo2()
    out = (f"glibc heap {info.arena / 2**20:.1f} MB (in use {info.uordblks / 2**20:.1f}, "
           f"mapped blocks {info.hblkhd / 2**20:.1f})")
    if sqlite is not None:
        out += f", SQLite {sqlite.sqlite3_memory_used() / 2**20:.1f} MB"
    return out


def parent_monitor(bootstrap: str) -> Monitor:
    """`run`'s parent without its web server or loop, started against `bootstrap` as `run` starts
    it (the allocator's settings, the collector in its child, what the start made frozen); a
    cycle is `monitor.collection.run_cycle()`. Stop it when done."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-parent-"))
    config = Config.model_validate({
        "clusters": [{"name": "bench", "bootstrap_servers": bootstrap, "request_timeout_seconds": 30}],
        "history": {"path": str(tmp / "history.db")},
        "collection": {"isolate_process": True, "interval_seconds": 5},
    })
    unmap_large_blocks()  # as `run` does before it starts
    monitor = Monitor(config).start(serve=False, loop=False)
    freeze_startup_objects()
    freeze_each_cycle()
    return monitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to wait after each cycle")
    args = parser.parse_args()
    if args.cycles < 4:
        parser.error("--cycles: 4 or more (the mean is of cycles 3 and later)")
    libraries = _libraries()
    monitor = parent_monitor(args.bootstrap)
    try:
        anonymous, arenas = [], []
        for cycle in range(args.cycles):
            monitor.collection.run_cycle()
            monitor.metrics.latest_gzip()
            arena_count, live = pymalloc()
            anonymous.append(anonymous_mb())
            arenas.append(arena_count)
            print(f"cycle {cycle:3d}: anonymous {anonymous[-1]:6.1f} MB, pymalloc {arena_count} arenas "
                  f"({live:.1f} MB in blocks), {glibc_and_sqlite(*libraries)}", flush=True)
            if args.pause:
                time.sleep(args.pause)
        steady = anonymous[3:]
        print(f"mean of cycles 3-{args.cycles - 1}: anonymous {sum(steady) / len(steady):.2f} MB, "
              f"{sum(arenas[3:]) / len(steady):.1f} pymalloc arenas")
    finally:
        monitor.stop()


if __name__ == "__main__":
    main()
