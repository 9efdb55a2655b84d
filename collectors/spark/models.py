"""Immutable snapshots of Spark applications: what one Spark collection cycle saw.

Same conventions as `collectors.models` (the Kafka side): frozen, slotted dataclasses; tuples,
never lists or dicts, inside them; timestamps are UNIX seconds (float). Every value that came from
a fetch carries the time that fetch returned (`fetched_at`), or, for progress events from the
listener feed, the time streamscope received them (`received_at`).

Units follow Spark where Spark is explicit: `_ms` fields are milliseconds as Spark reports them,
`_bytes` are bytes, rates are rows per second. The exporter converts to base units.

Where the data comes from (Spark 4.x has no REST endpoint for Structured Streaming queries):

| model            | source                                                                 |
|------------------|------------------------------------------------------------------------|
| SparkApp         | `/api/v1/applications` (driver UI, History Server), standalone master `/json/` |
| JobSummary       | `/api/v1/applications/{id}/jobs?status=RUNNING&status=FAILED`           |
| StageSummary     | `/api/v1/applications/{id}/stages?status=FAILED`                        |
| Executor         | `/api/v1/applications/{id}/allexecutors`                                |
| StreamingQuery   | `/sql?details=false` (one execution per micro-batch), `/metrics/json/` gauges, the `/StreamingQuery/` UI page, and the listener's `progress.json` feed |
| DStreamStats     | `/api/v1/applications/{id}/streaming/{statistics,batches,receivers}`    |
| DriverMetrics    | `/metrics/json/` (driver MetricsServlet)                                |
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from collectors.spark.sinks import SinkInfo, sink_info

# Source names used in `SourceStatus.source` (and `SparkAppSnapshot.errors` keys).
SRC_APPLICATIONS = "applications"
SRC_JOBS = "jobs"
SRC_STAGES = "stages"
SRC_EXECUTORS = "executors"
SRC_SQL = "sql"
SRC_METRICS = "metrics"
SRC_PROMETHEUS = "prometheus"
SRC_STREAMING_UI = "streaming_ui"
SRC_DSTREAM_STATISTICS = "streaming_statistics"
SRC_DSTREAM_BATCHES = "streaming_batches"
SRC_DSTREAM_RECEIVERS = "streaming_receivers"
SRC_PROGRESS = "progress"


# --------------------------------------------------------------------------------------------
# Application
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SparkApp:
    id: str
    name: str
    ui_url: str | None  # driver UI root (or History Server app UI); None if unknown
    attempt: str | None  # attempt id (YARN, History Server); None for local/standalone
    start_time: float | None
    end_time: float | None  # None while running
    spark_version: str | None
    completed: bool
    fetched_at: float
    user: str | None = None
    last_updated: float | None = None
    discovered_via: str = "ui"  # ui | port-scan | master | history | progress-feed
    master_state: str | None = None  # RUNNING, WAITING, ... when known from a standalone master


# --------------------------------------------------------------------------------------------
# Jobs, stages, executors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedJob:
    job_id: int
    name: str
    description: str | None
    submission_time: float | None
    completion_time: float | None
    failed_tasks: int
    failed_stages: int


@dataclass(frozen=True, slots=True)
class JobSummary:
    """Jobs in the listing the driver returned (it retains `spark.ui.retainedJobs`).

    `succeeded` is None when the listing was filtered to running + failed jobs (the default,
    to keep the request small); the collector then fills it from the driver's
    `appStatus.jobs.succeededJobs` counter when the metrics servlet is available.
    """

    active: int
    failed: int
    succeeded: int | None
    failed_jobs: tuple[FailedJob, ...]
    fetched_at: float

    @property
    def failed_job_ids(self) -> tuple[int, ...]:
        return tuple(j.job_id for j in self.failed_jobs)

    @property
    def failed_job_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.failed_jobs)


@dataclass(frozen=True, slots=True)
class FailedStage:
    stage_id: int
    attempt_id: int
    name: str
    failure_reason: str | None
    failed_tasks: int
    submission_time: float | None
    completion_time: float | None


@dataclass(frozen=True, slots=True)
class StageSummary:
    """Stages in the listing (by default `?status=FAILED`, so `active` is then 0)."""

    failed_stages: tuple[FailedStage, ...]
    failed_tasks: int  # sum of numFailedTasks over the listed stages
    active: int
    fetched_at: float


@dataclass(frozen=True, slots=True)
class Executor:
    id: str  # "driver" or a number as a string
    host_port: str | None
    active: bool
    memory_used_bytes: int  # storage memory used
    max_memory_bytes: int  # storage memory available
    disk_used_bytes: int
    total_gc_time_ms: int
    failed_tasks: int
    active_tasks: int
    completed_tasks: int
    total_tasks: int
    total_cores: int
    max_tasks: int
    total_duration_ms: int
    fetched_at: float
    add_time: float | None = None
    remove_time: float | None = None
    remove_reason: str | None = None
    peak_jvm_heap_bytes: int | None = None
    excluded: bool = False

    @property
    def is_driver(self) -> bool:
        return self.id == "driver"


# --------------------------------------------------------------------------------------------
# Structured Streaming
# --------------------------------------------------------------------------------------------


class QueryState(str, Enum):
    ACTIVE = "active"
    TERMINATED = "terminated"
    FAILED = "failed"
    UNKNOWN = "unknown"  # no source said (metrics gauges off, no listener, no UI page)


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """One source of one micro-batch, from the progress JSON.

    Offsets are kept raw (JSON text exactly as Spark reported them: a number for the rate source,
    `{"topic": {"0": 12}}` for Kafka) and, when Kafka-shaped, also per topic-partition.
    """

    description: str
    start_offset: str | None
    end_offset: str | None
    latest_offset: str | None
    start_offsets: tuple[PartitionOffset, ...] = ()
    end_offsets: tuple[PartitionOffset, ...] = ()
    latest_offsets: tuple[PartitionOffset, ...] = ()
    num_input_rows: int | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    min_offsets_behind_latest: float | None = None  # Kafka source metrics
    avg_offsets_behind_latest: float | None = None
    max_offsets_behind_latest: float | None = None

    @property
    def is_kafka(self) -> bool:
        return bool(self.end_offsets or self.start_offsets or self.latest_offsets) or \
            self.description.lower().startswith("kafka")


@dataclass(frozen=True, slots=True)
class TriggerDurations:
    """`durationMs` of a progress report: time spent per trigger phase, milliseconds."""

    add_batch_ms: int | None = None
    get_batch_ms: int | None = None
    latest_offset_ms: int | None = None
    query_planning_ms: int | None = None
    wal_commit_ms: int | None = None
    commit_offsets_ms: int | None = None
    trigger_execution_ms: int | None = None
    other: tuple[tuple[str, int], ...] = ()  # phases not named above (e.g. "commitBatch")


@dataclass(frozen=True, slots=True)
class StateOperatorProgress:
    operator_name: str
    num_rows_total: int
    num_rows_updated: int
    memory_used_bytes: int
    num_rows_dropped_by_watermark: int = 0


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """One micro-batch of one query run.

    `origin` says where it came from: "listener" (full progress JSON) or "sql" (the REST SQL
    listing: only batch id, time, duration, status). For "sql", `timestamp` is the submission
    time of the batch's first SQL execution and `duration_ms` spans its executions.
    """

    batch_id: int
    run_id: str | None
    origin: str  # listener | sql
    received_at: float  # when streamscope fetched/received this record
    timestamp: float | None  # trigger start, UNIX seconds
    duration_ms: int | None
    status: str = "COMPLETED"  # sql: RUNNING | COMPLETED | FAILED | INTERRUPTED (query stopped)
    error: str | None = None
    durations: TriggerDurations | None = None
    num_input_rows: int | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    watermark: float | None = None  # None before the first watermark (Spark reports epoch 0)
    event_time_min: float | None = None
    event_time_avg: float | None = None
    event_time_max: float | None = None
    state_operators: tuple[StateOperatorProgress, ...] = ()
    sources: tuple[SourceProgress, ...] = ()
    sink_description: str | None = None
    sink_output_rows: int | None = None
    sink_topics: tuple[str, ...] = ()  # Kafka topics written, sent by the streamscope listener

    @property
    def measured_duration_ms(self) -> int | None:
        """How long the batch took: `duration_ms`, else the listener's triggerExecution."""
        if self.duration_ms is not None:
            return self.duration_ms
        return self.durations.trigger_execution_ms if self.durations is not None else None

    @property
    def sink(self) -> SinkInfo | None:
        """The sink's kind and, for Kafka, its topics (`collectors.spark.sinks`)."""
        return sink_info(self.sink_description, self.sink_topics)

    @property
    def event_time_delay_seconds(self) -> float | None:
        """Trigger time minus the newest event time in the batch: how stale the data is."""
        if self.timestamp is None or self.event_time_max is None:
            return None
        return self.timestamp - self.event_time_max

    @property
    def watermark_delay_seconds(self) -> float | None:
        """Trigger time minus the watermark (late-data threshold plus event-time delay)."""
        if self.timestamp is None or self.watermark is None:
            return None
        return self.timestamp - self.watermark

    @property
    def state_rows_total(self) -> int | None:
        if not self.state_operators:
            return None
        return sum(op.num_rows_total for op in self.state_operators)

    @property
    def state_memory_bytes(self) -> int | None:
        if not self.state_operators:
            return None
        return sum(op.memory_used_bytes for op in self.state_operators)

    @property
    def rows_dropped_by_watermark(self) -> int | None:
        if not self.state_operators:
            return None
        return sum(op.num_rows_dropped_by_watermark for op in self.state_operators)


