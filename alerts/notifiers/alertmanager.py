"""Forward alerts to Alertmanager: POST {url}/api/v2/alerts, as Prometheus does.

Firing alerts get `endsAt = now + 4 x resend_interval` (Alertmanager resolves them by itself if
streamscope stops resending); resolved alerts carry their real end time. Queued forwards are
coalesced: only the newest state of each alert is sent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._util import rfc3339
from ..config import AlertmanagerReceiver
from ..secrets import Secret
from .base import DeliveryResult, new_session, post_json

if TYPE_CHECKING:
    import requests


def render(payloads: Sequence[Mapping[str, Any]], now: float, resend_interval: float) -> list[dict[str, Any]]:
    latest: dict[str, Mapping[str, Any]] = {}
    for p in payloads:  # oldest first: later states win
        for a in p.get("alerts", []):
            latest[a.get("fingerprint") or repr(sorted(a.get("labels", {}).items()))] = a
    out = []
    for a in latest.values():
        firing = a.get("status") == "firing"
        ends = now + 4 * max(resend_interval, 15.0) if firing else a.get("ends_at")
        starts = a.get("starts_at")
        if ends is not None and starts is not None and ends <= starts + 0.001:
            ends = starts + 0.001  # Alertmanager rejects the whole request if startsAt >= endsAt
        item = {
            "labels": dict(a.get("labels", {})),
            "annotations": dict(a.get("annotations", {})),
            "startsAt": rfc3339(a.get("starts_at")),
            "generatorURL": a.get("generator_url", ""),
        }
        if ends is not None:
            item["endsAt"] = rfc3339(ends)
        out.append(item)
    return out


class AlertmanagerNotifier:
    type = "alertmanager"
    coalesce = True

    def __init__(self, cfg: AlertmanagerReceiver, url: Secret, bearer_token: Secret | None = None,
                 basic_password: Secret | None = None, session: requests.Session | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.max_per_second = cfg.max_per_second
        self.burst = cfg.burst
        base = url.get().rstrip("/")
        self._url = Secret(base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts")
        self._base = url
        self._token = bearer_token
        self._basic = basic_password
        self._session = session or new_session()

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier(name={self.name!r}, url=***)"

    def send(self, payload: Mapping[str, Any], idempotency_key: str, now: float) -> DeliveryResult:
        return self.send_batch([payload], idempotency_key, now)

    def send_batch(self, payloads: Sequence[Mapping[str, Any]], idempotency_key: str, now: float) -> DeliveryResult:
        body = render(payloads, now, self.cfg.resend_interval)
        if not body:
            return DeliveryResult.success()
        headers = {"Idempotency-Key": idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.get()}"
        elif self.cfg.basic_auth_username:
            import base64

            raw = f"{self.cfg.basic_auth_username}:{self._basic.get() if self._basic else ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return post_json(self._session, self._url, body, headers=headers, timeout=self.cfg.timeout,
                         secrets=(self._base, self._token, self._basic))
