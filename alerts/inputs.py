"""What the alert engine needs from the rest of streamscope, as a small Protocol.

The engine reads the latest `collectors.models.Snapshot` and, for duration-based rules, a window
of recent rows from history. `monitor` implements `AlertInputs` over its history store; tests and
simple setups can use `StaticInputs` or `RollingInputs` (keeps windows in memory, fed snapshot by
snapshot); `HistoryInputs` combines the history's windows (Kafka kinds: the monitor's
`HistoryReader.window`) with in-memory Spark windows.

Window rows (`window(cluster, kind, key, seconds, now)`) are dicts with at least `at` (UNIX
seconds), oldest first, covering `[now - seconds, now]`. Kinds and keys the rules ask for:

| kind          | cluster       | key         | fields used                                   |
|---------------|---------------|-------------|-----------------------------------------------|
| `topic`       | Kafka cluster | topic name  | `produce_rate` (msg/s)                        |
| `cluster`     | Kafka cluster | `""`        | `brokers` (count)                             |
| `group`       | Kafka cluster | group name  | `lag`, `time_lag_seconds`, `status` (optional)|
| `spark_query` | Spark app     | query name  | `input_rows_per_second`, `processed_rows_per_second`, `batch_duration_seconds` |
| `spark_app`   | Spark app     | app name    | `failed_jobs` (counter)                       |

`window_rows(snapshot)` produces exactly these rows from one snapshot, so a history store can
persist them (or `RollingInputs` can keep them).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from collectors.models import Snapshot


class Sample(NamedTuple):
    """One breaching label set produced by a rule kind.

    A *held* sample does not breach, but its value is only a lower bound (a time lag older than
    the history can date): the truth may breach. It keeps an alert that is already pending or
    firing as it is, and starts none: an alert never resolves on a lower bound.

    A named tuple, not a frozen dataclass, whose `__init__` sets each field through
    `object.__setattr__`: a rule makes one per breaching group or topic every evaluation
    (3,000 at 1,000 groups whose consumers stopped).
    """

    labels: tuple[tuple[str, str], ...]
    value: float
    hold: bool = False

    @classmethod
    def of(cls, value: float, **labels: Any) -> "Sample":
        items = [(k, v if v.__class__ is str else str(v)) for k, v in labels.items() if v is not None]
        items.sort()
        return cls(tuple(items), float(value))

    @classmethod
    def held(cls, value: float, **labels: Any) -> "Sample":
        return cls(cls.of(value, **labels).labels, float(value), True)

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@runtime_checkable
class AlertInputs(Protocol):
    def latest_snapshot(self) -> Snapshot | None:
        """The most recent snapshot, or None before the first collection cycle."""

    def window(self, cluster: str, kind: str, key: str, seconds: float, now: float) -> list[dict]:
        """Rows of `kind`/`key` of `cluster` with `now - seconds <= at <= now`, oldest first."""


def window_rows(snapshot: Snapshot, kinds: Iterable[str] | None = None) -> list[tuple[str, str, str, dict]]:
    """(cluster, kind, key, row) for every series the duration-based rules read (of `kinds`
    only, when given: the app keeps only Spark rows in memory, and a row per group and topic
    each cycle was for nothing)."""
    kinds = frozenset(kinds) if kinds is not None else None
    rows: list[tuple[str, str, str, dict]] = []
    for cs in snapshot.clusters if kinds is None or not kinds.isdisjoint(_KAFKA_KINDS) else ():
        cluster = cs.raw.cluster
        at = cs.lag.at or snapshot.at
        if not cs.stale:
            rows.append((cluster, "cluster", "", {"at": cs.raw.finished_at or at, "brokers": len(cs.raw.brokers)}))
        for t in cs.lag.topics:
            rows.append((cluster, "topic", t.topic, {
                "at": at, "produce_rate": t.produce_rate, "end_offset_sum": t.end_offset_sum,
                "under_replicated": t.under_replicated, "offline": t.offline,
            }))
        for g in cs.lag.groups:
            rows.append((cluster, "group", g.group, {
                "at": g.fetched_at or at, "lag": g.lag, "readable_lag": g.readable_lag,
                "time_lag_seconds": g.time_lag_seconds, "time_lag_lower_bound": g.time_lag_lower_bound,
                "status": g.status.value, "members": g.members, "consume_rate": g.consume_rate,
            }))
    for app in snapshot.spark:
        if app.failed_jobs is not None:
            rows.append((app.label, "spark_app", app.label, {"at": snapshot.at, "failed_jobs": app.failed_jobs}))
        for q in app.current_queries:
            last = q.last_finished_batch
            ms = last.measured_duration_ms if last is not None else None
            rows.append((app.label, "spark_query", q.label, {
                "at": (last.timestamp if last is not None else None) or snapshot.at,
                "input_rows_per_second": last.input_rows_per_second if last is not None else None,
                "processed_rows_per_second": last.processed_rows_per_second if last is not None else None,
                "batch_duration_seconds": ms / 1000.0 if ms is not None else None,
            }))
    return rows if kinds is None else [r for r in rows if r[1] in kinds]


_KAFKA_KINDS = frozenset({"cluster", "topic", "group"})


@dataclass
class StaticInputs:
    """Fixed inputs: a snapshot and pre-built windows `{(cluster, kind, key): [rows]}`."""

    snapshot: Snapshot | None = None
    windows: Mapping[tuple[str, str, str], list[dict]] = field(default_factory=dict)

    def latest_snapshot(self) -> Snapshot | None:
        return self.snapshot

    def window(self, cluster: str, kind: str, key: str, seconds: float, now: float) -> list[dict]:
        lo = now - seconds
        return [r for r in self.windows.get((cluster, kind, key), ()) if lo <= r.get("at", 0.0) <= now]


class RollingInputs:
    """In-memory history of window rows, fed one snapshot per cycle with `observe()`.

    Good enough for a single process without a history store, and for tests. Keeps at most
    `max_age` seconds of rows per series.
    """

    def __init__(self, max_age: float = 7200.0, kinds: Iterable[str] | None = None) -> None:
        self._max_age = max_age
        self._kinds = frozenset(kinds) if kinds is not None else None
        self._latest: Snapshot | None = None
        self._series: dict[tuple[str, str, str], deque[dict]] = {}
        self._lock = threading.Lock()

    def observe(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._latest = snapshot
            cutoff = snapshot.at - self._max_age
            for cluster, kind, key, row in window_rows(snapshot, self._kinds):
                series = self._series.setdefault((cluster, kind, key), deque())
                if series and series[-1].get("at") == row.get("at"):
                    series[-1] = row  # same observation seen again (e.g. stale cycle)
                else:
                    series.append(row)
            for series in self._series.values():
                while series and series[0].get("at", 0.0) < cutoff:
                    series.popleft()

    def latest_snapshot(self) -> Snapshot | None:
        return self._latest

    def window(self, cluster: str, kind: str, key: str, seconds: float, now: float) -> list[dict]:
        lo = now - seconds
        with self._lock:
            return [dict(r) for r in self._series.get((cluster, kind, key), ()) if lo <= r.get("at", 0.0) <= now]


class HistoryInputs:
    """AlertInputs for the app: Kafka windows from the history store, Spark windows in memory.

        inputs = HistoryInputs(snapshots.latest, history_reader.window)

    `history_window(cluster, kind, key, seconds, now)` serves the kinds `group`, `topic` and
    `cluster` (what the history stores); `spark_query` / `spark_app` rows are
    kept in memory from the snapshots seen through `latest_snapshot()` (they are only a fallback
    for Spark rules; Spark snapshots carry their recent batches and failed jobs themselves).
    """

    HISTORY_KINDS = frozenset({"group", "topic", "cluster"})

    def __init__(self, latest: Callable[[], Snapshot | None],
                 history_window: Callable[[str, str, str, float, float], list[dict]],
                 spark_max_age: float = 7200.0,
                 history_peaks: Callable[[str, str, str, float, float], dict[str, float]] | None = None) -> None:
        self._latest = latest
        self._history_window = history_window
        self._history_peaks = history_peaks
        self._rolling = RollingInputs(spark_max_age, kinds=("spark_query", "spark_app"))
        self._seen_at: float | None = None
        self._lock = threading.Lock()

    def latest_snapshot(self) -> Snapshot | None:
        snap = self._latest()
        if snap is not None:
            with self._lock:
                if snap.at != self._seen_at:
                    self._rolling.observe(snap)
                    self._seen_at = snap.at
        return snap

    def window(self, cluster: str, kind: str, key: str, seconds: float, now: float) -> list[dict]:
        if kind in self.HISTORY_KINDS:
            return list(self._history_window(cluster, kind, key, seconds, now))
        return self._rolling.window(cluster, kind, key, seconds, now)

    def peaks(self, cluster: str, kind: str, field: str, seconds: float, now: float) -> dict[str, float]:
        """{key: the greatest finite `field` of its rows in the window}, from the history
        (`history_peaks`, e.g. `KafkaStore.window_peaks`); NotImplementedError without one."""
        if self._history_peaks is None or kind not in self.HISTORY_KINDS:
            raise NotImplementedError(f"no peaks of {kind} windows")
        return self._history_peaks(cluster, kind, field, seconds, now)


InputsProvider = Callable[[], AlertInputs] | AlertInputs


def as_inputs(provider: Any) -> AlertInputs:
    """Accept an AlertInputs or a zero-argument callable returning one."""
    if isinstance(provider, AlertInputs):
        return provider
    if callable(provider):
        return provider()
    raise TypeError("inputs provider must implement AlertInputs or be a callable returning one")


def iter_nonnull(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]