@dataclass(frozen=True, slots=True)
class QueryGauges:
    """Per-query gauges of the driver metrics servlet (`spark.sql.streaming.metricsEnabled`).

    `query` is the name Spark registered the metrics source under: the query name, or its id
    when the query is unnamed. Gauges exist only while the query is active.
    """

    query: str
    fetched_at: float
    input_rate: float | None = None  # inputRate-total, rows/s
    processing_rate: float | None = None  # processingRate-total, rows/s
    latency_ms: float | None = None  # latency: last trigger duration
    watermark: float | None = None  # eventTime-watermark, UNIX seconds (None if 0)
    state_rows_total: int | None = None  # states-rowsTotal
    state_used_bytes: int | None = None  # states-usedBytes


@dataclass(frozen=True, slots=True)
class StreamingQuery:
    id: str | None  # None only when the query is known just by name (metrics gauges)
    name: str | None
    run_id: str | None  # current run
    state: QueryState
    exception: str | None
    last_batch_id: int | None
    batches: tuple[BatchProgress, ...]  # oldest first, at most the collector's max_batches
    updated_at: float  # latest fetch/receive time of any value in here
    gauges: QueryGauges | None = None
    started_at: float | None = None  # current run start (listener "started" event)
    ui_status: str | None = None  # RUNNING / FINISHED / FAILED from the /StreamingQuery/ page
    state_source: str | None = None  # which source decided `state`
    # Spark does not report the trigger; estimated from batch start times (a ProcessingTime
    # trigger fires at epoch multiples of its interval). None: not periodic / too few batches.
    trigger_interval_ms: int | None = None

    @property
    def key(self) -> str:
        return self.id or f"name:{self.name}"

    @property
    def label(self) -> str:
        """What to show / use as the `query` label: the name, else the id."""
        return self.name or self.id or ""

    @property
    def last_batch(self) -> BatchProgress | None:
        return self.batches[-1] if self.batches else None

    @property
    def last_progress(self) -> BatchProgress | None:
        """Latest batch with full progress (from the listener feed)."""
        for b in reversed(self.batches):
            if b.origin == "listener":
                return b
        return None

    @property
    def sink(self) -> SinkInfo | None:
        """What the query writes to, from its latest full progress (None: not known)."""
        last = self.last_progress
        return last.sink if last is not None else None


