"""The demo pipeline: a local Kafka broker, a producer, consumer groups and the monitor.

`DemoPipeline` is used by `streamscope demo`, the end-to-end tests and the benchmarks. Every part
is started in order by `start()` and stopped in reverse by `stop()`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from demo.consumers import DemoConsumer
from demo.producer import DemoProducer, RateProfile

log = logging.getLogger(__name__)

INPUT_TOPIC = "clickstream"


@dataclass
class DemoSettings:
    kafka_port: int | None = None  # None: a free port
    web_port: int = 8050
    data_dir: Path | None = None
    rate: float = 50.0  # messages/s, base of the rate profile
    partitions: int = 6
    slow_consumer_rate: float = 45.0  # below the profile's peak: lag grows, then drains
    interval_seconds: float = 5.0
    spark: bool = True
    extra: dict = field(default_factory=dict)


def create_topics(bootstrap: str, topics: dict[str, int], timeout: float = 30) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics.items()],
                                  request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout)
        except Exception as exc:  # already exists on a re-used data dir
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


class DemoPipeline:
    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.kafka = None
        self.producer: DemoProducer | None = None
        self.consumers: list[DemoConsumer] = []
        self.spark = None
        self.monitor = None
        self._stack: list = []

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def start_kafka(self) -> None:
        from demo.kafka_box import KafkaBox

        data_dir = self.settings.data_dir / "kafka" if self.settings.data_dir else None
        self.kafka = KafkaBox(port=self.settings.kafka_port, data_dir=data_dir)
        self.kafka.start()
        self._stack.append(self.kafka.stop)

    def start_traffic(self) -> None:
        create_topics(self.bootstrap, {INPUT_TOPIC: self.settings.partitions})
        self.producer = DemoProducer(self.bootstrap, INPUT_TOPIC, profile=RateProfile(base=self.settings.rate)).start()
        self._stack.append(self.producer.stop)
        self.consumers = [
            DemoConsumer(self.bootstrap, INPUT_TOPIC, "clickstream-archiver").start(),
            DemoConsumer(self.bootstrap, INPUT_TOPIC, "clickstream-enricher-slow",
                         max_rate=self.settings.slow_consumer_rate).start(),
        ]
        for consumer in self.consumers:
            self._stack.append(consumer.stop)

    def monitor_config(self):
        from monitor.config import load_config

        history = (self.settings.data_dir / "history.db") if self.settings.data_dir else Path("streamscope-demo.db")
        overrides = {
            "collection": {"interval_seconds": self.settings.interval_seconds, "rate_window_seconds": 60},
            "history": {"path": str(history)},
            "web": {"port": self.settings.web_port},
        }
        if self.spark is not None:
            overrides["spark"] = self.spark.monitor_spark_config()
        overrides.update(self.settings.extra)
        config = load_config(None, environ={}, overrides=overrides, bootstrap_servers=self.bootstrap)
        return config.model_copy(update={"clusters": [config.clusters[0].model_copy(update={"name": "demo"})]})

    def start_monitor(self) -> None:
        from monitor.app import Monitor

        self.monitor = Monitor(self.monitor_config()).start()
        self._stack.append(self.monitor.stop)

    def start(self) -> "DemoPipeline":
        try:
            self.start_kafka()
            self.start_traffic()
            if self.settings.spark:
                self.start_spark()
            self.start_monitor()
        except BaseException:
            self.stop()
            raise
        return self

    def start_spark(self) -> None:
        try:
            from demo.spark_pipeline import SparkDemo
        except ImportError:
            log.info("Spark demo not available in this build")
            return
        self.spark = SparkDemo(self.bootstrap, data_dir=self.settings.data_dir)
        self.spark.start()
        self._stack.append(self.spark.stop)

    def stop(self) -> None:
        while self._stack:
            stop = self._stack.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", stop)

    def wait_for_cycles(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        target = self.monitor.store.cycles + count
        while self.monitor.store.cycles < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.monitor.store.wait_for_cycle(self.monitor.store.cycles, remaining):
                return self.monitor.store.cycles >= target
        return True

    def __enter__(self) -> "DemoPipeline":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
