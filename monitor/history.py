"""History hub: every collection cycle, kept in an embedded SQLite database.

Writers and readers
-------------------
The collector thread calls :meth:`History.append` once per cycle; the exporter reads the latest
values, the alert engine reads short windows, the dashboard reads ranges. One writer connection is
guarded by a lock; every reading thread gets its own connection (WAL mode: readers never block the
writer and always see a consistent, committed state). An in-memory database (``":memory:"``) has a
single connection that readers share under the same lock.

Storage layout (schema version 1)
---------------------------------
Names (clusters, groups, topics, group states) are interned into ``names`` so data rows carry small
integers. A ``cycles`` row is written per append; data rows reference it by ``cycle`` id and are
clustered by it (``WITHOUT ROWID`` tables whose primary key starts with the cycle), so appends go to
the right edge of each B-tree, and a series over a time range is read by seeking once per cycle.

==================  ==========================================================================
table               one row per
==================  ==========================================================================
cycles              cluster x cycle: at, ok, stale, error, has_data, totals for cluster_series
partition_offsets   cycle x topic partition: earliest, latest (end) offset
group_partitions    cycle x group x topic partition: committed, lag, time lag, method, status
group_summary       cycle x group: lag, time lag, rates, eta, status, state, members, ...
topic_summary       cycle x topic: partitions, produce rate, end offset sum, message count, ...
empty_since         cluster x group currently Empty: since when
meta                key: JSON text owned by another subsystem
==================  ==========================================================================

A failed cycle is recorded with :meth:`History.append_failure` (cluster, time, error). A *stale*
ClusterState passed to :meth:`History.append` (latest cycle failed, ``raw``/``lag`` are the last
good data) is likewise stored as a cycles row only (``has_data = 0``, timestamped with the
injected clock): re-storing the old data under a new timestamp would fake flat offsets and zero
rates.

Downsampling (:meth:`History.prune`) keeps, per cluster and per ``downsample_step_seconds``
bucket older than ``downsample_after_seconds``, the *last* cycle that carried data (so offsets
stay true values of every series present there) and the last failed cycle (so outages stay
visible); whole cycles are removed so replayed cycles stay coherent.

Range queries downsample on the server: when a range holds more cycles than ``max_points``, the
span from its first to its last cycle is cut into ``max_points`` equal time buckets; ``at`` is the
last sample time in the bucket, lags/time lags/ETAs/offsets take the max, rates the average,
status the worst (statuses are coded in ``Status`` declaration order), ``ok`` the min.

Time lags of groups and partitions are stored as integer milliseconds (half the bytes of a REAL);
they come back as float seconds with millisecond precision. Rates, ETAs and timestamps are stored
as given.

One process writes a given file (one History instance); any number of threads read.

Spark storage (schema version 2)
--------------------------------
:meth:`History.append_spark` stores one Spark collection cycle (``SparkAppSnapshot`` objects):

==================  ==========================================================================
table               one row per
==================  ==========================================================================
spark_cycles        Spark cycle: at, number of apps (what :meth:`spark_apps_latest` lists)
spark_apps          application id: name, exported ``app`` label, version, kind, state, seen
spark_queries       app x query (id, or ``name:<name>`` when unnamed): run, state, exception
spark_batches       query x micro-batch id: trigger time, duration, trigger phases, rows,
                    rows/s, watermark and event-time delay, state rows/bytes
dstream_batches     DStream app x batch: batch time, scheduling/processing/total delay
==================  ==========================================================================

Batches are de-duplicated by (app, query, batch id): a snapshot carries the query's last N
batches every cycle and only new ones are written; a listener record (full progress) replaces
an earlier SQL-listing record of the same batch, and a batch of a new run (fresh checkpoint,
batch ids restarting) replaces the older run's batch of the same id. RUNNING batches are not
stored. Batches older than ``downsample_after_seconds`` (or the retention, if shorter) are not
written at all: they were stored when fresh, or would be thinned right away. Range queries
(:meth:`History.spark_batches`, :meth:`History.dstream_batches`) downsample like the Kafka
ranges: more rows than ``max_points`` are grouped into ``max_points`` equal time buckets
(``at`` and ``batch_id`` the last in the bucket; durations and delays the max; trigger phases,
rows/s and state the average; input rows the sum; ``batches`` the number of batches).
:meth:`History.prune` applies the same retention to Spark rows (apps and queries not seen
within it go too) and thins batches older than ``downsample_after_seconds`` to the last one per
query (DStream app) per ``downsample_step_seconds``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collectors.models import ClusterState, Status, StoreHealth, TimeLagMethod

log = logging.getLogger(__name__)

__all__ = ["History", "HistoryError", "SCHEMA_VERSION", "probe_database"]

SCHEMA_VERSION = 3

# Status codes grow with badness (the enum's declaration order), so max(code) = worst status.
_STATUS_CODE = {s: i for i, s in enumerate(Status)}
_CODE_STATUS = {i: s.value for s, i in _STATUS_CODE.items()}
# Method codes grow as the estimate gets less exact, so max(code) = least exact in a bucket.
_METHOD_CODE = {TimeLagMethod.NONE: 0, TimeLagMethod.EXACT: 1, TimeLagMethod.INTERPOLATED: 2}
_CODE_METHOD = {c: m.value for m, c in _METHOD_CODE.items()}

_DATA_TABLES = ("group_partitions", "partition_offsets", "group_summary", "topic_summary")
_PRUNE_CHUNK = 8  # cycles deleted per write transaction (keeps the writer lock short)


class HistoryError(Exception):
    """The history database cannot be opened, created, migrated or written."""


def _schema_version(conn: sqlite3.Connection, path: str) -> int:
    """The file's schema version; HistoryError if this streamscope cannot use the file."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"history database {path!r}: schema version {version} is newer than this "
            f"streamscope supports ({SCHEMA_VERSION}); use a newer streamscope or another file"
        )
    if version == 0:
        # A version-0 file must be empty: refuse to take over some other application's DB.
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        if tables:
            raise HistoryError(
                f"history database {path!r}: file holds tables but no streamscope "
                "schema version; refusing to use it"
            )
    return version


