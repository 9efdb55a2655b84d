"""The demo's alerting: its rule tuning (built-in engine and the Prometheus copy agree, checked
by real promtool), and delivery to its two local receivers (a real webhook inbox and a real
aiosmtpd SMTP sink on loopback), as the notification log reports it."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from alerts.config import parse_alerting_config
from alerts.rules import load_rules
from alerts.service import AlertingService
from alerts.store import EngineChanges, NewOutboxItem
from demo.pipeline import DEMO_RULES, DemoPipeline, DemoSettings
from demo.prometheus import demo_rule_file, prometheus_config, retune_rule, retuned_rule_file
from tests.conftest import missing_prerequisite
from tests.helpers import ManualClock

TUNED = {r["name"]: r for r in yaml.safe_load(DEMO_RULES.read_text())["rules"]}


def prometheus_rules() -> dict[str, dict]:
    return {r["alert"]: r for g in demo_rule_file()["groups"] for r in g["rules"]}


def test_built_in_engine_and_prometheus_get_the_same_tuning():
    engine = {r.name: r for r in load_rules([DEMO_RULES]).rules}
    prom = prometheus_rules()
    for name, tuned in TUNED.items():
        assert engine[name].effective_threshold == tuned["threshold"]
        assert engine[name].for_ == float(tuned["for"].rstrip("s"))
        assert prom[name]["for"] == tuned["for"]
        assert prom[name]["expr"].rstrip().endswith(f"> {tuned['threshold']}")
        assert f"threshold {tuned['threshold']}" in prom[name]["annotations"]["description"]
        assert "10000" not in prom[name]["expr"] + prom[name]["annotations"]["description"]
    untouched = {r.name: r for r in load_rules().rules}["StreamscopeConsumerLagSecondsHigh"]
    assert engine["StreamscopeConsumerLagSecondsHigh"].effective_threshold == untouched.effective_threshold
    assert "> 300" in prom["StreamscopeConsumerLagSecondsHigh"]["expr"]


def test_retuning_refuses_what_it_cannot_find():
    rule = {"alert": "X", "expr": "a > 5 or b > 5", "for": "5m"}
    with pytest.raises(ValueError, match="X: expr compares against 5 2 times"):
        retune_rule(rule, 5, 6, None)
    with pytest.raises(ValueError, match="X: expr compares against 5 0 times"):
        retune_rule({"alert": "X", "expr": "a > 50"}, 5, 6, None)  # 50 is not 5
    assert retune_rule({"alert": "Y", "expr": "a >= 5", "for": "5m"}, 5, 6, "10s") == \
        {"alert": "Y", "expr": "a >= 6", "for": "10s"}
    with pytest.raises(ValueError, match="no Prometheus alert named Nope"):
        retuned_rule_file({"groups": [{"name": "g", "rules": [rule]}]}, [{"name": "Nope", "for": "1s"}], {})


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing_prerequisite("promtool not found (Debian package prometheus)")
    return path


def test_demo_prometheus_files_pass_promtool_and_fire_like_the_demo(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(demo_rule_file(), sort_keys=False))
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config("127.0.0.1:8050", [rules])))
    check = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # the slow group 700 messages behind: pending at 0 s, firing once `for` (10 s) has passed
    series = 'streamscope_kafka_consumergroup_readable_lag{cluster="demo",group="slow",topic="clickstream"}'
    labels = {"alertname": "StreamscopeConsumerLagHigh", "severity": "warning", "cluster": "demo",
              "group": "slow", "topic": "clickstream"}
    test = {"rule_files": [str(rules)], "evaluation_interval": "5s", "tests": [{
        "interval": "5s", "input_series": [{"series": series, "values": "700x10"}],
        "alert_rule_test": [
            {"eval_time": "5s", "alertname": "StreamscopeConsumerLagHigh", "exp_alerts": []},
            {"eval_time": "15s", "alertname": "StreamscopeConsumerLagHigh", "exp_alerts": [{
                "exp_labels": labels,
                "exp_annotations": {
                    "summary": "Consumer group slow is 700 messages behind on clickstream (demo)",
                    "description": "Group slow on cluster demo has 700 unconsumed messages on topic "
                                   "clickstream (threshold 600) for more than 10s."}}]}]}]}
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(test))
    run = subprocess.run([promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture
def receivers():
    pytest.importorskip("aiosmtpd")
    pipeline = DemoPipeline(DemoSettings(web_port=8050, spark=False))
    pipeline.start_receivers()
    yield pipeline
    pipeline.stop()


def test_demo_receivers_get_the_notifications_and_the_log_says_so(receivers, store):
    section = receivers.alerting_config()
    assert section["route"]["receivers"] == ["demo-webhook", "demo-mail"]
    assert section["dashboard_url"] == "http://127.0.0.1:8050"
    service = AlertingService(parse_alerting_config(section), store, clock=ManualClock(100.0))
    alert = {"status": "firing", "labels": {"alertname": "StreamscopeConsumerLagHigh", "group": "slow"},
             "annotations": {"summary": "slow is 700 messages behind"}, "starts_at": 90.0, "ends_at": None,
             "fingerprint": "f", "generator_url": "http://127.0.0.1:8050/groups", "value": 700.0}
    for name, kind in (("demo-webhook", "webhook"), ("demo-mail", "email")):
        store.commit(EngineChanges(outbox=[NewOutboxItem(
            f"k-{name}", name, kind, "g", 100.0,
            {"receiver": name, "receiver_type": kind, "group_key": "g", "status": "firing", "group_labels": {},
             "common_labels": alert["labels"], "common_annotations": alert["annotations"],
             "external_url": "http://127.0.0.1:8050", "alerts": [alert], "created_at": 100.0,
             "idempotency_key": f"k-{name}"})]))
    report = service.dispatch_once()
    assert sorted(report.delivered) == ["k-demo-mail", "k-demo-webhook"], report
    assert receivers.receivers.wait_for("webhook", 1, 10) and receivers.receivers.wait_for("email", 1, 10)
    got = receivers.receivers.received()
    assert got["webhook"][0]["status"] == "firing" and got["webhook"][0]["alerts"] == ["StreamscopeConsumerLagHigh"]
    assert got["email"][0]["to"] == ["oncall@localhost"] and "StreamscopeConsumerLagHigh" in got["email"][0]["subject"]
    log = {e["receiver"]: e for e in service.list_notifications()}
    assert {n: (e["result"], e["status"], e["attempts"]) for n, e in log.items()} == {
        "demo-webhook": ("delivered", "FIRING", 1), "demo-mail": ("delivered", "FIRING", 1)}
    service.close()