# --------------------------------------------------------------------------------------------
# DStreams (legacy Spark Streaming)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DStreamBatch:
    batch_id: int  # batch time in epoch ms, as Spark numbers DStream batches
    batch_time: float | None
    status: str  # QUEUED | PROCESSING | COMPLETED
    input_size: int
    scheduling_delay_ms: int | None
    processing_time_ms: int | None
    total_delay_ms: int | None
    num_active_output_ops: int = 0
    num_completed_output_ops: int = 0
    num_failed_output_ops: int = 0
    num_total_output_ops: int = 0
    first_failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DStreamReceiver:
    stream_id: int
    name: str
    active: bool | None
    executor_id: str | None
    executor_host: str | None
    avg_event_rate: float | None
    last_error: str | None = None
    last_error_time: float | None = None


@dataclass(frozen=True, slots=True)
class DStreamStats:
    start_time: float | None
    batch_duration_ms: int
    num_receivers: int
    num_active_receivers: int
    num_inactive_receivers: int
    total_completed_batches: int
    retained_completed_batches: int
    active_batches: int
    processed_records: int
    received_records: int
    avg_input_rate: float | None
    avg_scheduling_delay_ms: float | None
    avg_processing_time_ms: float | None
    avg_total_delay_ms: float | None
    fetched_at: float
    receivers: tuple[DStreamReceiver, ...] = ()
    batches: tuple[DStreamBatch, ...] = ()  # newest first, as Spark lists them

    @property
    def last_completed_batch(self) -> DStreamBatch | None:
        for b in self.batches:
            if b.status == "COMPLETED":
                return b
        return None


