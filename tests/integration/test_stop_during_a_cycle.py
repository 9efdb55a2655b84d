"""Stopping `run` while a cycle waits on an unreachable cluster: the cycle in flight is ended
(its collector child terminated), so the monitor stops in seconds, not after the cycle's own
timeouts (51 s at the default 30 s request timeout, measured before). `docker stop` kills a
container 10 s after its SIGTERM. No broker: the cluster's address has nothing listening."""
from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from collectors.kafka.errors import PROCESS
from collectors.kafka.process import IsolatedKafkaCollector
from collectors.kafka.settings import KafkaCollectorSettings
from monitor.app.config import Config
from monitor.app.root import Monitor
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_interrupted_cycle_fails_at_once_as_a_shutdown(caplog):
    caplog.set_level(logging.INFO, logger="collectors.kafka.process")
    collector = IsolatedKafkaCollector(KafkaCollectorSettings(
        cluster="c", bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout=30))
    results = []
    cycle = threading.Thread(target=lambda: results.append(collector.collect()))
    try:
        cycle.start()
        wait_until(lambda: collector.pid, 30, "the collector's child")
        time.sleep(1.0)  # the child is inside its cycle, waiting on the cluster
        started = time.monotonic()
        collector.interrupt()
        cycle.join(20)
        assert not cycle.is_alive() and time.monotonic() - started < 10
        (snapshot,) = results
        assert not snapshot.ok and snapshot.error_kind == PROCESS
        # the stop ended it: not a crash, and nothing restarts (counted, it would read as one)
        assert collector.restarts == 0 and collector.last_exit is None
        assert "stop" in snapshot.error
        ended = [r for r in caplog.records if "ended by the monitor's stop" in r.getMessage()]
        assert [r.levelno for r in ended] == [logging.INFO]
        assert not any("restart" in r.getMessage() for r in caplog.records)
    finally:
        collector.close()


def _stopped_during_its_first_cycle(tmp_path) -> tuple[float, int]:
    """A monitor of a cluster nothing answers for, stopped while its first cycle waits on it:
    (seconds the stop took, the collector child's pid)."""
    config = Config.model_validate({
        "clusters": [{"name": "gone", "bootstrap_servers": f"127.0.0.1:{free_port()}",
                      "request_timeout_seconds": 30}],
        "history": {"path": str(tmp_path / "history.db")},
        "collection": {"isolate_process": True, "interval_seconds": 5},
    })
    monitor = Monitor(config).start(serve=False, loop=True)
    collector = monitor.kafka_sources[0]._collector
    try:
        pid = wait_until(lambda: collector.pid, 30, "the collector's child")
        time.sleep(1.0)  # its first cycle is in flight
    finally:
        started = time.monotonic()
        monitor.stop()
    return time.monotonic() - started, pid


def test_run_stops_within_seconds_while_a_cycle_waits_on_an_unreachable_cluster(tmp_path):
    stopped_in, pid = _stopped_during_its_first_cycle(tmp_path)
    assert stopped_in < 10, f"stopping took {stopped_in:.1f} s"
    assert not _alive(pid)


def test_a_cycle_ended_by_the_stop_is_not_recorded_as_a_failed_cycle(tmp_path):
    """The cluster did not fail: the stop ended its cycle. The history has no failed cycle for it
    (it would show as the collector down at every stop that meets a cycle in flight)."""
    import sqlite3

    _stopped_during_its_first_cycle(tmp_path)
    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("SELECT count(*) FROM cycles").fetchone() == (0,)
