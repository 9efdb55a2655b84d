"""Defensive, duck-typed access to Spark snapshots.

Written against `collectors.spark.models.SparkAppSnapshot` (app.name, queries[].label/state/
exception/batches, jobs.failed_jobs, driver.jobs_failed_total) but only assumes the shape below,
tries a few spellings of each attribute (snake_case, camelCase, mappings), and returns None when
something is absent, so the alert rules never crash on a partial snapshot:

    app:    app.name | name | app_name | app_id | id;  queries;  app.id | app_id | id and
            app.completed | completed (to label apps sharing a name like the exporter does);
            unreachable (else: stale and not completed): its driver did not answer this cycle;
            failed-jobs counter: driver.jobs_failed_total | failed_jobs | jobs_failed | jobs.failed;
            failed jobs with times: jobs.failed_jobs[].completion_time | jobs[] with status FAILED;
            trigger_interval_* (fallback for its queries)
    query:  label | name | query_name | id;  state | status (str or Enum);  exception | error;
            batches | recent_batches | recent_progress | progress (sorted by batch_id, deduplicated,
            RUNNING batches left out); trigger_interval_ms | trigger_interval_seconds |
            trigger_interval (seconds) | trigger ("ProcessingTime(2000 ms)");
            Kafka lag: kafka_lag | lag_by_topic ({topic: messages}), else computed from the last
            batch's Kafka source end offsets against the topic end offsets in the snapshot
            (collectors.spark.lag), else latest_offsets - end_offsets of that batch, else
            sources[].max_offsets_behind_latest
    batch:  duration_ms | batch_duration_ms | batchDuration | durations.trigger_execution_ms;
            input_rows_per_second | inputRowsPerSecond; processed_rows_per_second |
            processedRowsPerSecond; timestamp | at | batch_time; batch_id | batchId; status
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from collectors.values import finite_float as _num

from ._util import parse_timestamp

_MISSING = object()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def get(obj: Any, *names: str, default: Any = None) -> Any:
    """First present, non-None attribute/key among `names` (each also tried in camelCase)."""
    if obj is None:
        return default
    for name in names:
        for candidate in (name, _camel(name)):
            if isinstance(obj, Mapping):
                value = obj.get(candidate, _MISSING)
            else:
                value = getattr(obj, candidate, _MISSING)
            if value is not _MISSING and value is not None:
                return value
    return default


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        value = value.value
    return str(value)


def _seq(value: Any) -> list:
    if value is None or isinstance(value, (str, bytes)):
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    try:
        return list(value)
    except TypeError:
        return []


def spark_apps(snapshot: Any) -> list:
    return _seq(get(snapshot, "spark", "spark_apps"))


def app_name(app: Any) -> str:
    inner = get(app, "app")
    if inner is not None and not isinstance(inner, (str, bytes)):
        name = get(inner, "name", "id")
        if name:
            return _text(name)
    return _text(get(app, "name", "app_name", "application_name", "app_id", "id", "url", default="unknown"))


def app_queries(app: Any) -> list:
    return _seq(get(app, "queries", "streaming_queries", "query_snapshots"))


def query_name(query: Any) -> str:
    return _text(get(query, "label", "name", "query_name", "id", "query_id", default="unknown")) or "unknown"


def query_state(query: Any) -> str:
    return _text(get(query, "state", "status", default="")).upper()


def query_exception(query: Any) -> str:
    return _text(get(query, "exception", "error", "failure", default=""))


def query_failed(query: Any) -> bool:
    state = query_state(query)
    if state in ("FAILED", "ERROR"):
        return True
    active = get(query, "is_active", "active")
    terminated = state in ("TERMINATED", "STOPPED") or active is False
    return bool(query_exception(query)) and (terminated or state in ("", "UNKNOWN"))


_UNFINISHED = ("RUNNING", "QUEUED", "PROCESSING", "ACTIVE")


def query_batches(query: Any) -> list:
    """Recent finished batches, oldest first; one per batch id (full listener progress preferred)."""
    batches = _seq(get(query, "batches", "recent_batches", "recent_progress", "progress"))
    if not batches:
        last = get(query, "last_batch", "last_progress")
        batches = [last] if last is not None else []
    batches = [b for b in batches if b is not None and not isinstance(b, (str, bytes, int, float))
               and _text(get(b, "status")).upper() not in _UNFINISHED]
    ids = [_num(get(b, "batch_id", "id")) for b in batches]
    if batches and all(i is not None for i in ids):
        by_id: dict[float, Any] = {}
        for i, b in zip(ids, batches):
            old = by_id.get(i)
            if old is None or get(old, "origin") != "listener" or get(b, "origin") == "listener":
                by_id[i] = b
        batches = [by_id[i] for i in sorted(by_id)]
    else:
        times = [batch_time(b) for b in batches]
        if batches and all(t is not None for t in times):
            batches = [b for _, b in sorted(zip(times, batches), key=lambda p: p[0])]
    return batches


def batch_duration_seconds(batch: Any) -> float | None:
    ms = _num(get(batch, "duration_ms", "batch_duration_ms", "batch_duration"))
    if ms is None:
        dm = get(batch, "durations", "duration_ms_detail")
        ms = _num(get(dm, "trigger_execution_ms", "trigger_execution")) if dm is not None else None
    if ms is not None:
        return ms / 1000.0
    return _num(get(batch, "duration_seconds", "batch_duration_seconds"))


def batch_input_rps(batch: Any) -> float | None:
    return _num(get(batch, "input_rows_per_second"))


def batch_processed_rps(batch: Any) -> float | None:
    return _num(get(batch, "processed_rows_per_second"))


def batch_time(batch: Any) -> float | None:
    return parse_timestamp(get(batch, "timestamp", "at", "batch_time", "time", "finished_at"))


def trigger_interval_seconds(query: Any, app: Any = None) -> float | None:
    for obj in (query, app):
        if obj is None:
            continue
        ms = _num(get(obj, "trigger_interval_ms"))
        if ms is not None:
            return ms / 1000.0
        sec = _num(get(obj, "trigger_interval_seconds", "trigger_interval"))
        if sec is not None:
            return sec
        text = get(obj, "trigger")
        if isinstance(text, str):  # e.g. "ProcessingTime(2000 ms)" / "2 seconds"
            m = re.search(r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|seconds?)\b", text)
            if m:
                v = float(m.group(1))
                return v / 1000.0 if m.group(2).startswith("m") else v
    return None


def _end_offsets(snapshot: Any) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for cs in _seq(get(snapshot, "clusters")):
        raw = get(cs, "raw")
        for t in _seq(get(raw, "topics")):
            for p in _seq(get(t, "partitions")):
                off = _num(get(p, "latest_offset"))
                if off is not None:
                    out[(str(get(t, "name")), int(_num(get(p, "partition")) or 0))] = int(off)
    return out


def _lag_from_batch_sources(query: Any, end_offsets: Mapping[tuple[str, int], int]) -> dict[str, float]:
    """Per topic: (topic end offset, else the source's latestOffset) - query endOffset, summed."""
    for b in reversed(query_batches(query)):
        sources = _seq(get(b, "sources"))
        if not any(_seq(get(src, "end_offsets")) for src in sources):
            continue
        position: dict[tuple[str, int], float] = {}
        latest: dict[tuple[str, int], float] = {}
        for src in sources:
            for p in _seq(get(src, "end_offsets")):
                k = (str(get(p, "topic")), int(_num(get(p, "partition")) or 0))
                off = _num(get(p, "offset"))
                if off is not None and (k not in position or off < position[k]):
                    position[k] = off
            for p in _seq(get(src, "latest_offsets")):
                off = _num(get(p, "offset"))
                if off is not None:
                    latest[(str(get(p, "topic")), int(_num(get(p, "partition")) or 0))] = off
        out: dict[str, float] = {}
        for k, pos in position.items():
            end = end_offsets.get(k, latest.get(k))
            if end is None:
                continue
            out[k[0]] = out.get(k[0], 0.0) + max(0.0, end - pos)
        return out
    return {}


def query_kafka_lag(query: Any, snapshot: Any = None) -> dict[str, float]:
    """{topic: messages behind}; empty when unknown."""
    direct = get(query, "kafka_lag", "lag_by_topic", "topic_lag", "source_lag")
    out: dict[str, float] = {}
    if isinstance(direct, Mapping):
        for topic, lag in direct.items():
            v = _num(lag) if not isinstance(lag, Mapping) else _num(sum(_num(x) or 0 for x in lag.values()))
            if v is not None:
                out[str(topic)] = v
        return out
    computed = _lag_from_batch_sources(query, _end_offsets(snapshot) if snapshot is not None else {})
    if computed:
        return computed
    items = _seq(direct) if direct is not None else []
    if not items:
        items = _seq(get(query, "sources", "kafka_sources"))
    if not items:
        batches = query_batches(query)
        items = _seq(get(batches[-1], "sources")) if batches else []
    for src in items:
        lag = _num(get(src, "lag", "offsets_behind", "messages_behind", "max_offsets_behind_latest"))
        if lag is None:
            metrics = get(src, "metrics")
            lag = _num(get(metrics, "max_offsets_behind_latest", "offsets_behind_latest"))
        if lag is None:
            continue
        topics = get(src, "topic", "topics")
        names = [topics] if isinstance(topics, str) else [str(t) for t in _seq(topics)]
        if not names:
            names = [_text(get(src, "description", default="source"))]
        for name in names:
            out[name] = out.get(name, 0.0) + lag
    return out


def app_failed_jobs(app: Any) -> float | None:
    """Total failed jobs reported by the app (a counter), or None."""
    driver = get(app, "driver")
    n = _num(get(driver, "jobs_failed_total")) if driver is not None else None
    if n is None:
        n = _num(get(app, "failed_jobs", "jobs_failed", "num_failed_jobs", "failed_jobs_total"))
    if n is not None:
        return n
    jobs = get(app, "jobs", "recent_jobs")
    if jobs is None:
        return None
    summary_failed = _num(get(jobs, "failed")) if not isinstance(jobs, (list, tuple)) else None
    if summary_failed is not None:
        return summary_failed
    return float(sum(1 for j in _seq(jobs) if _text(get(j, "status", "state")).upper() == "FAILED"))


def app_failed_jobs_since(app: Any, since: float) -> float | None:
    """Failed jobs that completed after `since`, when the app lists failed jobs with times."""
    jobs = get(app, "jobs", "recent_jobs")
    if jobs is None:
        return None
    if isinstance(jobs, (list, tuple)):
        failed = [j for j in jobs if _text(get(j, "status", "state")).upper() == "FAILED"]
    else:  # JobSummary-like: failed_jobs are all failed
        failed = _seq(get(jobs, "failed_jobs"))
        if not failed and (_num(get(jobs, "failed")) or 0) > 0:
            return None  # counted but not listed: let the caller use the counter history
    count = 0
    for job in failed:
        t = parse_timestamp(get(job, "completion_time", "completed_at", "finished_at", "submission_time"))
        if t is None:
            return None  # cannot tell when it failed: let the caller use the counter history
        if t >= since:
            count += 1
    return float(count)


def _inner_app(app: Any) -> Any:
    inner = get(app, "app")
    return app if inner is None or isinstance(inner, (str, bytes)) else inner


def app_completed(app: Any) -> bool:
    return bool(get(_inner_app(app), "completed", default=get(app, "completed", default=False)))


def app_unreachable(app: Any) -> bool:
    """Not finished, yet its driver did not answer this cycle (the snapshot's `unreachable`;
    without it, `stale`)."""
    value = get(app, "unreachable")
    if value is None:
        value = bool(get(app, "stale", default=False)) and not app_completed(app)
    return bool(value)


def _app_identity(app: Any) -> tuple[str, str | None, int]:
    """(name, app id, liveness as `disambiguate_app_names` takes it) of an app, duck-typed."""
    inner = _inner_app(app)
    app_id = get(inner, "id", "app_id")
    if app_id is None and inner is not app:
        app_id = get(app, "app_id", "id")
    liveness = 0 if app_completed(app) else 1 if app_unreachable(app) else 2
    return app_name(app), (None if app_id is None else _text(app_id)), liveness


def iter_apps(snapshot: Any) -> list[tuple[Any, str]]:
    """(app, `app` label) for every app, labelled exactly as the exporter labels them
    (`collectors.spark.exporter.disambiguate_app_names`): a name shared by several apps gets
    `"<name> (<app id>)"` except on the only running app with it."""
    from collectors.spark.exporter import disambiguate_app_names

    apps = spark_apps(snapshot)
    idents = [_app_identity(a) for a in apps]
    if not idents:
        return []
    labels = disambiguate_app_names([(n, i if i is not None else n, r) for n, i, r in idents])
    return list(zip(apps, labels))


def _query_rank(query: Any) -> tuple:
    updated = _num(get(query, "updated_at")) or 0.0
    return (query_state(query) == "ACTIVE", updated)


def iter_queries(snapshot: Any) -> Iterable[tuple[Any, str, Any, str]]:
    """(app, app label, query, query label) for every query of every app, one query per label
    per app (the active one, else the most recently updated), as the exporter exports them."""
    for app, name in iter_apps(snapshot):
        best: dict[str, Any] = {}
        for q in app_queries(app):
            if q is None or isinstance(q, (str, bytes, int, float)):
                continue
            label = query_name(q)
            cur = best.get(label)
            if cur is None or _query_rank(q) > _query_rank(cur):
                best[label] = q
        for label, q in best.items():
            yield app, name, q, label
