"""`/metrics/json/` (the driver's MetricsServlet) and `/metrics/prometheus/` (PrometheusServlet)."""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from collectors.spark.models import DriverMetrics, QueryGauges
from collectors.spark.parse.common import SparkParseError, require_obj


_QUERY_GAUGES = {
    "inputRate-total": "input_rate",
    "processingRate-total": "processing_rate",
    "latency": "latency_ms",
    "eventTime-watermark": "watermark",
    "states-rowsTotal": "state_rows_total",
    "states-usedBytes": "state_used_bytes",
}
_DRIVER_GAUGES = {
    "DAGScheduler.job.activeJobs": "active_jobs",
    "DAGScheduler.job.allJobs": "all_jobs",
    "DAGScheduler.stage.runningStages": "running_stages",
    "DAGScheduler.stage.waitingStages": "waiting_stages",
    "DAGScheduler.stage.failedStages": "failed_stages",
    "ExecutorMetrics.JVMHeapMemory": "jvm_heap_bytes",
}
_DRIVER_COUNTERS = {
    "appStatus.jobs.succeededJobs": "jobs_succeeded_total",
    "appStatus.jobs.failedJobs": "jobs_failed_total",
    "appStatus.stages.completedStages": "stages_completed_total",
    "appStatus.stages.failedStages": "stages_failed_total",
    "appStatus.tasks.completedTasks": "tasks_completed_total",
    "appStatus.tasks.failedTasks": "tasks_failed_total",
    "appStatus.tasks.killedTasks": "tasks_killed_total",
}
_STREAMING_PREFIX = "spark.streaming."
_DRIVER_MARK = ".driver."


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f


def parse_metrics_json(data: Any, *, source: str, fetched_at: float) -> DriverMetrics:
    """`/metrics/json/` of a driver -> selected driver metrics and per-query streaming gauges.

    Metric names are `<namespace>.driver.<source>.<name>`; the namespace is the app id unless
    `spark.metrics.namespace` is set. Streaming query gauges are
    `<namespace>.driver.spark.streaming.<query name or id>.<gauge>` (query names may contain dots;
    gauge names do not).
    """
    root = require_obj(data, source, "metrics")
    if "gauges" not in root and "counters" not in root:
        raise SparkParseError(source, "not a metrics servlet response (no 'gauges' or 'counters')")
    gauges = require_obj({} if root.get("gauges") is None else root["gauges"], source, "metrics.gauges")
    counters = require_obj({} if root.get("counters") is None else root["counters"], source,
                    "metrics.counters")

    ns_count: dict[str, int] = defaultdict(int)
    for key in list(gauges) + list(counters):
        if _DRIVER_MARK in key:
            ns_count[key.split(_DRIVER_MARK, 1)[0]] += 1
    if not ns_count:
        raise SparkParseError(source, "no driver metrics (no '<namespace>.driver.' names)")
    namespace = max(ns_count.items(), key=lambda kv: kv[1])[0]
    prefix = namespace + _DRIVER_MARK

    fields: dict[str, Any] = {}
    per_query: dict[str, dict[str, Any]] = defaultdict(dict)
    dropped = None
    for key, entry in gauges.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        value = _num(entry.get("value")) if isinstance(entry, dict) else None
        if rest in _DRIVER_GAUGES:
            if value is not None:
                fields[_DRIVER_GAUGES[rest]] = int(value)
        elif rest.startswith(_STREAMING_PREFIX) and "." in rest[len(_STREAMING_PREFIX):]:
            query, gauge = rest[len(_STREAMING_PREFIX):].rsplit(".", 1)
            if gauge in _QUERY_GAUGES:
                per_query[query][_QUERY_GAUGES[gauge]] = value
    for key, entry in counters.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        value = _num(entry.get("count")) if isinstance(entry, dict) else None
        if value is None:
            continue
        if rest in _DRIVER_COUNTERS:
            fields[_DRIVER_COUNTERS[rest]] = int(value)
        elif rest.startswith("LiveListenerBus.queue.") and rest.endswith(".numDroppedEvents"):
            dropped = (dropped or 0) + int(value)

    queries = []
    for query, vals in sorted(per_query.items()):
        wm = vals.get("watermark")
        queries.append(QueryGauges(
            query=query,
            fetched_at=fetched_at,
            input_rate=vals.get("input_rate"),
            processing_rate=vals.get("processing_rate"),
            latency_ms=vals.get("latency_ms"),
            watermark=wm / 1000.0 if wm else None,
            state_rows_total=None if vals.get("state_rows_total") is None
            else int(vals["state_rows_total"]),
            state_used_bytes=None if vals.get("state_used_bytes") is None
            else int(vals["state_used_bytes"]),
        ))
    return DriverMetrics(namespace=namespace, fetched_at=fetched_at,
                         listener_events_dropped_total=dropped, queries=tuple(queries), **fields)



@dataclass(frozen=True, slots=True)
class PromSample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


_PROM_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)"
                        r"(?:\s+\d+)?\s*$")
_PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus_text(text: str, *, source: str) -> tuple[PromSample, ...]:
    """Prometheus text exposition (as Spark's PrometheusServlet writes it) -> samples."""
    if not isinstance(text, str):
        raise SparkParseError(source, f"expected text, got {type(text).__name__}")
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if not m:
            raise SparkParseError(source, f"line {lineno}: not a Prometheus sample: {line[:80]!r}")
        labels = []
        if m.group("labels"):
            pos, s = 0, m.group("labels")
            while pos < len(s):
                lm = _PROM_LABEL.match(s, pos)
                if not lm:
                    raise SparkParseError(source, f"line {lineno}: bad labels {s[:80]!r}")
                labels.append((lm.group(1), lm.group(2).replace('\\"', '"').replace("\\\\", "\\")))
                pos = lm.end()
        try:
            value = float(m.group("value"))
        except ValueError:
            raise SparkParseError(source, f"line {lineno}: bad value {m.group('value')!r}") from None
        out.append(PromSample(m.group("name"), tuple(labels), value))
    return tuple(out)


_PROM_QUERY = re.compile(
    r"^metrics_(?P<ns>.+?)_driver_spark_streaming_(?P<query>.+)_(?P<gauge>eventTime_watermark|"
    r"inputRate_total|latency|processingRate_total|states_rowsTotal|states_usedBytes)_Value$"
)


def query_gauges_from_prometheus(
    samples: Iterable[PromSample], *, fetched_at: float,
) -> tuple[QueryGauges, ...]:
    """Streaming query gauges from PrometheusServlet samples.

    The servlet replaces every non-alphanumeric character of the query name with `_`, so the
    `query` here may differ from the real name; prefer `/metrics/json/`.
    """
    per_query: dict[str, dict[str, float]] = defaultdict(dict)
    for s in samples:
        m = _PROM_QUERY.match(s.name)
        if m:
            per_query[m.group("query")][m.group("gauge")] = s.value
    out = []
    for q, v in sorted(per_query.items()):
        wm = v.get("eventTime_watermark")
        out.append(QueryGauges(
            query=q, fetched_at=fetched_at,
            input_rate=v.get("inputRate_total"),
            processing_rate=v.get("processingRate_total"),
            latency_ms=v.get("latency"),
            watermark=wm / 1000.0 if wm else None,
            state_rows_total=None if "states_rowsTotal" not in v else int(v["states_rowsTotal"]),
            state_used_bytes=None if "states_usedBytes" not in v else int(v["states_usedBytes"]),
        ))
    return tuple(out)
