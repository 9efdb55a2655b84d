"""The `web` and `exporter` sections: where the server listens, who may read it, and what
/metrics carries."""
from __future__ import annotations

import socket

from alerts.bounds import count
from monitor.settings import SecretRef, Strict


def listen_problem(host: str) -> str | None:
    """Why this machine cannot listen on `host` (None: it can), found by binding a free port of
    it and closing it at once: a name that does not resolve, an address of another machine."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot listen on {host}: the name does not resolve ({exc})"
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as exc:
        return f"cannot listen on {host}: {exc.strerror or exc}"
    return None


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = count(8050, ge=0, le=65535)  # 0: any free port
    auth_token: SecretRef | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretRef | None = None


class ExporterConfig(Strict):
    partition_metrics: bool = False
