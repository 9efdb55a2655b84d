"""A Kafka collector's settings: plain data, importable without the Kafka client libraries (the
parent process of an isolated collector never loads them; collectors.kafka.process)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

NameFilter = Callable[[str], bool]


@dataclass(frozen=True)
class ProbeSettings:
    topic: str = "streamscope-probe"
    interval_seconds: float = 10.0
    timeout_seconds: float = 5.0
    replication_factor: int | None = None  # None: min(3, brokers)
    retention_ms: int = 3_600_000  # probe records are of no use after a round


def accept_all(_: str) -> bool:
    return True


class CompiledFilter:
    """A configured allow/deny list of regexes: a name is kept if it fully matches an allow and
    no deny pattern. Defined here, with the settings the collector's child process unpickles:
    unpickling it imports only this module (not the configuration's, which loads pydantic and
    the derivation's numpy: ~35 MB the child has no use for)."""

    # Names judged, kept between calls: every group and topic name is judged every cycle, the same
    # names mostly (a regex match each: 2.0 ms for 2,000 names, 0.3 ms kept; measured). Bounded.
    KNOWN_LIMIT = 200_000

    def __init__(self, allow: tuple[str, ...], deny: tuple[str, ...]):
        # DOTALL: group ids may contain newlines, and ".*" must still match them.
        self._allow = [re.compile(p, re.DOTALL) for p in allow]
        self._deny = [re.compile(p, re.DOTALL) for p in deny]
        self._known: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        kept = self._known.get(name)
        if kept is None:
            kept = any(p.fullmatch(name) for p in self._allow) and not any(p.fullmatch(name) for p in self._deny)
            if len(self._known) >= self.KNOWN_LIMIT:
                self._known.clear()
            self._known[name] = kept
        return kept

    def __reduce__(self):  # picklable for the collector child process
        return (CompiledFilter, (tuple(p.pattern for p in self._allow), tuple(p.pattern for p in self._deny)))


@dataclass(frozen=True)
class KafkaCollectorSettings:
    cluster: str
    bootstrap_servers: str
    # extra librdkafka properties, secrets resolved (never in a repr: reprs end up in logs)
    client_config: dict = field(default_factory=dict, repr=False)
    # the secret values among them: masked in every log line of the collector's child process
    secrets: tuple[str, ...] = field(default=(), repr=False)
    group_filter: NameFilter = accept_all
    topic_filter: NameFilter = accept_all
    include_internal_topics: bool = False
    request_timeout: float = 10.0
    max_in_flight_group_requests: int = 32
    # Exact time lag: per cycle, the worst-lagging positions whose committed offset moves are read
    # (`exact_time_lag_partitions`), and positions that stay (new, stuck, caught up on a
    # transaction marker, older than the end-offset history) are read once and remembered
    # (`remembered_reads_per_cycle`). See collectors.kafka.readable.
    exact_time_lag_partitions: int = 50
    remembered_reads_per_cycle: int = 2000
    read_budget_seconds: float = 2.0  # reading positions stops there; the rest waits a cycle
    # How the cluster's groups read (readable lag): read_committed skips aborted and open
    # transactions. Per-group overrides: (regex, level), the first full match wins.
    isolation_level: str = "read_committed"
    group_isolation_levels: tuple[tuple[str, str], ...] = ()
    # Partitions of a consumed topic without a committed offset start, like auto.offset.reset,
    # at the end ("latest": no lag) or at the earliest offset ("earliest"); per-group overrides.
    uncommitted_partitions: str = "latest"
    group_uncommitted_partitions: tuple[tuple[str, str], ...] = ()
    # Topic ids (re-created topics): new or changed topics every cycle, plus a rotating slice so
    # that up to this many topics are described per cycle (all of them on smaller clusters).
    topic_ids_per_cycle: int = 200
    # Earliest offsets move only with retention: refresh them every N cycles (1 = every cycle).
    earliest_offsets_every: int = 10
    # Committed offsets and classic-group descriptions in batched requests (kafka-python,
    # `group_requests.py`); False: one librdkafka call per group.
    batched_group_requests: bool = True
    # Costly facts on their own schedules (collectors.kafka.topic_state), 0 = never: topic
    # settings (retention, cleanup policy, min.insync.replicas; new topics at once) and broker
    # log directories (sizes on disk, free space).
    topic_configs_every: int = 20
    log_dirs_every: int = 20
    # The end-to-end probe (collectors.kafka.probe); None: off.
    probe: ProbeSettings | None = None