# --------------------------------------------------------------------------------------------
# Driver metrics servlet
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriverMetrics:
    """Selected driver metrics from `/metrics/json/`. Counters are lifetime totals."""

    namespace: str  # spark.metrics.namespace (default: the app id)
    fetched_at: float
    active_jobs: int | None = None
    all_jobs: int | None = None
    running_stages: int | None = None
    waiting_stages: int | None = None
    failed_stages: int | None = None  # DAGScheduler gauge
    jobs_succeeded_total: int | None = None  # appStatus counters
    jobs_failed_total: int | None = None
    stages_completed_total: int | None = None
    stages_failed_total: int | None = None
    tasks_completed_total: int | None = None
    tasks_failed_total: int | None = None
    tasks_killed_total: int | None = None
    listener_events_dropped_total: int | None = None  # all LiveListenerBus queues
    jvm_heap_bytes: int | None = None  # ExecutorMetrics.JVMHeapMemory (peak since last poll)
    queries: tuple[QueryGauges, ...] = ()


# --------------------------------------------------------------------------------------------
# Per-source status and the app snapshot
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Outcome of one source of one app in one cycle."""

    source: str  # one of the SRC_* names
    url: str
    fetched_at: float
    ok: bool
    error: str | None = None
    http_status: int | None = None
    duration_seconds: float = 0.0
    skipped: str | None = None  # why nothing was fetched/used (not an error), e.g. "not a DStream app"


@dataclass(frozen=True, slots=True)
class SparkAppSnapshot:
    app: SparkApp
    collected_at: float
    jobs: JobSummary | None = None
    stages: StageSummary | None = None
    executors: tuple[Executor, ...] = ()
    queries: tuple[StreamingQuery, ...] = ()
    dstream: DStreamStats | None = None
    driver: DriverMetrics | None = None
    sources: tuple[SourceStatus, ...] = ()
    stale: bool = False  # True: the app could not be reached this cycle; data is the last good

    @property
    def ok(self) -> bool:
        return not self.stale and all(s.ok for s in self.sources)

    @property
    def answered(self) -> bool:
        """The driver answered this cycle: not stale, and some source was read (a snapshot
        without source statuses counts as answered)."""
        return not self.stale and (not self.sources or any(s.ok for s in self.sources))

    @property
    def unreachable(self) -> bool:
        """Not finished, yet its driver did not answer this cycle (gone, or not responding):
        what is shown of it is its last good data, if any."""
        return not self.app.completed and not self.answered

    @property
    def errors(self) -> dict[str, str]:
        return {s.source: s.error or "error" for s in self.sources if not s.ok}

    @property
    def fetched_at(self) -> dict[str, float]:
        return {s.source: s.fetched_at for s in self.sources if s.ok and s.skipped is None}

    def source(self, name: str) -> SourceStatus | None:
        for s in self.sources:
            if s.source == name:
                return s
        return None

    def query(self, key: str) -> StreamingQuery | None:
        """Find a query by id or name."""
        for q in self.queries:
            if key in (q.id, q.name):
                return q
        return None

    @property
    def is_dstream(self) -> bool:
        return self.dstream is not None

    @property
    def active_executors(self) -> tuple[Executor, ...]:
        return tuple(e for e in self.executors if e.active)


# --------------------------------------------------------------------------------------------
# Derived: what the snapshot's readers see (built by `collectors.spark.views`)
# --------------------------------------------------------------------------------------------

# How a query's Kafka lag was measured (`TopicLag.method`), best first.
LAG_VS_END_OFFSETS = "vs topic end offsets"  # the Kafka collector's end offsets of this cycle
LAG_VS_BATCH_LATEST = "vs latest offsets at batch"  # what the source saw as latest at its batch
LAG_SPARK_METRIC = "maxOffsetsBehindLatest"  # Spark's own source metric


@dataclass(frozen=True, slots=True)
class TopicLag:
    """Messages a query has still to read from one topic, summed over its partitions."""

    topic: str
    messages: int
    method: str  # one of the LAG_* names


@dataclass(frozen=True, slots=True)
class SparkQueryView:
    """One Structured Streaming query as alerts, the exporter, storage and the dashboard read it."""

    raw: StreamingQuery
    kafka_lag: tuple[TopicLag, ...] = ()  # by topic; empty when not known
    source_topics: tuple[str, ...] = ()  # Kafka topics it reads, from its latest full progress

    @property
    def label(self) -> str:
        return self.raw.label

    @property
    def active(self) -> bool:
        return self.raw.state == QueryState.ACTIVE

    @property
    def stopped(self) -> bool:
        """Terminated or failed: no batch is expected."""
        return self.raw.state in (QueryState.TERMINATED, QueryState.FAILED)

    @property
    def failed(self) -> bool:
        """Ended with an exception."""
        return self.raw.state == QueryState.FAILED or (
            self.raw.state == QueryState.TERMINATED and bool(self.raw.exception))

    @property
    def trigger_interval_seconds(self) -> float | None:
        """The ProcessingTime trigger as the collector estimated it; None: not periodic."""
        ms = self.raw.trigger_interval_ms
        return None if ms is None else ms / 1000.0

    @property
    def finished_batches(self) -> tuple[BatchProgress, ...]:
        """Batches that are not running, oldest first."""
        return tuple(b for b in self.raw.batches if b.status != "RUNNING")

    @property
    def last_finished_batch(self) -> BatchProgress | None:
        for b in reversed(self.raw.batches):
            if b.status != "RUNNING":
                return b
        return None

    @property
    def kafka_lag_total(self) -> int | None:
        return sum(t.messages for t in self.kafka_lag) if self.kafka_lag else None

    @property
    def kafka_lag_method(self) -> str:
        """The best method any topic's lag was measured with; "none" when not known."""
        methods = {t.method for t in self.kafka_lag}
        return next((m for m in (LAG_VS_END_OFFSETS, LAG_VS_BATCH_LATEST, LAG_SPARK_METRIC) if m in methods), "none")


