"""The costly facts about topics, asked every N cycles and kept in between: topic settings
(DescribeConfigs: retention, cleanup policy, min.insync.replicas) and broker log directories
(DescribeLogDirs: sizes on disk, free space).

Both change slowly, and both cost the brokers more than a cycle's offsets (DescribeLogDirs walks
every replica of every broker): `topic_configs_every` and `log_dirs_every` cycles apart (0: never).
Topics not seen before get their settings in the cycle they appear. A failed fetch keeps the
previous values (logged; for log directories also `log_dirs_error`, in the snapshot, /healthz,
/metrics and an alert); it never fails the cycle. Log directories need the batched
(kafka-python) client: confluent-kafka has no DescribeLogDirs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from kafka.errors import KafkaError, for_code

from collectors.kafka.cluster import ClusterInfo, PartitionKeys
from collectors.kafka.group_requests import BatchedGroupRequests, GroupRequestTimeout
from collectors.kafka.log_dirs import leader_sizes, parse_log_dirs
from collectors.kafka.topic_configs import CONFIG_KEYS, topic_config
from collectors.models import LogDir, TopicConfig

log = logging.getLogger(__name__)

# Topics per librdkafka describe_configs call (one DescribeConfigs request each).
_CONFIGS_CHUNK = 1000
_NAMED = 5  # topics named in `configs_error`


class Every:
    """Due on the first call and then every `n`-th (never for n <= 0)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._calls = 0

    def due(self) -> bool:
        self._calls += 1
        return self.n > 0 and (self._calls - 1) % self.n == 0


