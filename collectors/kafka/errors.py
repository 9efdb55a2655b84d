"""Why a Kafka collection cycle failed, in words an operator can act on.

librdkafka reports a wrong SASL password and a failed TLS handshake as "Broker transport failure",
the same as a broker that is down; the real reason only reaches its error callback (and log). This
module names the reason: the `kind` of a failed cycle is one of `ERROR_KINDS` (a bounded set, the
`error` label of `streamscope_collector_last_error_info`), and security failures keep librdkafka's
or kafka-python's own explanation as text (they name the broker and mechanism, never a password).
"""
from __future__ import annotations

import threading

AUTHENTICATION = "authentication"
TLS = "tls"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
PROCESS = "process"  # the collector's child process died or hung (collectors.kafka.process)
OTHER = "other"
ERROR_KINDS = (AUTHENTICATION, TLS, TIMEOUT, UNREACHABLE, PROCESS, OTHER)

_SECURITY_HEADLINES = {AUTHENTICATION: "authentication failed", TLS: "TLS handshake failed"}


class ClusterSecurityError(Exception):
    """The cluster refused our credentials, or TLS could not be set up: no retry will help
    until the configuration (or the broker's) changes."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{_SECURITY_HEADLINES[kind]}: {detail}")
        self.kind = kind
        self.detail = detail


def security_kind(code_name: str, text: str) -> str | None:
    """AUTHENTICATION or TLS when a librdkafka error (code name and text) says so, else None.

    A failed TLS handshake arrives as `_TRANSPORT` with the reason in the text; a rejected
    certificate as `_SSL`; a rejected SASL login as `_AUTHENTICATION`."""
    lowered = text.lower()
    if code_name == "_AUTHENTICATION" or "sasl authentication error" in lowered or "authentication failed" in lowered:
        return AUTHENTICATION
    if code_name == "_SSL" or "ssl handshake failed" in lowered or "certificate verify failed" in lowered:
        return TLS
    return None


def failure_kind(text: str) -> str:
    """The kind of a failed cycle from its error text (security errors are told by type first)."""
    lowered = text.lower()
    if "timed_out" in lowered or "timed out" in lowered or "timeout" in lowered:
        return TIMEOUT
    if "_transport" in lowered or "_all_brokers_down" in lowered or "_resolve" in lowered \
            or "unable to bootstrap" in lowered:
        return UNREACHABLE
    return OTHER


class SecurityErrors:
    """librdkafka `error_cb`: keeps the latest authentication or TLS error it reports.

    librdkafka calls it from `poll()` (on the polling thread), the collector reads it after a
    failed cycle; a lock keeps the two apart when several clusters share one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: ClusterSecurityError | None = None

    def __call__(self, error) -> None:  # confluent_kafka.KafkaError
        kind = security_kind(error.name(), error.str())
        if kind is not None:
            with self._lock:
                self._latest = ClusterSecurityError(kind, error.str())

    def take(self) -> ClusterSecurityError | None:
        """The latest security error since the last call (and forget it)."""
        with self._lock:
            latest, self._latest = self._latest, None
        return latest
