"""Kafka's own command-line tools, run from the cached jars: the ORACLE for lag tests.

    describe_group("127.0.0.1:9092", "my-group")
    -> [{"group": "my-group", "topic": "t", "partition": 0, "current_offset": 6,
         "log_end_offset": 10, "lag": 4, "consumer_id": None, "host": None, "client_id": None}]

``describe_group`` runs ``org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`` (the
class behind ``kafka-consumer-groups.sh``; the same class name in Kafka 3.9 and 4.x) and
parses its table, so tests compare streamscope's numbers with what Kafka itself reports.
``quorum_leader`` runs ``kafka-metadata-quorum`` for the active controller.
``create_topic`` is a plain confluent-kafka AdminClient convenience.
"""

from __future__ import annotations

import subprocess
from typing import Any, Mapping

from demo import jars
from demo.kafka_box import TOOLS_JVM_OPTIONS, logging_config_args

CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
METADATA_QUORUM_COMMAND = "org.apache.kafka.tools.MetadataQuorumCommand"
DEFAULT_TOOL_TIMEOUT_SECONDS = 90.0
# ConsumerGroupCommand's own --timeout for its admin calls; its 5 s default is too short on
# a busy box right after a broker restart ("Timed out waiting for a node assignment").
DEFAULT_ADMIN_TIMEOUT_MS = 30_000
INT_COLUMNS = ("partition", "current_offset", "log_end_offset", "lag", "leader_epoch")


class KafkaToolError(RuntimeError):
    """A Kafka CLI tool failed or printed an error (unknown group, broker down...)."""


def run_tool(main_class: str, args: list[str], *, version_set: str = "kafka",
             timeout: float = DEFAULT_TOOL_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
    """Run a Kafka CLI main class from jar set ``version_set``; bounded by ``timeout``.

    Tool logs (WARN and up) go to stderr, the tool's answer to stdout.
    """
    config_dir = jars.cache_root() / "conf"
    command = [jars.java_executable(), *TOOLS_JVM_OPTIONS,
               *logging_config_args(version_set, config_dir, level="WARN", stream="stderr"),
               "-cp", jars.classpath(version_set), main_class, *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise KafkaToolError(f"{main_class} {' '.join(args)} did not finish in {timeout:.0f} s; "
                             f"stderr so far:\n{error.stderr or ''}") from None


def describe_group(bootstrap: str, group: str, version_set: str = "kafka", *,
                   timeout: float = DEFAULT_TOOL_TIMEOUT_SECONDS,
                   admin_timeout_ms: int = DEFAULT_ADMIN_TIMEOUT_MS) -> list[dict[str, Any]]:
    """Rows of ``kafka-consumer-groups --describe --group GROUP``, one per partition.

    Keys: group, topic, partition, current_offset, log_end_offset, lag (ints, None for
    "-"), consumer_id, host, client_id (str, None for "-"). Partitions without a committed
    offset and without an assigned member are not listed by the tool. Raises
    KafkaToolError when the tool reports an error (e.g. the group does not exist).
    ``timeout`` bounds the whole JVM run, ``admin_timeout_ms`` the tool's Kafka calls.
    """
    result = run_tool(CONSUMER_GROUP_COMMAND,
                      ["--bootstrap-server", bootstrap, "--describe", "--group", group,
                       "--timeout", str(admin_timeout_ms)],
                      version_set=version_set, timeout=timeout)
    error = _tool_error(result)
    if error:
        raise KafkaToolError(f"describe group {group!r} failed: {error}")
    return parse_group_table(result.stdout)


def quorum_leader(bootstrap: str, version_set: str = "kafka", *,
                  timeout: float = DEFAULT_TOOL_TIMEOUT_SECONDS) -> int:
    """The active controller, as ``kafka-metadata-quorum --bootstrap-server B describe --status``
    shows it (``LeaderId``). Raises KafkaToolError when the tool fails."""
    result = run_tool(METADATA_QUORUM_COMMAND, ["--bootstrap-server", bootstrap, "describe", "--status"],
                      version_set=version_set, timeout=timeout)
    error = _tool_error(result)
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "LeaderId" and not error:
            return int(value)
    raise KafkaToolError(f"describe the metadata quorum failed: {error or result.stdout or result.stderr}")


def _tool_error(result: subprocess.CompletedProcess) -> str | None:
    """The tool's error text: it sometimes exits 0 after printing ``Error: ...``."""
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.startswith("Error:"):
            return line[len("Error:"):].strip()
    if result.returncode != 0:
        return f"exit {result.returncode}: {result.stderr.strip()[-2000:]}"
    return None


def parse_group_table(text: str) -> list[dict[str, Any]]:
    """Parse the whitespace-aligned table(s) printed by ConsumerGroupCommand --describe.

    Header names become snake_case keys (``CURRENT-OFFSET`` -> ``current_offset``); the last
    column takes the rest of the line. Lines outside a table (notes such as "Consumer
    group 'g' has no active members.") are ignored.
    """
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            header = None
            continue
        fields = line.split()
        if fields[0] == "GROUP" and "TOPIC" in fields:
            header = [name.lower().replace("-", "_") for name in fields]
            continue
        if header is None:
            continue
        values = line.split(None, len(header) - 1)
        if len(values) != len(header):
            continue
        rows.append({key: _cell(key, value) for key, value in zip(header, values)})
    return rows


def _cell(key: str, value: str) -> Any:
    if value == "-":
        return None
    if key in INT_COLUMNS:
        try:
            return int(value)
        except ValueError:
            return value
    return value


def create_topic(bootstrap: str, name: str, partitions: int = 1, *, replication_factor: int = 1,
                 config: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
    """Create a topic with confluent-kafka's AdminClient and wait for it (bounded)."""
    from confluent_kafka.admin import AdminClient, NewTopic  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                     config=dict(config or {}))
    futures = admin.create_topics([topic], request_timeout=timeout, operation_timeout=timeout)
    futures[name].result(timeout=timeout)


def list_topic_names(bootstrap: str, timeout: float = 10.0) -> set[str]:
    """Names of the topics the cluster reports (internal ones included)."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return set(admin.list_topics(timeout=timeout).topics)
