"""What a Structured Streaming query writes to: its sink's kind and, for Kafka, its topics.

Spark's progress says little: `sink.description` is a class name, with the path for a file sink,
and for Kafka no topic at all (Spark 4.2: `org.apache.spark.sql.kafka010.KafkaSourceProvider$
KafkaTable@728dbe86`); the `/sql` REST plan only names the writer class. The topic is the
query's `topic` write option, which only the driver knows: the streamscope listener reads it
there (`collectors.spark_listener.kafka_sink_topics`) and sends it with each progress event.
Real descriptions of every sink kind: tests/fixtures/spark/sink_descriptions.json.

    sink_info("FileSink[file:/data/out]")            -> SinkInfo("file", (), "file:/data/out", ...)
    sink_info("...KafkaSourceProvider$KafkaTable@1f", ["clickstream-stats"])
                                                     -> SinkInfo("kafka", ("clickstream-stats",), None, ...)
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

KAFKA, FILE, CONSOLE, FOREACH, FOREACH_BATCH, MEMORY, NOOP, OTHER = (
    "kafka", "file", "console", "foreach", "foreachBatch", "memory", "noop", "other")
MAX_TOPICS = 20
MAX_TOPIC_CHARS = 249  # Kafka's own limit on topic names
MAX_DESCRIPTION_CHARS = 200

# Checked in order against the description (case-sensitive class names as Spark prints them).
_KINDS = (
    (KAFKA, re.compile(r"kafka010|KafkaSink|KafkaTable")),
    (FILE, re.compile(r"^FileSink\[")),
    (CONSOLE, re.compile(r"Console(Table|Sink)")),
    (FOREACH_BATCH, re.compile(r"ForeachBatchSink")),
    (FOREACH, re.compile(r"ForeachWriterTable|ForeachSink")),
    (MEMORY, re.compile(r"Memory(Sink|Table)")),
    (NOOP, re.compile(r"NoopTable")),
)
_FILE_PATH = re.compile(r"^FileSink\[(.*)\]$", re.DOTALL)
_TOPIC_IN_DESCRIPTION = re.compile(r"topic[=:]\s*([A-Za-z0-9._-]+)")  # a sink that names it
_OBJECT_HASH = re.compile(r"@[0-9a-f]{4,16}\b")
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]+@")  # s3a://KEY:SECRET@bucket/...: never shown


@dataclass(frozen=True, slots=True)
class SinkInfo:
    kind: str  # kafka | file | console | foreach | foreachBatch | memory | noop | other
    topics: tuple[str, ...] = ()  # Kafka topics written, when known
    path: str | None = None  # file sinks
    description: str = ""  # Spark's description without object hashes, clipped

    @property
    def text(self) -> str:
        """"clickstream-stats (Kafka)", "file:/out (file)", "console", "Kafka (topic not named)"."""
        if self.kind == KAFKA:
            return f"{', '.join(self.topics)} (Kafka)" if self.topics else "Kafka (topic not named)"
        if self.kind == FILE:
            return f"{self.path} (file)" if self.path else "file"
        if self.kind == OTHER:
            return self.description or "unknown"
        return self.kind


def valid_topics(values: object) -> tuple[str, ...]:
    """Topic names as received (the listener's `sink.topics`): strings that can be Kafka topic
    names, at most MAX_TOPICS, others dropped."""
    if not isinstance(values, (list, tuple)):
        return ()
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and 0 < len(value) <= MAX_TOPIC_CHARS and value not in out:
            out.append(value)
    return tuple(out[:MAX_TOPICS])


def sink_kind(description: str) -> str:
    for kind, pattern in _KINDS:
        if pattern.search(description):
            return kind
    return OTHER


def sink_info(description: str | None, topics: Iterable[str] = ()) -> SinkInfo | None:
    """The sink of a progress report (None when the report has none)."""
    if not description:
        return None
    description = _URL_CREDENTIALS.sub("***@", description)
    kind = sink_kind(description)
    topics = tuple(topics)
    if kind == KAFKA and not topics:
        topics = tuple(_TOPIC_IN_DESCRIPTION.findall(description))[:MAX_TOPICS]
    path = None
    if kind == FILE:
        match = _FILE_PATH.match(description)
        path = match.group(1) if match else None
    return SinkInfo(kind, topics if kind == KAFKA else (), path,
                    _OBJECT_HASH.sub("", description)[:MAX_DESCRIPTION_CHARS])
