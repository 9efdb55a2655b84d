"""The demo pipeline: a local Kafka broker, a producer, consumer groups and the monitor.

`DemoPipeline` is used by `streamscope demo`, the end-to-end tests and the benchmarks. Every part
is started in order by `start()` and stopped in reverse by `stop()`: Kafka, traffic, Spark, the
local alert receivers (a webhook inbox and an SMTP sink, `demo.receivers`), the monitor with the
built-in rules tuned for the demo (`demo/alert_rules.yaml`) routed to both receivers, and, when
asked and installed, a Prometheus scraping the monitor (`demo.prometheus`).
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
DEMO_RULES = Path(__file__).with_name("alert_rules.yaml")
WEBHOOK_RECEIVER, EMAIL_RECEIVER = "demo-webhook", "demo-mail"


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
    alerting: bool = True  # local receivers + the demo's rule tuning (an `alerting` in extra wins)
    prometheus: bool = False  # start a Prometheus (when installed) scraping the monitor
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
        self.receivers = None
        self.monitor = None
        self.prometheus = None
        self.prometheus_note: str | None = None  # why there is no Prometheus, when asked for one
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
        from monitor.app.config import load_config
        from monitor.collection.settings import ProbeConfig

        history = (self.settings.data_dir / "history.db") if self.settings.data_dir else Path("streamscope-demo.db")
        overrides = {
            "collection": {"interval_seconds": self.settings.interval_seconds, "rate_window_seconds": 60},
            "history": {"path": str(history)},
            "web": {"port": self.settings.web_port},
        }
        if self.spark is not None:
            overrides["spark"] = self.spark.monitor_spark_config()
        if self.receivers is not None:
            overrides["alerting"] = self.alerting_config()
        overrides.update(self.settings.extra)
        config = load_config(None, environ={}, overrides=overrides, bootstrap_servers=self.bootstrap)
        # the end-to-end probe shows on the overview, with its own topic and group
        probe = ProbeConfig(enabled=True, interval_seconds=5, timeout_seconds=5)
        return config.model_copy(update={"clusters": [config.clusters[0].model_copy(
            update={"name": "demo", "probe": probe})]})

    def alerting_config(self) -> dict:
        """The demo's `alerting:` section: the built-in rules with the demo's tuning, sent to the
        local webhook inbox and (when aiosmtpd is installed) the SMTP sink, grouped quickly."""
        receivers: dict = {"webhook": [{"name": WEBHOOK_RECEIVER, "url": self.receivers.webhook_url}]}
        names = [WEBHOOK_RECEIVER]
        if self.receivers.smtp_port is not None:
            receivers["email"] = [{"name": EMAIL_RECEIVER, "host": "127.0.0.1", "port": self.receivers.smtp_port,
                                   "tls": "none", "from": "streamscope-demo@localhost",
                                   "to": ["oncall@localhost"]}]
            names.append(EMAIL_RECEIVER)
        section = {
            "rules_files": [str(DEMO_RULES)],
            "receivers": receivers,
            "route": {"receivers": names, "group_by": ["alertname", "cluster"], "group_wait": "2s",
                      "group_interval": "10s", "repeat_interval": "1h"},
            "delivery": {"initial_backoff": "1s", "max_backoff": "30s"},
        }
        if self.settings.web_port:
            section["dashboard_url"] = f"http://127.0.0.1:{self.settings.web_port}"
        return section

    def start_receivers(self) -> None:
        from demo.receivers import LocalReceivers

        self.receivers = LocalReceivers().start()
        self._stack.append(self.receivers.stop)
        if self.receivers.smtp_error:
            log.warning("%s", self.receivers.smtp_error)

    def start_prometheus(self) -> None:
        from demo.prometheus import DemoPrometheus, PrometheusUnavailable

        work = (self.settings.data_dir or Path("streamscope-demo")) / "prometheus"
        prometheus = DemoPrometheus(work, target=f"127.0.0.1:{self.monitor.web.port}")
        try:
            prometheus.start()
        except PrometheusUnavailable as exc:
            self.prometheus_note = f"{exc}: skipped"
            return
        self.prometheus = prometheus
        self._stack.append(prometheus.stop)

    def start_monitor(self) -> None:
        from monitor.app.root import Monitor

        self.monitor = Monitor(self.monitor_config()).start()
        self._stack.append(self.monitor.stop)

    def start(self) -> "DemoPipeline":
        try:
            self.start_kafka()
            self.start_traffic()
            if self.settings.spark:
                self.start_spark()
            if self.settings.alerting:
                self.start_receivers()
            self.start_monitor()
            if self.settings.prometheus:
                self.start_prometheus()
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
