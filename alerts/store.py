"""SQLite persistence for the alerting subsystem.

One `StateStore` holds everything the engine and dispatcher need to survive a restart:

- `alert_states`    current alerts (pending / firing / recently resolved) with their timers
                    (an alert's readings alone, its value, annotations and evaluation timers,
                    move its row only every READINGS_WRITTEN_EVERY seconds)
- `alert_history`   fired / resolved events
- `alert_silences`  silences
- `alert_groups`, `alert_group_members`, `alert_nflog`
                    aggregation groups, their timers and what each receiver was last told
- `alert_kv`        small engine state (e.g. what was last forwarded to each Alertmanager)
- `alert_outbox`    notifications to deliver; written in the SAME transaction as the alert state
                    change that caused them, deleted only by retention after delivery
- `alert_delivery_stats` counters for /metrics

It can live in its own file or share a database file with history (tables are prefixed `alert_`).
The connection is shared by threads behind a lock; every public method is one transaction.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

SCHEMA_VERSION = 1

# SQLite's page cache of the store's connection (KiB; SQLite's default is 2,000). The alerts are
# read from the file once, then kept in memory (`StateStore._stored_alerts`); the file is written
# a cycle's changes, a few pages. A cache the size of the whole state (3,000 alerts fill 2 MB) held
# pages no read came back for; what a commit touches again is in the OS's page cache.
CACHE_KIB = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_states (
    fingerprint TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    active_at REAL NOT NULL,
    fired_at REAL,
    last_breach_at REAL NOT NULL,
    keep_firing_since REAL,
    resolved_at REAL,
    last_eval_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    event TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS alert_history_at ON alert_history (at);
CREATE INDEX IF NOT EXISTS alert_history_fp ON alert_history (fingerprint, at);
CREATE TABLE IF NOT EXISTS alert_silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_groups (
    group_key TEXT PRIMARY KEY,
    route_id TEXT NOT NULL,
    labels TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_flush_at REAL NOT NULL,
    last_flush_at REAL
);
CREATE TABLE IF NOT EXISTS alert_group_members (
    group_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (group_key, fingerprint)
);
CREATE TABLE IF NOT EXISTS alert_nflog (
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    notified_at REAL NOT NULL,
    PRIMARY KEY (group_key, receiver)
);
CREATE TABLE IF NOT EXISTS alert_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    receiver_type TEXT NOT NULL,
    group_key TEXT NOT NULL,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    last_error TEXT,
    last_status INTEGER,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS alert_outbox_pending ON alert_outbox (receiver, delivered_at, id);
CREATE TABLE IF NOT EXISTS alert_delivery_stats (
    receiver TEXT NOT NULL,
    result TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (receiver, result)
);
"""


T = TypeVar("T")


# One encoder: json.dumps with these settings builds a JSONEncoder per call (~1 us of the ~3 us an
# alert's annotations take; 1,000s are written a cycle when their values move).
_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode


# -------------------------------------------------------------------------------------- records


@dataclass(slots=True)  # no __dict__ each: the store keeps one per alert, the engine copies them every evaluation
class AlertRecord:
    fingerprint: str
    rule: str
    kind: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # pending | firing | resolved
    value: float | None
    active_at: float
    fired_at: float | None
    last_breach_at: float
    keep_firing_since: float | None
    resolved_at: float | None
    last_eval_at: float

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", self.rule)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


# An alert that keeps breaching moves its `last_eval_at` and `last_breach_at` every evaluation,
# and often its value (a lag in seconds grows by the interval each cycle) and so its annotations.
# For such a change alone, its readings, its row is written again at most this often. The file
# serves a restart, whose first evaluation works the readings out again, and nothing decides on
# them: the kept alerts, which evaluation, exports, the API and /metrics read, are exact. What
# changes an alert's course (its state, its times of starting, firing and resolving) is written
# at once. So a cluster with 2,000 breaching alerts does not rewrite 2,000 rows into the WAL each
# cycle, whether their values stay (a group abandoned with lag, a stopped topic) or move.
READINGS_WRITTEN_EVERY = 300.0


def _only_readings_differ(held: AlertRecord, a: AlertRecord) -> bool:
    return (held.state == a.state and held.labels == a.labels and held.active_at == a.active_at
            and held.fired_at == a.fired_at and held.keep_firing_since == a.keep_firing_since
            and held.resolved_at == a.resolved_at and held.rule == a.rule and held.kind == a.kind
            and held.fingerprint == a.fingerprint)


