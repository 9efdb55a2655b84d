"""The notification log: what was sent to whom, when, and whether it arrived.

Every notification the engine queues is an outbox item (`alerts.store`); this turns those items
into the rows operators read on the Alerts page and at `GET /api/v1/alerts/notifications`
("did the page go out?"). Pure: no I/O, bounded output.

    entry = notification_entry(item)
    # {"id": 12, "receiver": "oncall-mail", "receiver_type": "email", "created_at": 1796..,
    #  "status": "FIRING", "alerts": ["StreamscopeConsumerLagHigh group=orders topic=o"],
    #  "alerts_total": 1, "attempts": 1, "result": "delivered", "delivered_at": 1796..,
    #  "last_attempt_at": 1796.., "next_attempt_at": None, "error": None, "http_status": 200}

`result`: ``delivered``; ``failed`` (tried, not delivered: `error` says why, `next_attempt_at`
when it is retried; nothing is ever dropped); ``pending`` (not tried yet).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .store import OutboxItem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # rows one request may ask for
MAX_ALERTS_LISTED = 5  # per notification; `alerts_total` says how many it carried
MAX_ERROR_CHARS = 300
_LABELS_SHOWN = ("group", "topic", "query", "app", "collector", "cluster")

DELIVERED, FAILED, PENDING = "delivered", "failed", "pending"


def clamp_limit(value: Any, default: int = DEFAULT_LIMIT) -> int:
    """A row count from a request: an integer in [1, MAX_LIMIT]; ValueError naming `limit`."""
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {str(value)[:40]!r}") from None
    return max(1, min(MAX_LIMIT, limit))


def delivery_result(item: OutboxItem) -> str:
    if item.delivered_at is not None:
        return DELIVERED
    return FAILED if item.attempts > 0 else PENDING


def alert_text(alert: Mapping[str, Any]) -> str:
    """`StreamscopeConsumerLagHigh group=orders topic=o`: the alert name and the labels that
    tell instances apart (cluster last; severity and alertname are not repeated)."""
    labels = alert.get("labels") if isinstance(alert.get("labels"), Mapping) else {}
    name = str(labels.get("alertname") or "?")
    shown = " ".join(f"{key}={labels[key]}" for key in _LABELS_SHOWN if labels.get(key))
    return f"{name} {shown}".strip()


def notification_entry(item: OutboxItem) -> dict[str, Any]:
    """One row of the notification log (see the module docstring)."""
    payload = item.payload if isinstance(item.payload, Mapping) else {}
    alerts = [a for a in payload.get("alerts") or () if isinstance(a, Mapping)]
    result = delivery_result(item)
    error = item.last_error if result != DELIVERED else None
    return {
        "id": item.id,
        "receiver": item.receiver,
        "receiver_type": item.receiver_type,
        "created_at": item.created_at,
        "status": str(payload.get("status") or "").upper() or None,
        "alerts": [alert_text(a) for a in alerts[:MAX_ALERTS_LISTED]],
        "alerts_total": len(alerts),
        "attempts": item.attempts,
        "result": result,
        "delivered_at": item.delivered_at,
        "last_attempt_at": item.last_attempt_at,
        "next_attempt_at": item.next_attempt_at if result != DELIVERED else None,
        "error": error[:MAX_ERROR_CHARS] if error else None,
        "http_status": item.last_status,
    }
