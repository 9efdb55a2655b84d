"""Configuration: YAML file, then environment variables, then command-line flags.

Strict: every section rejects unknown keys, every value is validated when the config is loaded,
and an invalid config produces one clear message naming the key (`ConfigError`), so nothing
starts half-configured.

Environment variables override YAML scalars: ``STREAMSCOPE_<SECTION>__<KEY>=value``
(e.g. ``STREAMSCOPE_WEB__PORT=9000``, ``STREAMSCOPE_COLLECTION__INTERVAL_SECONDS=5``).
``STREAMSCOPE_BOOTSTRAP_SERVERS`` defines a single cluster named ``default`` when the file has none.
Secrets are never written in the file itself: they are named by ``*_env`` / ``*_file`` keys.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.bounds import DAY, HOUR, count, seconds
from alerts.secrets import SecretError, resolve_secret

ENV_PREFIX = "STREAMSCOPE_"


class ConfigError(Exception):
    """Invalid configuration. The message names the offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regexes(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class NameFilter(Strict):
    """Regex allow/deny list; a name is kept if it fully matches an allow and no deny pattern."""

    allow: list[str] = Field(default_factory=lambda: [".*"])
    deny: list[str] = Field(default_factory=list)

    _check = field_validator("allow", "deny")(_check_regexes)

    def compile(self) -> "CompiledFilter":
        return CompiledFilter(tuple(self.allow), tuple(self.deny))


class CompiledFilter:
    def __init__(self, allow: tuple[str, ...], deny: tuple[str, ...]):
        # DOTALL: group ids may contain newlines, and ".*" must still match them.
        self._allow = [re.compile(p, re.DOTALL) for p in allow]
        self._deny = [re.compile(p, re.DOTALL) for p in deny]

    def __call__(self, name: str) -> bool:
        return any(p.fullmatch(name) for p in self._allow) and not any(
            p.fullmatch(name) for p in self._deny
        )

    def __reduce__(self):  # picklable for the collector child process
        return (CompiledFilter, (tuple(p.pattern for p in self._allow), tuple(p.pattern for p in self._deny)))


class SecretRef(Strict):
    """A secret named by an environment variable or a file, never written in the config."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "SecretRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self, what: str = "secret") -> str:
        """The secret's value; ConfigError starting with `what` (the key naming it) if unset or unreadable."""
        try:
            return resolve_secret(value_env=self.env, value_file=None if self.file is None else str(self.file),
                                  what=what).get()
        except SecretError as exc:
            raise ConfigError(str(exc)) from None

    def describe(self) -> str:
        """Where the secret comes from, never its value."""
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


class KafkaClusterConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    bootstrap_servers: str = Field(min_length=1)
    # Extra librdkafka properties (security.protocol, sasl.mechanism, ssl.ca.location, ...).
    client: dict[str, str | int | bool] = Field(default_factory=dict)
    # librdkafka properties whose values are secrets (e.g. sasl.password).
    client_secrets: dict[str, SecretRef] = Field(default_factory=dict)
    groups: NameFilter = Field(default_factory=NameFilter)
    topics: NameFilter = Field(default_factory=NameFilter)
    include_internal_topics: bool = False
    request_timeout_seconds: float = seconds(10.0, gt=0, le=300)
    max_in_flight_group_requests: int = count(32, ge=1, le=1024)
    batched_group_requests: bool = True
    # Exact time lag (collectors.kafka.readable): the worst-lagging moving positions read each
    # cycle, and positions that stay (new, stuck, on a transaction marker) read once, remembered.
    exact_time_lag_partitions: int = count(50, ge=0, le=10_000)
    remembered_reads_per_cycle: int = count(2000, ge=0, le=100_000)
    # Reading positions stops after this long in a cycle; what is left is read in the next ones.
    read_budget_seconds: float = seconds(2.0, gt=0, le=60)
    # How the cluster's consumers read: read_committed (Kafka's transactional default for EOS
    # consumers) does not count aborted or open transactions as readable. Overrides by group
    # regex (full match, first wins).
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed"
    group_isolation_levels: dict[str, Literal["read_committed", "read_uncommitted"]] = Field(default_factory=dict)
    # Partitions of a consumed topic without a committed offset: where would a consumer start?
    # latest (Kafka's auto.offset.reset default: no lag, but flagged) or earliest (all retained).
    uncommitted_partitions: Literal["latest", "earliest"] = "latest"
    group_uncommitted_partitions: dict[str, Literal["latest", "earliest"]] = Field(default_factory=dict)
    # Topic ids (re-created topics) described per cycle: all topics on smaller clusters, a
    # rotating slice (plus new or suspicious topics) on larger ones.
    topic_ids_per_cycle: int = count(200, ge=1, le=100_000)

    @field_validator("group_isolation_levels", "group_uncommitted_partitions")
    @classmethod
    def _regex_keys(cls, value: dict[str, str]) -> dict[str, str]:
        _check_regexes(list(value))
        return value

    @field_validator("client")
    @classmethod
    def _no_secrets_inline(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if "password" in key or "secret" in key:
                raise ValueError(f"{key!r} is a secret: put it under client_secrets with env or file")
        return value


class SparkConfig(Strict):
    ui_urls: list[str] = Field(default_factory=list)
    # Probe a host's port range for driver UIs, e.g. {host: 127.0.0.1, ports: "4040-4050"}.
    scan_host: str | None = None
    scan_ports: str = Field(default="4040-4045", pattern=r"^\d+(-\d+)?$")
    master_url: str | None = None
    history_server_url: str | None = None
    request_timeout_seconds: float = seconds(5.0, gt=0, le=120)
    # Kafka topic the streamscope listener publishes progress events to (empty: not consumed).
    progress_topic: str | None = None
    progress_cluster: str | None = None
    # An app whose driver stops answering (killed, crashed, hung) keeps being shown and exported,
    # down and stale with its last values, for this long after its last answer; then it is removed.
    down_app_ttl_seconds: float = seconds(900.0, gt=0, le=7 * 86400)

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
    rate_window_seconds: float = seconds(300.0, gt=0, le=DAY)
    status_window: int = count(10, ge=2, le=1000)
    empty_group_ttl_seconds: float = seconds(7 * DAY)
    # A collector whose last success is older than this is reported stale.
    stale_after_seconds: float | None = seconds(None, gt=0, le=DAY)
    # Run each Kafka collector in a supervised child process (protects the web server from a
    # librdkafka abort). Turn off only for debugging.
    isolate_process: bool = True


class HistoryConfig(Strict):
    path: Path = Path("streamscope.db")
    retention_seconds: float = seconds(DAY, gt=0)
    downsample_after_seconds: float = seconds(HOUR, gt=0)
    downsample_step_seconds: float = seconds(60.0, gt=0, le=DAY)
    prune_interval_seconds: float = seconds(300.0, gt=0, le=DAY)


class ExporterConfig(Strict):
    partition_metrics: bool = False


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = count(8050, ge=0, le=65535)  # 0: any free port
    auth_token: SecretRef | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretRef | None = None


class Config(Strict):
    clusters: list[KafkaClusterConfig] = Field(default_factory=list)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    collection: CollectionConfig = Field(default_factory=CollectionConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    exporter: ExporterConfig = Field(default_factory=ExporterConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    alerting: dict[str, Any] | None = None  # validated by alerts.config.AlertingConfig

    @field_validator("clusters")
    @classmethod
    def _unique_cluster_names(cls, clusters: list[KafkaClusterConfig]) -> list[KafkaClusterConfig]:
        names = [c.name for c in clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate cluster names: {', '.join(dupes)}")
        return clusters

    @property
    def stale_after_seconds(self) -> float:
        return self.collection.stale_after_seconds or 3 * self.collection.interval_seconds


def _format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per error, each naming the file and the key."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"invalid configuration ({source}): {key}: {msg}")
    return "\n".join(lines)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        overrides.setdefault(section, {})[key] = value
    return overrides


def _merge(base: dict[str, Any], section: str, values: Mapping[str, Any]) -> None:
    current = base.get(section)
    if current is None:
        current = {}
    if not isinstance(current, dict):
        raise ConfigError(f"invalid configuration: {section}: expected a mapping")
    base[section] = {**current, **values}


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    bootstrap_servers: str | None = None,
) -> Config:
    """Load, merge and validate. Raises ConfigError with a message naming the key."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping of sections")
        data = loaded
    for section, values in _env_overrides(environ).items():
        _merge(data, section, values)
        source += f" + env {ENV_PREFIX}{section.upper()}__*"
    for section, values in (overrides or {}).items():
        _merge(data, section, values)
    bootstrap = bootstrap_servers or environ.get(f"{ENV_PREFIX}BOOTSTRAP_SERVERS")
    if bootstrap:
        clusters = data.get("clusters") or []
        if clusters:
            if bootstrap_servers:  # an explicit flag wins over the file's first cluster
                clusters = [{**clusters[0], "bootstrap_servers": bootstrap}, *clusters[1:]]
        else:
            clusters = [{"name": "default", "bootstrap_servers": bootstrap}]
        data["clusters"] = clusters
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    if config.alerting is not None:
        _validate_alerting(config.alerting, source)
    return config


def _validate_alerting(section: dict[str, Any], source: str) -> None:
    from alerts.config import parse_alerting_config
    from alerts.errors import AlertConfigError

    try:
        parse_alerting_config(section, source="", prefix="alerting")
    except AlertConfigError as exc:
        raise ConfigError("\n".join(f"invalid configuration ({source}): {line}" for line in str(exc).splitlines())) from None
