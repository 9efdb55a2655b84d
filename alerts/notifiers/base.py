"""What every notifier shares: the result type, HTTP posting with secret-safe errors, Retry-After."""
from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..secrets import Secret, redact

if TYPE_CHECKING:
    import requests

USER_AGENT = "streamscope-alerts/0.1"


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: int | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    error: str | None = None  # already redacted

    @classmethod
    def success(cls, status: int | None = None) -> "DeliveryResult":
        return cls(True, status)


class Notifier(Protocol):
    name: str
    type: str
    max_per_second: float | None
    burst: int

    def send(self, payload: Mapping[str, Any], idempotency_key: str, now: float) -> DeliveryResult:
        """Deliver one notification. Never raises; never logs or returns secret values."""


def parse_retry_after(value: str | None, now_wall: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - (time.time() if now_wall is None else now_wall))


def new_session() -> requests.Session:
    """A `requests` session; `requests` is imported here, when a receiver is built: a monitor
    without HTTP receivers, Spark or Prometheus never loads it (5.5 MB, docs/performance.md)."""
    import requests

    return requests.Session()


def post_json(session: requests.Session, url: Secret, body: Any, *, headers: Mapping[str, str], timeout: float,
              secrets: tuple[Secret | None, ...] = ()) -> DeliveryResult:
    """POST JSON; 2xx = delivered. Errors and response snippets are redacted of every secret."""
    import requests  # loaded by `new_session` already: here for its exception type

    all_secrets = (url, *secrets)
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hdrs = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        resp = session.post(url.get(), data=data, headers=hdrs, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return DeliveryResult(False, None, None, redact(f"{type(exc).__name__}: {exc}", *all_secrets))
    try:
        if 200 <= resp.status_code < 300:
            return DeliveryResult(True, resp.status_code)
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        snippet = resp.text[:200].replace("\n", " ") if resp.text else ""
        return DeliveryResult(False, resp.status_code, retry_after,
                              redact(f"HTTP {resp.status_code}: {snippet}", *all_secrets))
    finally:
        resp.close()


def alert_title(payload: Mapping[str, Any]) -> str:
    """`[FIRING:2] StreamscopeConsumerLagHigh (cluster=prod)` style title."""
    alerts = payload.get("alerts", [])
    n_firing = sum(1 for a in alerts if a.get("status") == "firing")
    status = payload.get("status", "firing").upper()
    head = f"[{status}:{n_firing}]" if status == "FIRING" else f"[{status}]"
    labels = dict(payload.get("group_labels") or {})
    name = labels.pop("alertname", None) or payload.get("common_labels", {}).get("alertname") or "alerts"
    rest = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{head} {name}" + (f" ({rest})" if rest else "")
