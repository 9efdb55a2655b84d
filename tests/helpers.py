"""Small helpers shared by the tests."""
from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from demo.kafka_box import free_port  # noqa: F401  (re-exported: one free-port helper for everything)


ROOT = Path(__file__).resolve().parents[1]


def fresh_interpreter_lines(probe: str, stdin: bytes = b"", *, argv: Sequence[str] = (), timeout: float = 60
                            ) -> list[str]:
    """The lines `python -c probe [argv...]` prints, run from the repository's root in a new
    interpreter (what a process imports at its start, which this test process has long imported);
    its stderr in the failure when it exits with an error."""
    done = subprocess.run([sys.executable, "-c", probe, *argv], input=stdin, capture_output=True, cwd=ROOT,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ManualClock:
    """An injected clock the test moves by hand: `clock()` returns `clock.t`."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# sqlite3_status64 operations (sqlite3.h): all of SQLite's memory, and the page caches' part of it
SQLITE_STATUS_MEMORY_USED, SQLITE_STATUS_PAGECACHE_OVERFLOW = 0, 2


@functools.cache
def _sqlite_library():
    """The system SQLite library when it is the one the sqlite3 module uses, else None (another
    version, or counters that do not see the module's connections). Checked once."""
    import ctypes
    import sqlite3

    try:
        library = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    library.sqlite3_libversion.restype = ctypes.c_char_p
    library.sqlite3_memory_used.restype = ctypes.c_int64
    if library.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        return None
    probe = sqlite3.connect(":memory:")
    try:
        return library if library.sqlite3_memory_used() > 0 else None
    finally:
        probe.close()


def sqlite_status(op: int) -> int | None:
    """The current value of one of SQLite's process-wide counters (`sqlite3_status64`), read from
    the system library the sqlite3 module links; None where that library cannot be read
    (`_sqlite_library`), so that a test reading it skips rather than passes on counts of nothing."""
    import ctypes

    library = _sqlite_library()
    if library is None:
        return None
    current, highest = ctypes.c_int64(), ctypes.c_int64()
    if library.sqlite3_status64(op, ctypes.byref(current), ctypes.byref(highest), 0) != 0:
        return None
    return current.value
