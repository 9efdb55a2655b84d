"""Structured Streaming progress from the listener feed, kept per query across cycles.

The streamscope listener (`collectors/spark_listener.py`, running inside users' Spark apps)
publishes each StreamingQueryListener event to a Kafka topic; whatever consumes that topic hands
the events to the collector through the `ProgressFeed` protocol. Each drained item is a dict in
one of the shapes `parse.parse_progress_event` accepts; the recommended one is

    {"event": "started" | "progress" | "idle" | "terminated",
     "wall": <UNIX seconds when the listener saw it>,
     "app_id": "<spark.sparkContext.applicationId>", "app_name": "<spark.app.name>",
     "payload": <json.loads(event.progress.json)> or the started/terminated event fields}

(`app_id` lets the collector attach queries to an app even when its UI is unreachable; without
it, queries are attached by query id to apps whose `/sql` or UI page mentions that id.)

`QueryTracker` keeps, per query id, the last N batches and the run lifecycle (started,
terminated + exception). `merge_tracked` folds that into a `StreamingQuery` built from REST data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Iterable, Protocol, runtime_checkable

from collectors.spark.models import BatchProgress, QueryState, StreamingQuery
from collectors.spark.merge import merge_batches
from collectors.spark.parse.common import SparkParseError
from collectors.spark.parse.progress import ProgressEvent, parse_progress_event

log = logging.getLogger(__name__)


@runtime_checkable
class ProgressFeed(Protocol):
    """A source of StreamingQueryListener events (e.g. a Kafka consumer of the progress topic).

    `drain()` returns the events received since the previous call, oldest first, and must not
    block for long (the collector calls it once per cycle). It may raise; the collector records
    the error and carries on.
    """

    def drain(self) -> list[dict]: ...


@dataclass
class _Run:
    run_id: str
    started_at: float | None = None
    last_event_at: float = 0.0
    terminated_at: float | None = None
    exception: str | None = None


@dataclass
class TrackedQuery:
    """Mutable per-query state of the tracker (internal; snapshots get `StreamingQuery`)."""

    query_id: str
    name: str | None = None
    app_id: str | None = None
    app_name: str | None = None
    runs: dict[str, _Run] = field(default_factory=dict)
    batches: dict[tuple[str | None, int], BatchProgress] = field(default_factory=dict)
    last_event_at: float = 0.0

    def current_run(self) -> _Run | None:
        if not self.runs:
            return None
        return max(self.runs.values(), key=lambda r: (r.last_event_at, r.started_at or 0.0))


class QueryTracker:
    """Progress events folded per query id; bounded (N batches per query, TTL per query)."""

    def __init__(self, max_batches: int = 50, ttl_seconds: float = 900.0, max_queries: int = 1000):
        self.max_batches = max_batches
        self.ttl_seconds = ttl_seconds
        self.max_queries = max_queries
        self._queries: dict[str, TrackedQuery] = {}
        self.events_total = 0
        self.invalid_total = 0
        self.last_error: str | None = None

    def ingest_raw(self, items: Iterable[object], *, received_at: float,
                   source: str = "progress-feed") -> list[ProgressEvent]:
        """Parse and ingest drained items; malformed ones are counted, logged and skipped."""
        events = []
        for i, item in enumerate(items):
            try:
                events.append(parse_progress_event(item, source=f"{source}[{i}]",
                                                   received_at=received_at))
            except SparkParseError as e:
                self.invalid_total += 1
                self.last_error = str(e)
                log.warning("skipping malformed progress event: %s", e)
        self.ingest(events)
        return events

    def ingest(self, events: Iterable[ProgressEvent]) -> None:
        for ev in events:
            self.events_total += 1
            q = self._queries.get(ev.query_id)
            if q is None:
                q = self._queries[ev.query_id] = TrackedQuery(query_id=ev.query_id)
            q.name = ev.name or q.name
            q.app_id = ev.app_id or q.app_id
            q.app_name = ev.app_name or q.app_name
            q.last_event_at = max(q.last_event_at, ev.received_at)
            run = None
            if ev.run_id:
                run = q.runs.get(ev.run_id)
                if run is None:
                    run = q.runs[ev.run_id] = _Run(ev.run_id)
                run.last_event_at = max(run.last_event_at, ev.received_at)
            if ev.kind == "started" and run is not None:
                run.started_at = ev.timestamp or ev.received_at
            elif ev.kind == "terminated" and run is not None:
                run.terminated_at = ev.received_at
                run.exception = ev.exception
            elif ev.kind == "progress" and ev.batch is not None:
                q.batches[(ev.batch.run_id, ev.batch.batch_id)] = ev.batch
                if len(q.batches) > self.max_batches:
                    keep = merge_batches(q.batches.values(), max_batches=self.max_batches)
                    q.batches = {(b.run_id, b.batch_id): b for b in keep}
            if len(q.runs) > 20:  # restarts: keep the most recent runs only
                for r in sorted(q.runs.values(), key=lambda r: r.last_event_at)[:-20]:
                    del q.runs[r.run_id]
        if len(self._queries) > self.max_queries:
            for q in sorted(self._queries.values(), key=lambda q: q.last_event_at)[
                    : len(self._queries) - self.max_queries]:
                del self._queries[q.query_id]

    def expire(self, now: float, keep: Iterable[str] = ()) -> None:
        """Forget queries with no events for the TTL, except those in `keep` (ids still shown
        by a live app)."""
        keep = set(keep)
        for qid in [qid for qid, q in self._queries.items()
                    if qid not in keep and now - q.last_event_at > self.ttl_seconds]:
            del self._queries[qid]

    def get(self, query_id: str | None) -> TrackedQuery | None:
        return self._queries.get(query_id) if query_id else None

    def by_name(self, name: str) -> list[TrackedQuery]:
        return [q for q in self._queries.values() if q.name == name]

    def queries(self) -> list[TrackedQuery]:
        return list(self._queries.values())


def merge_tracked(
    query: StreamingQuery | None, tracked: TrackedQuery, *, max_batches: int,
) -> StreamingQuery:
    """Fold the listener's view of a query into the REST view (either may be missing data).

    State: a terminated event for the current run wins (TERMINATED, or FAILED with the
    exception); otherwise a definite state from REST (UI page, failed SQL batch, gauges) stays;
    otherwise a run the listener saw start or progress is ACTIVE.
    """
    batches = merge_batches(query.batches if query else (), tracked.batches.values(),
                            max_batches=max_batches)
    run = tracked.current_run()
    run_id = query.run_id if query else None
    if run is not None:
        rest_latest = max((b.timestamp or 0.0 for b in (query.batches if query else ())
                           if b.run_id == run_id), default=0.0)
        if run_id is None or run.run_id == run_id or \
                max(run.last_event_at, run.started_at or 0.0) >= rest_latest:
            run_id = run.run_id
    cur = tracked.runs.get(run_id) if run_id else None

    state = query.state if query else QueryState.UNKNOWN
    source = query.state_source if query else None
    exception = query.exception if query else None
    if cur is not None and cur.terminated_at is not None:
        state = QueryState.FAILED if cur.exception else QueryState.TERMINATED
        exception, source = cur.exception, "listener"
    elif cur is not None and (state == QueryState.UNKNOWN or
                              (query is not None and query.run_id != run_id)):
        state, exception, source = QueryState.ACTIVE, None, "listener"

    run_batches = [b.batch_id for b in batches if b.run_id == run_id]
    last_batch_id = max(run_batches) if run_batches else (query.last_batch_id if query else None)
    if query is not None and query.last_batch_id is not None and last_batch_id is not None and \
            query.run_id == run_id:
        last_batch_id = max(last_batch_id, query.last_batch_id)
    updated = max(query.updated_at if query else 0.0, tracked.last_event_at)
    if query is None:
        return StreamingQuery(
            id=tracked.query_id, name=tracked.name, run_id=run_id, state=state,
            exception=exception, last_batch_id=last_batch_id, batches=batches,
            updated_at=updated, started_at=cur.started_at if cur else None, state_source=source)
    return replace(
        query, id=query.id or tracked.query_id, name=query.name or tracked.name, run_id=run_id,
        state=state, exception=exception, last_batch_id=last_batch_id, batches=batches,
        updated_at=updated, started_at=cur.started_at if cur else query.started_at,
        state_source=source,
    )
