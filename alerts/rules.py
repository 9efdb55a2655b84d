"""Alert rules: the rule model, the default rule set and rule-file loading.

A rule file is YAML:

    rules:
      - name: OrdersLagHigh            # unique; becomes the `alertname` label
        kind: consumer_lag_messages    # what to evaluate (see RuleKind)
        threshold: 5000
        matchers: ['group=~"orders-.*"', 'cluster="prod"']
        severity: critical
        for: 5m
        keep_firing_for: 2m
        labels: {team: payments}
        summary: "{group} is {value_human} messages behind on {topic}"
        description: "Threshold {threshold}. Dashboard: {dashboard_url}"

Files are merged by rule name on top of the default set (`alerts/default_rules.yaml`): a user
rule whose name already exists overrides only the keys it sets (so `{name: X, enabled: false}`
disables a default rule and `{name: X, threshold: 100}` retunes it); a new name defines a new
rule and must set `kind`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from collectors.models import Status

from .bounds import WEEK, Duration, count, number, seconds
from .errors import AlertConfigError, format_validation_error, model_keys
from .matchers import Matcher, MatcherError
from .templates import Template, TemplateError, compile_template

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")


class RuleKind(str, Enum):
    CONSUMER_LAG_MESSAGES = "consumer_lag_messages"
    CONSUMER_LAG_SECONDS = "consumer_lag_seconds"
    GROUP_STATUS = "group_status"
    EMPTY_GROUP_WITH_LAG = "empty_group_with_lag"
    TOPIC_PRODUCE_STOPPED = "topic_produce_stopped"
    UNDER_REPLICATED_PARTITIONS = "under_replicated_partitions"
    OFFLINE_PARTITIONS = "offline_partitions"
    BROKER_COUNT_DROPPED = "broker_count_dropped"
    UNDER_MIN_ISR_PARTITIONS = "under_min_isr_partitions"
    RETENTION_HEADROOM = "retention_headroom"
    RECORDS_LOST = "records_lost"
    GROUP_OFFSETS_UNAVAILABLE = "group_offsets_unavailable"
    LOG_DIRS_UNAVAILABLE = "log_dirs_unavailable"
    TOPIC_CONFIGS_UNAVAILABLE = "topic_configs_unavailable"
    PROBE_FAILING = "probe_failing"
    COLLECTOR_DOWN = "collector_down"
    DATA_STALE = "data_stale"
    HISTORY_DOWN = "history_down"
    SPARK_BATCH_OVER_TRIGGER = "spark_batch_over_trigger"
    SPARK_PROCESSING_BELOW_INPUT = "spark_processing_below_input"
    SPARK_QUERY_LAG = "spark_query_lag"
    SPARK_QUERY_FAILED = "spark_query_failed"
    SPARK_FAILED_JOBS = "spark_failed_jobs"
    SPARK_APP_DOWN = "spark_app_down"


@dataclass(frozen=True)
class KindInfo:
    default_threshold: float
    params: frozenset[str]  # kind-specific keys allowed
    labels: tuple[str, ...]  # labels of the samples it produces
    meaning: str  # what value and threshold mean


K = RuleKind
KIND_INFO: dict[RuleKind, KindInfo] = {
    K.CONSUMER_LAG_MESSAGES: KindInfo(10000, frozenset(), ("cluster", "group", "topic"),
                                      "value = messages behind (sum over the topic's partitions); fires when value > threshold"),
    K.CONSUMER_LAG_SECONDS: KindInfo(300, frozenset(), ("cluster", "group", "topic"),
                                     "value = age in seconds of the oldest unconsumed record (max over partitions); fires when value > threshold"),
    K.GROUP_STATUS: KindInfo(0, frozenset({"statuses"}), ("cluster", "group", "status"),
                             "fires while the group's status is one of `statuses` (default ERR, STOP, STALL, REWIND); value = status severity"),
    K.EMPTY_GROUP_WITH_LAG: KindInfo(0, frozenset(), ("cluster", "group"),
                                     "fires when the group has no members and its total lag > threshold; value = lag"),
    K.TOPIC_PRODUCE_STOPPED: KindInfo(0, frozenset({"window"}), ("cluster", "topic"),
                                      "fires when produce rate <= threshold now but was > threshold within `window` (default 1h); value = rate"),
    K.UNDER_REPLICATED_PARTITIONS: KindInfo(0, frozenset(), ("cluster", "topic"),
                                            "value = under-replicated partitions of the topic; fires when > threshold"),
    K.OFFLINE_PARTITIONS: KindInfo(0, frozenset(), ("cluster", "topic"),
                                   "value = partitions without a leader; fires when > threshold"),
    K.BROKER_COUNT_DROPPED: KindInfo(1, frozenset({"window"}), ("cluster",),
                                     "value = max broker count within `window` (default 1h) minus the current count; fires when >= threshold"),
    K.UNDER_MIN_ISR_PARTITIONS: KindInfo(0, frozenset(), ("cluster", "topic"),
                                         "value = partitions of the topic with fewer in-sync replicas than min.insync.replicas (producers with acks=all fail); fires when > threshold"),
    K.RETENTION_HEADROOM: KindInfo(3600, frozenset(), ("cluster", "group", "topic"),
                                   "value = seconds until retention deletes records the group has not read, if it stopped now (worst partition); fires when value < threshold (an upper bound below it fires too; one above it never resolves the alert); compacted topics never"),
    K.RECORDS_LOST: KindInfo(0, frozenset(), ("cluster", "group", "topic"),
                             "value = records retention deleted before the group read them (log start offset - committed offset, summed over the topic's partitions); fires when > threshold"),
    K.GROUP_OFFSETS_UNAVAILABLE: KindInfo(0, frozenset(), ("cluster",),
                                          "value = groups whose committed offsets the cluster's last cycle could not fetch (their lag is unknown, so their lag alerts cannot fire); fires when > threshold"),
    K.LOG_DIRS_UNAVAILABLE: KindInfo(0, frozenset(), ("cluster",),
                                     "fires while the cluster's last DescribeLogDirs round left log directories unknown (the request failed, or brokers did not give theirs: kept from before, the reason in /healthz), so disk use and size-based retention headroom may be out of date; value = 1"),
    K.TOPIC_CONFIGS_UNAVAILABLE: KindInfo(0, frozenset(), ("cluster",),
                                          "fires while topics of the cluster have unknown settings (DescribeConfigs refused them, e.g. TopicAuthorizationFailedError) or the last DescribeConfigs failed (settings kept from before; the reason in /healthz): retention headroom and under-min-ISR counts need them; value = 1"),
    K.PROBE_FAILING: KindInfo(0, frozenset(), ("cluster",),
                              "fires while the cluster's end-to-end probe (clusters[].probe) fails: its last round did not get every record back in time and committed; value = seconds since its last successful round (0 if it never succeeded)"),
    K.COLLECTOR_DOWN: KindInfo(0, frozenset(), ("collector", "kind", "cluster"),
                               "fires while a collector's last cycle failed (or its cluster is marked stale); value = 1"),
    K.DATA_STALE: KindInfo(300, frozenset(), ("collector", "kind", "cluster"),
                           "value = seconds since the collector's last successful cycle; fires when > threshold"),
    K.HISTORY_DOWN: KindInfo(0, frozenset(), (),
                             "fires while writes to the history database fail (disk full, read-only, I/O error); collection, metrics and alerts go on; value = failed writes so far"),
    K.SPARK_BATCH_OVER_TRIGGER: KindInfo(1.0, frozenset({"consecutive"}), ("app", "query"),
                                         "fires when the last `consecutive` (default 3) batches each took longer than threshold x trigger interval; value = last batch duration in seconds"),
    K.SPARK_PROCESSING_BELOW_INPUT: KindInfo(1.0, frozenset({"window"}), ("app", "query"),
                                             "fires when every batch within `window` (default 5m) processed fewer rows/s than threshold x input rows/s; value = processed/input ratio of the last batch"),
    K.SPARK_QUERY_LAG: KindInfo(10000, frozenset(), ("app", "query", "topic"),
                                "value = messages the query's Kafka source is behind the topic end; fires when > threshold"),
    K.SPARK_QUERY_FAILED: KindInfo(0, frozenset(), ("app", "query"),
                                   "fires while a query is terminated with an exception (state FAILED); value = 1"),
    K.SPARK_FAILED_JOBS: KindInfo(0, frozenset({"window"}), ("app",),
                                  "value = Spark jobs failed within `window` (default 10m); fires when > threshold"),
    K.SPARK_APP_DOWN: KindInfo(0, frozenset(), ("app",),
                               "fires while a Spark app that is not finished does not answer (driver gone or not responding; its last data is shown, stale, for `spark.down_app_ttl_seconds`); value = 1"),
}

KAFKA_KINDS = frozenset({
    K.CONSUMER_LAG_MESSAGES, K.CONSUMER_LAG_SECONDS, K.GROUP_STATUS, K.EMPTY_GROUP_WITH_LAG,
    K.TOPIC_PRODUCE_STOPPED, K.UNDER_REPLICATED_PARTITIONS, K.OFFLINE_PARTITIONS, K.BROKER_COUNT_DROPPED,
    K.UNDER_MIN_ISR_PARTITIONS, K.RETENTION_HEADROOM, K.RECORDS_LOST, K.GROUP_OFFSETS_UNAVAILABLE,
    K.LOG_DIRS_UNAVAILABLE, K.TOPIC_CONFIGS_UNAVAILABLE,
})
# The probe works beside the collection: it is what tells a hung cluster from a hung collector,
# so a collector that is down does not mute it.
PROBE_KINDS = frozenset({K.PROBE_FAILING})
COLLECTOR_KINDS = frozenset({K.COLLECTOR_DOWN, K.DATA_STALE, K.HISTORY_DOWN})
SPARK_KINDS = frozenset({
    K.SPARK_BATCH_OVER_TRIGGER, K.SPARK_PROCESSING_BELOW_INPUT, K.SPARK_QUERY_LAG, K.SPARK_QUERY_FAILED,
    K.SPARK_FAILED_JOBS, K.SPARK_APP_DOWN,
})
DEFAULT_WINDOWS = {
    K.TOPIC_PRODUCE_STOPPED: 3600.0,
    K.BROKER_COUNT_DROPPED: 3600.0,
    K.SPARK_PROCESSING_BELOW_INPUT: 300.0,
    K.SPARK_FAILED_JOBS: 600.0,
}
DEFAULT_STATUSES = (Status.ERR, Status.STOP, Status.STALL, Status.REWIND)
_PARAM_KEYS = ("statuses", "consecutive", "window")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RuleSpec(BaseModel):
    """One alert rule (validated, immutable)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")
    kind: RuleKind
    threshold: float | None = number(None)
    matchers: tuple[str, ...] = ()
    severity: str = Field("warning", pattern=r"^[A-Za-z0-9_\-]+$")
    for_: Duration = seconds(0.0, le=WEEK, alias="for")
    keep_firing_for: Duration = seconds(0.0, le=WEEK)
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    # kind-specific parameters
    statuses: tuple[Status, ...] | None = None
    consecutive: int | None = count(None, ge=1, le=1000)
    window: Duration | None = seconds(None, gt=0)

    _matchers: tuple[Matcher, ...] = PrivateAttr(default=())
    _templates: dict[str, Template] = PrivateAttr(default_factory=dict)
    _context_fields: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("matchers", mode="before")
    @classmethod
    def _matchers_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return (v,)
        return v

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not _LABEL_NAME.match(key):
                raise ValueError(f"invalid label name {key!r}")
            if key in ("alertname", "severity"):
                raise ValueError(f"label {key!r} is set by the rule itself (use name/severity)")
        return v

    @field_validator("statuses", mode="before")
    @classmethod
    def _statuses_upper(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, (list, tuple)):
            return tuple(s.upper() if isinstance(s, str) else s for s in v)
        return v

    @model_validator(mode="after")
    def _check(self) -> "RuleSpec":
        info = KIND_INFO[self.kind]
        for key in _PARAM_KEYS:
            if getattr(self, key) is not None and key not in info.params:
                allowed = ", ".join(sorted(k for k, i in KIND_INFO.items() if key in i.params))
                raise ValueError(f"'{key}' is only valid for kind {allowed}, not {self.kind.value}")
        try:
            matchers = tuple(Matcher.parse(m) for m in self.matchers)
        except MatcherError as exc:
            raise ValueError(f"matchers: {exc}") from None
        templates: dict[str, Template] = {}
        for key, text in (("summary", self.summary), ("description", self.description), *self.annotations.items()):
            try:
                templates[key] = compile_template(text)
            except TemplateError as exc:
                where = key if key in ("summary", "description") else f"annotations.{key}"
                raise ValueError(f"{where}: {exc}") from None
        self._matchers = matchers
        self._templates = templates
        self._context_fields = frozenset().union(*(t.context_fields for t in templates.values()))
        return self

    # --- effective values -------------------------------------------------------------------
    @property
    def effective_threshold(self) -> float:
        return float(KIND_INFO[self.kind].default_threshold if self.threshold is None else self.threshold)

    @property
    def effective_window(self) -> float:
        return DEFAULT_WINDOWS.get(self.kind, 0.0) if self.window is None else float(self.window)

    @property
    def effective_statuses(self) -> tuple[Status, ...]:
        return DEFAULT_STATUSES if self.statuses is None else tuple(self.statuses)

    @property
    def effective_consecutive(self) -> int:
        return 3 if self.consecutive is None else int(self.consecutive)

    @property
    def compiled_matchers(self) -> tuple[Matcher, ...]:
        return self._matchers

    @property
    def templates(self) -> Mapping[str, Template]:
        return self._templates

    @property
    def context_fields(self) -> frozenset[str]:
        """The context fields its templates use (`alerts.templates.RESERVED`)."""
        return self._context_fields


