"""The `history` section: where the history is, how long what it keeps is kept, and which
history the dashboard and the API read.

`backend: embedded` (the default) is the SQLite file `run` writes. `backend: prometheus` reads
Prometheus, or anything speaking its HTTP API (Thanos, Mimir, VictoriaMetrics), where a fleet
of replicas is the one shared history (docs/scaling.md); `run` still keeps its own small file
for its alert windows and restarts.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from alerts.bounds import DAY, HOUR, MINUTE, seconds
from monitor.settings import SecretRef, Strict

# A PromQL label matcher: name, operator, double-quoted value (escapes allowed inside).
_MATCHER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"$')


class PrometheusConfig(Strict):
    """Where the Prometheus HTTP API is and how to talk to it. Secrets (bearer token, basic-auth
    password) are named by `env` or `file`, never written here."""

    url: str = Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    timeout_seconds: float = seconds(10.0, gt=0, le=300)
    bearer_token: SecretRef | None = None
    basic_auth_username: str | None = None
    basic_auth_password: SecretRef | None = None
    ca_file: Path | None = None  # extra CA bundle to trust (HTTPS)
    verify: bool = True  # verify the server certificate and host name
    client_cert_file: Path | None = None  # mutual TLS
    client_key_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # non-secret, e.g. X-Scope-OrgID (Mimir)
    # Label matchers added to every selector, e.g. ['job="streamscope"'].
    matchers: list[str] = Field(default_factory=list)
    # How often Prometheus scrapes streamscope: the smallest step of a range query, and the least
    # each step's window covers.
    scrape_interval_seconds: float = seconds(15.0, gt=0, le=HOUR)
    # The latest values the pages show are asked at most this often.
    refresh_seconds: float = seconds(10.0, gt=0, le=10 * MINUTE)

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, matchers: list[str]) -> list[str]:
        for matcher in matchers:
            if not _MATCHER.match(matcher.strip()):
                raise ValueError(f'{matcher!r} is not a label matcher like job="streamscope"')
        return [m.strip() for m in matchers]

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in ("authorization", "cookie", "proxy-authorization"):
                raise ValueError(f"{name!r} carries a secret: use bearer_token or basic_auth_password")
        return headers

    @model_validator(mode="after")
    def _pairs(self) -> PrometheusConfig:
        if (self.basic_auth_username is None) != (self.basic_auth_password is None):
            raise ValueError("basic_auth_username and basic_auth_password go together")
        if self.bearer_token is not None and self.basic_auth_username is not None:
            raise ValueError("give bearer_token or basic auth, not both")
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file needs client_cert_file")
        return self


class HistoryConfig(Strict):
    path: Path = Path("streamscope.db")
    retention_seconds: float = seconds(DAY, gt=0)
    downsample_after_seconds: float = seconds(HOUR, gt=0)
    downsample_step_seconds: float = seconds(60.0, gt=0, le=DAY)
    prune_interval_seconds: float = seconds(300.0, gt=0, le=DAY)
    # What the dashboard and the API read: the embedded file, or Prometheus (`prometheus.url`).
    backend: Literal["embedded", "prometheus"] = "embedded"
    prometheus: PrometheusConfig | None = None

    @model_validator(mode="after")
    def _backend_configured(self) -> HistoryConfig:
        if self.backend == "prometheus" and self.prometheus is None:
            raise ValueError("backend prometheus needs prometheus.url")
        return self
