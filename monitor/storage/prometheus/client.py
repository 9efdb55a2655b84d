"""The Prometheus HTTP API: instant (`/api/v1/query`) and range (`/api/v1/query_range`) queries,
with bearer or basic auth, TLS options and bounded waits and sizes.

Selectors are built here too (`selector`), with every label value escaped and the configured
matchers (e.g. `job="streamscope"`) added, so no name a user gave can change a query.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alerts.secrets import Secret, redact
from monitor.storage.settings import PrometheusConfig

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

# A response larger than this is refused (a query over far more series than a page can show).
MAX_RESPONSE_BYTES = 256 << 20


class PrometheusError(Exception):
    """The query failed: unreachable, refused, a PromQL error, or an answer of the wrong shape."""


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]  # (at, value); NaN and ±Inf as Prometheus sent them

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


def escape(value: str) -> str:
    """A PromQL string literal's content."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class PrometheusClient:
    def __init__(self, config: PrometheusConfig, *, session: requests.Session | None = None):
        self.config = config
        self._base = config.url.rstrip("/")
        if session is None:
            import requests  # loaded only by a monitor that reads Prometheus (docs/performance.md)

            session = requests.Session()
        self._session = session
        self._secrets: tuple[Secret, ...] = ()
        self._session.headers.update(config.headers)
        if config.bearer_token is not None:
            token = config.bearer_token.resolve("history.prometheus.bearer_token")
            self._session.headers["Authorization"] = f"Bearer {token.get()}"
            self._secrets += (token,)
        if config.basic_auth_username is not None and config.basic_auth_password is not None:
            password = config.basic_auth_password.resolve("history.prometheus.basic_auth_password")
            self._session.auth = (config.basic_auth_username, password.get())
            self._secrets += (password,)
        # given with every request: a session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment
        self._verify: bool | str = str(config.ca_file) if config.verify and config.ca_file else config.verify
        if config.client_cert_file is not None:
            self._session.cert = (str(config.client_cert_file), str(config.client_key_file)) \
                if config.client_key_file else str(config.client_cert_file)

    @property
    def url(self) -> str:
        return self._base

    def selector(self, name: str, **labels: str) -> str:
        """`name{label="value",...}` with the configured matchers."""
        matchers = [f'{key}="{escape(str(value))}"' for key, value in labels.items()]
        matchers += self.config.matchers
        return f"{name}{{{','.join(matchers)}}}" if matchers else name

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """An instant query's vector (a scalar comes back as one series without labels)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [Series({}, (_point(result),))]
        if kind != "vector" or not isinstance(result, list):
            raise PrometheusError(f"query {expr!r}: expected a vector, got {kind!r}")
        return [Series(_labels(item), (_point(item.get("value")),)) for item in result]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query's matrix: one value per `step` seconds from `start` to `end`."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{max(step, 0.001):.3f}"}
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusError(f"range query {expr!r}: expected a matrix, got {data.get('resultType')!r}")
        return [Series(_labels(item), tuple(_point(v) for v in item.get("values") or ()))
                for item in data["result"]]

    def close(self) -> None:
        self._session.close()

    def _get(self, path: str, params: dict[str, str]) -> dict:
        import requests

        # POST with a form body: long expressions do not hit URL length limits (the API takes both).
        try:
            response = self._session.post(self._base + path, data=params, timeout=self.config.timeout_seconds,
                                          verify=self._verify, stream=True)
            body = _bounded_body(response)
        except requests.RequestException as exc:
            raise PrometheusError(redact(f"{self._base}: {type(exc).__name__}: {exc}", *self._secrets)) from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise PrometheusError(f"{self._base}{path}: HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200 or not isinstance(payload, dict) or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else None
            raise PrometheusError(redact(f"{self._base}{path}: HTTP {response.status_code}: "
                                         f"{error or response.reason}", *self._secrets))
        data = payload.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"{self._base}{path}: answer without data")
        return data


def _bounded_body(response: requests.Response) -> bytes:
    import requests

    chunks, size = [], 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            response.close()
            raise requests.RequestException(f"answer larger than {MAX_RESPONSE_BYTES >> 20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _labels(item: object) -> dict[str, str]:
    metric = item.get("metric") if isinstance(item, dict) else None
    if not isinstance(metric, dict):
        raise PrometheusError("a series without labels")
    return {str(k): str(v) for k, v in metric.items()}


def _point(value: object) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise PrometheusError(f"a sample of the wrong shape: {value!r:.80}")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise PrometheusError(f"a sample that is not a number: {value!r:.80}") from None
