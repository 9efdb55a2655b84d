"""free_port: listening ports for tests and the demo, out of reach of outgoing connections.

CI once failed with "Address already in use": bind(0) had returned a port of the ephemeral
range, and a client connection made while the demo started took it before the monitor bound it.
"""
from __future__ import annotations

import socket

from demo import kafka_box
from demo.kafka_box import LISTEN_PORT_FLOOR, free_port, listen_port_candidates


def test_candidates_lie_below_the_ephemeral_range():
    assert listen_port_candidates("32768\t60999\n") == range(LISTEN_PORT_FLOOR, 32768)


def test_no_candidates_when_the_range_is_unknown_or_leaves_too_few():
    assert listen_port_candidates(None) == range(0)
    assert listen_port_candidates("") == range(0)
    assert listen_port_candidates("not a range") == range(0)
    assert listen_port_candidates("10500 60999") == range(0)  # 500 ports below: too few to draw from


def test_free_ports_are_outside_the_ephemeral_range_distinct_and_bindable():
    low = int(kafka_box.EPHEMERAL_PORT_RANGE_FILE.read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(LISTEN_PORT_FLOOR <= port < low for port in ports)
    for port in ports[:5]:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_handed_out(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(kafka_box, "listen_port_candidates", lambda _text: range(port, port + 1))
        assert free_port() != port  # the only candidate is taken: the kernel's choice instead


def test_without_the_range_file_it_falls_back_to_the_kernels_choice(monkeypatch, tmp_path):
    low, high = map(int, kafka_box.EPHEMERAL_PORT_RANGE_FILE.read_text().split())
    monkeypatch.setattr(kafka_box, "EPHEMERAL_PORT_RANGE_FILE", tmp_path / "absent")
    port = free_port()
    assert low <= port <= high  # bind(0)'s answer: a port of the ephemeral range
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        assert listener.getsockname()[1] == port
