"""Configuration: YAML file, then environment variables, then command-line flags.

Each part owns its section (kminion-style): `clusters`, `spark` and `collection` are
`monitor.collection.settings`, `history` is `monitor.storage.settings`, `web` and `exporter` are
`monitor.web.settings`, `alerting` is `alerts.config.AlertingConfig`, `fleet` is
`monitor.fleet.settings`. `Config` composes them.

Strict: every section rejects unknown keys, every value is validated when the config is loaded,
and an invalid config produces one clear message per problem naming the key (`ConfigError`), so
nothing starts half-configured.

Environment variables override YAML scalars: ``STREAMSCOPE_<SECTION>__<KEY>=value``
(e.g. ``STREAMSCOPE_WEB__PORT=9000``, ``STREAMSCOPE_COLLECTION__INTERVAL_SECONDS=5``).
``STREAMSCOPE_BOOTSTRAP_SERVERS`` defines a single cluster named ``default`` when the file has none.
Secrets are never written in the file itself: they are named by ``*_env`` / ``*_file`` keys.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from alerts.config import AlertingConfig
from alerts.errors import format_validation_error, model_key_paths
from monitor.collection.settings import CollectionConfig, KafkaClusterConfig, SparkConfig
from monitor.fleet.settings import FleetConfig
from monitor.settings import ConfigError, Strict
from monitor.storage.settings import HistoryConfig
from monitor.web.settings import ExporterConfig, WebConfig

ENV_PREFIX = "STREAMSCOPE_"


class Config(Strict):
    clusters: list[KafkaClusterConfig] = Field(default_factory=list)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    collection: CollectionConfig = Field(default_factory=CollectionConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    exporter: ExporterConfig = Field(default_factory=ExporterConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    alerting: AlertingConfig | None = None  # None: not in the file (the built-in rules still run)
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    @field_validator("clusters")
    @classmethod
    def _unique_cluster_names(cls, clusters: list[KafkaClusterConfig]) -> list[KafkaClusterConfig]:
        names = [c.name for c in clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate cluster names: {', '.join(dupes)}")
        return clusters

    @model_validator(mode="after")
    def _fleet_names_clusters(self) -> Config:
        fleet = self.fleet
        names = {c.name for c in self.clusters}
        if fleet.enabled and not self.clusters:
            raise ValueError("fleet: a fleet coordinates through a Kafka cluster: configure clusters")
        for key, wanted in (("fleet.cluster", [fleet.cluster] if fleet.cluster else []),
                            ("fleet.whole_clusters", fleet.whole_clusters)):
            unknown = [n for n in wanted if n not in names]
            if unknown:
                raise ValueError(f"{key}: no cluster named {', '.join(unknown)} under clusters")
        return self

    @property
    def fleet_cluster(self) -> KafkaClusterConfig | None:
        """The cluster holding the fleet's coordination topic."""
        if not self.fleet.enabled:
            return None
        return next((c for c in self.clusters if c.name == self.fleet.cluster), self.clusters[0])

    @property
    def stale_after_seconds(self) -> float:
        return self.collection.stale_after

    @property
    def alerts(self) -> AlertingConfig:
        """The alerting settings: the section, or its defaults (built-in rules, no receivers)."""
        return self.alerting or AlertingConfig()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        overrides.setdefault(section, {})[key] = value
    return overrides


def _merge(base: dict[str, Any], section: str, values: Mapping[str, Any]) -> None:
    """Values over a section; a mapping value (e.g. `history.prometheus`) over the file's mapping
    key by key, so a flag setting one key keeps the file's others."""
    current = base.get(section)
    if current is None:
        current = {}
    if not isinstance(current, dict):
        raise ConfigError(f"invalid configuration: {section}: expected a mapping")
    merged = dict(current)
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            _merge(merged, key, value)
        else:
            merged[key] = value
    base[section] = merged


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
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=f"invalid configuration ({source})",
                                                  known_keys=model_key_paths(Config))) from None
