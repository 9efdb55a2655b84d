"""The notification log ("did the page go out?") and built-in rules evaluated by default.

Delivery goes to a real local HTTP receiver (alerts.http_standin) scripted to fail once; the
monitor tests use a real Monitor (SQLite history, no Kafka) and its Flask app.
"""
from __future__ import annotations

import pytest

from alerts.config import parse_alerting_config
from tests.http_standin import RecordingReceiver
from alerts.notification_log import MAX_LIMIT, alert_text, clamp_limit, notification_entry
from alerts.service import AlertingService
from alerts.store import EngineChanges, NewOutboxItem
from tests import snapshot_builders as t
from monitor.app.root import Monitor
from monitor.app.config import Config
from monitor.web.settings import WebConfig
from monitor.web.app import create_app
from tests.helpers import ManualClock

LAG_ALERT = {"status": "firing", "labels": {"alertname": "StreamscopeConsumerLagHigh", "cluster": "demo",
                                            "group": "slow", "topic": "clicks", "severity": "warning"}}


def enqueue(store, receiver: str, key: str, at: float, status: str = "firing", alerts=(LAG_ALERT,)) -> None:
    store.commit(EngineChanges(outbox=[NewOutboxItem(key, receiver, "webhook", "g", at,
                                                     {"status": status, "alerts": list(alerts)})]))


@pytest.fixture
def hook():
    with RecordingReceiver(script=[(500, {})], path="/hook") as receiver:
        yield receiver


def service_for(store, hook, clock) -> AlertingService:
    config = parse_alerting_config({
        "receivers": {"webhook": [{"name": "hook", "url": hook.url}]},
        "delivery": {"initial_backoff": "10s", "max_backoff": "10s"}})
    return AlertingService(config, store, clock=clock)


def test_log_says_delivered_failed_with_error_and_pending(store, hook):
    clock = ManualClock(1000.0)
    service = service_for(store, hook, clock)
    enqueue(store, "hook", "first", 1000.0)
    enqueue(store, "gone-receiver", "orphan", 1001.0, status="resolved")  # no such receiver: never tried

    service.dispatch_once()  # the receiver answers 500 once
    failed = {e["receiver"]: e for e in service.list_notifications()}
    assert failed["hook"]["result"] == "failed" and failed["hook"]["attempts"] == 1
    assert "500" in failed["hook"]["error"] and failed["hook"]["next_attempt_at"] == 1010.0
    assert failed["hook"]["status"] == "FIRING" and failed["hook"]["http_status"] == 500
    assert failed["gone-receiver"]["result"] == "pending" and failed["gone-receiver"]["attempts"] == 0
    assert failed["gone-receiver"]["status"] == "RESOLVED"

    clock.t = 1011.0
    service.dispatch_once()
    newest_first = service.list_notifications()
    assert [e["receiver"] for e in newest_first] == ["gone-receiver", "hook"]
    delivered = newest_first[1]
    assert delivered["result"] == "delivered" and delivered["attempts"] == 2 and delivered["error"] is None
    assert delivered["delivered_at"] == 1011.0 and delivered["next_attempt_at"] is None
    assert delivered["alerts"] == ["StreamscopeConsumerLagHigh group=slow topic=clicks cluster=demo"]
    assert len(hook.requests) == 2
    service.close()


def test_log_is_bounded(store):
    service = AlertingService(parse_alerting_config({}), store, clock=ManualClock(0.0))
    many = [dict(LAG_ALERT, labels={**LAG_ALERT["labels"], "group": f"g{i}"}) for i in range(8)]
    store.commit(EngineChanges(outbox=[NewOutboxItem(f"k{i}", "hook", "webhook", "g", float(i),
                                                     {"status": "firing", "alerts": many})
                                       for i in range(MAX_LIMIT + 5)]))
    rows = service.list_notifications(limit=10 * MAX_LIMIT)
    assert len(rows) == MAX_LIMIT and rows[0]["created_at"] == MAX_LIMIT + 4
    assert len(rows[0]["alerts"]) == 5 and rows[0]["alerts_total"] == 8
    assert len(service.list_notifications(limit=0)) == 1
    service.close()


def test_entry_clips_errors_and_reads_odd_payloads(store):
    enqueue(store, "hook", "odd", 5.0, alerts=[{"labels": "not a mapping"}, "junk"])
    item = store.outbox_items()[0]
    store.mark_failed(item.id, 6.0, 7.0, "x" * 5000, None, "hook")
    entry = notification_entry(store.outbox_items()[0])
    assert entry["alerts"] == ["?"] and entry["alerts_total"] == 1 and len(entry["error"]) == 300
    assert alert_text({"labels": {"alertname": "A", "app": "a", "query": "q"}}) == "A query=q app=a"


@pytest.mark.parametrize("value, expected", [(None, 100), ("", 100), ("5", 5), ("0", 1), ("99999", MAX_LIMIT)])
def test_clamp_limit(value, expected):
    assert clamp_limit(value) == expected


def test_clamp_limit_names_the_parameter():
    with pytest.raises(ValueError, match="limit: expected an integer"):
        clamp_limit("ten")


# ------------------------------------------------------------------------ built-in rules by default


def monitor_for(tmp_path, **sections) -> Monitor:
    return Monitor(Config.model_validate({"history": {"path": str(tmp_path / "history.db")}, **sections}))


def lagging_snapshot(at: float):
    group = t.group_lag("demo", "slow", {("clicks", 0): 50_000}, at=at)
    return t.snapshot(at, clusters=[t.cluster_state("demo", groups=[group], at=at)],
                      health=[t.health("kafka:demo", at=at, last_success_at=at)])


def test_builtin_rules_evaluated_without_an_alerting_section(tmp_path):
    monitor = monitor_for(tmp_path)
    try:
        assert monitor.alerting is not None and monitor.alerting.receiver_names == ()
        snap = lagging_snapshot(1000.0)
        monitor.store.publish(snap)
        monitor.alerting.evaluate_once(1000.0)
        client = create_app(monitor.web_context(), WebConfig()).test_client()
        alerts = client.get("/api/v1/alerts").get_json()
        lag = [a for a in alerts if a["alertname"] == "StreamscopeConsumerLagHigh"]
        assert lag and lag[0]["state"] == "pending" and lag[0]["labels"]["group"] == "slow"
        # no receiver configured: evaluated and shown, nothing queued to anyone
        assert client.get("/api/v1/alerts/notifications").get_json() == []
        assert client.get("/api/v1/alerts/notifications?limit=ten").status_code == 400
    finally:
        monitor.stop()


def test_alerting_enabled_false_turns_evaluation_off(tmp_path):
    monitor = monitor_for(tmp_path, alerting={"enabled": False})
    try:
        assert monitor.alerting is None
        response = create_app(monitor.web_context(), WebConfig()).test_client().get("/api/v1/alerts")
        assert response.status_code == 404 and "alerting.enabled: false" in response.get_json()["error"]
    finally:
        monitor.stop()


def test_the_monitors_alert_inputs_read_topic_peaks_from_its_history(tmp_path):
    """`run`'s rules ask the history for every topic's peak in one query (alerts.kinds.Windows)."""
    monitor = monitor_for(tmp_path)
    try:
        at = 1000.0
        monitor.history.kafka.append(t.cluster_state("demo", at=at, topics=[t.topic_rates("demo", "clicks", 4.5)]))
        inputs = monitor.alerting._inputs_provider
        assert inputs.peaks("demo", "topic", "produce_rate", 60, at) == {"clicks": 4.5}
    finally:
        monitor.stop()
