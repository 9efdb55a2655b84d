"""Run a Kafka collector in a supervised child process.

librdkafka can abort the whole Python process (an assertion in `rd_kafka_enq_once_del_source_return`)
when a broker comes back after timed-out group calls. In a child process such an abort costs one
failed cycle: the parent sees the pipe close, records the failure and starts a fresh child.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings, quiet_kafka_client_logs
from collectors.models import KafkaClusterSnapshot

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")  # never fork a process that has librdkafka threads


def _child_main(conn: Connection, settings: KafkaCollectorSettings, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s [collector %(processName)s] %(name)s: %(message)s")
    quiet_kafka_client_logs(log_level)
    collector = KafkaCollector(settings)
    try:
        while True:
            try:
                command = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return
            if command != "collect":
                return
            conn.send(collector.collect())
    finally:
        collector.close()


class IsolatedKafkaCollector:
    """Same interface as KafkaCollector (`collect()`, `close()`), with the work in a child process."""

    def __init__(self, settings: KafkaCollectorSettings, *, cycle_timeout: float | None = None):
        self.settings = settings
        # Generous: a cycle makes several bounded calls in sequence.
        self.cycle_timeout = cycle_timeout or settings.request_timeout * 6 + 15
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.restarts = 0

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._terminate()
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_child_main, args=(child, self.settings, logging.getLogger().getEffectiveLevel()),
            name=f"kafka-{self.settings.cluster}", daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        return parent

    def collect(self) -> KafkaClusterSnapshot:
        started = time.time()
        code: int | None = None
        conn = self._ensure_started()
        try:
            conn.send("collect")
            if conn.poll(self.cycle_timeout):
                return conn.recv()
            error = f"collector process did not answer within {self.cycle_timeout:.0f} s; restarted"
        except (EOFError, OSError, BrokenPipeError):
            code = self._process.exitcode if self._process else None
            if code is None and self._process is not None:
                self._process.join(1)
                code = self._process.exitcode
            error = f"collector process died (exit code {code}); a new one starts with the next cycle"
        # Ctrl-C or a service manager signals the whole process group: the child ends with the
        # parent, which is shutting down - worth a line, not a warning.
        level = logging.INFO if code in (-signal.SIGINT, -signal.SIGTERM) else logging.WARNING
        log.log(level, "kafka cluster %s: %s", self.settings.cluster, error)
        self._terminate()
        self.restarts += 1
        return KafkaClusterSnapshot(cluster=self.settings.cluster, started_at=started,
                                    finished_at=time.time(), error=error)

    def _terminate(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            try:
                conn.send("stop")
            except (OSError, BrokenPipeError):
                pass
            conn.close()
        if process is not None:
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join(5)

    def close(self) -> None:
        self._terminate()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
