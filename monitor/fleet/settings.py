"""The `fleet` section: identical replicas sharing the work through Kafka (docs/scaling.md).

Without `name` (and without `streamscope run --fleet NAME`) there is no fleet: one process
collects everything, exactly as before.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from alerts.bounds import HOUR, count, seconds
from monitor.settings import Strict

_NAME = r"^[A-Za-z0-9_.-]+$"
BROKER_SESSION_TIMEOUT_SECONDS = (6.0, 1800.0)  # group.min/max.session.timeout.ms, Kafka's defaults


class FleetConfig(Strict):
    name: str | None = Field(default=None, pattern=_NAME)  # the fleet; None: a single process
    # The cluster (a name under `clusters`) holding the coordination topic; default the first.
    cluster: str | None = None
    topic: str | None = Field(default=None, pattern=_NAME)  # default streamscope-fleet-<name>
    # Coordination partitions: the finest share of work Kafka can give a replica. Fixed once the
    # topic exists (more replicas than partitions leave some idle).
    partitions: int = count(24, ge=1, le=10_000)
    replication_factor: int = count(-1, ge=-1, le=32)  # -1: the brokers' default
    # A replica that stops heartbeating (killed, hung) loses its work after this long.
    session_timeout_seconds: float = seconds(10.0, gt=0, le=HOUR)  # brokers allow 6 s to 30 min by default
    # How often an owner writes its units' windows to the coordination topic (what a new owner
    # continues from). Alert state is written whenever it changes.
    state_interval_seconds: float = seconds(30.0, gt=0, le=HOUR)
    # Clusters collected as ONE unit by one replica (small clusters: saves each replica a listing);
    # the others are shared by consumer group.
    whole_clusters: list[str] = Field(default_factory=list)
    # This replica's `instance` label; default <host name>:<web port>.
    instance: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _settings_need_a_name(self) -> FleetConfig:
        # Settings without a name would silently run a single process that collects, exports
        # and pages everything, next to the fleet it was meant to join.
        defaults = FleetConfig.model_construct()  # a dumped config sets every key: compare with defaults
        given = sorted(k for k in self.model_fields_set - {"name"} if getattr(self, k) != getattr(defaults, k))
        if self.name is None and given:
            raise ValueError(f"{', '.join(given)} set but no fleet.name: this would run as one process "
                             "monitoring everything; set fleet.name (or run --fleet NAME), or drop the section")
        return self

    @property
    def enabled(self) -> bool:
        return self.name is not None

    @property
    def topic_name(self) -> str:
        return self.topic or f"streamscope-fleet-{self.name}"

    def broker_default_notes(self) -> list[str]:
        """What a broker with default settings would refuse (`check-config` says so; a broker
        configured otherwise may accept it)."""
        low, high = BROKER_SESSION_TIMEOUT_SECONDS
        if self.enabled and not low <= self.session_timeout_seconds <= high:
            return [f"fleet.session_timeout_seconds: {self.session_timeout_seconds:g} s is outside what brokers "
                    f"accept by default (group.min/max.session.timeout.ms: {low:g} s to {high:g} s)"]
        return []

    @property
    def group_id(self) -> str:
        return f"streamscope-fleet-{self.name}"
