"""The collection's configuration sections: `clusters`, `spark` and `collection`.

Defaults are the collectors' own (`KafkaCollectorSettings`, `SignalSettings`, the Spark
collector's), read from there, not written again here.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from alerts.bounds import DAY, HOUR, count, seconds
from collectors.kafka.settings import CompiledFilter, KafkaCollectorSettings, ProbeSettings
from collectors.kafka.signals import SignalSettings
from collectors.spark.defaults import DEFAULT_DOWN_APP_TTL, DEFAULT_TIMEOUT
from monitor.settings import SecretRef, Strict, check_regexes

_SIGNALS = SignalSettings()


def _kafka_default(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(KafkaCollectorSettings) if f.name == name)


_PROBE = ProbeSettings()


class ProbeConfig(Strict):
    """The end-to-end probe of a cluster (collectors.kafka.probe): off unless enabled."""

    enabled: bool = False
    topic: str = Field(default=_PROBE.topic, pattern=r"^[A-Za-z0-9._-]{1,249}$")
    interval_seconds: float = seconds(_PROBE.interval_seconds, gt=0, le=HOUR)
    timeout_seconds: float = seconds(_PROBE.timeout_seconds, gt=0, le=300)
    # None: min(3, brokers)
    replication_factor: int | None = count(None, ge=1, le=32)

    @field_validator("timeout_seconds")
    @classmethod
    def _within_interval(cls, value: float, info) -> float:
        interval = info.data.get("interval_seconds")
        if interval is not None and value > interval:
            raise ValueError(f"must not exceed interval_seconds ({interval:g}): a round ends before the next starts")
        return value

    def settings(self) -> ProbeSettings | None:
        if not self.enabled:
            return None
        return ProbeSettings(topic=self.topic, interval_seconds=self.interval_seconds,
                             timeout_seconds=self.timeout_seconds, replication_factor=self.replication_factor)


class NameFilter(Strict):
    """Regex allow/deny list; a name is kept if it fully matches an allow and no deny pattern."""

    allow: list[str] = Field(default_factory=lambda: [".*"])
    deny: list[str] = Field(default_factory=list)

    _check = field_validator("allow", "deny")(check_regexes)

    def compile(self) -> CompiledFilter:
        return CompiledFilter(tuple(self.allow), tuple(self.deny))




# librdkafka properties naming a file (or directory) the client reads when it is created: one
# that is missing fails every cycle ("Failed to create admin client"), so it fails the config.
# ssl.ca.location may also be "probe" (the system's CA store).
CLIENT_FILE_PROPERTIES = ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.crl.location",
                          "ssl.keystore.location", "ssl.engine.location", "sasl.kerberos.keytab")


_PROTOCOL_PREFIX = re.compile(r"^[A-Za-z_]+://")


def bootstrap_problem(servers: str) -> str | None:
    """Why `servers` is not a comma-separated list of brokers as both Kafka clients of the
    collector read it (None: it is). An entry is `host`, `host:port`, `[IPv6]`, `[IPv6]:port` or
    a bare IPv6 address, optionally after `PROTOCOL://`. Anything else failed every cycle of a
    monitor that had started (a port of "90x92": ValueError; a space: no broker resolved)."""
    for raw in servers.split(","):
        entry = raw.strip()
        if not entry:
            return "an empty entry (a stray comma?)"
        address = _PROTOCOL_PREFIX.sub("", entry, count=1)
        if any(c.isspace() for c in address):
            return f"{entry!r} contains a space: brokers are separated by commas"
        if address.startswith("["):
            host, closed, rest = address[1:].partition("]")
            if not closed or not host or (rest and not rest.startswith(":")):
                return f"{entry!r}: an IPv6 address is written [address] or [address]:port"
            port = rest[1:] if rest else None
        elif address.count(":") > 1:
            try:
                ipaddress.IPv6Address(address)
            except ValueError:
                return f"{entry!r}: an IPv6 address with a port is written [address]:port"
            host, port = address, None
        else:
            host, colon, port = address.partition(":")
            port = port if colon else None
        if not host:
            return f"{entry!r} has no host"
        if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            return f"{entry!r}: the port must be a number from 1 to 65535"
    return None


class KafkaClusterConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    bootstrap_servers: str = Field(min_length=1)
    # Extra librdkafka properties (security.protocol, sasl.mechanism, ssl.ca.location, ...).
    client: dict[str, str | int | bool] = Field(default_factory=dict)
    # librdkafka properties whose values are secrets (e.g. sasl.password).
    client_secrets: dict[str, SecretRef] = Field(default_factory=dict)
    groups: NameFilter = Field(default_factory=NameFilter)
    topics: NameFilter = Field(default_factory=NameFilter)
    include_internal_topics: bool = _kafka_default("include_internal_topics")
    request_timeout_seconds: float = seconds(_kafka_default("request_timeout"), gt=0, le=300)
    max_in_flight_group_requests: int = count(_kafka_default("max_in_flight_group_requests"), ge=1, le=1024)
    batched_group_requests: bool = _kafka_default("batched_group_requests")
    # Exact time lag (collectors.kafka.readable): the worst-lagging moving positions read each
    # cycle, and positions that stay (new, stuck, on a transaction marker) read once, remembered.
    exact_time_lag_partitions: int = count(_kafka_default("exact_time_lag_partitions"), ge=0, le=10_000)
    remembered_reads_per_cycle: int = count(_kafka_default("remembered_reads_per_cycle"), ge=0, le=100_000)
    # Reading positions stops after this long in a cycle; what is left is read in the next ones.
    read_budget_seconds: float = seconds(_kafka_default("read_budget_seconds"), gt=0, le=60)
    # How the cluster's consumers read: read_committed (Kafka's transactional default for EOS
    # consumers) does not count aborted or open transactions as readable. Overrides by group
    # regex (full match, first wins).
    isolation_level: Literal["read_committed", "read_uncommitted"] = _kafka_default("isolation_level")
    group_isolation_levels: dict[str, Literal["read_committed", "read_uncommitted"]] = Field(default_factory=dict)
    # Partitions of a consumed topic without a committed offset: where would a consumer start?
    # latest (Kafka's auto.offset.reset default: no lag, but flagged) or earliest (all retained).
    uncommitted_partitions: Literal["latest", "earliest"] = _kafka_default("uncommitted_partitions")
    group_uncommitted_partitions: dict[str, Literal["latest", "earliest"]] = Field(default_factory=dict)
    # Topic ids (re-created topics) described per cycle: all topics on smaller clusters, a
    # rotating slice (plus new or suspicious topics) on larger ones.
    topic_ids_per_cycle: int = count(_kafka_default("topic_ids_per_cycle"), ge=1, le=100_000)
    # Costly facts every N cycles (0: never): topic settings (retention, cleanup policy,
    # min.insync.replicas; new topics at once) and broker log directories (DescribeLogDirs).
    topic_configs_every: int = count(_kafka_default("topic_configs_every"), ge=0, le=100_000)
    log_dirs_every: int = count(_kafka_default("log_dirs_every"), ge=0, le=100_000)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)

    def notes(self) -> list[str]:
        """What this cluster's settings leave out without failing (`check-config` prints it,
        `run` logs it): settings that ask for something another setting turns off."""
        if self.log_dirs_every > 0 and not self.batched_group_requests:
            return [f"clusters[{self.name}]: log_dirs_every is {self.log_dirs_every} but batched_group_requests "
                    "is false: log directories (disk use, free space, the size-based retention headroom) are "
                    "not collected, as confluent-kafka has no DescribeLogDirs; log_dirs_every: 0 says so"]
        return []

    @field_validator("bootstrap_servers")
    @classmethod
    def _brokers_readable(cls, value: str) -> str:
        problem = bootstrap_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("group_isolation_levels", "group_uncommitted_partitions")
    @classmethod
    def _regex_keys(cls, value: dict[str, str]) -> dict[str, str]:
        check_regexes(list(value))
        return value

    @field_validator("client")
    @classmethod
    def _no_secrets_inline(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if "password" in key or "secret" in key:
                raise ValueError(f"{key!r} is a secret: put it under client_secrets with env or file")
        return value

    @field_validator("client")
    @classmethod
    def _files_readable(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in CLIENT_FILE_PROPERTIES:
            path = value.get(key)
            if path is None or (key == "ssl.ca.location" and path == "probe"):
                continue
            if not isinstance(path, str) or not os.path.exists(path):
                raise ValueError(f"{key}: no such file or directory: {path}")
            if not os.access(path, os.R_OK):
                raise ValueError(f"{key}: not readable by this user: {path}")
        return value


class SparkConfig(Strict):
    ui_urls: list[str] = Field(default_factory=list)
    # Probe a host's port range for driver UIs, e.g. {host: 127.0.0.1, ports: "4040-4050"}.
    scan_host: str | None = None
    scan_ports: str = Field(default="4040-4045", pattern=r"^\d+(-\d+)?$")
    master_url: str | None = None
    history_server_url: str | None = None
    request_timeout_seconds: float = seconds(DEFAULT_TIMEOUT[1], gt=0, le=120)
    # Kafka topic the streamscope listener publishes progress events to (empty: not consumed).
    progress_topic: str | None = None
    progress_cluster: str | None = None
    # An app whose driver stops answering (killed, crashed, hung) keeps being shown and exported,
    # down and stale with its last values, for this long after its last answer; then it is removed.
    down_app_ttl_seconds: float = seconds(DEFAULT_DOWN_APP_TTL, gt=0, le=7 * 86400)

    @field_validator("scan_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        from collectors.spark.discovery import check_port_range  # the rule the port scan itself applies

        check_port_range(*_port_range(value))
        return value

    @property
    def scan_port_range(self) -> tuple[int, int]:
        return _port_range(self.scan_ports)

    @property
    def has_targets(self) -> bool:
        """A driver UI, port range, standalone master or History Server to poll."""
        return bool(self.ui_urls or self.scan_host or self.master_url or self.history_server_url)

    @property
    def enabled(self) -> bool:
        """Spark is collected: targets to poll, or the listener's progress topic to read."""
        return self.has_targets or bool(self.progress_topic)


def _port_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


class CollectionConfig(Strict):
    interval_seconds: float = seconds(15.0, gt=0, le=HOUR)
    rate_window_seconds: float = seconds(_SIGNALS.rate_window, gt=0, le=DAY)
    status_window: int = count(_SIGNALS.status_window, ge=2, le=1000)
    empty_group_ttl_seconds: float = seconds(_SIGNALS.empty_group_ttl)
    # A collector whose last success is older than this is reported stale.
    stale_after_seconds: float | None = seconds(None, gt=0, le=DAY)
    # Run each Kafka collector in a supervised child process (protects the web server from a
    # librdkafka abort). Turn off only for debugging.
    isolate_process: bool = True

    @property
    def stale_after(self) -> float:
        """Seconds after which a collector without success is stale (3 intervals unless set)."""
        return self.stale_after_seconds or 3 * self.interval_seconds