def _copy(a: AlertRecord) -> AlertRecord:
    """A record the caller may change: its fields, not its label and annotation dicts, which are
    never changed in place (an alert gets new ones), so every copy shares them (at 3,000
    breaching alerts, two dicts each copied every evaluation were ~0.6 MB and ~5 ms)."""
    return AlertRecord(a.fingerprint, a.rule, a.kind, a.labels, a.annotations, a.state, a.value,
                       a.active_at, a.fired_at, a.last_breach_at, a.keep_firing_since, a.resolved_at, a.last_eval_at)


@dataclass
class GroupRecord:
    group_key: str
    route_id: str
    labels: dict[str, str]
    created_at: float
    next_flush_at: float
    last_flush_at: float | None
    members: set[str] = field(default_factory=set)


@dataclass
class NflogEntry:
    group_key: str
    receiver: str
    firing: frozenset[str]
    resolved: frozenset[str]
    notified_at: float


@dataclass
class OutboxItem:
    id: int
    idempotency_key: str
    receiver: str
    receiver_type: str
    group_key: str
    created_at: float
    payload: dict
    attempts: int
    next_attempt_at: float
    last_attempt_at: float | None
    last_error: str | None
    last_status: int | None
    delivered_at: float | None

    def to_dict(self, include_payload: bool = False) -> dict:
        d = {
            "id": self.id, "idempotency_key": self.idempotency_key, "receiver": self.receiver,
            "receiver_type": self.receiver_type, "group_key": self.group_key, "created_at": self.created_at,
            "attempts": self.attempts, "next_attempt_at": self.next_attempt_at,
            "last_attempt_at": self.last_attempt_at, "last_error": self.last_error,
            "last_status": self.last_status, "delivered_at": self.delivered_at,
            "status": self.payload.get("status"), "alerts": len(self.payload.get("alerts", ())),
        }
        if include_payload:
            d["payload"] = self.payload
        return d


@dataclass
class NewOutboxItem:
    idempotency_key: str
    receiver: str
    receiver_type: str
    group_key: str
    created_at: float
    payload: dict


@dataclass
class EngineState:
    alerts: dict[str, AlertRecord]
    groups: dict[str, GroupRecord]
    nflog: dict[tuple[str, str], NflogEntry]
    kv: dict[str, Any]


@dataclass
class EngineChanges:
    """Everything one evaluation changes, committed atomically."""

    upsert_alerts: list[AlertRecord] = field(default_factory=list)
    delete_alerts: list[str] = field(default_factory=list)
    history: list[tuple[float, str, str, str, dict, float | None]] = field(default_factory=list)  # at, fp, rule, event, labels, value
    upsert_groups: list[GroupRecord] = field(default_factory=list)
    delete_groups: list[str] = field(default_factory=list)
    upsert_nflog: list[NflogEntry] = field(default_factory=list)
    kv: dict[str, Any] = field(default_factory=dict)
    outbox: list[NewOutboxItem] = field(default_factory=list)
    prune_before: float | None = None  # history / expired silences older than this are removed
    prune_delivered_before: float | None = None


# -------------------------------------------------------------------------------------- store