@dataclass(frozen=True, slots=True)
class SparkAppView:
    """One application as the snapshot's readers see it: its exported `app` label (unique in
    the snapshot), and its queries with their lag."""

    raw: SparkAppSnapshot
    label: str
    queries: tuple[SparkQueryView, ...] = ()  # every query the app reports
    # One query per label (the active one, else the most recently updated), sorted by label:
    # what is exported and alerted on (a query restarted under its name is not counted twice).
    current_queries: tuple[SparkQueryView, ...] = ()

    @property
    def up(self) -> bool:
        """Running and answered this cycle."""
        return self.raw.answered and not self.raw.app.completed

    @property
    def unreachable(self) -> bool:
        return self.raw.unreachable

    @property
    def failed_jobs(self) -> int | None:
        """Jobs failed since the app started: the driver's counter, else the jobs listing's count."""
        drv, jobs = self.raw.driver, self.raw.jobs
        if drv is not None and drv.jobs_failed_total is not None:
            return drv.jobs_failed_total
        return jobs.failed if jobs is not None else None

    @property
    def jobs_active(self) -> int | None:
        drv, jobs = self.raw.driver, self.raw.jobs
        if jobs is not None:
            return jobs.active
        return drv.active_jobs if drv is not None else None

    def failed_jobs_since(self, since: float) -> int | None:
        """Listed failed jobs that completed at or after `since`; None when the listing cannot
        tell (no listing, failures counted but not listed, a job without a time)."""
        jobs = self.raw.jobs
        if jobs is None or (not jobs.failed_jobs and jobs.failed > 0):
            return None
        times = [j.completion_time if j.completion_time is not None else j.submission_time
                 for j in jobs.failed_jobs]
        if any(t is None for t in times):
            return None
        return sum(1 for t in times if t >= since)