RULE_KEYS = model_keys(RuleSpec)


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[RuleSpec, ...]
    origins: Mapping[str, str]  # rule name -> file that last defined/changed it

    @property
    def enabled(self) -> tuple[RuleSpec, ...]:
        return tuple(r for r in self.rules if r.enabled)

    def by_name(self, name: str) -> RuleSpec | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


def _read_rule_file(path: Path | str) -> list[dict[str, Any]]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertConfigError(f"{source}: cannot read rule file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AlertConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None  # one line
    return parse_rule_document(data, source)


def parse_rule_document(data: Any, source: str) -> list[dict[str, Any]]:
    """Validate the top level of a rule document and return the raw rule mappings."""
    if data is None:
        return []
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, Mapping):
        raise AlertConfigError(f"{source}: expected a mapping with a 'rules' list, got {type(data).__name__}")
    try:
        doc = _RuleFile.model_validate(data)
    except ValidationError as exc:
        raise AlertConfigError(format_validation_error(exc, source=source, known_keys={(): ["rules"]})) from None
    seen: set[str] = set()
    for i, raw in enumerate(doc.rules):
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise AlertConfigError(f"{source}: rules[{i}].name: required key is missing")
        if name in seen:
            raise AlertConfigError(f"{source}: rules[{i}].name: duplicate rule name {name!r} in the same file")
        seen.add(name)
    return doc.rules


