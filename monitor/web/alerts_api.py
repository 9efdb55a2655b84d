"""The alerts API: alerts, their history, the notification log and silences (docs/alerts.md)."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from alerts.notification_log import clamp_limit
from alerts.silences import SilenceError, SilenceNotFound
from monitor.web.context import AlertService, current_context

blueprint = Blueprint("alerts_api", __name__, url_prefix="/api/v1")


def _alerts() -> AlertService:
    alerts = current_context().alerts
    if alerts is None:
        abort(404, description="alert evaluation is turned off (alerting.enabled: false)")
    return alerts


@blueprint.get("/alerts")
def alerts():
    return jsonify(_alerts().list_alerts(request.args.get("state")))


@blueprint.get("/alerts/history")
def alerts_history():
    return jsonify(_alerts().alert_history())


@blueprint.get("/alerts/notifications")
def alert_notifications():
    service = _alerts()
    try:
        limit = clamp_limit(request.args.get("limit"))
    except ValueError as exc:
        abort(400, description=str(exc))
    return jsonify(service.list_notifications(limit, receiver=request.args.get("receiver") or None))


@blueprint.get("/silences")
def silences():
    return jsonify(_alerts().list_silences(request.args.get("state")))


@blueprint.post("/silences")
def create_silence():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object")
    try:
        return jsonify(_alerts().create_silence(body)), 201
    except SilenceError as exc:
        abort(400, description=str(exc))
    except SilenceNotFound:
        abort(404, description=f"id: unknown silence {str(body.get('id'))[:80]!r}")


@blueprint.delete("/silences/<silence_id>")
def expire_silence(silence_id: str):
    try:
        return jsonify(_alerts().expire_silence(silence_id))
    except SilenceNotFound:
        abort(404, description=f"unknown silence {silence_id!r}")
