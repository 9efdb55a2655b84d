"""The demo's Spark jobs, each run as its own process by ``demo.spark_pipeline.SparkDemo``.

- ``python -m demo.spark_jobs.structured``: Structured Streaming, Kafka -> windowed aggregation
  -> Kafka, with the streamscope listener attached.
- ``python -m demo.spark_jobs.dstream``: a legacy DStream job (socket receiver, windowed reduce
  with checkpointing), so the ``/streaming/*`` REST endpoints have something to show.

This package holds what both share: the Spark settings that make a driver observable (fixed
UI port on loopback, metrics servlets), a state file telling the launcher where the UI is, and
SIGTERM handling that stops the job cleanly. Nothing here imports pyspark at import time.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
# Driver JVM flags. C1 only and the serial GC: measured on the 2-core box, ~25 % less CPU to
# reach a running query and over the first dozen micro-batches than the default tiered JIT,
# with batches no slower (they are tiny). $STREAMSCOPE_SPARK_JAVA_OPTS replaces them.
DEFAULT_DRIVER_JAVA_OPTIONS = ("-XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
                               "-Djava.net.preferIPv4Stack=true")


def observable_conf(*, app_name: str, ui_port: int, driver_memory: str = "1g",
                    local_dir: str | None = None, extra_jars: list[str] | None = None,
                    log_level: str = "WARN") -> dict[str, str]:
    """Spark settings for a local driver that streamscope can watch.

    UI on ``127.0.0.1:ui_port`` (REST API under /api/v1), the PrometheusServlet at
    ``/metrics/prometheus/`` and ``/metrics/executors/prometheus``, the JSON servlet at
    ``/metrics/json/``; a small heap and serial GC so several JVMs fit on a 2-core box.
    """
    conf = {
        "spark.app.name": app_name,
        "spark.master": "local[2]",
        "spark.ui.port": str(ui_port),
        "spark.ui.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": os.environ.get("STREAMSCOPE_SPARK_JAVA_OPTS",
                                                        DEFAULT_DRIVER_JAVA_OPTIONS),
        "spark.ui.prometheus.enabled": "true",
        "spark.metrics.conf.*.sink.prometheusServlet.class":
            "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
        "spark.metrics.appStatusSource.enabled": "true",
        "spark.default.parallelism": "2",
        "spark.log.level": log_level,
        "spark.sql.session.timeZone": "UTC",
    }
    if local_dir:
        conf["spark.local.dir"] = local_dir
    if extra_jars:
        conf["spark.jars"] = ",".join(extra_jars)
    return conf


def loopback_environment() -> None:
    """Keep every Spark socket (UI included, which ignores spark.driver.bindAddress) on loopback."""
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def ui_url_of(spark_context: Any, fallback_port: int) -> str:
    """``http://127.0.0.1:<port>`` of the driver UI actually bound (Spark may move up a port)."""
    web_url = spark_context.uiWebUrl or ""
    port = fallback_port
    try:
        port = int(web_url.rsplit(":", 1)[1].split("/", 1)[0])
    except (IndexError, ValueError):
        pass
    return f"http://{LOOPBACK}:{port}"


def write_state(path: str | os.PathLike | None, **state: Any) -> None:
    """Atomically (re)write the job's state file (JSON) for the launcher."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "written_at": time.time(), **state},
                                    indent=1) + "\n")
    temporary.replace(target)


class StopFlag:
    """Set by SIGTERM/SIGINT, or (``exit_with_parent``) once the launching process is gone.

    The main thread polls ``is_set()`` between short waits. The handler only sets a flag:
    raising inside a blocking Py4J call would leave the gateway connection half-read. Watching
    the parent covers a launcher killed with SIGKILL, which can run no cleanup of its own.
    """

    def __init__(self, exit_with_parent: bool = False) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self._parent = os.getppid() if exit_with_parent else None

    def install(self) -> "StopFlag":
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    def is_set(self) -> bool:
        if not self.event.is_set() and self._parent is not None and os.getppid() != self._parent:
            self.signal_name = f"parent process {self._parent} gone"
            self.event.set()
        return self.event.is_set()


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return logging.getLogger(name)