class StateStore:
    def __init__(self, path: str | Path = ":memory:", *, timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO alert_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        # The alerts as last read or written through this connection: evaluation, /metrics and
        # the API read every alert each cycle, and decoding the rows was most of that. (Their
        # labels' JSON is written again with each row: ~2.5 us an alert, where keeping it held
        # ~0.5 MB at 3,000 alerts.) A commit by another connection (another process on the file)
        # changes `PRAGMA data_version`, which drops the copy; a failed commit drops it too.
        self._alerts: dict[str, AlertRecord] | None = None
        self._readings_written: dict[str, float] = {}  # the last_eval_at each alert's row holds
        self._alerts_version: int | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ---------------------------------------------------------------- engine state
    @staticmethod
    def _alert(row: sqlite3.Row) -> AlertRecord:
        return AlertRecord(
            fingerprint=row["fingerprint"], rule=row["rule"], kind=row["kind"], labels=json.loads(row["labels"]),
            annotations=json.loads(row["annotations"]), state=row["state"], value=row["value"],
            active_at=row["active_at"], fired_at=row["fired_at"], last_breach_at=row["last_breach_at"],
            keep_firing_since=row["keep_firing_since"], resolved_at=row["resolved_at"], last_eval_at=row["last_eval_at"],
        )

    def load_alerts(self) -> dict[str, AlertRecord]:
        """Every stored alert: copies the caller may change (nothing is stored before `commit`)."""
        with self._lock:
            return {fp: _copy(a) for fp, a in self._stored_alerts().items()}

    def reading_alerts(self, read: Callable[[Mapping[str, AlertRecord]], T]) -> T:
        """`read(alerts)` over the stored alerts themselves, under the store's lock, for a read that
        changes nothing and keeps nothing (a count). `load_alerts` copies each alert and its two
        dicts: /metrics counted 3,000 alerts that way every cycle."""
        with self._lock:
            return read(MappingProxyType(self._stored_alerts()))

    def _stored_alerts(self) -> dict[str, AlertRecord]:
        """The alerts as stored, read again only when another connection committed since."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]  # before the read: a later commit is seen next time
        if self._alerts is None or version != self._alerts_version:
            rows = self._conn.execute("SELECT * FROM alert_states").fetchall()
            # A row as this store last wrote it (its last_eval_at unchanged) is kept as kept: the
            # readings since are newer than the file's (READINGS_WRITTEN_EVERY). A history sharing
            # the file commits through another connection every cycle.
            kept, written = self._alerts or {}, self._readings_written
            alerts = {}
            for r in rows:
                fp = r["fingerprint"]
                held = kept.get(fp)
                alerts[fp] = held if held is not None and written.get(fp) == r["last_eval_at"] else self._alert(r)
            self._alerts = alerts
            self._readings_written = {r["fingerprint"]: r["last_eval_at"] for r in rows}
            self._alerts_version = version
        return self._alerts

    def load_engine_state(self) -> EngineState:
        with self._lock:
            alerts = self.load_alerts()
            groups: dict[str, GroupRecord] = {}
            for r in self._query("SELECT * FROM alert_groups"):
                groups[r["group_key"]] = GroupRecord(
                    r["group_key"], r["route_id"], json.loads(r["labels"]), r["created_at"], r["next_flush_at"],
                    r["last_flush_at"], set(),
                )
            for r in self._query("SELECT group_key, fingerprint FROM alert_group_members"):
                if r["group_key"] in groups:
                    groups[r["group_key"]].members.add(r["fingerprint"])
            nflog = {
                (r["group_key"], r["receiver"]): NflogEntry(
                    r["group_key"], r["receiver"], frozenset(json.loads(r["firing"])),
                    frozenset(json.loads(r["resolved"])), r["notified_at"],
                )
                for r in self._query("SELECT * FROM alert_nflog")
            }
            kv = {r["key"]: json.loads(r["value"]) for r in self._query("SELECT key, value FROM alert_kv")}
            return EngineState(alerts, groups, nflog, kv)

    def commit(self, ch: EngineChanges) -> int:
        """Apply one evaluation's changes atomically; returns the number of new outbox items."""
        with self._lock:
            try:
                return self._commit(ch)
            except BaseException:
                self._alerts = None  # rolled back: read the alerts again
                raise

    def _commit(self, ch: EngineChanges) -> int:
        added = 0
        with self.transaction() as c:
            stored = self._alerts if self._alerts is not None else {}
            written, readings_only = [], []
            for a in ch.upsert_alerts:
                held = stored.get(a.fingerprint)
                if (held is not None and _only_readings_differ(held, a)
                        and a.last_eval_at - self._readings_written[a.fingerprint] < READINGS_WRITTEN_EVERY):
                    readings_only.append((held, a))
                    continue
                written.append(a)
            c.executemany(
                "INSERT OR REPLACE INTO alert_states (fingerprint, rule, kind, labels, annotations, state, value,"
                " active_at, fired_at, last_breach_at, keep_firing_since, resolved_at, last_eval_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(a.fingerprint, a.rule, a.kind, _dumps(a.labels), _dumps(a.annotations), a.state, a.value,
                  a.active_at, a.fired_at, a.last_breach_at, a.keep_firing_since, a.resolved_at, a.last_eval_at)
                 for a in written],
            )
            c.executemany("DELETE FROM alert_states WHERE fingerprint = ?", [(fp,) for fp in ch.delete_alerts])
            for at, fp, rule, event, labels, value in ch.history:
                c.execute(
                    "INSERT INTO alert_history (at, fingerprint, rule, event, labels, value) VALUES (?,?,?,?,?,?)",
                    (at, fp, rule, event, _dumps(labels), value),
                )
            for key in ch.delete_groups:
                c.execute("DELETE FROM alert_groups WHERE group_key = ?", (key,))
                c.execute("DELETE FROM alert_group_members WHERE group_key = ?", (key,))
                c.execute("DELETE FROM alert_nflog WHERE group_key = ?", (key,))
            for g in ch.upsert_groups:
                c.execute(
                    "INSERT OR REPLACE INTO alert_groups (group_key, route_id, labels, created_at, next_flush_at,"
                    " last_flush_at) VALUES (?,?,?,?,?,?)",
                    (g.group_key, g.route_id, _dumps(g.labels), g.created_at, g.next_flush_at, g.last_flush_at),
                )
                c.execute("DELETE FROM alert_group_members WHERE group_key = ?", (g.group_key,))
                c.executemany(
                    "INSERT INTO alert_group_members (group_key, fingerprint) VALUES (?, ?)",
                    [(g.group_key, fp) for fp in sorted(g.members)],
                )
            for e in ch.upsert_nflog:
                c.execute(
                    "INSERT OR REPLACE INTO alert_nflog (group_key, receiver, firing, resolved, notified_at)"
                    " VALUES (?,?,?,?,?)",
                    (e.group_key, e.receiver, _dumps(sorted(e.firing)), _dumps(sorted(e.resolved)), e.notified_at),
                )
            for key, value in ch.kv.items():
                if value is None:
                    c.execute("DELETE FROM alert_kv WHERE key = ?", (key,))
                else:
                    c.execute("INSERT OR REPLACE INTO alert_kv (key, value) VALUES (?, ?)", (key, _dumps(value)))
            for item in ch.outbox:
                cur = c.execute(
                    "INSERT OR IGNORE INTO alert_outbox (idempotency_key, receiver, receiver_type, group_key,"
                    " created_at, payload, attempts, next_attempt_at) VALUES (?,?,?,?,?,?,0,?)",
                    (item.idempotency_key, item.receiver, item.receiver_type, item.group_key, item.created_at,
                     _dumps(item.payload), item.created_at),
                )
                added += cur.rowcount
            if ch.prune_before is not None:
                c.execute("DELETE FROM alert_history WHERE at < ?", (ch.prune_before,))
                c.execute("DELETE FROM alert_silences WHERE ends_at < ?", (ch.prune_before,))
            if ch.prune_delivered_before is not None:
                c.execute("DELETE FROM alert_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
                          (ch.prune_delivered_before,))
        if self._alerts is not None:  # committed: the kept alerts follow
            for a in written:
                self._alerts[a.fingerprint] = _copy(a)
                self._readings_written[a.fingerprint] = a.last_eval_at
            for held, a in readings_only:  # exact in memory, behind in the file (READINGS_WRITTEN_EVERY)
                held.last_eval_at, held.last_breach_at = a.last_eval_at, a.last_breach_at
                held.value, held.annotations = a.value, a.annotations  # shared: never changed in place
            for fp in ch.delete_alerts:
                self._alerts.pop(fp, None)
                self._readings_written.pop(fp, None)
        return added

    # ---------------------------------------------------------------- history
    def history(self, *, since: float | None = None, until: float | None = None, fingerprint: str | None = None,
                rule: str | None = None, limit: int = 500) -> list[dict]:
        sql = "SELECT * FROM alert_history WHERE 1=1"
        args: list[Any] = []
        for col, op, val in (("at", ">=", since), ("at", "<=", until), ("fingerprint", "=", fingerprint),
                             ("rule", "=", rule)):
            if val is not None:
                sql += f" AND {col} {op} ?"
                args.append(val)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        args.append(int(limit))
        return [
            {"id": r["id"], "at": r["at"], "fingerprint": r["fingerprint"], "alertname": r["rule"],
             "event": r["event"], "labels": json.loads(r["labels"]), "value": r["value"]}
            for r in self._query(sql, args)
        ]

    # ---------------------------------------------------------------- silences (raw rows)
    def upsert_silence(self, row: dict) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (row["id"], _dumps(row["matchers"]), row["starts_at"], row["ends_at"], row["created_by"],
                 row["comment"], row["created_at"], row["updated_at"]),
            )

    def silence_rows(self) -> list[dict]:
        """Rows as stored (`matchers` is JSON text): decoding and checking them, row by row so
        that one bad row cannot hide the others, is `alerts.silences`' job."""
        return [dict(r) for r in self._query("SELECT * FROM alert_silences ORDER BY created_at, id")]

    # ---------------------------------------------------------------- outbox
    @staticmethod
    def _item(r: sqlite3.Row) -> OutboxItem:
        return OutboxItem(
            id=r["id"], idempotency_key=r["idempotency_key"], receiver=r["receiver"],
            receiver_type=r["receiver_type"], group_key=r["group_key"], created_at=r["created_at"],
            payload=json.loads(r["payload"]), attempts=r["attempts"], next_attempt_at=r["next_attempt_at"],
            last_attempt_at=r["last_attempt_at"], last_error=r["last_error"], last_status=r["last_status"],
            delivered_at=r["delivered_at"],
        )

    def pending_receivers(self) -> list[str]:
        return [r["receiver"] for r in self._query(
            "SELECT DISTINCT receiver FROM alert_outbox WHERE delivered_at IS NULL ORDER BY receiver")]

    def pending_items(self, receiver: str, limit: int = 100) -> list[OutboxItem]:
        return [self._item(r) for r in self._query(
            "SELECT * FROM alert_outbox WHERE receiver = ? AND delivered_at IS NULL ORDER BY id LIMIT ?",
            (receiver, int(limit)))]

    def outbox_items(self, *, pending_only: bool = False, receiver: str | None = None, limit: int = 200) -> list[OutboxItem]:
        sql = "SELECT * FROM alert_outbox WHERE 1=1"
        args: list[Any] = []
        if pending_only:
            sql += " AND delivered_at IS NULL"
        if receiver is not None:
            sql += " AND receiver = ?"
            args.append(receiver)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        return [self._item(r) for r in self._query(sql, args)]

    def next_group_flush_at(self) -> float | None:
        rows = self._query("SELECT MIN(next_flush_at) AS t FROM alert_groups")
        return rows[0]["t"] if rows and rows[0]["t"] is not None else None

    def next_attempt_at(self, receiver: str | None = None) -> float | None:
        """Earliest time a pending item may be attempted (head of each receiver's queue, or of
        `receiver`'s only)."""
        sql = ("SELECT MIN(next_attempt_at) AS t FROM alert_outbox o WHERE delivered_at IS NULL AND id = "
               "(SELECT MIN(id) FROM alert_outbox p WHERE p.receiver = o.receiver AND p.delivered_at IS NULL)")
        args: tuple = ()
        if receiver is not None:
            sql += " AND receiver = ?"
            args = (receiver,)
        rows = self._query(sql, args)
        return rows[0]["t"] if rows and rows[0]["t"] is not None else None

    def mark_delivered(self, ids: Iterable[int], now: float, status: int | None, receiver: str) -> None:
        ids = list(ids)
        with self.transaction() as c:
            for i in ids:
                c.execute(
                    "UPDATE alert_outbox SET delivered_at = ?, last_status = ?, last_attempt_at = ?,"
                    " attempts = attempts + 1, last_error = NULL WHERE id = ? AND delivered_at IS NULL",
                    (now, status, now, i),
                )
            self._bump(c, receiver, "success", 1)

    def mark_failed(self, item_id: int, now: float, next_attempt_at: float, error: str, status: int | None,
                    receiver: str) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?,"
                " last_error = ?, last_status = ? WHERE id = ? AND delivered_at IS NULL",
                (now, next_attempt_at, error[:2000], status, item_id),
            )
            self._bump(c, receiver, "failure", 1)

    @staticmethod
    def _bump(c: sqlite3.Connection, receiver: str, result: str, n: int) -> None:
        c.execute(
            "INSERT INTO alert_delivery_stats (receiver, result, count) VALUES (?, ?, ?)"
            " ON CONFLICT (receiver, result) DO UPDATE SET count = count + excluded.count",
            (receiver, result, n),
        )

    def delivery_stats(self) -> dict[tuple[str, str], int]:
        return {(r["receiver"], r["result"]): r["count"] for r in self._query("SELECT * FROM alert_delivery_stats")}

    def outbox_pending_summary(self) -> dict[str, tuple[int, float | None]]:
        """receiver -> (pending count, created_at of the oldest pending item)."""
        return {
            r["receiver"]: (r["n"], r["oldest"])
            for r in self._query(
                "SELECT receiver, COUNT(*) AS n, MIN(created_at) AS oldest FROM alert_outbox"
                " WHERE delivered_at IS NULL GROUP BY receiver")
        }
