"""Notifier payload rendering (no network) and secret-safe errors."""
from __future__ import annotations

import email
import json

import requests

from alerts.config import parse_alerting_config
from alerts.notifiers import alertmanager as am_mod
from alerts.notifiers import email as email_mod
from alerts.notifiers import slack as slack_mod
from alerts.notifiers import webhook as webhook_mod
from alerts.notifiers.base import parse_retry_after, post_json
from alerts.secrets import Secret

NOW = 1_700_000_000.0


def payload(status="firing", n=1, group='orders<&>"x"'):
    alerts = []
    for i in range(n):
        alerts.append({
            "status": status, "fingerprint": f"{i:016x}",
            "labels": {"alertname": "Lag", "severity": "warning", "cluster": "prod", "group": f"{group}{i}"},
            "annotations": {"summary": f"<b>{group}</b> is behind", "description": "d & <i>e</i>"},
            "starts_at": NOW - 60, "ends_at": NOW if status == "resolved" else None,
            "generator_url": "http://dash/groups?cluster=prod&group=x", "value": 5.0,
        })
    return {"receiver": "r", "receiver_type": "x", "group_key": 'root:{alertname="Lag"}', "status": status,
            "group_labels": {"alertname": "Lag", "cluster": "prod"}, "common_labels": {"alertname": "Lag"},
            "common_annotations": {}, "external_url": "http://dash", "alerts": alerts, "created_at": NOW,
            "idempotency_key": "k1"}


def cfg():
    return parse_alerting_config({"receivers": {
        "slack": [{"name": "s", "url_env": "X", "max_alerts": 2, "channel": "#ops"}],
        "email": [{"name": "m", "host": "h", "from": "alerts@x.y", "to": ["a@x.y", "b@x.y"]}],
        "webhook": [{"name": "w", "url": "http://h/x", "max_alerts": 1}],
        "alertmanager": [{"name": "am", "url": "http://am:9093", "resend_interval": "1m"}],
    }}).receivers


def test_slack_blocks_in_coloured_attachment_and_escaped():
    c = cfg().slack[0]
    body = slack_mod.render(payload("firing", n=3), c, "key-123")
    att = body["attachments"][0]
    assert att["color"] == slack_mod.COLOR_FIRING and body["channel"] == "#ops"
    assert body["text"] == "[FIRING:3] Lag (cluster=prod)"
    sections = [b for b in att["blocks"] if b["type"] == "section"]
    assert len(sections) == 2  # max_alerts
    assert "&lt;b&gt;orders&lt;&amp;&gt;" in sections[0]["text"]["text"] and "<b>" not in sections[0]["text"]["text"]
    contexts = json.dumps([b for b in att["blocks"] if b["type"] == "context"])
    assert "1 more alert" in contexts and "key-123" in contexts
    assert slack_mod.render(payload("resolved"), c, "k")["attachments"][0]["color"] == slack_mod.COLOR_RESOLVED


def test_email_multipart_and_html_escaped():
    c = cfg().email[0]
    msg = email_mod.render(payload("firing", n=1, group="<script>alert(1)</script>"), c, "key-9", NOW)
    parsed = email.message_from_bytes(msg.as_bytes())
    assert parsed.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in parsed.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "<script>" not in parts["text/html"] and "&lt;script&gt;" in parts["text/html"]
    assert "<script>alert(1)</script>0" in parts["text/plain"]
    assert parsed["Message-ID"] == "<key-9@streamscope>" and parsed["X-Streamscope-Idempotency-Key"] == "key-9"
    assert parsed["Subject"].startswith("[streamscope] [FIRING:1] Lag") and parsed["To"] == "a@x.y, b@x.y"


def test_webhook_alertmanager_payload_shape():
    body = webhook_mod.render(payload("firing", n=2), "w", max_alerts=1)
    assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                         "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert body["version"] == "4" and body["truncatedAlerts"] == 1 and body["receiver"] == "w"
    (a,) = body["alerts"]
    assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert a["endsAt"] == "0001-01-01T00:00:00Z" and a["startsAt"] == "2023-11-14T22:12:20.000Z"
    r = webhook_mod.render(payload("resolved"), "w")["alerts"][0]
    assert r["endsAt"] == "2023-11-14T22:13:20.000Z" and r["status"] == "resolved"


def test_alertmanager_forward_coalesces_latest_state():
    first = payload("firing", n=2)
    second = payload("resolved", n=1)  # alert 0 resolved later
    body = am_mod.render([first, second], NOW, 60)
    by_group = {a["labels"]["group"]: a for a in body}
    assert len(body) == 2
    assert by_group['orders<&>"x"0']["endsAt"] == "2023-11-14T22:13:20.000Z"  # resolved
    assert by_group['orders<&>"x"1']["endsAt"] == "2023-11-14T22:17:20.000Z"  # now + 4 x 60 s
    assert set(body[0]) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_retry_after_parsing():
    assert parse_retry_after("1") == 1.0 and parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_wall=1445412470.0) == 10.0


def test_connection_errors_never_show_the_secret_url():
    url = Secret("http://127.0.0.1:1/services/T0001/B0001/TOPSECRETTOKEN")
    res = post_json(requests.Session(), url, {"a": 1}, headers={}, timeout=2)
    assert not res.ok and res.error
    assert "TOPSECRETTOKEN" not in res.error and "/services/" not in res.error