class TopicState:
    """Topic settings and log directories of one cluster, refreshed on their own schedules."""

    def __init__(self, cluster: str, *, configs_every: int, log_dirs_every: int, request_timeout: float,
                 partition_keys: PartitionKeys | None = None) -> None:
        self._cluster = cluster
        self._key = partition_keys or PartitionKeys()
        self._configs_due = Every(configs_every)
        self._log_dirs_due = Every(log_dirs_every)
        self._timeout = request_timeout
        self._configs: dict[str, TopicConfig] = {}
        self.log_dirs: tuple[LogDir, ...] = ()
        self.log_dirs_fetched_at: float | None = None
        # why the last round of DescribeLogDirs left some or all directories unknown; None if none
        self.log_dirs_error: str | None = None
        self.sizes: dict[tuple[str, int], int] = {}  # (topic, partition) -> leader's bytes
        self.requests = 0  # librdkafka requests of the last call (the batched client counts its own)
        # why topics' settings are unknown or from before after the last call; None if none
        self.configs_error: str | None = None
        self._configs_failure: str | None = None  # the last DescribeConfigs failure, until one succeeds
        self._refused: dict[str, str] = {}  # topic -> the error its settings were last refused with

    # -- topic settings -------------------------------------------------------------------------

    def configs(self, admin: AdminClient, batched: BatchedGroupRequests | None,
                topics: list[str]) -> dict[str, TopicConfig]:
        """Settings of `topics`: all of them when due, else only topics not seen before (and
        those whose settings were refused). `configs_error` says which are unknown, and whether
        the last request failed (the settings known are then from before)."""
        self.requests = 0
        if self._configs_due.n <= 0:
            return {}
        wanted = topics if self._configs_due.due() else [t for t in topics if t not in self._configs]
        if wanted:
            try:
                values, refused = (batched.topic_configs(wanted, CONFIG_KEYS) if batched is not None
                                   else self._librdkafka_configs(admin, wanted))
            except (KafkaError, KafkaException, GroupRequestTimeout) as exc:
                self._configs_failure = f"DescribeConfigs failed (settings kept from before): {exc}"
            else:
                self._configs_failure = None
                self._refused.update(refused)  # those given settings leave it below
                at = time.time()
                # topics with the same settings share one object: a snapshot sends each once
                same: dict[TopicConfig, TopicConfig] = {}
                for name, v in values.items():
                    config = topic_config(name, v, at)
                    kept = self._configs.get(name)
                    if kept is not None and replace(kept, fetched_at=at) == config:
                        # The same settings keep their object (and the time they were first read):
                        # a new one made the topic's model new, and with it every partition's
                        # record, here and in the parent, every `configs_every` cycles.
                        continue
                    self._configs[name] = same.setdefault(config, config)
        kept = set(topics)
        self._configs = {name: c for name, c in self._configs.items() if name in kept}
        self._refused = {name: e for name, e in self._refused.items() if name in kept and name not in self._configs}
        error = self._settings_error(topics)
        if error != self.configs_error:  # logged when it changes, not every cycle
            log.log(logging.WARNING if error else logging.INFO, "cluster %s: %s", self._cluster,
                    error or "every topic's settings known again")
        self.configs_error = error
        return self._configs

    def _settings_error(self, topics: list[str]) -> str | None:
        unknown = [t for t in topics if t not in self._configs]
        parts = [self._configs_failure] if self._configs_failure else []
        if unknown:
            named = ", ".join(f"{t} ({self._refused.get(t, 'no answer')})" for t in unknown[:_NAMED])
            parts.append(f"settings of {len(unknown)} topic(s) unknown: {named}" + (", ..." if len(unknown) > _NAMED else ""))
        return "; ".join(parts) or None

    def _librdkafka_configs(self, admin: AdminClient, names: list[str]
                            ) -> tuple[dict[str, dict[str, str | None]], dict[str, str]]:
        """As `BatchedGroupRequests.topic_configs`: the settings, and the topics refused."""
        out: dict[str, dict[str, str | None]] = {}
        refused: dict[str, str] = {}
        for i in range(0, len(names), _CONFIGS_CHUNK):
            futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names[i:i + _CONFIGS_CHUNK]],
                                             request_timeout=self._timeout)
            self.requests += 1
            for resource, future in futures.items():
                try:
                    entries = future.result()
                except KafkaException as exc:
                    log.debug("cluster %s: settings of topic %r unavailable: %s", self._cluster, resource.name, exc)
                    error = exc.args[0] if exc.args else None
                    refused[resource.name] = error.name() if hasattr(error, "name") else str(exc)
                    continue
                out[resource.name] = {key: entries[key].value for key in CONFIG_KEYS if key in entries}
        return out, refused

    # -- log directories ------------------------------------------------------------------------

    def refresh_log_dirs(self, batched: BatchedGroupRequests | None, info: ClusterInfo, topics: set[str]) -> None:
        """Ask every broker for its log directories when due (batched client only); per-topic
        and per-partition sizes are kept for `topics` (the collected ones).

        A broker that does not give its directories (no answer, or an error such as
        CLUSTER_AUTHORIZATION_FAILED) keeps what it gave before: its directories, and the sizes
        of the partitions it leads. Either way `log_dirs_error` says so until a round where every
        broker answers (None then): missing directories are never shown as an empty broker."""
        if not self._log_dirs_due.due() or batched is None:
            return
        try:
            answers, missing = batched.log_dirs([b.id for b in info.brokers])
        except (KafkaError, GroupRequestTimeout) as exc:
            self.log_dirs_error = f"DescribeLogDirs failed: {exc}"
            log.warning("cluster %s: log directories unavailable (kept from before): %s", self._cluster, exc)
            return
        dirs, replicas = parse_log_dirs(answers, topics.__contains__, lambda code: for_code(code).__name__)
        key = self._key
        leaders = {key(name, pid): p.leader for name in topics if name in info.topics
                   for pid, p in info.topics[name].partitions.items()}
        sizes = leader_sizes(replicas, leaders)
        if missing:
            self.log_dirs_error = "log directories of broker(s) not given (kept from before): " + "; ".join(
                f"{broker}: {why}" for broker, why in sorted(missing.items()))
            log.warning("cluster %s: %s", self._cluster, self.log_dirs_error)
            kept = [d for d in self.log_dirs if d.broker in missing]
            if kept:
                dirs = tuple(sorted((*dirs, *kept), key=lambda d: (d.broker, d.path)))
            for partition, leader in leaders.items():
                if leader in missing and partition in self.sizes:
                    sizes[partition] = self.sizes[partition]
        else:
            self.log_dirs_error = None
        if answers:
            self.log_dirs_fetched_at = time.time()
        self.log_dirs, self.sizes = dirs, sizes
