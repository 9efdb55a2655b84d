"""Run a Kafka collector in a supervised child process.

librdkafka can abort the whole Python process (an assertion in `rd_kafka_enq_once_del_source_return`)
when a broker comes back after timed-out group calls. In a child process such an abort costs one
failed cycle: the parent sees the pipe close, records the failure and starts a fresh child.

Every end of a child is visible: a log line (exit code or signal, and whether it died during a
cycle, between cycles or hung), a count per reason and the last exit, which `KafkaSource` puts in
the collector's health (`/healthz`, `streamscope_collector_restarts_total`). A child that died
between cycles (OOM killer, a stray kill) is replaced at once and the cycle runs as usual.

The child is a plain interpreter running `collectors.kafka.process` (not a multiprocessing spawn):
spawn re-imports the parent's main module (the whole CLI, the web stack) in the child and starts a
resource-tracker process beside it; this child imports only the collector and costs one process.
Settings and commands travel pickled over a socket pair (multiprocessing.connection.Connection);
snapshots as `collectors.kafka.wire` encodes them, naming what the parent already holds.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

from collectors.memory import gc_paused, release_free_memory, unmap_large_blocks
from collectors.kafka.bare_packages import enter_client_libraries_bare
from collectors.kafka.client_logs import quiet_kafka_client_logs
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.kafka.errors import PROCESS
from collectors.kafka.wire import SnapshotReceiver, SnapshotSender, WireError
from collectors.models import KafkaClusterSnapshot, ProcessExit
from collectors.secret_masking import install_secret_masking, masked_secrets
from collectors.units import CollectScope

log = logging.getLogger(__name__)

# The directory the packages are imported from, so the child finds the same code as the parent
# whatever its working directory (a source checkout, an editable install, a worktree).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_STARTUP_TIMEOUT = 60.0  # seconds a new child waits for its settings (then its parent is gone)

RESTART_REASONS = ("exit", "signal", "timeout")
# Ctrl-C or a service manager signals the whole process group: the child ends with the parent,
# which is shutting down - worth a line, not a warning.
_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def describe_exit(exit_code: int | None) -> tuple[str, str]:
    """(reason, words) for a child's exit code; negative codes are the signal that killed it."""
    if exit_code is None:
        return "exit", "exit status unknown"
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return "signal", f"killed by {name}"
    return "exit", f"exited with code {exit_code}"


def _child_main(conn: Connection, settings: KafkaCollectorSettings, log_level: int,
                secrets: tuple[str, ...]) -> None:
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s [collector kafka-{settings.cluster}] "
                                                "%(name)s: %(message)s")
    # The child has none of the parent's logging: it masks the parent's secrets and its own.
    install_secret_masking(secrets + settings.secrets)
    quiet_kafka_client_logs(log_level)
    # Imported here: the parent, which imports this module for IsolatedKafkaCollector, never
    # loads the Kafka client libraries.
    from collectors.kafka.collector import KafkaCollector

    collector = KafkaCollector(settings)
    sender = SnapshotSender()
    try:
        while True:
            try:
                command = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return
            if not (isinstance(command, tuple) and command[0] == "collect"):
                return
            parent_holds = command[2] if len(command) > 2 else None  # the last snapshot it decoded
            # Collected, pickled and sent with the cyclic GC off, and dropped before it is back
            # on: it would otherwise scan the whole snapshot once more, as new objects (~30 ms
            # a cycle at 10,000 partitions, measured), just before the snapshot is freed anyway.
            with gc_paused():
                try:
                    conn.send_bytes(sender.encode(collector.collect(command[1]), parent_holds))
                except (BrokenPipeError, ConnectionResetError):
                    return  # the parent is gone (it ended, or did not start): no one to answer
            release_free_memory()  # the cycle's garbage, not its peak, is what the child keeps
    finally:
        collector.close()


