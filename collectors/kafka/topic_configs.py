"""A topic's effective settings from a DescribeConfigs answer (`collectors.models.TopicConfig`).

Only the settings streamscope reasons about are asked for (`CONFIG_KEYS`), with broker and cluster
defaults included: a topic that sets nothing still has a retention, from the broker. Both clients
answer with (name -> value text): kafka-python (`config_filter='all'`, the batched path) and
librdkafka (`describe_configs`, the fallback path).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from collectors.models import TopicConfig

log = logging.getLogger(__name__)

CLEANUP_POLICY = "cleanup.policy"
RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"
MIN_INSYNC_REPLICAS = "min.insync.replicas"
CONFIG_KEYS = (CLEANUP_POLICY, RETENTION_MS, RETENTION_BYTES, MIN_INSYNC_REPLICAS)
_POLICIES = ("compact", "delete")  # the order Kafka's own tools print them in


def topic_config(topic: str, values: Mapping[str, str | None], fetched_at: float) -> TopicConfig:
    """The settings of `topic` from its config values; a missing or malformed value is None (and
    logged, naming the topic and the key), never a guess."""
    return TopicConfig(
        cleanup_policy=_policy(topic, values.get(CLEANUP_POLICY)),
        retention_ms=_limit(topic, RETENTION_MS, values.get(RETENTION_MS)),
        retention_bytes=_limit(topic, RETENTION_BYTES, values.get(RETENTION_BYTES)),
        min_insync_replicas=_positive(topic, values.get(MIN_INSYNC_REPLICAS)),
        fetched_at=fetched_at,
    )


def _policy(topic: str, text: str | None) -> str | None:
    if text is None:
        return None
    words = {w.strip().lower() for w in text.split(",") if w.strip()}
    if not words or not words <= set(_POLICIES):
        log.info("topic %r: %s %r is not one of %s", topic, CLEANUP_POLICY, text, ", ".join(_POLICIES))
        return None
    return ",".join(p for p in _POLICIES if p in words)


def _integer(topic: str, key: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        log.info("topic %r: %s %r is not an integer", topic, key, text)
        return None


def _limit(topic: str, key: str, text: str | None) -> int | None:
    """A retention limit: -1 (Kafka's "no limit": any negative value means it) or >= 0."""
    value = _integer(topic, key, text)
    if value is None:
        return None
    return -1 if value < 0 else value


def _positive(topic: str, text: str | None) -> int | None:
    value = _integer(topic, MIN_INSYNC_REPLICAS, text)
    if value is not None and value < 1:
        log.info("topic %r: %s %r is below 1", topic, MIN_INSYNC_REPLICAS, text)
        return None
    return value
