"""Shared pytest fixtures: real Kafka brokers (session-wide) and unique names.

- ``kafka_broker``: Apache Kafka 4.x, KRaft, single node on a free 127.0.0.1 port.
- ``kafka39_broker``: Apache Kafka 3.9 with ZooKeeper (compatibility tests; marked kafka39).
- ``kafka_box_factory``: start private brokers (restart/outage tests); all stopped at teardown.
- ``kafka_jars`` / ``kafka39_jars`` / ``spark_kafka_jars``: the resolved jars (dir / list).
- ``unique_name``: a per-test name safe for topics and groups; call it for variants:
  ``unique_name`` -> "test_lag-3f9a1c", ``unique_name("group")`` -> "test_lag-3f9a1c-group".

When Java, Maven or the jars are unavailable the broker fixtures skip the test, except
when the CI environment variable is set: then they fail, so CI never passes by skipping.
Everything under tests/integration/ is marked ``integration`` automatically.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from demo import jars
from demo.jars import PrerequisiteMissing
from demo.kafka_box import KafkaBox

INTEGRATION_DIR = Path(__file__).parent / "integration"


def running_in_ci() -> bool:
    """True when $CI is set to anything but an explicit false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_prerequisite(reason: str) -> None:
    """Skip outside CI, fail in CI: a missing component must never make CI green."""
    if running_in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(f"{reason} (skipped because CI is not set)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests under tests/integration as ``integration``, users of kafka39_broker ``kafka39``."""
    for item in items:
        if Path(str(item.path)).is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)
        if "kafka39_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka39)


def _started_box(**kwargs: object) -> KafkaBox:
    box = KafkaBox(**kwargs)
    try:
        return box.start()
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start a real Kafka broker: {error}")
        raise  # unreachable: skip/fail raise


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBox]:
    """A running Apache Kafka 4.x broker (KRaft); ``.bootstrap`` is "127.0.0.1:PORT"."""
    box = _started_box(mode="kraft", version_set="kafka")
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="session")
def kafka39_broker() -> Iterator[KafkaBox]:
    """A running Apache Kafka 3.9 broker in ZooKeeper mode."""
    box = _started_box(mode="zookeeper", version_set="kafka39")
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def kafka_box_factory() -> Iterator[Callable[..., KafkaBox]]:
    """``factory(**KafkaBox kwargs) -> started KafkaBox``; every box is stopped afterwards."""
    boxes: list[KafkaBox] = []

    def start_box(**kwargs: object) -> KafkaBox:
        box = KafkaBox(**kwargs)
        boxes.append(box)
        try:
            return box.start()
        except PrerequisiteMissing as error:
            missing_prerequisite(f"cannot start a real Kafka broker: {error}")
            raise

    try:
        yield start_box
    finally:
        for box in boxes:
            box.stop()


def _resolved_jars(name: str) -> Path:
    try:
        jars.java_executable()
        return jars.resolve(name)
    except PrerequisiteMissing as error:
        missing_prerequisite(f"jar set {name!r} unavailable: {error}")
        raise


@pytest.fixture(scope="session")
def kafka_jars() -> Path:
    """Directory of the Kafka 4.x jars (resolved from Maven Central on first use)."""
    return _resolved_jars("kafka")


@pytest.fixture(scope="session")
def kafka39_jars() -> Path:
    """Directory of the Kafka 3.9 + ZooKeeper jars."""
    return _resolved_jars("kafka39")


@pytest.fixture(scope="session")
def spark_kafka_jars() -> list[Path]:
    """Spark Kafka connector jars to pass as ``spark.jars`` (pyspark's own jars excluded)."""
    _resolved_jars("spark-kafka")
    return jars.spark_kafka_jars()


class UniqueName(str):
    """A test-unique name (valid Kafka topic/group name); call it to derive more."""

    def __call__(self, suffix: str = "") -> str:
        if not suffix:
            return str(self)
        return f"{self}-{_safe_name(suffix)}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> UniqueName:
    """Unique per test and per run: ``<test name>-<6 hex>``, at most ~100 characters."""
    return UniqueName(f"{_safe_name(request.node.name)[:90]}-{uuid.uuid4().hex[:6]}")
