"""streamscope: the Spark collector.

Polls Spark driver UIs (and a standalone master / History Server for discovery) over HTTP and
produces immutable `SparkAppSnapshot`s; Structured Streaming progress can also arrive through a
`ProgressFeed` (the streamscope listener publishing `progress.json` to Kafka).

- `models`: the frozen snapshot dataclasses
- `parse`: pure parsers, one per Spark source (tested on real Spark 4.3.0 captures)
- `client`: the HTTP fetch layer (the only network I/O)
- `discovery`: targets and how apps are found
- `progress`: `ProgressFeed` protocol and the per-query tracker
- `lag`: `query_kafka_lag` and the consumer-group-like hooks for time lag
- `collector`: `SparkCollector`
"""
from collectors.spark.collector import SparkCollector
from collectors.spark.discovery import (
    HistoryTarget,
    MasterTarget,
    PortRangeTarget,
    UiTarget,
    parse_target,
)
from collectors.spark.lag import (
    QueryPartitionLag,
    QueryPosition,
    query_as_consumer_group,
    query_kafka_lag,
    query_positions,
)
from collectors.spark.models import (
    BatchProgress,
    DriverMetrics,
    DStreamStats,
    Executor,
    JobSummary,
    QueryGauges,
    QueryState,
    SourceProgress,
    SourceStatus,
    SparkApp,
    SparkAppSnapshot,
    StageSummary,
    StreamingQuery,
)
from collectors.spark.parse import SparkParseError
from collectors.spark.progress import ProgressFeed, QueryTracker

__all__ = [
    "BatchProgress", "DStreamStats", "DriverMetrics", "Executor", "HistoryTarget", "JobSummary",
    "MasterTarget", "PortRangeTarget", "ProgressFeed", "QueryGauges", "QueryPartitionLag",
    "QueryPosition", "QueryState", "QueryTracker", "SourceProgress", "SourceStatus", "SparkApp",
    "SparkAppSnapshot", "SparkCollector", "SparkParseError", "StageSummary", "StreamingQuery",
    "UiTarget", "parse_target", "query_as_consumer_group", "query_kafka_lag", "query_positions",
]
