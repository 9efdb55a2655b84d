"""SparkCollector: one `collect(now)` = discovery + one request per source per app + merge.

Cycle:
1. drain the progress feed (if any) into the `QueryTracker`;
2. discovery, all targets concurrently (UI URLs, port-range probes, standalone master, History
   Server); the same app found twice is kept once (driver UI > port scan > master > history),
   and two drivers that report one id are kept apart (`discovery.place_apps`);
3. per app, concurrently across apps (small thread pool), its sources in sequence, one request
   each: [applications], jobs, stages, executors, sql, metrics, [prometheus], StreamingQuery page,
   DStream statistics (+ batches, receivers for DStream apps). A source that fails is recorded
   in the snapshot (`SourceStatus`) and skipped; once a driver does not answer at all, its
   remaining sources are not tried this cycle (one bounded timeout per app, not one per source);
4. progress-feed data merged per query id; apps only the feed knows (by `app_id`) are added.

Apps appear when discovered and disappear when their target answers without them (finished,
or another app took the driver's port). An app that was up and stops answering (connection
refused: driver gone; or timeouts) is returned as its last snapshot marked `stale`, its queries
not active, for `down_app_ttl` seconds after its last answer, then dropped: so it shows as down
(`app_up 0`, `query_active 0`) with its last values instead of vanishing.

Never raises for Spark-side problems; errors are in the snapshots and in `health()`.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable

from collectors.models import CollectorHealth
from collectors.spark.client import FetchResult, SparkHttpClient
from collectors.spark.defaults import DEFAULT_DOWN_APP_TTL, DEFAULT_MAX_BATCHES, DEFAULT_TIMEOUT, FEED_HEALTH_NAME
from collectors.spark.discovery import (
    AppLocation, Discovered, Fingerprint, HistoryTarget, MasterTarget, PortRangeTarget, Target,
    UiTarget, app_fingerprint, combine_port_probes, discover_history, discover_master, discover_ui,
    parse_target, place_apps, probe_port,
)
from collectors.spark.models import (
    SRC_APPLICATIONS, SRC_DSTREAM_BATCHES, SRC_DSTREAM_RECEIVERS, SRC_DSTREAM_STATISTICS, SRC_EXECUTORS,
    SRC_JOBS, SRC_METRICS, SRC_PROGRESS, SRC_PROMETHEUS, SRC_SQL, SRC_STAGES, SRC_STREAMING_UI,
    DriverMetrics, QueryState, SourceStatus, SparkApp, SparkAppSnapshot, StreamingQuery,
)
from collectors.spark.merge import apply_gauges, apply_ui_rows, estimate_trigger_interval_ms, merge_batches
from collectors.spark.parse.common import SparkParseError, decode_json
from collectors.spark.parse.dstream import (
    parse_streaming_batches, parse_streaming_receivers, parse_streaming_statistics,
)
from collectors.spark.parse.metrics import (
    parse_metrics_json, parse_prometheus_text, query_gauges_from_prometheus,
)
from collectors.spark.parse.rest import parse_applications, parse_executors, parse_jobs, parse_stages
from collectors.spark.parse.sql import parse_sql
from collectors.spark.parse.ui import parse_streaming_ui_html
from collectors.spark.progress import ProgressFeed, QueryTracker, merge_tracked

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

SQL_MAX_LENGTH = 100_000  # "all" for `length` (Spark 3.x defaults it to 20)


@dataclass
class _AppState:
    target: str
    found_at: str = ""
    fingerprint: Fingerprint = ()  # the app's, as `place_apps` tells apps with one id apart
    last_snapshot: SparkAppSnapshot | None = None
    last_seen: float = 0.0
    sql_total: int = 0
    sql_queries: dict[str, StreamingQuery] = field(default_factory=dict)
    recheck: dict[str, float] = field(default_factory=dict)  # source -> skip until (absent)
    history_key: tuple | None = None
    logged: dict[str, str] = field(default_factory=dict)  # source -> last parse error logged


@dataclass
class _Health:
    name: str
    last_attempt_at: float = 0.0
    last_success_at: float | None = None
    duration_seconds: float = 0.0
    error: str | None = None
    up: bool = False
    cycles_total: int = 0
    failures_total: int = 0

    def record(self, at: float, ok: bool, duration: float, error: str | None) -> None:
        self.last_attempt_at = at
        self.duration_seconds = duration
        self.cycles_total += 1
        self.up = ok
        self.error = None if ok else error
        if ok:
            self.last_success_at = at
        else:
            self.failures_total += 1

    def freeze(self) -> CollectorHealth:
        return CollectorHealth(name=self.name, kind="spark", up=self.up,
                               last_attempt_at=self.last_attempt_at,
                               last_success_at=self.last_success_at,
                               duration_seconds=self.duration_seconds, error=self.error,
                               cycles_total=self.cycles_total, failures_total=self.failures_total)


class _AppRun:
    """Fetch + parse of one app's sources in one cycle (runs in a worker thread)."""

    def __init__(self, collector: "SparkCollector", loc: AppLocation, st: _AppState, now: float):
        self.c = collector
        self.loc = loc
        self.st = st
        self.now = now
        self.statuses: list[SourceStatus] = []
        self.down: str | None = None  # set once the driver did not answer at all

    def status(self, source: str, res: FetchResult | None, *, ok: bool, error: str | None = None,
               skipped: str | None = None, url: str = "") -> None:
        self.statuses.append(SourceStatus(
            source=source, url=res.url if res else url,
            fetched_at=res.fetched_at if res else self.c._clock(), ok=ok, error=error,
            http_status=res.status if res else None,
            duration_seconds=res.duration_seconds if res else 0.0, skipped=skipped))

    def fetch(self, source: str, url: str, params: Any = None, *,
              absent_ok: str | None = None, redirects: bool = True) -> FetchResult | None:
        """GET; returns the result when it is a 2xx, else records why and returns None.
        `absent_ok`: a 404 (or, with `redirects=False`, a redirect) means "not available
        here": recorded as skipped, not an error, and not asked again for `recheck_seconds`."""
        if self.down:
            self.status(source, None, ok=False, url=url, error=f"not fetched: {self.down}")
            return None
        until = self.st.recheck.get(source)
        if until is not None and self.now < until:
            self.status(source, None, ok=True, url=url, skipped="absent (cached; rechecked later)")
            return None
        res = self.c.client.get(url, params, allow_redirects=redirects)
        if res.unreachable:
            self.down = res.describe()
            self.status(source, res, ok=False, error=res.describe())
            return None
        if absent_ok and (res.status == 404 or (
                not redirects and res.status is not None and 300 <= res.status < 400)):
            self.st.recheck[source] = self.now + self.c.recheck_seconds
            self.status(source, res, ok=True, skipped=absent_ok)
            return None
        if not res.ok:
            self.status(source, res, ok=False, error=res.describe())
            return None
        self.st.recheck.pop(source, None)
        return res

    def parse(self, source: str, res: FetchResult, fn: Callable[[FetchResult], Any]) -> Any:
        try:
            value = fn(res)
        except SparkParseError as e:
            if self.st.logged.get(source) != str(e):  # log a persistent problem once
                log.warning("spark %s: skipping source %s: %s", self.loc.app.id, source, e)
                self.st.logged[source] = str(e)
            self.status(source, res, ok=False, error=str(e))
            return None
        self.st.logged.pop(source, None)
        self.status(source, res, ok=True)
        return value

    def json_source(self, source: str, url: str, params: Any, parser: Callable[..., Any],
                    *, absent_ok: str | None = None, timed: bool = True, **kw: Any) -> Any:
        """Fetch, decode and parse one JSON source; `timed`: the parser takes `fetched_at`."""
        res = self.fetch(source, url, params, absent_ok=absent_ok)
        if res is None:
            return None
        if timed:
            kw["fetched_at"] = res.fetched_at
        return self.parse(source, res, lambda r: parser(decode_json(r.text or "", r.url),
                                                        source=r.url, **kw))

    # ----------------------------------------------------------------------------------------

    def run(self) -> SparkAppSnapshot:
        loc, st, c = self.loc, self.st, self.c
        app = loc.app
        if loc.applications_status is not None:
            self.statuses.append(loc.applications_status)
        if loc.api_root is None:
            self.status(SRC_APPLICATIONS, None, ok=False, url=loc.target,
                        error="driver UI URL unknown (set spark.ui.reverseProxy=true on the "
                              "master, or configure the driver UI URL)")
            return SparkAppSnapshot(app=app, collected_at=self.now, sources=tuple(self.statuses))

        if app.discovered_via == "history" and app.completed and st.last_snapshot is not None \
                and st.history_key == (app.attempt, app.last_updated):
            return replace(st.last_snapshot, app=app, collected_at=self.now)  # finished: unchanged

        if loc.needs_app_info:
            app = self._app_info(app)
        api = loc.api_root
        jobs = self.json_source(
            SRC_JOBS, f"{api}/jobs",
            None if c.jobs_full_listing else [("status", "RUNNING"), ("status", "FAILED")],
            parse_jobs, filtered=not c.jobs_full_listing)
        stages = self.json_source(SRC_STAGES, f"{api}/stages", {"status": "FAILED"}, parse_stages)
        executors = self.json_source(SRC_EXECUTORS, f"{api}/allexecutors", None, parse_executors)
        queries = self._sql(api)
        driver = None
        if loc.metrics_root:
            driver = self.json_source(SRC_METRICS, f"{loc.metrics_root}/metrics/json/", None,
                                      parse_metrics_json, absent_ok="metrics servlet disabled")
            if c.prometheus:
                res = self.fetch(SRC_PROMETHEUS, f"{loc.metrics_root}/metrics/prometheus/",
                                 absent_ok="PrometheusServlet not configured")
                prom = res and self.parse(SRC_PROMETHEUS, res, lambda r: query_gauges_from_prometheus(
                    parse_prometheus_text(r.text or "", source=r.url), fetched_at=r.fetched_at))
                if prom and (driver is None or not driver.queries):
                    driver = driver or DriverMetrics(namespace="", fetched_at=prom[0].fetched_at)
                    driver = replace(driver, queries=prom)
        if c.streaming_ui and loc.ui_root:
            # Spark adds the tab when the first query starts; before that it redirects to /jobs/
            res = self.fetch(SRC_STREAMING_UI, f"{loc.ui_root}/StreamingQuery/",
                             absent_ok="no Structured Streaming tab", redirects=False)
            rows = res and self.parse(SRC_STREAMING_UI, res,
                                      lambda r: parse_streaming_ui_html(r.text or "", source=r.url))
            if rows:
                queries = apply_ui_rows(queries, rows, fetched_at=res.fetched_at)
        if driver is not None and driver.queries:
            queries = apply_gauges(queries, driver.queries)
        dstream = self._dstream(api)

        if jobs is not None and jobs.succeeded is None and driver is not None \
                and driver.jobs_succeeded_total is not None:
            jobs = replace(jobs, succeeded=driver.jobs_succeeded_total)

        if self.down and st.last_snapshot is not None and \
                self.now - st.last_seen <= c.down_app_ttl:
            return down_snapshot(st.last_snapshot, self.now, tuple(self.statuses))
        snap = SparkAppSnapshot(
            app=app, collected_at=self.now, jobs=jobs, stages=stages,
            executors=executors or (), queries=tuple(queries), dstream=dstream, driver=driver,
            sources=tuple(self.statuses))
        if not self.down:
            st.last_snapshot, st.last_seen = snap, self.now
            if app.discovered_via == "history" and app.completed:
                st.history_key = (app.attempt, app.last_updated)
        return snap

    def _app_info(self, app: SparkApp) -> SparkApp:
        """Master-discovered app: read the driver's own application entry."""
        res = self.fetch(SRC_APPLICATIONS, f"{self.loc.ui_root}/api/v1/applications")
        if res is None:
            return app
        apps = self.parse(SRC_APPLICATIONS, res, lambda r: parse_applications(
            decode_json(r.text or "", r.url), source=r.url, fetched_at=r.fetched_at,
            ui_url=self.loc.ui_root, via=app.discovered_via))
        for a in apps or ():
            if a.id == app.id:
                return replace(a, master_state=app.master_state)
        return app

    def _sql(self, api: str) -> tuple[StreamingQuery, ...]:
        st, c = self.st, self.c
        offset = max(0, st.sql_total - c.sql_tail) if st.sql_total > c.sql_tail else 0
        params = {"details": "false", "planDescription": "false", "offset": str(offset),
                  "length": str(SQL_MAX_LENGTH)}
        res = self.fetch(SRC_SQL, f"{api}/sql", params, absent_ok="no SQL listing")
        if res is None:
            return tuple(st.sql_queries.values())

        def parse(r: FetchResult):
            data = decode_json(r.text or "", r.url)
            qs = parse_sql(data, source=r.url, fetched_at=r.fetched_at, max_batches=c.max_batches)
            return len(data), qs

        parsed = self.parse(SRC_SQL, res, parse)
        if parsed is None:
            return tuple(st.sql_queries.values())
        n, fresh = parsed
        st.sql_total = offset + n if (n or not offset) else 0
        merged = {} if offset == 0 else dict(st.sql_queries)
        for q in fresh:
            old = merged.get(q.key)
            if old is not None:
                q = replace(q, batches=merge_batches(old.batches, q.batches,
                                                     max_batches=c.max_batches),
                            name=q.name or old.name)
            merged[q.key] = q
        st.sql_queries = merged
        return tuple(merged.values())

    def _dstream(self, api: str):
        stats = self.json_source(SRC_DSTREAM_STATISTICS, f"{api}/streaming/statistics", None,
                                 parse_streaming_statistics, absent_ok="not a DStream app")
        if stats is None:
            return None
        batches = self.json_source(SRC_DSTREAM_BATCHES, f"{api}/streaming/batches", None,
                                   parse_streaming_batches, timed=False)
        receivers = self.json_source(SRC_DSTREAM_RECEIVERS, f"{api}/streaming/receivers", None,
                                     parse_streaming_receivers, timed=False)
        return replace(stats, batches=batches or (), receivers=receivers or ())


