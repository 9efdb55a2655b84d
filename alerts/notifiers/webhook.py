"""Generic webhook with the Alertmanager webhook payload (version "4")."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._util import rfc3339
from ..config import WebhookReceiver
from ..secrets import Secret
from .base import DeliveryResult, new_session, post_json

if TYPE_CHECKING:
    import requests


def am_alert(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": a.get("status", "firing"),
        "labels": dict(a.get("labels", {})),
        "annotations": dict(a.get("annotations", {})),
        "startsAt": rfc3339(a.get("starts_at")),
        "endsAt": rfc3339(a.get("ends_at")),  # Go zero time while firing, as Alertmanager sends
        "generatorURL": a.get("generator_url", ""),
        "fingerprint": a.get("fingerprint", ""),
    }


def render(payload: Mapping[str, Any], receiver: str, max_alerts: int = 0, external_url: str = "") -> dict[str, Any]:
    alerts = list(payload.get("alerts", []))
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": payload.get("group_key", ""),
        "truncatedAlerts": truncated,
        "status": payload.get("status", "firing"),
        "receiver": receiver,
        "groupLabels": dict(payload.get("group_labels", {})),
        "commonLabels": dict(payload.get("common_labels", {})),
        "commonAnnotations": dict(payload.get("common_annotations", {})),
        "externalURL": payload.get("external_url") or external_url,
        "alerts": [am_alert(a) for a in alerts],
    }


class WebhookNotifier:
    type = "webhook"

    def __init__(self, cfg: WebhookReceiver, url: Secret, bearer_token: Secret | None = None, *,
                 external_url: str = "", session: requests.Session | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.max_per_second = cfg.max_per_second
        self.burst = cfg.burst
        self._url = url
        self._token = bearer_token
        self._external_url = external_url
        self._session = session or new_session()

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, url=***)"

    def send(self, payload: Mapping[str, Any], idempotency_key: str, now: float) -> DeliveryResult:
        body = render(payload, self.name, self.cfg.max_alerts, self._external_url)
        headers = {**self.cfg.headers, "Idempotency-Key": idempotency_key,
                   "X-Streamscope-Idempotency-Key": idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.get()}"
        return post_json(self._session, self._url, body, headers=headers, timeout=self.cfg.timeout,
                         secrets=(self._token,))
