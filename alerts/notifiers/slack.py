"""Slack incoming webhook: Block Kit blocks inside one coloured attachment (red firing, green resolved)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import SlackReceiver
from ..secrets import Secret
from .base import DeliveryResult, alert_title, new_session, post_json

if TYPE_CHECKING:
    import requests

COLOR_FIRING = "#E01E5A"  # red
COLOR_RESOLVED = "#2EB67D"  # green
_SECTION_MAX = 2900  # Slack section text limit is 3000
_HEADER_MAX = 150


def escape_mrkdwn(text: Any) -> str:
    """Slack needs only &, < and > escaped; this also stops <!channel>-style mentions."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    safe_url = url.replace(">", "%3E").replace("<", "%3C").replace("|", "%7C").replace(" ", "%20")
    return f"<{safe_url}|{escape_mrkdwn(label)}>"


def render(payload: Mapping[str, Any], cfg: SlackReceiver, idempotency_key: str) -> dict[str, Any]:
    alerts = list(payload.get("alerts", []))
    firing = payload.get("status") == "firing"
    title = alert_title(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:_HEADER_MAX], "emoji": True}},
    ]
    for a in alerts[: cfg.max_alerts]:
        ann = a.get("annotations", {})
        labels = a.get("labels", {})
        icon = ":red_circle:" if a.get("status") == "firing" else ":large_green_circle:"
        summary = ann.get("summary") or labels.get("alertname", "alert")
        lines = [f"{icon} *{escape_mrkdwn(summary)}*"]
        if ann.get("description"):
            lines.append(escape_mrkdwn(ann["description"]))
        shown = {k: v for k, v in sorted(labels.items()) if k not in ("alertname",)}
        if shown:
            lines.append(" ".join(f"`{escape_mrkdwn(k)}={escape_mrkdwn(v)}`" for k, v in shown.items()))
        if a.get("generator_url"):
            lines.append(_link(a["generator_url"], "Open in streamscope"))
        text = "\n".join(lines)
        if len(text) > _SECTION_MAX:
            text = text[: _SECTION_MAX - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(alerts) > cfg.max_alerts:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… and {len(alerts) - cfg.max_alerts} more alert(s)"}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"streamscope · id `{escape_mrkdwn(idempotency_key)}`"}]})
    body: dict[str, Any] = {
        "text": title,  # notification fallback
        "attachments": [{"color": COLOR_FIRING if firing else COLOR_RESOLVED, "fallback": title, "blocks": blocks}],
    }
    if cfg.channel:
        body["channel"] = cfg.channel
    if cfg.username:
        body["username"] = cfg.username
    if cfg.icon_emoji:
        body["icon_emoji"] = cfg.icon_emoji
    return body


class SlackNotifier:
    type = "slack"

    def __init__(self, cfg: SlackReceiver, url: Secret, session: requests.Session | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.max_per_second = cfg.max_per_second
        self.burst = cfg.burst
        self._url = url
        self._session = session or new_session()

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r}, url=***)"

    def send(self, payload: Mapping[str, Any], idempotency_key: str, now: float) -> DeliveryResult:
        body = render(payload, self.cfg, idempotency_key)
        return post_json(self._session, self._url, body, headers={"Idempotency-Key": idempotency_key},
                         timeout=self.cfg.timeout)
