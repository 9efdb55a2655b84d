"""Naming why a Kafka cycle failed, and how a collector child process ended (pure logic; the real
broker cases are in tests/integration/test_kafka_security.py and test_kafka_collector.py)."""
from __future__ import annotations

import logging
import signal

import pytest
from kafka.errors import KafkaConnectionError, NodeNotReadyError, SaslAuthenticationFailedError

from collectors.kafka.errors import (AUTHENTICATION, TLS, TIMEOUT, UNREACHABLE, OTHER, SecurityErrors, failure_kind,
                                     security_kind)
from collectors.kafka.group_requests import _SecurityErrorCapture
from collectors.kafka.process import describe_exit


@pytest.mark.parametrize("code, text, kind", [
    ("_AUTHENTICATION", "sasl_plaintext://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication "
                        "failed: Invalid username or password (after 303ms in state AUTH_REQ)", AUTHENTICATION),
    ("_TRANSPORT", "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by "
                   "peer: connecting to a PLAINTEXT broker listener? (after 3ms in state SSL_HANDSHAKE)", TLS),
    ("_SSL", "ssl://k:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
     TLS),
    ("_TRANSPORT", "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused", None),
    ("_ALL_BROKERS_DOWN", "1/1 brokers are down", None),
])
def test_security_kind_of_librdkafka_errors(code, text, kind):
    assert security_kind(code, text) == kind


@pytest.mark.parametrize("text, kind", [
    ('KafkaException: KafkaError{code=_TRANSPORT,val=-195,str="Failed to get metadata: Local: Broker transport '
     'failure"}', UNREACHABLE),
    ('KafkaException: KafkaError{code=_TIMED_OUT,val=-185,str="Failed to get metadata: Local: Timed out"}', TIMEOUT),
    ("CycleTimeout: group requests did not complete within the cycle budget", TIMEOUT),
    ("GroupRequestTimeout: connecting to k:9092: KafkaTimeoutError: Unable to bootstrap from k:9092", TIMEOUT),
    ("ValueError: something unexpected", OTHER),
])
def test_failure_kind_of_other_errors(text, kind):
    assert failure_kind(text) == kind


class _KafkaError:  # what librdkafka hands the error callback (confluent_kafka.KafkaError's interface)
    def __init__(self, name: str, text: str):
        self._name, self._text = name, text

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._text


def test_error_callback_keeps_the_latest_security_error_until_taken():
    errors = SecurityErrors()
    errors(_KafkaError("_AUTHENTICATION", "b/bootstrap: SASL authentication error: Authentication failed"))
    errors(_KafkaError("_ALL_BROKERS_DOWN", "1/1 brokers are down"))  # not a security error: ignored
    taken = errors.take()
    assert taken.kind == AUTHENTICATION
    assert str(taken) == "authentication failed: b/bootstrap: SASL authentication error: Authentication failed"
    assert errors.take() is None


@pytest.mark.parametrize("code, reason, words", [
    (-signal.SIGKILL, "signal", "killed by SIGKILL"),
    (-signal.SIGABRT, "signal", "killed by SIGABRT"),
    (1, "exit", "exited with code 1"),
    (0, "exit", "exited with code 0"),
    (None, "exit", "exit status unknown"),
])
def test_describe_exit(code, reason, words):
    assert describe_exit(code) == (reason, words)


def _record(thread: str, *args) -> logging.LogRecord:
    record = logging.LogRecord("kafka.net.manager", logging.WARNING, __file__, 1,
                               "Bootstrap connection to %s failed: %s", args, None)
    record.threadName = thread
    return record


def test_kafka_python_security_errors_are_read_from_its_io_thread_only():
    capture = _SecurityErrorCapture("kafka-io-streamscope-a")
    capture.emit(_record("kafka-io-streamscope-b", "bootstrap-0", SaslAuthenticationFailedError("other cluster")))
    capture.emit(_record("kafka-io-streamscope-a", "bootstrap-0", NodeNotReadyError("bootstrap-0")))
    assert capture.found is None
    capture.emit(_record("kafka-io-streamscope-a", "bootstrap-0", KafkaConnectionError("Handshake failed: bad cert")))
    assert capture.found.kind == TLS
    capture = _SecurityErrorCapture("kafka-io-streamscope-a")
    capture.emit(_record("kafka-io-streamscope-a", "bootstrap-0", SaslAuthenticationFailedError("Invalid password")))
    assert capture.found.kind == AUTHENTICATION and "Invalid password" in str(capture.found)
