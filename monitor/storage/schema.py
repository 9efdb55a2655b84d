"""The history database's schema: versions, migrations, and a look at a file before opening it.

Storage layout and downsampling are described in docs/architecture.md ("Storage"). A migration
runs inside the transaction that also bumps `PRAGMA user_version`, so a file is always at one
version; a file newer than this streamscope, or a non-empty file without a version, is refused.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.storage.errors import HistoryError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


def schema_version(conn: sqlite3.Connection, path: str) -> int:
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
    """Spark tables (docs/architecture.md, "Storage")."""
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


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file at `path` (open as `conn`) to SCHEMA_VERSION, one transaction per version."""
    version = schema_version(conn, path)
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
        log.info("history %s: schema migrated to version %d", path, target)


def check_history_path(path: str | Path) -> None:
    """What opening `path` as the history would run into, found without creating or changing
    anything: HistoryError naming the file if it cannot be created or opened as this history."""
    probe_database(path, what="history database", schema=lambda conn: schema_version(conn, str(path)))


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
