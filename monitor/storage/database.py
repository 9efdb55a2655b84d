"""The history database's connections: one writer, one reader per thread, name interning and
the health of writes.

One writer connection is guarded by a lock; every reading thread gets its own connection (WAL
mode: readers never block the writer and always see a consistent, committed state). An
in-memory database (":memory:") has a single connection that readers share under the same lock.
Names (clusters, groups, topics, group states) are interned into `names`, so data rows carry
small integers.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from collectors.models import StoreHealth
from monitor.storage.errors import HistoryError
from monitor.storage.schema import migrate

# SQLite's page cache per connection (KiB): the writer's, and each reader thread's (one per web
# server thread that reads history). Appends touch only the right edge of each B-tree, and the
# file stays in the OS's page cache, so a small cache costs nothing measurable:
# `bench/bench_history.py --cycles 300 --prune` at 1,000 groups x 10,000 partitions, 8+4 MiB
# against 2+2 MiB, two rounds: append median 19.4 / 19.8 against 19.3 / 19.9 ms, the same query,
# replay and prune times, RSS 56 against 47 MB; at 10,000 groups x 100,000 (60 cycles) appends
# 212 / 217 against 215 / 218 ms, RSS 147 against 138 MB. (32 MiB, at first, cost 40 MB more.)
# Then 2 MiB -> 512 KiB. The writer's (`--cycles 80 --prune`, three alternate rounds): appends
# 28.2, 28.4, 27.5 against 27.5, 27.0, 27.3 ms, prunes 263, 239, 237 against 248, 262, 239 ms,
# RSS 39-40 against 38 MB. The readers' (`--cycles 60`, two rounds): every query the same within
# 0.1 ms (partition_rate_series 10.7, 9.7 against 10.7, 10.8 ms), the start's replay 890, 898
# against 911, 925 ms. A reader's cache is dropped whenever the writer commits (each cycle), and
# each web server thread that reads history has one: 8 of them could hold 16 MiB.
WRITER_CACHE_KIB = 512
READER_CACHE_KIB = 512

log = logging.getLogger(__name__)


class Database:
    """One SQLite file in WAL mode. Thread-safe: `write()` serialises writers, `read()` gives each
    thread its own consistent snapshot."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._memory = str(path) == ":memory:"
        self.path: str = ":memory:" if self._memory else str(Path(path).expanduser())
        self._lock = threading.Lock()  # guards the writer connection (and everything if memory)
        self._health_lock = threading.Lock()
        self._write_up = True
        self._write_error: str | None = None
        self._write_failures = 0
        self._failures_at_down = 0
        self._failed_since_summary = 0
        self._summary_due = 0.0
        self._last_write_failure_at: float | None = None
        self._last_write_success_at: float | None = None
        self._closed = False
        # One reader connection per thread; dropped (and closed) when the thread object goes.
        self._readers: weakref.WeakKeyDictionary[threading.Thread, sqlite3.Connection] = (
            weakref.WeakKeyDictionary()
        )
        self._readers_lock = threading.Lock()
        self._name_ids: dict[str, int] | None = None  # writer cache, loaded lazily
        self._names_by_id: dict[int, str] = {}  # shared read cache: names are never deleted
        self._ids_read: dict[str, int] = {}  # name -> id as readers found them committed (the same)
        self._names_lock = threading.Lock()
        self._writer = self._open_writer()

    # ------------------------------------------------------------------------------------------
    # connections
    # ------------------------------------------------------------------------------------------

    # -- write health: history is optional at run time -------------------------------------------
    #
    # A failed write (disk full, read-only file, I/O error) raises HistoryError to the caller, who
    # goes on without storing; here it is counted, reported by `write_status()` (healthz, metrics,
    # the history alert) and logged: one traceback when writes start failing, then at most one
    # summary line a minute, and one line when they work again.

    _SUMMARY_EVERY = 60.0

    def write_status(self) -> StoreHealth:
        with self._health_lock:
            return StoreHealth(up=self._write_up, error=self._write_error, failures_total=self._write_failures,
                               last_failure_at=self._last_write_failure_at,
                               last_success_at=self._last_write_success_at)

    def _record_write(self, what: str, exc: BaseException | None) -> None:
        now = float(self._clock())
        with self._health_lock:
            if exc is None:
                if not self._write_up:
                    log.warning("history %s: writes work again (%d failed while down)", self.path,
                                self._write_failures - self._failures_at_down)
                self._write_up, self._write_error, self._last_write_success_at = True, None, now
                return
            self._write_failures += 1
            self._last_write_failure_at = now
            self._write_error = f"{what}: {exc}"
            if self._write_up:
                self._write_up = False
                self._failures_at_down = self._write_failures - 1
                self._summary_due = time.monotonic() + self._SUMMARY_EVERY
                self._failed_since_summary = 0
                log.error("history %s: %s failed; collection, metrics and alerts go on without storing "
                          "history until writes work again", self.path, what, exc_info=exc)
                return
            self._failed_since_summary += 1
            if time.monotonic() >= self._summary_due:
                log.error("history %s: still failing, %d writes in the last minute: %s", self.path,
                          self._failed_since_summary, self._write_error)
                self._summary_due = time.monotonic() + self._SUMMARY_EVERY
                self._failed_since_summary = 0

    def _fail(self, what: str, exc: BaseException) -> HistoryError:
        return HistoryError(f"history database {self.path!r}: {what}: {exc}")

    def _open_writer(self) -> sqlite3.Connection:
        if not self._memory:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._fail("cannot create its directory", exc) from exc
            if Path(self.path).is_dir():
                raise HistoryError(f"history database {self.path!r}: is a directory, not a file")
        try:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except sqlite3.Error as exc:
            raise self._fail("cannot open", exc) from exc
        try:
            if not self._memory:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"could not enable WAL (journal_mode={mode})")
                conn.execute("PRAGMA journal_size_limit=67108864")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            conn.execute("PRAGMA temp_store=MEMORY")
            migrate(conn, self.path)
        except HistoryError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._fail("cannot open or initialise (corrupt or not a database?)", exc) from exc
        return conn

    def _reader_conn(self) -> sqlite3.Connection:
        thread = threading.current_thread()
        conn = self._readers.get(thread)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
        except sqlite3.Error as exc:
            raise self._fail("cannot open a reader connection", exc) from exc
        with self._readers_lock:
            self._readers[thread] = conn
        return conn

    def release_reader(self) -> None:
        """Close the calling thread's reader connection, if it has one: a thread done with its
        reading (the main thread, after the start's replay) keeps no page cache for the life of
        the process. A later read on the thread opens a new one."""
        with self._readers_lock:
            conn = self._readers.pop(threading.current_thread(), None)
        if conn is not None:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection holding one consistent read snapshot for the duration of the block."""
        if self._closed:
            raise HistoryError(f"history database {self.path!r}: closed")
        if self._memory:
            with self._lock:
                self._check_open()
                yield self._writer
            return
        conn = self._reader_conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextmanager
    def write(self, what: str) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one IMMEDIATE transaction (committed on success)."""
        with self._lock:
            self._check_open()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # pragma: no cover - rollback of a broken connection
                        log.debug("history %s: rollback failed", self.path, exc_info=True)
                self._name_ids = None  # ids interned in the rolled-back transaction are gone
                if isinstance(exc, (sqlite3.Error, OSError)):
                    self._record_write(what, exc)
                    raise self._fail(f"{what} failed", exc) from exc
                raise
            self._record_write(what, None)

    def _check_open(self) -> None:
        if self._closed:
            raise HistoryError(f"history database {self.path!r}: closed")

    def close(self) -> None:
        """Close all connections. Further calls raise HistoryError. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                readers = list(self._readers.values())
                self._readers.clear()
            for conn in readers:
                try:
                    conn.close()
                except sqlite3.Error:  # pragma: no cover
                    pass
            try:
                if not self._memory:
                    self._writer.execute("PRAGMA optimize")
            except sqlite3.Error:  # pragma: no cover
                pass
            self._writer.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    # names
    # ------------------------------------------------------------------------------------------

    def intern(self, conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
        """Ids for `names` (writer side, inside the write transaction), creating missing ones."""
        if self._name_ids is None:
            self._name_ids = {n: i for i, n in conn.execute("SELECT id, name FROM names")}
        cache = self._name_ids
        missing = [n for n in names if n not in cache]
        if missing:
            conn.executemany(
                "INSERT OR IGNORE INTO names(name) VALUES (?)", [(n,) for n in missing]
            )
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                q = f"SELECT id, name FROM names WHERE name IN ({','.join('?' * len(chunk))})"
                for nid, name in conn.execute(q, chunk):
                    cache[name] = nid
        return cache

    def name_id(self, conn: sqlite3.Connection, name: str) -> int | None:
        """The id of `name` as `conn` sees it; None when it has none. An id a reader found is
        committed, and names are never deleted: it is kept (alert rules read a window per topic
        and group each cycle, and the lookups were 2 of their 5 statements). The writer's are
        not: its transaction may roll back."""
        nid = self._ids_read.get(name)
        if nid is not None:
            return nid
        row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if conn is not self._writer:
            self._ids_read[name] = row[0]
        return row[0]

    def all_names(self, conn: sqlite3.Connection) -> dict[int, str]:
        """The shared id -> name cache, brought up to date with `conn`'s snapshot."""
        with self._names_lock:
            top = max(self._names_by_id, default=0)
            for i, n in conn.execute("SELECT id, name FROM names WHERE id > ?", (top,)):
                self._names_by_id[i] = n
        return self._names_by_id

    def name_of(self, conn: sqlite3.Connection, nid: int) -> str:
        name = self._names_by_id.get(nid)
        if name is None:
            name = self.all_names(conn).get(nid, "")
        return name