def probe_database(path: str | Path, *, what: str = "database",
                   schema: Callable[[sqlite3.Connection], object] | None = None) -> None:
    """Check that `path` can be opened, or created, and written as a SQLite database in WAL mode,
    without creating or changing anything (`streamscope check-config` runs this too); `schema`
    then inspects an existing file over a read-only connection. HistoryError saying why not."""
    if str(path) == ":memory:":
        return
    file = Path(path).expanduser()

    def fail(why: str) -> HistoryError:
        return HistoryError(f"{what} {str(file)!r}: {why}")

    if file.is_dir():
        raise fail("is a directory, not a file")
    if not file.exists():
        ancestor = file.parent
        while not ancestor.exists():  # the directories opening would create
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise fail(f"cannot be created: {str(ancestor)!r} is not a directory")
        if not _can_create_files_in(ancestor):
            raise fail(f"cannot be created: directory {str(ancestor)!r} is not writable")
        return
    if not os.access(file, os.R_OK | os.W_OK):
        raise fail("is not readable and writable")
    if not _can_create_files_in(file.parent):  # WAL mode keeps -wal and -shm files beside it
        raise fail(f"its directory {str(file.parent)!r} is not writable")
    # Without a -wal file nobody has the database open, and `immutable` reads it without creating
    # -wal/-shm files; with one, a read-only connection uses the files that are there.
    mode = "ro" if file.with_name(file.name + "-wal").exists() else "ro&immutable=1"
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode={mode}", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if schema is not None:
                schema(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise fail(f"cannot be read (corrupt or not a database?): {exc}") from None


def _can_create_files_in(directory: Path) -> bool:
    """Whether a file can be created in `directory`: tried (an anonymous temporary file where the
    OS supports it), since permission bits say nothing of read-only mounts or what root may do."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE names (
            id   INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        CREATE TABLE cycles (
            id                 INTEGER PRIMARY KEY,
            cluster            INTEGER NOT NULL,
            at                 REAL NOT NULL,
            ok                 INTEGER NOT NULL,
            stale              INTEGER NOT NULL,
            has_data           INTEGER NOT NULL,
            error              TEXT,
            offsets_fetched_at REAL,
            duration           REAL,
            brokers            INTEGER,
            groups             INTEGER,
            total_lag          INTEGER,
            max_time_lag       REAL,
            UNIQUE (cluster, at)
        );
        CREATE TABLE partition_offsets (
            cycle     INTEGER NOT NULL,
            topic     INTEGER NOT NULL,
            partition INTEGER NOT NULL,
            earliest  INTEGER,
            latest    INTEGER,
            PRIMARY KEY (cycle, topic, partition)
        ) WITHOUT ROWID;
        CREATE TABLE group_partitions (
            cycle     INTEGER NOT NULL,
            grp       INTEGER NOT NULL,
            topic     INTEGER NOT NULL,
            partition INTEGER NOT NULL,
            committed INTEGER,
            lag       INTEGER,
            time_lag  INTEGER,  -- milliseconds
            method    INTEGER,
            status    INTEGER,
            PRIMARY KEY (cycle, grp, topic, partition)
        ) WITHOUT ROWID;
        CREATE TABLE group_summary (
            cycle        INTEGER NOT NULL,
            grp          INTEGER NOT NULL,
            lag          INTEGER,
            time_lag     INTEGER,  -- milliseconds
            method       INTEGER,
            consume_rate REAL,
            produce_rate REAL,
            eta          REAL,
            status       INTEGER,
            state        INTEGER,
            members      INTEGER,
            is_empty     INTEGER,
            fetched_at   REAL,
            error        TEXT,
            PRIMARY KEY (cycle, grp)
        ) WITHOUT ROWID;
        CREATE TABLE topic_summary (
            cycle            INTEGER NOT NULL,
            topic            INTEGER NOT NULL,
            partitions       INTEGER,
            produce_rate     REAL,
            end_offset_sum   INTEGER,
            message_count    INTEGER,
            under_replicated INTEGER,
            offline          INTEGER,
            PRIMARY KEY (cycle, topic)
        ) WITHOUT ROWID;
        CREATE TABLE empty_since (
            cluster INTEGER NOT NULL,
            grp     INTEGER NOT NULL,
            since   REAL NOT NULL,
            PRIMARY KEY (cluster, grp)
        ) WITHOUT ROWID;
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Spark tables (see "Spark storage" in the module docstring)."""
    conn.executescript(
        """
        CREATE TABLE spark_cycles (
            at   REAL PRIMARY KEY,
            apps INTEGER NOT NULL
        );
        CREATE TABLE spark_apps (
            id               INTEGER PRIMARY KEY,
            app_id           TEXT NOT NULL UNIQUE,
            name             TEXT,
            label            TEXT,
            spark_version    TEXT,
            kind             TEXT,
            ui_url           TEXT,
            discovered_via   TEXT,
            completed        INTEGER,
            stale            INTEGER,
            up               INTEGER,
            start_time       REAL,
            end_time         REAL,
            jobs_active      INTEGER,
            jobs_failed      INTEGER,
            executors_active INTEGER,
            first_seen       REAL NOT NULL,
            last_seen        REAL NOT NULL
        );
        CREATE TABLE spark_queries (
            id                  INTEGER PRIMARY KEY,
            app                 INTEGER NOT NULL,
            query_key           TEXT NOT NULL,
            query_id            TEXT,
            name                TEXT,
            run_id              TEXT,
            state               TEXT,
            exception           TEXT,
            last_batch_id       INTEGER,
            trigger_interval_ms INTEGER,
            first_seen          REAL NOT NULL,
            last_seen           REAL NOT NULL,
            UNIQUE (app, query_key)
        );
        CREATE TABLE spark_batches (
            query              INTEGER NOT NULL,
            batch_id           INTEGER NOT NULL,
            at                 REAL NOT NULL,
            run_id             TEXT,
            origin             INTEGER NOT NULL,  -- 0 sql listing, 1 listener progress
            duration_ms        INTEGER,
            add_batch_ms       INTEGER,
            get_batch_ms       INTEGER,
            latest_offset_ms   INTEGER,
            query_planning_ms  INTEGER,
            wal_commit_ms      INTEGER,
            commit_offsets_ms  INTEGER,
            input_rows         INTEGER,
            input_rps          REAL,
            processed_rps      REAL,
            watermark_delay_ms INTEGER,
            event_delay_ms     INTEGER,
            state_rows         INTEGER,
            state_bytes        INTEGER,
            PRIMARY KEY (query, batch_id)
        ) WITHOUT ROWID;
        CREATE INDEX spark_batches_at ON spark_batches (query, at);
        CREATE TABLE dstream_batches (
            app                 INTEGER NOT NULL,
            batch_id            INTEGER NOT NULL,  -- batch time in epoch ms, as Spark numbers them
            at                  REAL NOT NULL,
            input_size          INTEGER,
            scheduling_delay_ms INTEGER,
            processing_time_ms  INTEGER,
            total_delay_ms      INTEGER,
            failed_ops          INTEGER,
            PRIMARY KEY (app, batch_id)
        ) WITHOUT ROWID;
        CREATE INDEX dstream_batches_at ON dstream_batches (app, at);
        """
    )


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Readable lag, lower-bound time lags, uncommitted partitions, topic ids (re-created topics).

    New columns go last: appends insert rows positionally, in column order."""
    conn.executescript(
        """
        ALTER TABLE group_summary ADD COLUMN readable_lag INTEGER;
        ALTER TABLE group_summary ADD COLUMN lower_bound INTEGER;
        ALTER TABLE group_summary ADD COLUMN uncommitted INTEGER;
        ALTER TABLE group_partitions ADD COLUMN readable_lag INTEGER;
        ALTER TABLE group_partitions ADD COLUMN lower_bound INTEGER;
        ALTER TABLE group_partitions ADD COLUMN uncommitted INTEGER;
        ALTER TABLE topic_summary ADD COLUMN topic_id TEXT;
        """
    )


# (version, migration). A migration runs inside the transaction that also bumps user_version.
_MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = (
    (1, _migrate_to_1), (2, _migrate_to_2), (3, _migrate_to_3),
)
assert _MIGRATIONS[-1][0] == SCHEMA_VERSION


def _key2(row: tuple) -> int:
    return row[0]


def _key3(row: tuple) -> tuple:
    return row[0], row[1], row[2]


def _ms(seconds: float | None) -> int | None:
    """Time lags are stored as integer milliseconds (4 bytes instead of an 8-byte REAL)."""
    return None if seconds is None else round(seconds * 1000)


def _sec(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


# TriggerDurations fields stored per batch (spark_batches columns without the suffix) and
# Spark's names for them (the `phase` label / keys of `phases`).
_PHASE_FIELDS = ("add_batch_ms", "get_batch_ms", "latest_offset_ms", "query_planning_ms",
                 "wal_commit_ms", "commit_offsets_ms")
_PHASE_NAMES = ("addBatch", "getBatch", "latestOffset", "queryPlanning", "walCommit",
                "commitOffsets")


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _status_name(code: int | None) -> str | None:
    return None if code is None else _CODE_STATUS.get(code, "UNKNOWN")


def _method_name(code: int | None) -> str | None:
    return None if code is None else _CODE_METHOD.get(code, "none")


class History:
    """Cycle history of one or more Kafka clusters in one SQLite file. Thread-safe."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention_seconds: float = 86400,
        downsample_after_seconds: float = 3600,
        downsample_step_seconds: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention_seconds <= 0:
            raise ValueError("retention_seconds must be > 0")
        if downsample_after_seconds < 0:
            raise ValueError("downsample_after_seconds must be >= 0")
        if downsample_step_seconds <= 0:
            raise ValueError("downsample_step_seconds must be > 0")
        self.retention_seconds = float(retention_seconds)
        self.downsample_after_seconds = float(downsample_after_seconds)
        self.downsample_step_seconds = float(downsample_step_seconds)
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
            conn.execute("PRAGMA cache_size=-32768")  # 32 MiB
            conn.execute("PRAGMA temp_store=MEMORY")
            self._migrate(conn)
        except HistoryError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._fail("cannot open or initialise (corrupt or not a database?)", exc) from exc
        return conn

    @staticmethod
    def check_path(path: str | Path) -> None:
        """What opening `path` would run into, found without creating or changing anything:
        HistoryError naming the file if it cannot be created or opened as this history."""
        probe_database(path, what="history database", schema=lambda conn: _schema_version(conn, str(path)))

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = _schema_version(conn, self.path)
        for target, migration in _MIGRATIONS:
            if target <= version:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                # executescript() would COMMIT the open transaction first: statements run one
                # by one instead, so the schema change and user_version bump are atomic.
                migration(_StatementRunner(conn))  # type: ignore[arg-type]
                conn.execute(f"PRAGMA user_version={int(target)}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            log.info("history %s: schema migrated to version %d", self.path, target)

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
            conn.execute("PRAGMA cache_size=-16384")
        except sqlite3.Error as exc:
            raise self._fail("cannot open a reader connection", exc) from exc
        with self._readers_lock:
            self._readers[thread] = conn
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
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
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
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

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    # names
    # ------------------------------------------------------------------------------------------

    def _intern(self, conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
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

    @staticmethod
    def _name_id(conn: sqlite3.Connection, name: str) -> int | None:
        row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def _all_names(self, conn: sqlite3.Connection) -> dict[int, str]:
        """The shared id -> name cache, brought up to date with `conn`'s snapshot."""
        with self._names_lock:
            top = max(self._names_by_id, default=0)
            for i, n in conn.execute("SELECT id, name FROM names WHERE id > ?", (top,)):
                self._names_by_id[i] = n
        return self._names_by_id

    def _name_of(self, conn: sqlite3.Connection, nid: int) -> str:
        name = self._names_by_id.get(nid)
        if name is None:
            name = self._all_names(conn).get(nid, "")
        return name

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------

    def append(self, state: ClusterState) -> None:
        """Store one collection cycle of one cluster in a single transaction.

        A second append with the same (cluster, at) is ignored (idempotent). A stale state stores
        only the cycles row, at the injected clock's time.
        """
        raw, lag = state.raw, state.lag
        cluster = raw.cluster or lag.cluster
        if state.stale:
            at = float(self._clock())
        else:
            at = float(lag.at or raw.finished_at or self._clock())
        error = raw.error
        ok = int(raw.ok and not state.stale)
        store_data = not state.stale

        gs_rows: list[tuple] = []
        gp_rows: list[tuple] = []
        po_rows: list[tuple] = []
        ts_rows: list[tuple] = []
        total_lag = 0
        max_tl: float | None = None
        mc, sc = _METHOD_CODE, _STATUS_CODE

        with self._write("append") as conn:
            ids = self._intern(conn, ())
            get = ids.get

            def nid(name: str) -> int:
                return get(name) or self._intern(conn, (name,))[name]

            cid = nid(cluster)
            if store_data:
                lag_parts: dict[int, int] = {}
                for g in lag.groups:
                    gid = nid(g.group)
                    total_lag += g.lag or 0
                    tl = g.time_lag_seconds
                    if tl is not None and (max_tl is None or tl > max_tl):
                        max_tl = tl
                    gs_rows.append((
                        gid, g.lag, _ms(tl), mc.get(g.time_lag_method), g.consume_rate,
                        g.produce_rate, g.eta_seconds, sc.get(g.status), nid(g.state), g.members,
                        int(g.is_empty), g.fetched_at, g.error, g.readable_lag,
                        int(g.time_lag_lower_bound), g.uncommitted_partitions,
                    ))
                    for p in g.partitions:
                        gp_rows.append((
                            gid, get(p.topic) or nid(p.topic), p.partition, p.committed_offset,
                            p.lag, _ms(p.time_lag_seconds), mc.get(p.time_lag_method),
                            sc.get(p.status), p.readable_lag, int(p.time_lag_lower_bound),
                            int(p.uncommitted),
                        ))
                    lag_parts[gid] = lag_parts.get(gid, 0) + len(g.partitions)
                # The view's committed offsets come from the raw snapshot; raw offsets the view
                # lacks (group not in the view, or partitions missing) are stored without lag so
                # replay still sees every committed offset.
                seen: dict[int, set[tuple[int, int]]] | None = None
                for g in raw.groups:
                    gid = nid(g.name)
                    if lag_parts.get(gid, -1) >= len(g.offsets):
                        continue
                    if seen is None:  # rare path: index the rows built so far, once
                        seen = {}
                        for r in gp_rows:
                            seen.setdefault(r[0], set()).add((r[1], r[2]))
                    have = seen.setdefault(gid, set())
                    for o in g.offsets:
                        tid = nid(o.topic)
                        if (tid, o.partition) not in have:
                            have.add((tid, o.partition))
                            gp_rows.append((gid, tid, o.partition, o.offset) + (None,) * 7)
                for t in raw.topics:
                    tid = nid(t.name)
                    for p in t.partitions:
                        po_rows.append((tid, p.partition, p.earliest_offset, p.latest_offset))
                topic_ids = {t.name: t.topic_id for t in raw.topics}
                for t in lag.topics:
                    ts_rows.append((
                        nid(t.topic), t.partitions, t.produce_rate, t.end_offset_sum,
                        t.message_count, t.under_replicated, t.offline, topic_ids.get(t.topic),
                    ))
            has_data = int(bool(gs_rows or gp_rows or po_rows or ts_rows))
            cur = conn.execute(
                "INSERT OR IGNORE INTO cycles(cluster, at, ok, stale, has_data, error,"
                " offsets_fetched_at, duration, brokers, groups, total_lag, max_time_lag)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cid, at, ok, int(state.stale), has_data, error,
                    raw.end_offsets_fetched_at or None,
                    max(0.0, raw.finished_at - raw.started_at) if raw.finished_at else None,
                    len(raw.brokers) if store_data and raw.ok else None,
                    len(gs_rows) if has_data else None,
                    total_lag if has_data else None,
                    max_tl,
                ),
            )
            if cur.rowcount == 0:
                log.debug("history: cycle %s@%s already stored; append ignored", cluster, at)
                return
            cycle = cur.lastrowid
            if not has_data:
                return
            # Rows in key order fill each B-tree page by page at its right edge (dense pages).
            # OR REPLACE: a duplicate key inside one snapshot (a malformed input) keeps the last.
            for table, rows, width in (
                ("group_summary", gs_rows, 16), ("group_partitions", gp_rows, 11),
                ("partition_offsets", po_rows, 4), ("topic_summary", ts_rows, 8),
            ):
                rows.sort(key=_key2 if table in ("group_summary", "topic_summary") else _key3)
                conn.executemany(
                    f"INSERT OR REPLACE INTO {table} VALUES ({cycle}{',?' * width})", rows
                )

    def append_failure(self, cluster: str, at: float, error: str | None) -> None:
        """Record a failed collection cycle (no data; the published state is stale).

        Shows as ``ok=False`` in cluster_series/window("cluster") and is kept by downsampling.
        A second failure at the same (cluster, at) is ignored.
        """
        with self._write("append_failure") as conn:
            cid = self._intern(conn, (cluster,))[cluster]
            conn.execute(
                "INSERT OR IGNORE INTO cycles(cluster, at, ok, stale, has_data, error)"
                " VALUES (?, ?, 0, 1, 0, ?)",
                (cid, float(at), error),
            )

    def set_empty_since(self, cluster: str, mapping: Mapping[str, float]) -> None:
        """Persist which groups of `cluster` are Empty since when; other groups' rows go away."""
        with self._write("set_empty_since") as conn:
            ids = self._intern(conn, {cluster, *mapping})
            cid = ids[cluster]
            conn.execute("DELETE FROM empty_since WHERE cluster = ?", (cid,))
            conn.executemany(
                "INSERT INTO empty_since(cluster, grp, since) VALUES (?,?,?)",
                [(cid, ids[g], float(since)) for g, since in mapping.items()],
            )

    def set_meta(self, key: str, value_json: str) -> None:
        """Store a small JSON document for another subsystem (validated as JSON)."""
        if not isinstance(value_json, str):
            raise TypeError("set_meta takes the value as JSON text (str)")
        json.loads(value_json)  # raises ValueError on malformed JSON
        with self._write("set_meta") as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value_json),
            )

    def prune(self, now: float | None = None) -> dict[str, int]:
        """Apply retention and downsampling. Returns counts of cycles removed.

        Works in small transactions so the collector's appends are not held up for long.
        """
        now = float(self._clock() if now is None else now)
        oldest = now - self.retention_seconds
        cutoff = now - self.downsample_after_seconds
        step = self.downsample_step_seconds
        with self._read() as conn:
            expired = [r[0] for r in conn.execute("SELECT id FROM cycles WHERE at < ?", (oldest,))]
            candidates = conn.execute(
                "SELECT id, cluster, at, has_data FROM cycles WHERE at >= ? AND at < ?"
                " ORDER BY cluster, at",
                (oldest, cutoff),
            ).fetchall()
        keep: dict[tuple[int, int, int], int] = {}
        considered: list[int] = []
        for cid, cluster, at, has_data in candidates:
            bucket = math.floor(at / step)
            if (bucket + 1) * step > cutoff:
                continue  # bucket not complete yet: newer cycles may still fall into it
            considered.append(cid)
            keep[(cluster, bucket, has_data)] = cid  # ordered by at: the last one wins
        kept = set(keep.values())
        thinned = [cid for cid in considered if cid not in kept]
        self._delete_cycles(expired)
        self._delete_cycles(thinned)
        self.prune_spark(now)
        if expired or thinned:
            log.info(
                "history %s: pruned %d expired and %d downsampled cycles",
                self.path, len(expired), len(thinned),
            )
        return {"expired_cycles": len(expired), "downsampled_cycles": len(thinned)}

    def _delete_cycles(self, ids: list[int]) -> None:
        for i in range(0, len(ids), _PRUNE_CHUNK):
            chunk = [(c,) for c in ids[i : i + _PRUNE_CHUNK]]
            with self._write("prune") as conn:
                for table in _DATA_TABLES:
                    conn.executemany(f"DELETE FROM {table} WHERE cycle = ?", chunk)
                conn.executemany("DELETE FROM cycles WHERE id = ?", chunk)

    # ------------------------------------------------------------------------------------------
    # reading: state kept for other subsystems
    # ------------------------------------------------------------------------------------------

    def empty_since(self, cluster: str) -> dict[str, float]:
        with self._read() as conn:
            cid = self._name_id(conn, cluster)
            if cid is None:
                return {}
            rows = conn.execute(
                "SELECT grp, since FROM empty_since WHERE cluster = ?", (cid,)
            ).fetchall()
            return {self._name_of(conn, g): since for g, since in rows}

    def get_meta(self, key: str) -> str | None:
        """The JSON text stored under `key`, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

    def clusters(self) -> list[str]:
        with self._read() as conn:
            ids = [r[0] for r in conn.execute("SELECT DISTINCT cluster FROM cycles")]
            return sorted(self._name_of(conn, i) for i in ids)

    # ------------------------------------------------------------------------------------------
    # reading: replay at startup
    # ------------------------------------------------------------------------------------------

    def replay(
        self, cluster: str, since: float
    ) -> Iterator[tuple[float, dict[tuple[str, int], int], dict[tuple[str, str, int], int], dict[str, str]]]:
        """Yield (at, end_offsets, committed, topic_ids) for each stored data cycle whose cycle
        time is >= since, oldest first, for ``OffsetWindows.record``.

        ``at`` is the time the cycle's end offsets were fetched (``end_offsets_fetched_at``, what
        ``OffsetWindows.record_snapshot`` uses live), or the cycle time when that is unknown.
        end_offsets maps (topic, partition) -> latest offset; committed maps
        (group, topic, partition) -> committed offset. Unknown (NULL) and negative sentinel
        offsets, and positions without a committed offset, are left out; topic_ids maps topic ->
        id where known (a re-created topic's windows restart). Each cycle is read in its own
        short read transaction, so a slow consumer does not pin a snapshot.
        """
        with self._read() as conn:
            cid = self._name_id(conn, cluster)
            if cid is None:
                return
            cycles = conn.execute(
                "SELECT id, coalesce(offsets_fetched_at, at) FROM cycles"
                " WHERE cluster = ? AND at >= ? AND has_data = 1 ORDER BY at",
                (cid, since),
            ).fetchall()
        for cycle, at in cycles:
            with self._read() as conn:
                po = conn.execute(
                    "SELECT topic, partition, latest FROM partition_offsets"
                    " WHERE cycle = ? AND latest >= 0",
                    (cycle,),
                ).fetchall()
                gp = conn.execute(
                    "SELECT grp, topic, partition, committed FROM group_partitions"
                    " WHERE cycle = ? AND committed >= 0",
                    (cycle,),
                ).fetchall()
                ids = conn.execute(
                    "SELECT topic, topic_id FROM topic_summary WHERE cycle = ? AND topic_id IS NOT NULL",
                    (cycle,),
                ).fetchall()
                names = self._all_names(conn)
            ends = {(names[t], p): latest for t, p, latest in po}
            committed = {(names[g], names[t], p): off for g, t, p, off in gp}
            yield at, ends, committed, {names[t]: i for t, i in ids}

    # ------------------------------------------------------------------------------------------
    # reading: latest values
    # ------------------------------------------------------------------------------------------

    def _latest_data_cycle(self, conn: sqlite3.Connection, cluster: str) -> tuple[int, int, float] | None:
        """(cluster id, cycle id, at) of the latest cycle of `cluster` that carried data."""
        cid = self._name_id(conn, cluster)
        if cid is None:
            return None
        row = conn.execute(
            "SELECT id, at FROM cycles WHERE cluster = ? AND has_data = 1 ORDER BY at DESC LIMIT 1",
            (cid,),
        ).fetchone()
        return None if row is None else (cid, row[0], row[1])

    def latest_cycle(self, cluster: str) -> dict[str, Any] | None:
        """The most recent cycles row of `cluster` (data or failed), or None."""
        with self._read() as conn:
            cid = self._name_id(conn, cluster)
            if cid is None:
                return None
            row = conn.execute(
                "SELECT at, ok, stale, has_data, error, offsets_fetched_at, duration, brokers,"
                " groups, total_lag, max_time_lag FROM cycles WHERE cluster = ?"
                " ORDER BY at DESC LIMIT 1",
                (cid,),
            ).fetchone()
        if row is None:
            return None
        keys = ("at", "ok", "stale", "has_data", "error", "offsets_fetched_at", "duration",
                "brokers", "groups", "total_lag", "max_time_lag_seconds")
        out = dict(zip(keys, row))
        for k in ("ok", "stale", "has_data"):
            out[k] = bool(out[k])
        return out

    def groups_latest(self, cluster: str) -> list[dict[str, Any]]:
        """Summary of every group in the latest cycle that carried data, sorted by group name.

        Keys: group, at, lag, time_lag_seconds, time_lag_method, consume_rate, produce_rate,
        eta_seconds, status, state, members, is_empty, empty_since, fetched_at, error, topics,
        partitions.
        """
        with self._read() as conn:
            latest = self._latest_data_cycle(conn, cluster)
            if latest is None:
                return []
            cid, cycle, at = latest
            rows = conn.execute(
                "SELECT grp, lag, time_lag, method, consume_rate, produce_rate, eta, status,"
                " state, members, is_empty, fetched_at, error, readable_lag, lower_bound,"
                " uncommitted FROM group_summary WHERE cycle = ?",
                (cycle,),
            ).fetchall()
            topics: dict[int, set[int]] = {}
            parts: dict[int, int] = {}
            for g, t, n in conn.execute(
                "SELECT grp, topic, count(*) FROM group_partitions WHERE cycle = ?"
                " GROUP BY grp, topic",
                (cycle,),
            ):
                topics.setdefault(g, set()).add(t)
                parts[g] = parts.get(g, 0) + n
            empty = dict(
                conn.execute("SELECT grp, since FROM empty_since WHERE cluster = ?", (cid,))
            )
            out = []
            for (g, lag, tl, method, cr, pr, eta, status, st, members, is_empty, fetched,
                 err, readable, lower, uncommitted) in rows:
                out.append({
                    "group": self._name_of(conn, g), "at": at, "lag": lag,
                    "readable_lag": lag if readable is None else readable,
                    "time_lag_seconds": _sec(tl), "time_lag_method": _method_name(method),
                    "time_lag_lower_bound": bool(lower), "uncommitted_partitions": uncommitted or 0,
                    "consume_rate": cr, "produce_rate": pr, "eta_seconds": eta,
                    "status": _status_name(status), "state": self._name_of(conn, st),
                    "members": members, "is_empty": bool(is_empty), "empty_since": empty.get(g),
                    "fetched_at": fetched, "error": err,
                    "topics": sorted(self._name_of(conn, t) for t in topics.get(g, ())),
                    "partitions": parts.get(g, 0),
                })
        out.sort(key=lambda r: r["group"])
        return out

    def topics_latest(self, cluster: str) -> list[dict[str, Any]]:
        """Summary of every topic in the latest cycle that carried data, sorted by topic name."""
        with self._read() as conn:
            latest = self._latest_data_cycle(conn, cluster)
            if latest is None:
                return []
            _, cycle, at = latest
            out = [
                {
                    "topic": self._name_of(conn, t), "at": at, "partitions": n,
                    "produce_rate": pr, "end_offset_sum": eos, "message_count": mc,
                    "under_replicated": ur, "offline": off,
                }
                for t, n, pr, eos, mc, ur, off in conn.execute(
                    "SELECT topic, partitions, produce_rate, end_offset_sum, message_count,"
                    " under_replicated, offline FROM topic_summary WHERE cycle = ?",
                    (cycle,),
                )
            ]
        out.sort(key=lambda r: r["topic"])
        return out

    # ------------------------------------------------------------------------------------------
    # reading: ranges (server-side downsampling)
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _bucket_expr(
        conn: sqlite3.Connection, cid: int, start: float, end: float, max_points: int,
        data_only: bool,
    ) -> tuple[str, tuple]:
        """SQL expression (over alias c) grouping cycles into at most max_points buckets.

        When the range holds no more cycles than max_points each cycle is its own bucket, so
        small ranges come back unaggregated; otherwise the span between the first and last cycle
        in the range is cut into max_points equal buckets.
        """
        if max_points < 1:
            raise ValueError("max_points must be >= 1")
        n, first, last = conn.execute(
            "SELECT count(*), min(at), max(at) FROM cycles"
            " WHERE cluster = ? AND at >= ? AND at <= ?"
            + (" AND has_data = 1" if data_only else ""),
            (cid, start, end),
        ).fetchone()
        if n <= max_points:
            return "c.id", ()
        # Buckets span the data actually stored in the range, so a 24 h request over 2 h of
        # data still gets max_points points.
        width = (last - first) / max_points
        return "min(CAST((c.at - ?) / ? AS INTEGER), ?)", (first, width, max_points - 1)

    def _series(
        self, cluster: str, start: float, end: float, max_points: int, *, data_only: bool,
        build: Callable[[sqlite3.Connection, int, str, tuple], list],
    ) -> list:
        if end < start:
            return []
        with self._read() as conn:
            cid = self._name_id(conn, cluster)
            if cid is None:
                return []
            bucket, bparams = self._bucket_expr(conn, cid, start, end, max_points, data_only)
            return build(conn, cid, bucket, bparams)

    def group_series(
        self, cluster: str, group: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Group summary over [start, end], oldest first, at most max_points rows.

        Keys: at, lag, time_lag_seconds, time_lag_method, consume_rate, produce_rate,
        eta_seconds, status.
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            gid = self._name_id(conn, group)
            if gid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), max(g.lag), max(g.time_lag), max(g.method),"
                " avg(g.consume_rate), avg(g.produce_rate), max(g.eta), max(g.status),"
                " max(coalesce(g.readable_lag, g.lag)), max(coalesce(g.lower_bound, 0))"
                " FROM cycles AS c CROSS JOIN group_summary AS g"
                " ON g.cycle = c.id AND g.grp = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b ORDER BY 2",
                (*bparams, gid, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "lag": lag, "readable_lag": readable, "time_lag_seconds": _sec(tl),
                 "time_lag_method": _method_name(m), "time_lag_lower_bound": bool(lower),
                 "consume_rate": cr, "produce_rate": pr, "eta_seconds": eta,
                 "status": _status_name(st)}
                for _, at, lag, tl, m, cr, pr, eta, st, readable, lower in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def partition_lag_series(
        self, cluster: str, group: str, start: float, end: float, max_points: int = 200
    ) -> list[dict[str, Any]]:
        """Per-partition lag of a group over [start, end] (partition x time heatmap): at most
        max_points rows per (topic, partition), ordered by at, topic, partition. Bucketed lag and
        time lag are the max in the bucket.
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            gid = self._name_id(conn, group)
            if gid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), p.topic, p.partition, max(p.lag),"
                " max(p.time_lag)"
                " FROM cycles AS c CROSS JOIN group_partitions AS p"
                " ON p.cycle = c.id AND p.grp = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b, p.topic, p.partition",
                (*bparams, gid, cid, start, end),
            ).fetchall()
            out = [
                {"at": at, "topic": self._name_of(conn, t), "partition": p, "lag": lag,
                 "time_lag_seconds": _sec(tl)}
                for _, at, t, p, lag, tl in rows
            ]
            out.sort(key=lambda r: (r["at"], r["topic"], r["partition"]))
            return out

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def topic_series(
        self, cluster: str, topic: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Topic summary over [start, end], oldest first, at most max_points rows.

        Keys: at, produce_rate (avg in bucket), end_offset_sum, message_count, under_replicated,
        offline (max in bucket).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            tid = self._name_id(conn, topic)
            if tid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), avg(t.produce_rate), max(t.end_offset_sum),"
                " max(t.message_count), max(t.under_replicated), max(t.offline)"
                " FROM cycles AS c CROSS JOIN topic_summary AS t"
                " ON t.cycle = c.id AND t.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b ORDER BY 2",
                (*bparams, tid, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "produce_rate": pr, "end_offset_sum": eos, "message_count": mc,
                 "under_replicated": ur, "offline": off}
                for _, at, pr, eos, mc, ur, off in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def partition_rate_series(
        self, cluster: str, topic: str, start: float, end: float, max_points: int = 200
    ) -> list[dict[str, Any]]:
        """Produce rate per partition of a topic over [start, end], at most max_points rows per
        partition, ordered by at, partition.

        Keys: at, partition, end_offset, rate (messages/s since the previous point of the same
        partition; the first point uses the last sample before `start` if there is one; None
        when the offset went backwards, e.g. topic recreated).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            tid = self._name_id(conn, topic)
            if tid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), o.partition, max(o.latest)"
                " FROM cycles AS c CROSS JOIN partition_offsets AS o"
                " ON o.cycle = c.id AND o.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " AND o.latest IS NOT NULL"
                " GROUP BY b, o.partition ORDER BY 2, 3",
                (*bparams, tid, cid, start, end),
            ).fetchall()
            prev: dict[int, tuple[float, int]] = {}
            before = conn.execute(
                "SELECT id, at FROM cycles WHERE cluster = ? AND at < ? AND has_data = 1"
                " ORDER BY at DESC LIMIT 1",
                (cid, start),
            ).fetchone()
            if before is not None:
                for p, latest in conn.execute(
                    "SELECT partition, latest FROM partition_offsets"
                    " WHERE cycle = ? AND topic = ? AND latest IS NOT NULL",
                    (before[0], tid),
                ):
                    prev[p] = (before[1], latest)
            out = []
            for _, at, p, latest in rows:
                rate = None
                last = prev.get(p)
                if last is not None and at > last[0] and latest >= last[1]:
                    rate = (latest - last[1]) / (at - last[0])
                prev[p] = (at, latest)
                out.append({"at": at, "partition": p, "end_offset": latest, "rate": rate})
            return out

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def cluster_series(
        self, cluster: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Cycle outcomes and totals over [start, end] (failed cycles included), oldest first.

        Keys: at, ok (False if any cycle in the bucket failed or was stale), total_lag and
        max_time_lag_seconds (max in bucket; None for failed cycles), groups, brokers (min in
        bucket; None for failed cycles).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), min(c.ok), max(c.total_lag),"
                " max(c.max_time_lag), max(c.groups), min(c.brokers)"
                " FROM cycles AS c WHERE c.cluster = ? AND c.at >= ? AND c.at <= ?"
                " GROUP BY b ORDER BY 2",
                (*bparams, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "ok": bool(ok), "total_lag": tl, "max_time_lag_seconds": mtl,
                 "groups": g, "brokers": b}
                for _, at, ok, tl, mtl, g, b in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=False, build=build)

    # ------------------------------------------------------------------------------------------
    # reading: windows for the alert engine
    # ------------------------------------------------------------------------------------------

    def window(
        self, cluster: str, kind: str, key: str | None, seconds: float, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Unaggregated rows of the last `seconds` up to `now` (inclusive), oldest first.

        kind "group": the group's summary rows (keys as in groups_latest, without topics);
        kind "topic": the topic's summary rows (keys as in topic_series);
        kind "cluster": cycles rows, failed ones included (key ignored): at, ok, stale, error,
        brokers (None for failed cycles), total_lag, max_time_lag_seconds, groups.
        These cover the kinds and fields of ``alerts.inputs.AlertInputs.window``.
        """
        now = float(self._clock() if now is None else now)
        start = now - float(seconds)
        with self._read() as conn:
            cid = self._name_id(conn, cluster)
            if cid is None:
                return []
            if kind == "cluster":
                return [
                    {"at": at, "ok": bool(ok), "stale": bool(stale), "error": err,
                     "brokers": b, "total_lag": tl, "max_time_lag_seconds": mtl, "groups": g}
                    for at, ok, stale, err, b, tl, mtl, g in conn.execute(
                        "SELECT at, ok, stale, error, brokers, total_lag, max_time_lag, groups"
                        " FROM cycles"
                        " WHERE cluster = ? AND at >= ? AND at <= ? ORDER BY at",
                        (cid, start, now),
                    )
                ]
            if kind not in ("group", "topic"):
                raise ValueError(f"window kind must be 'group', 'topic' or 'cluster', not {kind!r}")
            nid = self._name_id(conn, key) if key is not None else None
            if nid is None:
                return []
            if kind == "group":
                rows = conn.execute(
                    "SELECT c.at, g.lag, g.time_lag, g.method, g.consume_rate, g.produce_rate,"
                    " g.eta, g.status, g.state, g.members, g.is_empty, g.fetched_at, g.error,"
                    " coalesce(g.readable_lag, g.lag), coalesce(g.lower_bound, 0)"
                    " FROM cycles AS c CROSS JOIN group_summary AS g"
                    " ON g.cycle = c.id AND g.grp = ?"
                    " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                    " ORDER BY c.at",
                    (nid, cid, start, now),
                ).fetchall()
                return [
                    {"at": at, "lag": lag, "readable_lag": readable, "time_lag_seconds": _sec(tl),
                     "time_lag_method": _method_name(m), "time_lag_lower_bound": bool(lower),
                     "consume_rate": cr, "produce_rate": pr,
                     "eta_seconds": eta, "status": _status_name(st),
                     "state": self._name_of(conn, state), "members": members,
                     "is_empty": bool(is_empty), "fetched_at": fetched, "error": err}
                    for at, lag, tl, m, cr, pr, eta, st, state, members, is_empty, fetched, err,
                    readable, lower in rows
                ]
            rows = conn.execute(
                "SELECT c.at, t.partitions, t.produce_rate, t.end_offset_sum, t.message_count,"
                " t.under_replicated, t.offline"
                " FROM cycles AS c CROSS JOIN topic_summary AS t"
                " ON t.cycle = c.id AND t.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " ORDER BY c.at",
                (nid, cid, start, now),
            ).fetchall()
            return [
                {"at": at, "partitions": n, "produce_rate": pr, "end_offset_sum": eos,
                 "message_count": mc, "under_replicated": ur, "offline": off}
                for at, n, pr, eos, mc, ur, off in rows
            ]

    # ------------------------------------------------------------------------------------------
    # Spark: writing
    # ------------------------------------------------------------------------------------------

    def append_spark(self, at: float, apps: Iterable[Any]) -> None:
        """Store one Spark collection cycle (``SparkAppSnapshot`` objects) in one transaction.

        Apps and queries are upserted (latest state wins); new finished micro-batches and
        completed DStream batches are added, de-duplicated by (app, query, batch id).
        """
        from collectors.spark.exporter import app_labels, app_up, batch_duration_ms

        at = float(at)
        apps = list(apps)
        floor = at - min(self.downsample_after_seconds, self.retention_seconds)
        with self._write("append_spark") as conn:
            conn.execute("INSERT OR REPLACE INTO spark_cycles(at, apps) VALUES (?, ?)",
                         (at, len(apps)))
            for snap, label in app_labels(apps):
                app = snap.app
                kind = "dstream" if snap.dstream is not None else (
                    "structured" if snap.queries else "other")
                jobs, drv = snap.jobs, snap.driver
                jobs_failed = drv.jobs_failed_total if drv is not None and \
                    drv.jobs_failed_total is not None else (jobs.failed if jobs else None)
                conn.execute(
                    "INSERT INTO spark_apps(app_id, name, label, spark_version, kind, ui_url,"
                    " discovered_via, completed, stale, up, start_time, end_time, jobs_active,"
                    " jobs_failed, executors_active, first_seen, last_seen)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(app_id) DO UPDATE SET name=excluded.name,"
                    " label=excluded.label, spark_version=coalesce(excluded.spark_version,"
                    " spark_version), kind=excluded.kind, ui_url=coalesce(excluded.ui_url, ui_url),"
                    " discovered_via=excluded.discovered_via, completed=excluded.completed,"
                    " stale=excluded.stale, up=excluded.up, start_time=coalesce("
                    "excluded.start_time, start_time), end_time=excluded.end_time,"
                    " jobs_active=excluded.jobs_active, jobs_failed=excluded.jobs_failed,"
                    " executors_active=excluded.executors_active,"
                    " last_seen=max(last_seen, excluded.last_seen)",
                    (app.id, app.name, label, app.spark_version, kind, app.ui_url,
                     app.discovered_via, int(bool(app.completed)), int(bool(snap.stale)),
                     int(app_up(snap)), app.start_time, app.end_time,
                     jobs.active if jobs is not None else (drv.active_jobs if drv else None),
                     jobs_failed,
                     sum(1 for e in snap.executors if e.active) if snap.executors else None,
                     at, at),
                )
                aid = conn.execute("SELECT id FROM spark_apps WHERE app_id = ?",
                                   (app.id,)).fetchone()[0]
                for q in snap.queries:
                    conn.execute(
                        "INSERT INTO spark_queries(app, query_key, query_id, name, run_id, state,"
                        " exception, last_batch_id, trigger_interval_ms, first_seen, last_seen)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                        " ON CONFLICT(app, query_key) DO UPDATE SET"
                        " query_id=coalesce(excluded.query_id, query_id),"
                        " name=coalesce(excluded.name, name), run_id=excluded.run_id,"
                        " state=excluded.state, exception=excluded.exception,"
                        " last_batch_id=excluded.last_batch_id,"
                        " trigger_interval_ms=excluded.trigger_interval_ms,"
                        " last_seen=max(last_seen, excluded.last_seen)",
                        (aid, q.key, q.id, q.name, q.run_id, _enum_value(q.state), q.exception,
                         q.last_batch_id, q.trigger_interval_ms, at, at),
                    )
                    qid = conn.execute(
                        "SELECT id FROM spark_queries WHERE app = ? AND query_key = ?",
                        (aid, q.key)).fetchone()[0]
                    rows = []
                    for b in q.batches:
                        b_at = b.timestamp if b.timestamp is not None else b.received_at
                        if b.status == "RUNNING" or b_at is None or b_at < floor:
                            continue
                        d = b.durations
                        rows.append((
                            qid, b.batch_id, float(b_at), b.run_id,
                            1 if b.origin == "listener" else 0, batch_duration_ms(b),
                            *((getattr(d, f) if d is not None else None) for f in _PHASE_FIELDS),
                            b.num_input_rows, b.input_rows_per_second,
                            b.processed_rows_per_second, _ms(b.watermark_delay_seconds),
                            _ms(b.event_time_delay_seconds), b.state_rows_total,
                            b.state_memory_bytes,
                        ))
                    if rows:
                        conn.executemany(
                            "INSERT INTO spark_batches VALUES (" + ",".join("?" * 19) + ")"
                            " ON CONFLICT(query, batch_id) DO UPDATE SET at=excluded.at,"
                            " run_id=excluded.run_id, origin=excluded.origin,"
                            " duration_ms=excluded.duration_ms,"
                            " add_batch_ms=excluded.add_batch_ms,"
                            " get_batch_ms=excluded.get_batch_ms,"
                            " latest_offset_ms=excluded.latest_offset_ms,"
                            " query_planning_ms=excluded.query_planning_ms,"
                            " wal_commit_ms=excluded.wal_commit_ms,"
                            " commit_offsets_ms=excluded.commit_offsets_ms,"
                            " input_rows=excluded.input_rows, input_rps=excluded.input_rps,"
                            " processed_rps=excluded.processed_rps,"
                            " watermark_delay_ms=excluded.watermark_delay_ms,"
                            " event_delay_ms=excluded.event_delay_ms,"
                            " state_rows=excluded.state_rows, state_bytes=excluded.state_bytes"
                            " WHERE excluded.origin > spark_batches.origin"
                            " OR (excluded.run_id IS NOT spark_batches.run_id"
                            " AND excluded.at > spark_batches.at)",
                            rows,
                        )
                ds = snap.dstream
                if ds is not None:
                    drows = [
                        (aid, b.batch_id, float(b.batch_time), b.input_size,
                         b.scheduling_delay_ms, b.processing_time_ms, b.total_delay_ms,
                         b.num_failed_output_ops)
                        for b in ds.batches
                        if b.status == "COMPLETED" and b.batch_time is not None
                        and b.batch_time >= floor
                    ]
                    if drows:
                        conn.executemany(
                            "INSERT OR IGNORE INTO dstream_batches VALUES (?,?,?,?,?,?,?,?)",
                            drows)

    def prune_spark(self, now: float | None = None) -> dict[str, int]:
        """Retention and downsampling of the Spark tables (also run by :meth:`prune`)."""
        now = float(self._clock() if now is None else now)
        oldest = now - self.retention_seconds
        cutoff = now - self.downsample_after_seconds
        step = self.downsample_step_seconds
        with self._write("prune_spark") as conn:
            expired = 0
            for (qid,) in conn.execute("SELECT id FROM spark_queries").fetchall():
                expired += conn.execute(
                    "DELETE FROM spark_batches WHERE query = ? AND at < ?", (qid, oldest)
                ).rowcount
            for (aid,) in conn.execute("SELECT id FROM spark_apps").fetchall():
                expired += conn.execute(
                    "DELETE FROM dstream_batches WHERE app = ? AND at < ?", (aid, oldest)
                ).rowcount
            gone_q = [r[0] for r in conn.execute(
                "SELECT id FROM spark_queries WHERE last_seen < ?", (oldest,))]
            conn.executemany("DELETE FROM spark_batches WHERE query = ?", [(q,) for q in gone_q])
            conn.executemany("DELETE FROM spark_queries WHERE id = ?", [(q,) for q in gone_q])
            gone_a = [r[0] for r in conn.execute(
                "SELECT id FROM spark_apps WHERE last_seen < ?", (oldest,))]
            for aid in gone_a:
                conn.execute("DELETE FROM spark_batches WHERE query IN"
                             " (SELECT id FROM spark_queries WHERE app = ?)", (aid,))
                conn.execute("DELETE FROM spark_queries WHERE app = ?", (aid,))
                conn.execute("DELETE FROM dstream_batches WHERE app = ?", (aid,))
                conn.execute("DELETE FROM spark_apps WHERE id = ?", (aid,))
            conn.execute("DELETE FROM spark_cycles WHERE at < ?", (oldest,))
        # downsampling: keep the last batch per (query, complete step bucket) older than cutoff
        thinned = 0
        for table, owner in (("spark_batches", "query"), ("dstream_batches", "app")):
            with self._read() as conn:
                rows = conn.execute(
                    f"SELECT {owner}, batch_id, at FROM {table} WHERE at >= ? AND at < ?"
                    f" ORDER BY {owner}, at, batch_id",
                    (oldest, cutoff),
                ).fetchall()
            keep: dict[tuple[int, int], int] = {}
            considered: list[tuple[int, int]] = []
            for own, bid, b_at in rows:
                bucket = math.floor(b_at / step)
                if (bucket + 1) * step > cutoff:
                    continue
                considered.append((own, bid))
                keep[(own, bucket)] = bid
            kept = {(own, bid) for (own, _), bid in keep.items()}
            drop = [k for k in considered if k not in kept]
            for i in range(0, len(drop), 500):
                with self._write("prune_spark") as conn:
                    conn.executemany(f"DELETE FROM {table} WHERE {owner} = ? AND batch_id = ?",
                                     drop[i : i + 500])
            thinned += len(drop)
        if expired or thinned or gone_a:
            log.info("history %s: pruned %d expired and %d downsampled Spark batches, %d apps",
                     self.path, expired, thinned, len(gone_a))
        return {"expired_batches": expired, "downsampled_batches": thinned,
                "expired_apps": len(gone_a)}

    # ------------------------------------------------------------------------------------------
    # Spark: reading
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _spark_app_id(conn: sqlite3.Connection, app: str) -> int | None:
        """Row id of an app by application id, else by exported label or name (latest seen)."""
        row = conn.execute("SELECT id FROM spark_apps WHERE app_id = ?", (app,)).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT id FROM spark_apps WHERE label = ? OR name = ?"
                " ORDER BY label = ? DESC, last_seen DESC LIMIT 1",
                (app, app, app),
            ).fetchone()
        return None if row is None else row[0]

    @classmethod
    def _spark_query_id(cls, conn: sqlite3.Connection, app: str, query: str) -> int | None:
        aid = cls._spark_app_id(conn, app)
        if aid is None:
            return None
        row = conn.execute(
            "SELECT id FROM spark_queries WHERE app = ? AND (query_id = ? OR query_key = ?)",
            (aid, query.lower(), query),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT id FROM spark_queries WHERE app = ? AND name = ?"
                " ORDER BY last_seen DESC LIMIT 1",
                (aid, query),
            ).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _range_buckets(
        conn: sqlite3.Connection, table: str, owner: str, oid: int, start: float, end: float,
        max_points: int,
    ) -> tuple[int, str, tuple]:
        """(rows in range, bucket expression, its parameters) for a Spark range query."""
        if max_points < 1:
            raise ValueError("max_points must be >= 1")
        n, first, last = conn.execute(
            f"SELECT count(*), min(at), max(at) FROM {table}"
            f" WHERE {owner} = ? AND at >= ? AND at <= ?",
            (oid, start, end),
        ).fetchone()
        if n <= max_points:
            return n, "batch_id", ()
        width = (last - first) / max_points
        return n, "min(CAST((at - ?) / ? AS INTEGER), ?)", (first, width, max_points - 1)

    def spark_batches(
        self, app: str, query: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Micro-batches of a query with trigger time in [start, end], oldest first, at most
        max_points rows (bucketed as described in the module docstring).

        ``app``: application id, or the exported ``app`` label / app name (latest app seen
        with it). ``query``: query id, or name. Keys: at, batch_id, batches, duration_seconds,
        phases ({Spark phase name: seconds}), input_rows, input_rows_per_second,
        processed_rows_per_second, watermark_delay_seconds, event_time_delay_seconds,
        state_rows, state_memory_bytes, origin and run_id (None when aggregated).
        """
        if end < start:
            return []
        with self._read() as conn:
            qid = self._spark_query_id(conn, app, query)
            if qid is None:
                return []
            n, bucket, bparams = self._range_buckets(conn, "spark_batches", "query", qid,
                                                     start, end, max_points)
            if n == 0:
                return []
            phase_cols = ", ".join(f"{'' if bucket == 'batch_id' else 'avg'}({c})"
                                   for c in _PHASE_FIELDS)
            if bucket == "batch_id":
                sql = (f"SELECT at, batch_id, 1, duration_ms, {phase_cols}, input_rows,"
                       " input_rps, processed_rps, watermark_delay_ms, event_delay_ms,"
                       " state_rows, state_bytes, origin, run_id FROM spark_batches"
                       " WHERE query = ? AND at >= ? AND at <= ? ORDER BY at, batch_id")
                rows = conn.execute(sql, (qid, start, end)).fetchall()
            else:
                sql = (f"SELECT max(at), max(batch_id), count(*), max(duration_ms), {phase_cols},"
                       " sum(input_rows), avg(input_rps), avg(processed_rps),"
                       " max(watermark_delay_ms), max(event_delay_ms), avg(state_rows),"
                       f" avg(state_bytes), NULL, NULL, {bucket} AS b FROM spark_batches"
                       " WHERE query = ? AND at >= ? AND at <= ? GROUP BY b ORDER BY 1")
                rows = [r[:-1] for r in conn.execute(sql, (*bparams, qid, start, end))]
        out = []
        for r in rows:
            at, bid, count, dur, *rest = r
            phases_ms, rest = rest[: len(_PHASE_FIELDS)], rest[len(_PHASE_FIELDS):]
            in_rows, in_rps, proc_rps, wm, ev, st_rows, st_bytes, origin, run_id = rest
            phases = {name: ms / 1000.0 for name, ms in zip(_PHASE_NAMES, phases_ms)
                      if ms is not None}
            if dur is not None and origin == 1 and phases:
                phases.setdefault("triggerExecution", dur / 1000.0)
            out.append({
                "at": at, "batch_id": bid, "batches": count, "duration_seconds": _sec(dur),
                "phases": phases, "input_rows": in_rows, "input_rows_per_second": in_rps,
                "processed_rows_per_second": proc_rps, "watermark_delay_seconds": _sec(wm),
                "event_time_delay_seconds": _sec(ev), "state_rows": st_rows,
                "state_memory_bytes": st_bytes,
                "origin": None if origin is None else ("listener" if origin else "sql"),
                "run_id": run_id,
            })
        return out

    def dstream_batches(
        self, app: str, start: float, end: float, max_points: int = 500
    ) -> list[dict[str, Any]]:
        """Completed DStream batches of an app with batch time in [start, end], oldest first,
        at most max_points rows. ``app`` as for :meth:`spark_batches`.

        Keys: at (batch time), batch_id, batches, input_size (sum in bucket),
        scheduling_delay_seconds, processing_time_seconds, total_delay_seconds (max in bucket),
        failed_output_ops (sum).
        """
        if end < start:
            return []
        with self._read() as conn:
            aid = self._spark_app_id(conn, app)
            if aid is None:
                return []
            n, bucket, bparams = self._range_buckets(conn, "dstream_batches", "app", aid,
                                                     start, end, max_points)
            if n == 0:
                return []
            if bucket == "batch_id":
                rows = conn.execute(
                    "SELECT at, batch_id, 1, input_size, scheduling_delay_ms,"
                    " processing_time_ms, total_delay_ms, failed_ops FROM dstream_batches"
                    " WHERE app = ? AND at >= ? AND at <= ? ORDER BY at",
                    (aid, start, end),
                ).fetchall()
            else:
                rows = [r[:-1] for r in conn.execute(
                    "SELECT max(at), max(batch_id), count(*), sum(input_size),"
                    " max(scheduling_delay_ms), max(processing_time_ms), max(total_delay_ms),"
                    f" sum(failed_ops), {bucket} AS b FROM dstream_batches"
                    " WHERE app = ? AND at >= ? AND at <= ? GROUP BY b ORDER BY 1",
                    (*bparams, aid, start, end),
                )]
        return [
            {"at": at, "batch_id": bid, "batches": count, "input_size": size,
             "scheduling_delay_seconds": _sec(sd), "processing_time_seconds": _sec(pt),
             "total_delay_seconds": _sec(td), "failed_output_ops": failed}
            for at, bid, count, size, sd, pt, td, failed in rows
        ]

    def spark_apps_latest(self) -> list[dict[str, Any]]:
        """Apps of the latest Spark cycle with their queries, sorted by label.

        App keys: app_id, name, label (the exported ``app`` label), spark_version, kind
        (structured | dstream | other), ui_url, discovered_via, completed, stale, up,
        start_time, end_time, jobs_active, jobs_failed, executors_active, first_seen,
        last_seen, queries. Query keys: query_id, name, label, run_id, state, exception,
        last_batch_id, trigger_interval_seconds, first_seen, last_seen, last_batch_at,
        last_batch_duration_seconds.
        """
        with self._read() as conn:
            row = conn.execute("SELECT max(at) FROM spark_cycles").fetchone()
            if row is None or row[0] is None:
                return []
            latest = row[0]
            app_cols = ("app_id", "name", "label", "spark_version", "kind", "ui_url",
                        "discovered_via", "completed", "stale", "up", "start_time", "end_time",
                        "jobs_active", "jobs_failed", "executors_active", "first_seen",
                        "last_seen")
            apps = conn.execute(
                f"SELECT id, {', '.join(app_cols)} FROM spark_apps WHERE last_seen = ?",
                (latest,),
            ).fetchall()
            out = []
            for aid, *vals in apps:
                a = dict(zip(app_cols, vals))
                for k in ("completed", "stale", "up"):
                    a[k] = bool(a[k])
                queries = []
                for (qid, query_id, name, run_id, state, exc, last_id, trig, first,
                     seen) in conn.execute(
                        "SELECT id, query_id, name, run_id, state, exception, last_batch_id,"
                        " trigger_interval_ms, first_seen, last_seen FROM spark_queries"
                        " WHERE app = ? AND last_seen = ?", (aid, latest)).fetchall():
                    last = conn.execute(
                        "SELECT at, duration_ms FROM spark_batches WHERE query = ?"
                        " ORDER BY at DESC LIMIT 1", (qid,)).fetchone()
                    queries.append({
                        "query_id": query_id, "name": name, "label": name or query_id or "",
                        "run_id": run_id, "state": state, "exception": exc,
                        "last_batch_id": last_id, "trigger_interval_seconds": _sec(trig),
                        "first_seen": first, "last_seen": seen,
                        "last_batch_at": last[0] if last else None,
                        "last_batch_duration_seconds": _sec(last[1]) if last else None,
                    })
                queries.sort(key=lambda q: (q["label"], q["query_id"] or ""))
                a["queries"] = queries
                out.append(a)
        out.sort(key=lambda a: (a["label"] or "", a["app_id"]))
        return out


class _StatementRunner:
    """Runs a DDL script statement by statement on a connection (inside the open transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def executescript(self, script: str) -> None:
        buf = ""
        for line in script.splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                self._conn.execute(buf)
                buf = ""
        if buf.strip():
            raise ValueError(f"incomplete SQL statement in migration: {buf!r}")

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self._conn.execute(*args)