def _validate_rule(raw: Mapping[str, Any], where: str) -> RuleSpec:
    try:
        return RuleSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise AlertConfigError(format_validation_error(exc, source=where, known_keys={(): RULE_KEYS})) from None


def build_rule_set(documents: Sequence[tuple[str, list[dict[str, Any]]]]) -> RuleSet:
    """Merge (source, raw rules) documents in order, by rule name, then validate."""
    merged: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    for source, rules in documents:
        for i, raw in enumerate(rules):
            name = raw["name"]
            if name in merged:
                merged[name] = {**merged[name], **raw}
            else:
                merged[name] = dict(raw)
            where[name] = f"{source}: rules[{i}] ({name})"
    specs = tuple(_validate_rule(raw, where[name]) for name, raw in merged.items())
    return RuleSet(specs, {name: w.split(":", 1)[0] for name, w in where.items()})


def load_rules(files: Sequence[str | Path] = (), *, include_defaults: bool = True) -> RuleSet:
    """Load the default rules (optional) and user rule files, merged by name. Raises AlertConfigError."""
    docs: list[tuple[str, list[dict[str, Any]]]] = []
    if include_defaults:
        docs.append((str(DEFAULT_RULES_PATH), _read_rule_file(DEFAULT_RULES_PATH)))
    for f in files:
        docs.append((str(f), _read_rule_file(f)))
    return build_rule_set(docs)


def rules_from_dicts(rules: Sequence[Mapping[str, Any]], *, include_defaults: bool = False,
                     source: str = "<rules>") -> RuleSet:
    """Build a rule set from in-memory mappings (tests, API)."""
    docs: list[tuple[str, list[dict[str, Any]]]] = []
    if include_defaults:
        docs.append((str(DEFAULT_RULES_PATH), _read_rule_file(DEFAULT_RULES_PATH)))
    docs.append((source, parse_rule_document({"rules": [dict(r) for r in rules]}, source)))
    return build_rule_set(docs)
