"""The `web` and `exporter` sections: where the server listens, who may read it, and what
/metrics carries."""
from __future__ import annotations

from alerts.bounds import count
from monitor.settings import SecretRef, Strict


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = count(8050, ge=0, le=65535)  # 0: any free port
    auth_token: SecretRef | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretRef | None = None


class ExporterConfig(Strict):
    partition_metrics: bool = False
