"""The collector's child process side (`collectors.kafka.process._child_main`), without Kafka."""
from __future__ import annotations

import logging
import socket
from multiprocessing.connection import Connection

import collectors.kafka.collector as kafka_collector
from collectors.kafka import process
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import Broker, KafkaClusterSnapshot


def test_a_child_whose_parent_is_gone_mid_cycle_ends_quietly(monkeypatch, capsys):
    """The parent ended (or never finished starting) while a cycle ran: the child had nobody to
    answer and died on a BrokenPipeError traceback; it ends now, its collector closed."""
    parent_sock, child_sock = socket.socketpair()
    parent, child = Connection(parent_sock.detach()), Connection(child_sock.detach())
    closed = []

    class Collector:
        def __init__(self, settings):
            pass

        def collect(self, scope):
            parent.close()  # the parent goes while the cycle runs
            # larger than the socket's buffers: the send itself meets the closed end
            return KafkaClusterSnapshot("c", 0.0, 1.0, brokers=(Broker(1, "h" * 1_000_000, 9092),))

        def close(self):
            closed.append(True)

    monkeypatch.setattr(kafka_collector, "KafkaCollector", Collector)
    parent.send(("collect", None))
    process._child_main(child, KafkaCollectorSettings(cluster="c", bootstrap_servers="x:1"), logging.WARNING, ())
    assert closed == [True]
    assert "Traceback" not in capsys.readouterr().err


def test_a_snapshot_the_parent_cannot_read_is_a_failed_cycle_and_the_next_is_asked_whole(monkeypatch):
    """Bytes from the child that do not decode against what the parent holds (`collectors.kafka.
    wire`) fail the cycle as a collector-process fault, visible like any failed cycle, and the
    parent then holds nothing: the next snapshot is asked for whole."""
    from collectors.kafka.errors import PROCESS

    parent_sock, child_sock = socket.socketpair()
    parent, child = Connection(parent_sock.detach()), Connection(child_sock.detach())
    isolated = process.IsolatedKafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="x:1"))
    monkeypatch.setattr(isolated, "_ensure_started", lambda: parent)
    isolated._receiver.holds = 7  # it decoded snapshot 7 of this child
    child.send_bytes(b"not a snapshot")  # the child's answer, there before it is asked
    raw = isolated.collect()
    assert child.recv() == ("collect", None, 7)
    assert not raw.ok and raw.error_kind == PROCESS and "could not read" in raw.error
    assert isolated._receiver.holds is None
    assert isolated.restarts == 0  # the child itself is fine: it is not replaced
    parent.close()
    child.close()