class IsolatedKafkaCollector:
    """Same interface as KafkaCollector (`collect()`, `close()`), with the work in a child process."""

    def __init__(self, settings: KafkaCollectorSettings, *, cycle_timeout: float | None = None):
        self.settings = settings
        # Generous: a cycle makes several bounded calls in sequence.
        self.cycle_timeout = cycle_timeout or settings.request_timeout * 6 + 15
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self.restarts_by_reason = dict.fromkeys(RESTART_REASONS, 0)
        self.last_exit: ProcessExit | None = None
        self._receiver = SnapshotReceiver()
        self._interrupted = False  # `interrupt()` ended the child: the monitor is stopping

    @property
    def restarts(self) -> int:
        return sum(self.restarts_by_reason.values())

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._process.poll() is None and self._conn is not None:
            return self._conn
        if self._process is not None and not self._interrupted:  # died since the last cycle
            reason, how = describe_exit(self._process.returncode)
            self._record_exit(reason, f"died between cycles ({how})")
        self._terminate()
        self._interrupted = False
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        # librdkafka's threads would each get a glibc heap of their own, which keeps what it
        # freed: two heaps cost the child 4-7 MB less at 10,000 partitions (measured, `run`)
        env.setdefault("MALLOC_ARENA_MAX", "2")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "collectors.kafka.process", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            child_sock.close()
        parent = Connection(parent_sock.detach())
        self._process, self._conn = process, parent
        self._receiver.forget()  # a new child sends everything
        parent.send((self.settings, logging.getLogger().getEffectiveLevel(), masked_secrets()))
        return parent

    def collect(self, scope: CollectScope | None = None) -> KafkaClusterSnapshot:
        started = time.time()
        conn = self._ensure_started()
        try:
            conn.send(("collect", scope, self._receiver.holds))
            if conn.poll(self.cycle_timeout):
                with gc_paused(keep=True):  # the snapshot lives until the next one
                    data = conn.recv_bytes()
                    try:
                        return self._receiver.decode(data)
                    except WireError as e:  # the next cycle is sent whole
                        log.warning("kafka cluster %s: %s", self.settings.cluster, e)
                        return self._failed(started, f"collector process sent a snapshot this process could not "
                                                     f"read ({e}); the next cycle is sent whole")
            exit_ = self._record_exit("timeout", f"did not answer within {self.cycle_timeout:.0f} s and was "
                                                 "terminated")
        except (EOFError, OSError, BrokenPipeError):
            if self._interrupted:  # not a crash, and nothing restarts: the monitor is stopping
                log.info("kafka cluster %s: collector process (pid %s) ended by the monitor's stop during a cycle",
                         self.settings.cluster, self.pid)
                self._terminate()
                return self._failed(started, "collector process ended by the monitor's stop during the cycle")
            reason, how = describe_exit(self._exit_code())
            exit_ = self._record_exit(reason, f"died during a cycle ({how})")
        self._terminate()
        return self._failed(started, f"collector process {exit_.message}; a new one starts with the next cycle")

    def _failed(self, started: float, error: str) -> KafkaClusterSnapshot:
        """A cycle failed by the collector's process (error kind `process`)."""
        return KafkaClusterSnapshot(cluster=self.settings.cluster, started_at=started, finished_at=time.time(),
                                    error=error, error_kind=PROCESS)

    def _exit_code(self) -> int | None:
        process = self._process
        if process is None:
            return None
        try:
            return process.wait(1)
        except subprocess.TimeoutExpired:
            return None

    def _record_exit(self, reason: str, message: str) -> ProcessExit:
        """Count and log the end of the current child; `collect()` starts a new one."""
        process = self._process
        pid = process.pid if process is not None else None
        code = process.poll() if process is not None else None
        self.restarts_by_reason[reason] += 1
        self.last_exit = ProcessExit(reason=reason, message=message, at=time.time(), pid=pid, exit_code=code)
        level = logging.INFO if code is not None and -code in _SHUTDOWN_SIGNALS else logging.WARNING
        log.log(level, "kafka cluster %s: collector process (pid %s) %s, exit code %s; restart %d (reason %s)",
                self.settings.cluster, pid, message, code, self.restarts, reason)
        return self.last_exit

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
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def interrupt(self) -> None:
        """End the cycle in flight, from another thread: the child is terminated (SIGTERM), so the
        cycle waiting for its answer fails at once (logged as a shutdown, not a crash) instead of
        after the child's own timeouts. That end is not counted as a restart: nothing restarts."""
        process = self._process  # read once: the collecting thread may clear it meanwhile
        if process is not None:
            self._interrupted = True
            process.terminate()

    def close(self) -> None:
        self._terminate()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


def _child_entry(fd: int) -> None:
    """`python -m collectors.kafka.process FD`: the child's side of `IsolatedKafkaCollector`."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when the child ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    unmap_large_blocks()
    # This process runs nothing but the collector: the client libraries' package __init__s (their
    # consumers, producers, serializers and asyncio: ~6 MB here) are not run for it.
    enter_client_libraries_bare()
    conn = Connection(fd)
    if not conn.poll(_STARTUP_TIMEOUT):
        return
    settings, log_level, secrets = conn.recv()
    _child_main(conn, settings, log_level, secrets)


if __name__ == "__main__":
    _child_entry(int(sys.argv[1]))
