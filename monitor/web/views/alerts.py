"""The Alerts page's data: firing, pending and resolved alerts, silences and the notification
log, as the alert service lists them."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.web.context import WebContext
from monitor.web.views import format as fmt
from monitor.web.views.common import row_id

log = logging.getLogger(__name__)

ALERTING_NOTICE = (
    "alert evaluation is turned off (`alerting.enabled: false` in the config): remove that line "
    "to evaluate the built-in rules."
)
NO_RECEIVERS_HINT = (
    "No receivers configured: alerts are evaluated and shown here, but no notification is sent. "
    "Add receivers under `alerting:` (docs/alerts.md)."
)


@dataclass
class AlertsView:
    configured: bool
    notice: str | None
    firing: list[dict]
    pending: list[dict]
    resolved: list[dict]
    silences: list[dict]
    error: str | None = None
    notifications: list[dict] = field(default_factory=list)
    receivers: tuple[str, ...] | None = None  # None: unknown


ALERT_COLUMNS = ("alertname", "severity", "state", "labels", "value", "since", "summary")
SILENCE_COLUMNS = ("id", "matchers", "state", "starts", "ends", "created_by", "comment")


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _since_text(since: float | None, at: float) -> str:
    return f"{fmt.timestamp(since)} ({fmt.age(since, at)})" if since else fmt.MISSING


def alert_row(a: Mapping[str, Any], at: float) -> dict:
    """A row of an alert as `AlertService.list_alerts` gives it (`alerts.engine.AlertView.to_dict`)."""
    labels = a["labels"]
    since = a["active_at"]
    resolved = a["resolved_at"]
    value = a["value"]
    state = a["state"]
    suppressed = a["status"]["state"] == "suppressed"
    severity = a["severity"]
    return {
        "id": row_id(a["fingerprint"], _labels_text(labels), str(since)),
        "alertname": a["alertname"], "severity": severity,
        "state": state + (" (silenced)" if suppressed else ""), "_state": state,
        "labels": _labels_text({k: v for k, v in labels.items() if k not in ("alertname", "severity")}),
        "value": fmt.si(value) if value is not None else "",
        "since": _since_text(since, at),
        "_since": since,
        "resolved": fmt.timestamp(resolved) if resolved else "",
        "summary": a["annotations"].get("summary", ""),
        "_level": "stale" if suppressed else "err" if severity in ("critical", "error", "page") else "warn",
    }


def silence_row(s: Mapping[str, Any], at: float) -> dict:
    """A row of a silence as `AlertService.list_silences` gives it (`alerts.silences.Silence.to_dict`)."""
    return {
        "id": s["id"], "matchers": ", ".join(s["matchers_text"]), "state": s["status"]["state"],
        "starts": fmt.timestamp(s["starts_at"]), "ends": fmt.timestamp(s["ends_at"]),
        "created_by": s["createdBy"], "comment": s["comment"],
    }


def notification_row(n: Mapping[str, Any], at: float) -> dict:
    """A row of the notification log (`alerts.notification_log.notification_entry`)."""
    result = n["result"]
    retry = n["next_attempt_at"]
    outcome = {"delivered": "delivered", "pending": "pending (not tried yet)"}.get(result, result)
    if result == "failed":
        outcome = "failed" + (f", retry {fmt.timestamp(retry)}" if retry else "")
    alerts = n["alerts"]
    more = n["alerts_total"] - len(alerts)
    return {
        "id": str(n["id"]),
        "time": _since_text(n["created_at"], at),
        "receiver": f"{n['receiver']} ({n['receiver_type']})",
        "status": n["status"] or "",
        "alerts": "; ".join(alerts) + (f"; +{more} more" if more > 0 else ""),
        "attempts": n["attempts"],
        "result": outcome,
        "error": n["error"] or "",
        "_level": "ok" if result == "delivered" else "err" if result == "failed" else "warn",
    }


def _listed(what: str, rows: Callable[[], list], errors: list[str]) -> list:
    """`rows()`, or [] with the error kept for the page's notice."""
    try:
        return list(rows())
    except Exception as exc:
        log.warning("alerting: %s failed", what, exc_info=True)
        errors.append(f"cannot {what}: {exc}")
        return []


def alerts_view(ctx: WebContext) -> AlertsView:
    """Alerts, silences and the notification log from the alert service; a service that fails
    to answer becomes a notice on the page."""
    service = ctx.alerts
    if service is None:
        return AlertsView(False, ctx.settings.alerts_elsewhere or ALERTING_NOTICE, [], [], [], [])
    at = ctx.now()
    errors: list[str] = []
    rows = [alert_row(a, at) for a in _listed("list alerts", service.list_alerts, errors)]
    silences = [silence_row(s, at) for s in _listed("list silences", service.list_silences, errors)]
    notes = [notification_row(n, at) for n in _listed("list notifications", service.list_notifications, errors)]
    firing = [r for r in rows if r["_state"] == "firing"]
    pending = [r for r in rows if r["_state"] == "pending"]
    resolved = [r for r in rows if r["_state"] not in ("firing", "pending")]
    for group in (firing, pending):
        group.sort(key=lambda r: (r["_level"] != "err", -(r["_since"] or 0)))
    resolved.sort(key=lambda r: -(r["_since"] or 0))
    return AlertsView(True, None, firing, pending, resolved, silences, "; ".join(errors) or None, notes,
                      tuple(service.receiver_names))