def down_snapshot(last: SparkAppSnapshot, now: float,
                  sources: tuple[SourceStatus, ...]) -> SparkAppSnapshot:
    """An app that stopped answering: its last good snapshot, marked stale, with this cycle's
    failed sources (its queries are marked not active when the cycle is finalised)."""
    return replace(last, stale=True, collected_at=now, sources=sources)


class SparkCollector:
    """Polls Spark UIs and produces one immutable `SparkAppSnapshot` per app per cycle.

    `targets`: `Target` objects or strings (see `discovery.parse_target`).
    `timeout`: (connect, read) seconds per request. `session`: a `requests.Session` to use
    (e.g. with auth or TLS settings); the collector closes only a session it created.
    `feed`: optional `ProgressFeed` of listener events. `max_batches`: batches kept per query.
    `down_app_ttl`: seconds an app that stopped answering keeps being returned (stale).
    """

    def __init__(
        self,
        targets: Iterable[Target | str],
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        *,
        feed: ProgressFeed | None = None,
        max_batches: int = DEFAULT_MAX_BATCHES,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
        sql_tail: int = 200,
        prometheus: bool = False,
        streaming_ui: bool = True,
        jobs_full_listing: bool = False,
        down_app_ttl: float = DEFAULT_DOWN_APP_TTL,
        recheck_seconds: float = 60.0,
        feed_app_ttl: float = 300.0,
        feed_query_ttl: float = 900.0,
    ):
        self.targets: tuple[Target, ...] = tuple(parse_target(t) for t in targets)
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate Spark targets: {sorted(n for n in names if names.count(n) > 1)}")
        self.client = SparkHttpClient(timeout, session, clock=clock, pool_size=workers * 2)
        self.feed = feed
        self.max_batches = max_batches
        self.sql_tail = sql_tail
        self.prometheus = prometheus
        self.streaming_ui = streaming_ui
        self.jobs_full_listing = jobs_full_listing
        self.down_app_ttl = down_app_ttl
        self.recheck_seconds = recheck_seconds
        self.feed_app_ttl = feed_app_ttl
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="spark-collector")
        self.tracker = QueryTracker(max_batches=max_batches, ttl_seconds=feed_query_ttl)
        self._apps: dict[str, _AppState] = {}
        self._health: dict[str, _Health] = {n: _Health(n) for n in names}
        if feed is not None:
            self._health[FEED_HEALTH_NAME] = _Health(FEED_HEALTH_NAME)
        self.last_discovery: tuple[Discovered, ...] = ()
        self._cycle_lock = threading.Lock()
        self._gone: dict[str, float] = {}  # app id -> when its driver was found gone
        self._trigger_ms: dict[str, int] = {}  # query id -> last trusted trigger interval estimate

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> "SparkCollector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def health(self) -> tuple[CollectorHealth, ...]:
        return tuple(h.freeze() for h in self._health.values())

    # -- one cycle ---------------------------------------------------------------------------

    def collect(self, now: float | None = None) -> tuple[SparkAppSnapshot, ...]:
        """One cycle. `now` (UNIX s) stamps the snapshots; fetch times come from the clock.
        Calls are serialised (the collector keeps per-app state between cycles)."""
        with self._cycle_lock:
            return self._collect(self._clock() if now is None else now)

    def _collect(self, now: float) -> tuple[SparkAppSnapshot, ...]:
        self._drain_feed(now)

        found = self._discover(now)
        self.last_discovery = found
        by_target = {d.target: d for d in found}
        for d in found:
            self._health[d.target].record(now, d.ok, d.duration_seconds, d.error)
            for note in d.notes:
                log.debug("spark discovery %s: %s", d.target, note)

        locations = place_apps((loc for d in found for loc in d.locations),
                               {app_id: st.fingerprint for app_id, st in self._apps.items()})
        for app_id, loc in locations.items():
            st = self._apps.get(app_id)
            if st is None:
                st = self._apps[app_id] = _AppState(target=loc.target)
                if loc.split_from:
                    log.warning("spark: two drivers report application id %s; the one at %s is "
                                "shown as %s", loc.split_from, loc.found_at, app_id)
            st.target, st.found_at, st.fingerprint = loc.target, loc.found_at, app_fingerprint(loc.app)

        futures = [(loc, self._pool.submit(self._collect_one, loc, self._apps[app_id], now))
                   for app_id, loc in locations.items()]
        snaps: list[SparkAppSnapshot] = [f.result() for _, f in futures]

        # Apps last found at a URL that did not answer this time (refused: driver gone; timeout):
        # their last snapshot, marked stale, for down_app_ttl. Otherwise an app not found is gone.
        for app_id, st in list(self._apps.items()):
            if app_id in locations:
                continue
            d = by_target.get(st.target)
            reason = dict(d.unanswered).get(st.found_at) if d is not None else None
            if reason is not None and st.last_snapshot is not None \
                    and now - st.last_seen <= self.down_app_ttl:
                err = SourceStatus(source=SRC_APPLICATIONS, url=st.found_at, fetched_at=now,
                                   ok=False, error=reason)
                snaps.append(down_snapshot(st.last_snapshot, now, (err,)))
            else:
                del self._apps[app_id]
                self._gone[app_id] = self._clock()  # after this cycle's feed drain

        self._gone = {a: at for a, at in self._gone.items() if now - at <= self.feed_app_ttl}
        snaps = self._merge_feed(snaps, now, {key: loc.split_from for key, loc in locations.items()
                                              if loc.split_from})
        snaps = [self._finalise(s) for s in snaps]
        keep = {q.id for s in snaps for q in s.queries if q.id}
        self.tracker.expire(now, keep)
        snaps.sort(key=lambda s: (s.app.name, s.app.id))
        return tuple(snaps)

    def _collect_one(self, loc: AppLocation, st: _AppState, now: float) -> SparkAppSnapshot:
        try:
            return _AppRun(self, loc, st, now).run()
        except Exception as e:  # a bug must not take the cycle down
            log.exception("spark collector: internal error collecting %s", loc.app.id)
            err = SourceStatus(source=SRC_APPLICATIONS, url=loc.api_root or loc.target,
                               fetched_at=self._clock(), ok=False,
                               error=f"internal error: {type(e).__name__}: {e}")
            return SparkAppSnapshot(app=loc.app, collected_at=now, sources=(err,))

    def _discover(self, now: float) -> tuple[Discovered, ...]:
        jobs: list[tuple[Target, Any]] = []
        for t in self.targets:
            if isinstance(t, UiTarget):
                jobs.append((t, self._pool.submit(discover_ui, self.client, t, now)))
            elif isinstance(t, PortRangeTarget):
                for url in t.urls():
                    jobs.append((t, self._pool.submit(probe_port, self.client, t, url, now)))
            elif isinstance(t, MasterTarget):
                jobs.append((t, self._pool.submit(discover_master, self.client, t, now)))
            elif isinstance(t, HistoryTarget):
                jobs.append((t, self._pool.submit(discover_history, self.client, t, now)))
        results: dict[str, list[Discovered]] = {}
        for t, fut in jobs:
            try:
                d = fut.result()
            except Exception as e:
                log.exception("spark discovery failed for %s", t.name)
                d = Discovered(target=t.name, locations=(), ok=False,
                               error=f"internal error: {type(e).__name__}: {e}",
                               attempted_at=now, duration_seconds=0.0, requests=0)
            results.setdefault(t.name, []).append(d)
        out = []
        for t in self.targets:
            ds = results.get(t.name, [])
            if isinstance(t, PortRangeTarget):
                out.append(combine_port_probes(t, ds, now))
            elif ds:
                out.append(ds[0])
        return tuple(out)

    # -- progress feed -----------------------------------------------------------------------

    def _drain_feed(self, now: float) -> None:
        if self.feed is None:
            return
        h = self._health[FEED_HEALTH_NAME]
        start = time.monotonic()
        try:
            items = self.feed.drain()
        except Exception as e:
            log.warning("spark progress feed: drain failed: %s", e)
            h.record(now, False, time.monotonic() - start, f"drain failed: {type(e).__name__}: {e}")
            return
        invalid = self.tracker.invalid_total
        self.tracker.ingest_raw(items or (), received_at=self._clock())
        bad = self.tracker.invalid_total - invalid
        h.record(now, True, time.monotonic() - start, None)
        if bad:
            h.error = f"{bad} malformed event(s) skipped; last: {self.tracker.last_error}"

    def _merge_feed(self, snaps: list[SparkAppSnapshot], now: float,
                    split: dict[str, str]) -> list[SparkAppSnapshot]:
        """Listener progress merged into the apps' queries. `split`: key -> Spark's id, for
        apps shown under another key because another driver reports the same id."""
        tracked = self.tracker.queries()
        if not tracked:
            return snaps
        attached: set[str] = set()
        by_app: dict[str, list] = {}
        for t in tracked:
            if t.app_id:
                by_app.setdefault(t.app_id, []).append(t)
        # first every query the apps know, so that a query is never added to another app
        # that reports the same id (two local drivers started in one millisecond)
        merged: list[tuple[SparkAppSnapshot, list, list]] = []
        for snap in snaps:
            qs = list(snap.queries)
            touched = []
            for i, q in enumerate(qs):
                t = self.tracker.get(q.id)
                if t is None and q.id is None and q.name:
                    cands = [c for c in self.tracker.by_name(q.name)
                             if c.query_id not in attached and c.app_id in (None, snap.app.id)]
                    t = cands[0] if len(cands) == 1 else None
                if t is None or t.query_id in attached:
                    continue
                qs[i] = merge_tracked(q, t, max_batches=self.max_batches)
                attached.add(t.query_id)
                touched.append(t)
            merged.append((snap, qs, touched))
        # then the queries only the feed knows, by app id; where two drivers report that id,
        # to the one whose name the feed gives
        shared = set(split.values())
        out = []
        for snap, qs, touched in merged:
            spark_id = split.get(snap.app.id, snap.app.id)
            for t in by_app.get(spark_id, ()):
                if t.query_id not in attached and (spark_id not in shared
                                                   or t.app_name == snap.app.name):
                    qs.append(merge_tracked(None, t, max_batches=self.max_batches))
                    attached.add(t.query_id)
                    touched.append(t)
            if touched:
                src = SourceStatus(source=SRC_PROGRESS, url="progress-feed",
                                   fetched_at=max(t.last_event_at for t in touched), ok=True)
                snap = replace(snap, queries=tuple(qs), sources=snap.sources + (src,))
            out.append(snap)
        known = {s.app.id for s in out} | shared
        for app_id, ts in by_app.items():
            if app_id in known:
                continue
            gone_at = self._gone.get(app_id)
            ts = [t for t in ts if t.query_id not in attached and
                  now - t.last_event_at <= self.feed_app_ttl and
                  (gone_at is None or t.last_event_at > gone_at)]
            if not ts:
                continue
            last = max(t.last_event_at for t in ts)
            app = SparkApp(id=app_id, name=next((t.app_name for t in ts if t.app_name), ""),
                           ui_url=None, attempt=None, start_time=None, end_time=None,
                           spark_version=None, completed=False, fetched_at=last,
                           discovered_via="progress-feed")
            qs = tuple(merge_tracked(None, t, max_batches=self.max_batches) for t in ts)
            out.append(SparkAppSnapshot(
                app=app, collected_at=now, queries=qs,
                sources=(SourceStatus(source=SRC_PROGRESS, url="progress-feed", fetched_at=last,
                                      ok=True),)))
        return out

    def _trigger_interval_ms(self, query) -> int | None:
        """The estimate from batch start times; while batches overrun the trigger (when the
        estimate cannot be trusted) keep the last trusted one, since that is exactly when the
        batch-over-trigger alert needs it."""
        estimate = estimate_trigger_interval_ms(query.batches)
        key = query.id or query.label
        if estimate is not None:
            self._trigger_ms[key] = estimate
            return estimate
        return self._trigger_ms.get(key)

    def _finalise(self, snap: SparkAppSnapshot) -> SparkAppSnapshot:
        qs = list(snap.queries)
        # a finished app runs no query, and neither does one whose driver does not answer
        # (whatever its last progress said: a killed driver sends no "terminated" event)
        ended_by = "app" if snap.app.completed else "app unreachable" if snap.stale else None
        if ended_by:
            qs = [replace(q, state=QueryState.TERMINATED, state_source=ended_by)
                  if q.state in (QueryState.ACTIVE, QueryState.UNKNOWN) else q for q in qs]
        qs = [replace(q, trigger_interval_ms=self._trigger_interval_ms(q)) for q in qs]
        qs.sort(key=lambda q: (q.label, q.id or ""))
        return replace(snap, queries=tuple(qs))
