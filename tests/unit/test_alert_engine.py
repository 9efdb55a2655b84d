"""Alert engine state machine with an injected clock (no sleeps): for, keep_firing_for, resolve,
grouping timers, silences, inhibition, routing, forwarding, restart."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests import snapshot_builders as T
from alerts.config import parse_alerting_config
from alerts.engine import AlertEngine
from alerts.kinds import KIND_FUNCTIONS
from alerts.rules import RuleKind, rules_from_dicts
from alerts.service import AlertingService
from alerts.silences import SilenceError, SilenceManager, SilenceNotFound
from alerts.store import EngineChanges, NewOutboxItem, StateStore

TIMERS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"}


def make_config(**route):
    return parse_alerting_config({
        "dashboard_url": "http://dash",
        "receivers": {
            "webhook": [{"name": "hook", "url": "http://127.0.0.1:9/hook"},
                        {"name": "quiet", "url": "http://127.0.0.1:9/quiet", "send_resolved": False}],
            "email": [{"name": "pager", "host": "127.0.0.1", "from": "a@b.c", "to": ["p@b.c"]}],
            "alertmanager": [{"name": "am", "url": "http://127.0.0.1:9", "resend_interval": "1m"}],
        },
        "route": {"receivers": ["hook"], "group_by": ["alertname", "cluster"], **TIMERS, **route},
    })


LAG_RULE = {"name": "Lag", "kind": "consumer_lag_messages", "threshold": 100, "for": "1m",
            "summary": "{group} lag {value:.0f}"}
DOWN_RULE = {"name": "Down", "kind": "collector_down", "severity": "critical"}


@dataclass
class World:
    """Mutable pipeline state turned into a snapshot at each step."""

    lags: dict = field(default_factory=dict)  # (cluster, group) -> lag
    down: set = field(default_factory=set)  # clusters whose collector is down

    def inputs(self, now: float):
        clusters = {c for c, _ in self.lags} | self.down
        states = []
        for c in sorted(clusters):
            groups = [T.group_lag(c, g, {("t", 0): lag}, at=now) for (cc, g), lag in sorted(self.lags.items()) if cc == c]
            states.append(T.cluster_state(c, groups=groups, at=now))
        health = [T.health(f"kafka:{c}", up=c not in self.down, last_success_at=now) for c in sorted(clusters)]
        return T.inputs(T.snapshot(now, states, health))


class Harness:
    def __init__(self, store: StateStore, rules=(LAG_RULE,), config=None) -> None:
        self.store = store
        self.config = config or make_config()
        self.rules = rules_from_dicts(list(rules))
        self.engine = AlertEngine(self.config, self.rules, store)
        self.world = World()
        self.sent: list = []  # all notifications (receiver, status, sorted groups)

    def restart(self) -> None:
        self.engine = AlertEngine(self.config, self.rules, self.store)

    def step(self, t: float):
        res = self.engine.evaluate(self.world.inputs(t), t)
        self.sent.extend(res.notifications)
        return res

    def state(self, group: str, cluster: str = "prod", alertname: str = "Lag") -> str:
        for a in self.engine.alerts(0):
            if a.labels.get("group") == group and a.labels.get("cluster") == cluster and a.alertname == alertname:
                return a.state
        return "inactive"


def notes(res, receiver: str = "hook") -> list[tuple[str, list[str]]]:
    """[(status, [alert-status:group ...])] for one receiver."""
    return [(n.status, sorted(f"{a['status']}:{a['labels'].get('group', a['labels'].get('cluster'))}"
                              for a in n.payload["alerts"]))
            for n in res.notifications if n.receiver == receiver]


# ------------------------------------------------------------------------------ table-driven lifecycle

# (time, lag of prod/g1, expected state, expected notifications to "hook")
LIFECYCLE_FOR = [
    (0, 500, "pending", []),
    (30, 500, "pending", []),
    (59, 500, "pending", []),
    (60, 500, "firing", []),  # for elapsed; group created, waits group_wait
    (89, 500, "firing", []),
    (90, 500, "firing", [("firing", ["firing:g1"])]),  # group_wait over
    (120, 0, "resolved", []),  # resolved, reported at the next group_interval tick
    (389, 0, "resolved", []),
    (390, 0, "resolved", [("resolved", ["resolved:g1"])]),
    (700, 0, "resolved", []),
    (1300, 0, "inactive", []),  # resolved_retention (15m) over: forgotten
]

LIFECYCLE_PENDING_DROPS = [
    (0, 500, "pending", []),
    (30, 0, "inactive", []),  # pending alert simply disappears, nobody is told
    (60, 500, "pending", []),  # active_at starts again
    (90, 500, "pending", []),
    (120, 500, "firing", []),
    (150, 500, "firing", [("firing", ["firing:g1"])]),
]

LIFECYCLE_FLAP_BEFORE_FLUSH = [
    (0, 500, "pending", []),
    (60, 500, "firing", []),
    (70, 0, "resolved", []),  # resolved before the group was ever flushed
    (90, 0, "resolved", []),  # flush: nothing to tell (receiver never heard of it)
    (400, 0, "resolved", []),
]


@pytest.mark.parametrize("table", [LIFECYCLE_FOR, LIFECYCLE_PENDING_DROPS, LIFECYCLE_FLAP_BEFORE_FLUSH],
                         ids=["for-and-resolve", "pending-drops", "flap-before-flush"])
def test_lifecycle(store, table):
    h = Harness(store)
    for t, lag, state, expected in table:
        h.world.lags[("prod", "g1")] = lag
        res = h.step(t)
        assert h.state("g1") == state, f"t={t}"
        assert notes(res) == expected, f"t={t}"


def test_keep_firing_for(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0, "keep_firing_for": "2m"}])
    table = [
        (0, 500, "firing", []),
        (30, 500, "firing", [("firing", ["firing:g1"])]),
        (60, 0, "firing", []),  # condition gone, kept firing
        (150, 0, "firing", []),  # 90 s < 120 s
        (160, 500, "firing", []),  # breaching again: timer resets
        (170, 0, "firing", []),
        (289, 0, "firing", []),  # 119 s since 170
        (290, 0, "resolved", []),
        (330, 0, "resolved", [("resolved", ["resolved:g1"])]),
    ]
    for t, lag, state, expected in table:
        h.world.lags[("prod", "g1")] = lag
        res = h.step(t)
        assert h.state("g1") == state, f"t={t}"
        assert notes(res) == expected, f"t={t}"
    events = [(e["event"], e["at"]) for e in reversed(store.history())]
    assert events == [("fired", 0), ("resolved", 290)]


def test_group_wait_interval_repeat(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    w = h.world
    w.lags[("prod", "g1")] = 500
    assert notes(h.step(0)) == []  # group created, next flush at 30
    w.lags[("prod", "g2")] = 500
    assert notes(h.step(10)) == []  # joins during group_wait
    assert notes(h.step(30)) == [("firing", ["firing:g1", "firing:g2"])]  # one notification, both alerts
    w.lags[("prod", "g3")] = 500
    assert notes(h.step(40)) == []  # new alert waits for group_interval
    assert notes(h.step(329)) == []
    assert notes(h.step(330)) == [("firing", ["firing:g1", "firing:g2", "firing:g3"])]
    for t in (630, 930, 3000, 3629):
        assert notes(h.step(t)) == [], t  # nothing changed, repeat_interval (1h) not over
    assert notes(h.step(3930)) == [("firing", ["firing:g1", "firing:g2", "firing:g3"])]  # repeat
    w.lags[("prod", "g2")] = 0
    h.step(4000)
    assert notes(h.step(4230)) == [("firing", ["firing:g1", "firing:g3", "resolved:g2"])]
    # other clusters are other groups (group_by alertname, cluster)
    w.lags[("dev", "g1")] = 500
    res = h.step(4300)
    assert notes(res) == []
    res = h.step(4330)
    assert [n.payload["group_labels"] for n in res.notifications] == [{"alertname": "Lag", "cluster": "dev"}]


def test_notification_payload_shape(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    (n,) = [n for n in h.step(30).notifications if n.receiver == "hook"]
    p = n.payload
    assert p["status"] == "firing" and p["receiver"] == "hook" and p["receiver_type"] == "webhook"
    assert p["group_key"] == n.group_key and p["idempotency_key"] == n.idempotency_key
    assert p["common_labels"]["alertname"] == "Lag" and p["external_url"] == "http://dash"
    a = p["alerts"][0]
    assert a["starts_at"] == 0 and a["ends_at"] is None and a["annotations"]["summary"] == "g1 lag 500"
    assert a["generator_url"] == "http://dash/groups?cluster=prod&group=g1" and len(a["fingerprint"]) == 16


def test_send_resolved_false(store):
    cfg = make_config(receivers=["hook", "quiet"])
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}], config=cfg)
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    res = h.step(30)
    assert notes(res, "quiet") == [("firing", ["firing:g1"])]
    h.world.lags[("prod", "g1")] = 0
    h.step(40)
    res = h.step(330)
    assert notes(res, "hook") == [("resolved", ["resolved:g1"])]
    assert notes(res, "quiet") == []


def test_child_routes_and_continue(store):
    cfg = make_config(routes=[
        {"matchers": ['severity="critical"'], "receivers": ["pager"], "continue": True},
        {"matchers": ['group=~"pay.*"'], "receivers": ["quiet"], "group_wait": "0s"},
    ])
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}, {**LAG_RULE, "name": "LagCrit", "threshold": 1000,
                                                        "severity": "critical", "for": 0}], config=cfg)
    h.world.lags[("prod", "pay-1")] = 5000  # Lag + LagCrit
    h.world.lags[("prod", "g1")] = 500  # Lag only
    # group_wait 0s for the payments route: sent at once
    def got(res):
        return sorted((n.receiver, tuple(sorted(a["labels"]["alertname"] + ":" + a["labels"]["group"]
                                                for a in n.payload["alerts"])))
                      for n in res.notifications if n.receiver != "am")

    # pay-1 goes to the payments route (group_wait 0s: sent at once); LagCrit also continues
    # past the critical route to it
    assert got(h.step(0)) == [("quiet", ("Lag:pay-1",)), ("quiet", ("LagCrit:pay-1",))]
    # the critical route (pager) and the root route (hook) wait 30 s
    assert got(h.step(30)) == [("hook", ("Lag:g1",)), ("pager", ("LagCrit:pay-1",))]


# ------------------------------------------------------------------------------ silences


def test_silence_suppresses_then_expires(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    sm = SilenceManager(store)
    sil = sm.create(['group="g1"'], duration="1h", created_by="me", comment="maintenance", now=0)
    h.world.lags[("prod", "g1")] = 500
    h.world.lags[("prod", "g2")] = 500
    h.step(0)
    assert notes(h.step(30)) == [("firing", ["firing:g2"])]
    views = {a.labels["group"]: a for a in h.engine.alerts(31)}
    assert views["g1"].silenced_by == (sil.id,) and views["g1"].to_dict()["status"]["state"] == "suppressed"
    assert notes(h.step(330)) == []
    sm.expire(sil.id, now=400)
    assert sm.get(sil.id).state(400) == "expired"
    assert notes(h.step(630)) == [("firing", ["firing:g1", "firing:g2"])]  # g1 now told


def test_silence_ends_by_time_and_pending_silence(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    sm = SilenceManager(store)
    sm.create(['alertname="Lag"'], starts_at=0, ends_at=300, now=0)
    later = sm.create(['alertname="Lag"'], starts_at=1000, ends_at=2000, now=0)
    assert later.state(0) == "pending"
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    assert notes(h.step(30)) == []
    assert notes(h.step(330)) == [("firing", ["firing:g1"])]  # silence ended at 300
    assert notes(h.step(1030)) == []  # silenced again: nothing new, no resolve either
    assert [s.state(1030) for s in sm.list(1030)] == ["expired", "active"]
    sm.expire(later.id, now=1100)
    assert notes(h.step(1330)) == []  # the receiver still knows it fires; repeat at 330 + 1h
    assert notes(h.step(3930)) == [("firing", ["firing:g1"])]


def test_silence_validation(store):
    sm = SilenceManager(store)
    with pytest.raises(SilenceError, match="at least one matcher"):
        sm.create([], duration="1h", now=0)
    with pytest.raises(SilenceError, match="mute everything"):
        sm.create(['group=~".*"'], duration="1h", now=0)
    with pytest.raises(SilenceError, match="end after startsAt"):
        sm.create(['group="a"'], starts_at=100, ends_at=50, now=0)
    with pytest.raises(SilenceError, match="invalid matcher"):
        sm.create(["group~a"], duration="1h", now=0)
    with pytest.raises(SilenceNotFound):
        sm.expire("nope", now=0)
    s = sm.create([{"name": "group", "value": "a.*", "isRegex": True}], duration="1h", now=0)
    assert str(s.matchers[0]) == 'group=~"a.*"'
    s2 = sm.create(['group="b"'], duration="2h", now=10, silence_id=s.id)  # update keeps id
    assert s2.id == s.id and len(sm.list(10)) == 1 and s2.created_at == 0


# ------------------------------------------------------------------------------ inhibition


def test_collector_down_inhibits_lag_alerts_of_same_cluster(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}, DOWN_RULE], config=make_config(group_by=["alertname"]))
    w = h.world
    w.lags[("prod", "g1")] = 500
    w.lags[("dev", "g1")] = 500
    w.down.add("prod")
    h.step(0)
    res = h.step(30)
    by_name = {n.payload["group_labels"]["alertname"]: n for n in res.notifications if n.receiver == "hook"}
    assert sorted(a["labels"]["cluster"] for a in by_name["Lag"].payload["alerts"]) == ["dev"]
    assert [a["labels"]["cluster"] for a in by_name["Down"].payload["alerts"]] == ["prod"]
    prod_lag = [a for a in h.engine.alerts(30) if a.alertname == "Lag" and a.labels["cluster"] == "prod"][0]
    assert prod_lag.state == "firing" and len(prod_lag.inhibited_by) == 1
    w.down.clear()  # collector back: prod lag is no longer inhibited
    h.step(60)
    res = h.step(330)
    by_name = {n.payload["group_labels"]["alertname"]: n for n in res.notifications if n.receiver == "hook"}
    assert sorted(a["labels"]["cluster"] for a in by_name["Lag"].payload["alerts"]) == ["dev", "prod"]
    assert by_name["Down"].status == "resolved"


# ------------------------------------------------------------------------------ Alertmanager forwarding


def test_alertmanager_forwarding_on_change_and_resend(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500

    def am(res):
        return [sorted(f"{a['status']}:{a['labels']['group']}" for a in n.payload["alerts"])
                for n in res.notifications if n.receiver == "am"]

    assert am(h.step(0)) == [["firing:g1"]]
    assert am(h.step(15)) == []
    assert am(h.step(60)) == [["firing:g1"]]  # resend_interval
    h.world.lags[("prod", "g2")] = 500
    assert am(h.step(70)) == [["firing:g1", "firing:g2"]]  # change: at once
    h.world.lags[("prod", "g1")] = 0
    assert am(h.step(80)) == [["firing:g2", "resolved:g1"]]
    assert am(h.step(90)) == []
    assert am(h.step(140)) == [["firing:g2"]]  # resolved g1 sent once only


# ------------------------------------------------------------------------------ robustness


def test_failing_rule_keeps_its_alerts(store, monkeypatch):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    assert h.state("g1") == "firing"

    def boom(*a, **k):
        raise RuntimeError("bad data")

    monkeypatch.setitem(KIND_FUNCTIONS, RuleKind.CONSUMER_LAG_MESSAGES, boom)
    res = h.step(30)
    assert res.rule_errors == {"Lag": "RuntimeError: bad data"}
    assert h.state("g1") == "firing" and not [t for t in res.transitions]


def test_no_snapshot_yet_changes_nothing(store):
    h = Harness(store)
    res = h.engine.evaluate(T.inputs(None), 0)
    assert not res.evaluated and res.alerts == () and res.notifications == ()


def test_removed_rule_resolves_its_alerts(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    h.step(30)
    h.rules = rules_from_dicts([{**LAG_RULE, "name": "Other", "for": 0, "threshold": 10_000}])
    h.restart()
    h.step(60)
    assert h.state("g1") == "resolved"


# ------------------------------------------------------------------------------ restart


def test_restart_keeps_state_and_sends_no_duplicates(tmp_path):
    path = tmp_path / "a.db"
    h = Harness(StateStore(path))
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    h.step(60)
    assert notes(h.step(90)) == [("firing", ["firing:g1"])]
    h.store.close()

    h2 = Harness(StateStore(path))  # new process, same file
    h2.world = h.world
    res = h2.step(120)
    assert res.transitions == () and notes(res) == []
    (alert,) = [a for a in res.alerts if a.alertname == "Lag"]
    assert alert.state == "firing" and alert.fired_at == 60 and alert.active_at == 0
    for t in (390, 690):
        assert notes(h2.step(t)) == []  # same group timers, nothing re-sent
    hook_items = [i for i in h2.store.outbox_items() if i.receiver == "hook"]
    assert len(hook_items) == 1
    h2.store.close()


def test_restart_while_pending_keeps_for_timer(tmp_path):
    path = tmp_path / "a.db"
    h = Harness(StateStore(path))
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    h.store.close()
    h2 = Harness(StateStore(path))
    h2.world = h.world
    h2.step(60)
    assert h2.state("g1") == "firing"  # 60 s since the original active_at
    h2.store.close()


def test_same_evaluation_twice_does_not_duplicate_outbox(store):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    h.step(30)
    n = len(store.outbox_items())
    # a replayed evaluation at the same instant (e.g. two loops racing) adds nothing
    h.step(30)
    assert len(store.outbox_items()) == n


# ------------------------------------------------------------------------------ service facade + metrics


class _NullNotifier:
    type = "webhook"
    max_per_second = None
    burst = 1

    def __init__(self, name):
        self.name = name
        self.sent = []

    def send(self, payload, key, now):
        from alerts.notifiers.base import DeliveryResult

        self.sent.append(key)
        return DeliveryResult.success(200)


def test_service_api_and_metric_families(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    cfg = make_config()
    clock = [0.0]
    world = World()
    notifiers = {n: _NullNotifier(n) for n in ("hook", "quiet", "pager", "am")}
    svc = AlertingService(cfg, tmp_path / "s.db", lambda: world.inputs(clock[0]), clock=lambda: clock[0],
                          rules=rules_from_dicts([{**LAG_RULE, "for": 0}, DOWN_RULE]), notifiers=notifiers)
    world.lags[("prod", "g1")] = 500
    world.lags[("prod", "g2")] = 500
    sil = svc.create_silence({"matchers": ['group="g2"'], "duration": "1h", "createdBy": "ops", "comment": "x"})
    assert sil["status"]["state"] == "active" and sil["createdBy"] == "ops"
    svc.evaluate_once()
    clock[0] = 30.0
    svc.evaluate_once()
    report = svc.dispatch_once()
    assert len(report.delivered) == 2  # hook (t=30) + am (forwarded at t=0, not due again at t=30)
    assert len(notifiers["hook"].sent) == 1
    firing = svc.list_alerts("firing")
    assert {a["labels"]["group"] for a in firing} == {"g1", "g2"}
    assert [a["labels"]["group"] for a in svc.list_alerts("suppressed")] == ["g2"]
    assert svc.list_groups()[0]["labels"] == {"alertname": "Lag", "cluster": "prod"}
    assert [s["id"] for s in svc.list_silences("active")] == [sil["id"]]
    assert svc.expire_silence(sil["id"])["status"]["state"] == "expired"
    with pytest.raises(SilenceError, match="unknown key"):
        svc.create_silence({"matchers": ['group="x"'], "duration": "1h", "bogus": 1})
    assert svc.alert_history()[0]["event"] == "fired"
    assert svc.list_outbox(pending_only=True) == []
    assert {r["name"] for r in svc.list_rules()} == {"Lag", "Down"}

    fams = {f.name: f for f in svc.metric_families()}
    assert {"streamscope_alerts", "streamscope_alerts_suppressed", "streamscope_alert_notifications",
            "streamscope_alert_outbox_pending", "streamscope_alert_silences", "streamscope_alert_rule_errors",
            "streamscope_alert_last_evaluation_timestamp_seconds"} <= set(fams)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
    assert samples[("streamscope_alerts", (("alertname", "Lag"), ("severity", "warning"), ("state", "firing")))] == 2
    assert samples[("streamscope_alerts", (("alertname", "Down"), ("severity", "critical"), ("state", "firing")))] == 0
    assert samples[("streamscope_alert_notifications_total", (("receiver", "hook"), ("result", "success")))] == 1
    assert samples[("streamscope_alert_outbox_pending", (("receiver", "hook"),))] == 0

    class _C:
        def collect(self):
            return svc.metric_families()

    reg = CollectorRegistry()
    reg.register(_C())
    text = generate_latest(reg).decode()
    assert 'streamscope_alerts{alertname="Lag",severity="warning",state="firing"} 2.0' in text
    svc.close()


def test_changed_grouping_after_restart_does_not_notify_twice(tmp_path):
    path = tmp_path / "g.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    assert notes(h.step(30)) == [("firing", ["firing:g1"])]
    h.store.close()
    # restart with another group_by: the alert moves to a new group (notified after its
    # group_wait); the old group empties and is dropped instead of repeating
    h2 = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}], config=make_config(group_by=["alertname"]))
    h2.world = h.world
    assert notes(h2.step(60)) == []
    res = h2.step(90)
    assert [(n.payload["group_labels"], n.status) for n in res.notifications if n.receiver == "hook"] == [
        ({"alertname": "Lag"}, "firing")]
    assert notes(h2.step(330)) == [] and notes(h2.step(3000)) == []
    assert [g["labels"] for g in h2.engine.groups(3000)] == [{"alertname": "Lag"}]
    h2.store.close()


# ------------------------------------------------------------------------------ group timers without evaluation

T0 = 1000.0  # the alert fires at T0 (for: 0); group_wait 30 s, group_interval 5 m

# (action, seconds after T0, prod lags to set before an "eval", expected notes to "hook",
#  expected next_group_flush_at - T0 afterwards (None: no group))
FLUSH_GROUP_WAIT = [
    ("eval", 0, {"g1": 500}, [], 30),  # fires, group created: next flush at T0+30
    ("flush", 29, None, [], 30),  # not due yet
    ("flush", 30, None, [("firing", ["firing:g1"])], 330),  # exactly group_wait, no evaluation needed
    ("flush", 30, None, [], 330),  # replayed flush at the same instant: nothing
    ("eval", 31, {"g1": 500}, [], 330),  # the next evaluation sends nothing new
    ("flush", 329, None, [], 330),
    ("flush", 330, None, [], 630),  # group_interval tick, nothing changed
]
FLUSH_GROUP_INTERVAL = [
    ("eval", 0, {"g1": 500}, [], 30),
    ("flush", 30, None, [("firing", ["firing:g1"])], 330),
    ("eval", 40, {"g1": 500, "g2": 500}, [], 330),  # g2 joins; waits for group_interval
    ("flush", 330, None, [("firing", ["firing:g1", "firing:g2"])], 630),
    ("eval", 400, {"g1": 500, "g2": 0}, [], 630),  # g2 resolves
    ("flush", 629, None, [], 630),
    ("flush", 630, None, [("firing", ["firing:g1", "resolved:g2"])], 930),
]
FLUSH_FLAP_BETWEEN_EVALUATIONS = [
    # fires and resolves before group_wait ends: like Alertmanager, nothing to tell
    ("eval", 0, {"g1": 500}, [], 30),
    ("eval", 20, {"g1": 0}, [], 30),
    ("flush", 30, None, [], None),  # flushed at T0+30; the group empties and is dropped
    ("eval", 60, {"g1": 0}, [], None),
]
FLUSH_BEFORE_SLOW_EVALUATION = [
    # evaluations 60 s apart (slow collection): the notification leaves at T0+30, not T0+60
    ("eval", 0, {"g1": 500}, [], 30),
    ("flush", 30, None, [("firing", ["firing:g1"])], 330),
    ("eval", 60, {"g1": 500}, [], 330),
    ("eval", 120, {"g1": 500}, [], 330),
]


def _notes_of(notifications, receiver: str = "hook"):
    class _R:
        pass

    r = _R()
    r.notifications = tuple(notifications)
    return notes(r, receiver)


@pytest.mark.parametrize("table", [FLUSH_GROUP_WAIT, FLUSH_GROUP_INTERVAL, FLUSH_FLAP_BETWEEN_EVALUATIONS,
                                   FLUSH_BEFORE_SLOW_EVALUATION],
                         ids=["group-wait", "group-interval", "flap-between-evaluations", "slow-evaluation"])
def test_flush_due_honours_group_timers_without_evaluation(store, table):
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    sent = []
    for action, dt, lags, expected, next_at in table:
        t = T0 + dt
        if action == "eval":
            for g, lag in lags.items():
                h.world.lags[("prod", g)] = lag
            got = h.step(t).notifications
        else:
            got = h.engine.flush_due(t)
        sent.extend(n for n in got if n.receiver == "hook")
        assert _notes_of(got) == expected, f"{action} t=T0+{dt}"
        assert h.engine.next_group_flush_at() == (None if next_at is None else T0 + next_at), f"{action} t=T0+{dt}"
    # every notification was written to the outbox (same transaction as the timers), once
    hook_items = [i for i in store.outbox_items() if i.receiver == "hook"]
    assert sorted(i.idempotency_key for i in hook_items) == sorted(n.idempotency_key for n in sent)


def test_next_group_flush_at_survives_restart(tmp_path):
    path = tmp_path / "t.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    assert h.engine.next_group_flush_at() is None
    h.world.lags[("prod", "g1")] = 500
    h.step(T0)
    assert h.engine.next_group_flush_at() == T0 + 30
    h.store.close()

    h2 = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])  # new process, same file
    assert h2.engine.next_group_flush_at() == T0 + 30
    assert _notes_of(h2.engine.flush_due(T0 + 29)) == []
    assert _notes_of(h2.engine.flush_due(T0 + 30)) == [("firing", ["firing:g1"])]
    h2.restart()
    assert h2.engine.next_group_flush_at() == T0 + 330
    h2.world = h.world
    assert notes(h2.step(T0 + 31)) == []
    assert len([i for i in h2.store.outbox_items() if i.receiver == "hook"]) == 1
    h2.store.close()


def test_service_flushes_group_at_group_wait_without_evaluation(tmp_path):
    clock = [T0]
    world = World()
    notifiers = {n: _NullNotifier(n) for n in ("hook", "quiet", "pager", "am")}
    svc = AlertingService(make_config(), tmp_path / "s.db", lambda: world.inputs(clock[0]), clock=lambda: clock[0],
                          rules=rules_from_dicts([{**LAG_RULE, "for": 0}]), notifiers=notifiers)
    world.lags[("prod", "g1")] = 500
    svc.evaluate_once()
    assert svc.engine.next_group_flush_at() == T0 + 30
    clock[0] = T0 + 29
    assert svc.flush_groups_once() == []
    clock[0] = T0 + 30
    assert _notes_of(svc.flush_groups_once()) == [("firing", ["firing:g1"])]
    svc.dispatch_once()
    assert len(notifiers["hook"].sent) == 1
    clock[0] = T0 + 31
    assert notes(svc.evaluate_once()) == []
    svc.dispatch_once()
    assert len(notifiers["hook"].sent) == 1
    svc.close()


def test_dispatcher_thread_sends_at_group_wait_with_no_further_evaluation(tmp_path):
    """The real dispatcher thread on the wall clock: one evaluation creates the group, and the
    notification leaves once group_wait passed, although nothing evaluates again (a slow or
    stalled collection must not hold notifications back)."""
    import time

    from tests.helpers import wait_until

    world = World()
    notifiers = {n: _NullNotifier(n) for n in ("hook", "quiet", "pager", "am")}
    svc = AlertingService(make_config(group_wait="300ms"), tmp_path / "s.db",
                          lambda: world.inputs(time.time()), rules=rules_from_dicts([{**LAG_RULE, "for": 0}]),
                          notifiers=notifiers)
    svc.start(evaluate=False)
    try:
        world.lags[("prod", "g1")] = 500
        fired_at = time.time()
        assert notes(svc.evaluate_once()) == []  # group created, its group_wait not over yet
        wait_until(lambda: notifiers["hook"].sent, 10, "the dispatcher thread to flush the group and send")
        assert time.time() - fired_at >= 0.3
        assert len(notifiers["hook"].sent) == 1
    finally:
        svc.close()


# ------------------------------------------------------------------------------ the store's kept alerts


def _rows(path) -> dict:
    import sqlite3
    with sqlite3.connect(path) as c:
        return {r[0]: r[1:] for r in c.execute("SELECT fingerprint, labels, annotations, state, value FROM alert_states")}


def test_kept_alerts_follow_another_connection_commits(tmp_path):
    """The store keeps the alerts it read or wrote; a commit through another connection (another
    process on the file) is seen at the next read, so no evaluation acts on stale state."""
    path = tmp_path / "alerts.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    other = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    other.world.lags[("prod", "g2")] = 700
    other.world.lags[("prod", "g1")] = 500
    other.step(10)  # the other process adds g2 and updates g1's value
    assert {a.labels["group"]: a.value for a in h.store.load_alerts().values()} == {"g1": 500, "g2": 700}
    other.world.lags[("prod", "g2")] = 0
    other.step(20)  # ...and resolves g2
    assert h.state("g2") == "resolved"
    assert {fp: (a.state, a.value) for fp, a in h.store.load_alerts().items()} == \
        {fp: (row[2], row[3]) for fp, row in _rows(path).items()}


def test_annotations_rendered_again_only_when_what_they_show_of_the_value_changes(monkeypatch):
    """Templates that show the value as a duration (or a rounded number) read the same while it
    moves within one step: a lag of 2h1m reads "2h1m" for a minute. The annotations are rendered
    again only when that text changes, and are always what rendering anew gives."""
    from alerts.templates import template_context

    shows_duration = {**LAG_RULE, "for": 0, "summary": "{group} behind by {value_duration}",
                      "description": "{group}: {value_duration} (threshold {threshold:.0f})"}
    shows_value = {**LAG_RULE, "name": "Exact", "for": 0, "summary": "{group} {value}"}
    h = Harness(StateStore(), rules=[shows_duration, shows_value])
    rendered = []
    annotations = h.engine._annotations
    monkeypatch.setattr(h.engine, "_annotations",
                        lambda rule, labels, value, *rest: rendered.append((rule.name, value))
                        or annotations(rule, labels, value, *rest))
    for t, lag in enumerate((7260, 7270, 7289.4, 7319.4, 7320, 7320)):
        h.world.lags[("prod", "g1")] = lag
        h.step(t * 10)
        for a in h.engine.alerts(t * 10):
            rule = h.rules.by_name(a.alertname)
            ctx = template_context(value=a.value, threshold=rule.effective_threshold, alertname=rule.name,
                                   severity=rule.severity, kind=rule.kind.value, for_seconds=rule.for_,
                                   dashboard_url=a.dashboard_url)
            anew = {k: tpl.render(ctx, a.labels) for k, tpl in rule.templates.items()}
            assert a.value == lag and a.annotations == {k: text for k, text in anew.items() if text}
    # "2h1m" from 7260 s up to 7319.4 (two units shown); 7320 s: "2h2m"
    assert [v for name, v in rendered if name == "Lag"] == [7260, 7320]
    assert [v for name, v in rendered if name == "Exact"] == [7260, 7270, 7289.4, 7319.4, 7320]
    assert {a.alertname: a.annotations["summary"] for a in h.engine.alerts(60)} == \
        {"Lag": "g1 behind by 2h2m", "Exact": "g1 7320"}


def test_kept_alerts_are_copies_and_match_the_file(tmp_path):
    path = tmp_path / "alerts.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    for t in (0, 10, 20):
        h.world.lags[("prod", "g1")] += 1
        h.step(t)
    loaded = h.store.load_alerts()
    for a in loaded.values():  # what a caller does to its copies is not stored
        a.state, a.value = "resolved", -1.0
        a.labels = {**a.labels, "group": "changed"}  # the dicts are replaced, never changed in place
    again = h.store.load_alerts()
    assert {a.labels["group"] for a in again.values()} == {"g1", "g2"}
    assert all(a.state == "firing" and a.value > 0 for a in again.values())
    # the copies share the kept alerts' label and annotation dicts (one of each per alert)
    third = h.store.load_alerts()
    assert all(third[fp].labels is a.labels and third[fp].annotations is a.annotations for fp, a in again.items())
    # what is kept is what the file holds (labels' JSON reused), but for the readings: g1's value
    # moved after it fired, and its row is written again only after READINGS_WRITTEN_EVERY
    rows = _rows(path)
    fresh = StateStore(path).load_alerts()
    assert set(rows) == set(again) == set(fresh)
    for fp, a in again.items():
        assert (a.labels, a.state, a.active_at, a.fired_at) == \
            (fresh[fp].labels, fresh[fp].state, fresh[fp].active_at, fresh[fp].fired_at)
        for held in (a, fresh[fp]):
            assert held.annotations["summary"] == f"{held.labels['group']} lag {held.value:.0f}"
        assert json.loads(rows[fp][0]) == a.labels
    assert sorted((a.labels["group"], a.value) for a in again.values()) == [("g1", 503), ("g2", 600)]
    assert sorted((a.labels["group"], a.value) for a in fresh.values()) == [("g1", 501), ("g2", 600)]


def test_a_failed_commit_keeps_nothing_of_it(store):
    """A commit that fails rolls back, and the alerts kept in memory are read again: the next
    evaluation starts from what the file holds."""
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 500
    h.step(0)
    before = {fp: (a.state, a.value) for fp, a in store.load_alerts().items()}
    changed = store.load_alerts()
    for a in changed.values():
        a.value = 900.0
    bad = EngineChanges(upsert_alerts=list(changed.values()),
                        outbox=[NewOutboxItem("k", "hook", "webhook", "g", 0.0, {"not json": object()})])
    with pytest.raises(TypeError):
        store.commit(bad)
    assert {fp: (a.state, a.value) for fp, a in store.load_alerts().items()} == before


def test_tally_counts_what_the_views_show(store):
    """/metrics counts alerts per state and the suppressed ones without building views: the same
    numbers as the views, with a silence and an inhibition in play."""
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}, DOWN_RULE], config=make_config(group_by=["alertname"]))
    h.world.lags.update({("prod", "g1"): 500, ("dev", "g1"): 500, ("dev", "g2"): 500, ("dev", "g3"): 50})
    h.world.down.add("prod")
    h.step(0)
    SilenceManager(store).create(['group="g2"'], duration="1h", now=5)
    h.world.lags[("dev", "g1")] = 0
    h.step(10)
    views = h.engine.alerts(10)
    by_state, suppressed = h.engine.tally(10)
    assert by_state == Counter((v.alertname, v.state, v.severity) for v in views)
    expected = Counter()
    for v in views:
        if v.state == "firing":
            expected.update([(v.alertname, "silenced")] * bool(v.silenced_by) + [(v.alertname, "inhibited")] * bool(v.inhibited_by))
    assert suppressed == expected and set(expected) == {("Lag", "silenced"), ("Lag", "inhibited")}


@pytest.mark.parametrize("value", ["g1", "orders-v2.eu_1~x", "a b", "a/b", "a&b=c", "50%", "+", "ünï", "日本", "\n", "''"])
def test_dashboard_links_quote_values_as_urlencode_does(value):
    from urllib.parse import quote, urlencode

    from alerts.routing import dashboard_link

    labels = {"cluster": value, "group": value + "x"}
    assert dashboard_link("http://dash/", labels) == \
        "http://dash/groups?" + urlencode({"cluster": value, "group": value + "x"}, quote_via=quote)
    assert dashboard_link("", {"app": value}) == "/spark?" + urlencode({"app": value}, quote_via=quote)


@pytest.mark.parametrize("labels", [
    {}, {"alertname": "Lag", "cluster": "prod", "group": "g1"}, {"a": 'quote " and \\ backslash'},
    {"ü": "日本", "tab": "\t\n\x00\x1f\x7f", "emoji": "\U0001f600", "surrogate-free": "\u2028\u2029"},
    {"z": "1", "a": "2", "m": ""},
])
def test_fingerprints_are_the_sha256_of_the_pairs_as_json(labels):
    """Fingerprints are stored: they must stay what `json.dumps` of the sorted pairs gave."""
    import hashlib

    from alerts._util import fingerprint

    data = json.dumps(tuple(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)
    assert fingerprint(labels) == hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def test_an_evaluations_views_are_built_when_first_asked_for(store, monkeypatch):
    """The app never reads an evaluation's views: they cost nothing until asked for, and then
    show the alerts as that evaluation left them."""
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    built = []
    view = h.engine._view
    monkeypatch.setattr(h.engine, "_view", lambda a, *rest: built.append(a.fingerprint) or view(a, *rest))
    res = h.step(0)
    assert built == []
    h.world.lags[("prod", "g1")] = 0
    h.step(10)  # a later evaluation does not change the earlier one's views
    assert sorted((a.labels["group"], a.state, a.value) for a in res.alerts) == [("g1", "firing", 500), ("g2", "firing", 600)]
    assert len(built) == 2 and res.alerts is res.alerts and len(res.firing()) == 2


def test_annotations_and_fingerprints_reused_only_while_their_inputs_stay(tmp_path, monkeypatch):
    """An evaluation reuses the previous one's labels, fingerprint and annotations of an alert
    whose rule, sample and value are the same: the kept alerts are what rendering everything
    anew gives (a fresh engine on a copy of the file), annotations follow a changed value, and
    no dict an alert had is changed in place (callers and views share them)."""
    import shutil

    path = tmp_path / "alerts.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    h.step(0)
    rendered = []
    annotations = h.engine._annotations
    monkeypatch.setattr(h.engine, "_annotations",
                        lambda rule, labels, value, *rest: rendered.append((labels["group"], value))
                        or annotations(rule, labels, value, *rest))
    h.world.lags[("prod", "g2")] = 650
    h.step(10)
    assert rendered == [("g2", 650)]  # g1's value stayed: rendered once, at its first evaluation
    loaded = h.store.load_alerts()
    assert {a.labels["group"]: a.annotations["summary"] for a in loaded.values()} == {"g1": "g1 lag 500", "g2": "g2 lag 650"}
    shared = {fp: (a.labels, dict(a.labels), a.annotations, dict(a.annotations)) for fp, a in loaded.items()}
    h.world.lags[("prod", "g2")] = 660  # g2's annotations change: a new dict, not the old one changed
    h.step(20)
    assert sorted(a.labels["group"] for a in h.store.load_alerts().values()) == ["g1", "g2"]
    assert all(labels == labels_then and annotations == annotations_then
               for labels, labels_then, annotations, annotations_then in shared.values())
    assert {a.labels["group"]: a.annotations["summary"] for a in h.store.load_alerts().values()} == {
        "g1": "g1 lag 500", "g2": "g2 lag 660"}
    shutil.copy(path, tmp_path / "copy.db")  # the same evaluation, with nothing reused
    fresh = Harness(StateStore(tmp_path / "copy.db"), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags[("prod", "g1")] = 510  # a changed value is rendered anew
    fresh.world.lags.update(h.world.lags)
    h.step(30)
    fresh.step(30)

    def kept(harness) -> dict:
        return {fp: (a.labels, a.annotations, a.state, a.value) for fp, a in harness.store.load_alerts().items()}

    assert kept(h) == kept(fresh) and len(kept(h)) == 2


def test_what_an_evaluation_keeps_for_the_next_is_bounded(store):
    """The reused labels and annotations are those of the last evaluation's alerts: alerts that
    are gone are not kept."""
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    for i in range(50):
        h.world.lags = {("prod", f"g{i}-{j}"): 500 for j in range(20)}  # 20 new groups each time
        h.step(i * 10)
    assert len(h.engine._identities) <= 40 and len(h.engine._rendered) <= 40


def test_reader_name_ids_are_kept_and_the_writers_are_not(tmp_path):
    """An id a reader found for a name is committed and never changes: kept. An id the writer
    sees inside its transaction is not (it may roll back)."""
    from monitor.storage.database import Database

    db = Database(tmp_path / "h.db")
    try:
        with db.write("test") as conn:
            ids = db.intern(conn, ["a"])
            assert db.name_id(conn, "a") == ids["a"] and "a" not in db._ids_read
        with db.read() as conn:
            assert db.name_id(conn, "a") == ids["a"] and db._ids_read == {"a": ids["a"]}
            assert db.name_id(conn, "nope") is None and "nope" not in db._ids_read
    finally:
        db.close()


def test_rows_whose_only_change_is_their_readings_are_written_every_few_minutes(tmp_path):
    """An alert that keeps breaching changes its readings: its evaluation timers, and its value
    and annotations when the value moves (a lag in seconds grows each cycle). Its row is written
    again after READINGS_WRITTEN_EVERY, not each cycle; the kept alerts (evaluation, the API,
    exports) have the exact readings; a change of course (firing, resolving) is written at once."""
    import sqlite3

    from alerts.store import READINGS_WRITTEN_EVERY

    path = tmp_path / "alerts.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})

    def file_readings() -> dict:
        with sqlite3.connect(path) as c:
            return {json.loads(labels)["group"]: (at, breach, value, json.loads(annotations)["summary"])
                    for labels, at, breach, value, annotations in
                    c.execute("SELECT labels, last_eval_at, last_breach_at, value, annotations FROM alert_states")}

    def kept() -> dict:
        return {a.labels["group"]: (a.last_eval_at, a.last_breach_at, a.value, a.annotations["summary"])
                for a in h.store.load_alerts().values()}

    h.step(0)
    h.step(15)  # fired at 0 (for: 0): written then; from now on only the readings move
    assert file_readings() == {"g1": (0, 0, 500, "g1 lag 500"), "g2": (0, 0, 600, "g2 lag 600")}
    h.world.lags[("prod", "g2")] = 650
    h.step(30)
    assert file_readings() == {"g1": (0, 0, 500, "g1 lag 500"), "g2": (0, 0, 600, "g2 lag 600")}  # behind
    assert kept() == {"g1": (30, 30, 500, "g1 lag 500"), "g2": (30, 30, 650, "g2 lag 650")}  # exact
    assert {v.labels["group"]: v.value for v in h.engine.alerts(30)} == {"g1": 500, "g2": 650}  # the API's
    assert StateStore(path).load_alerts().keys() == h.store.load_alerts().keys()
    late = READINGS_WRITTEN_EVERY + 5
    h.step(late)
    assert file_readings() == {"g1": (late, late, 500, "g1 lag 500"), "g2": (late, late, 650, "g2 lag 650")}
    h.world.lags[("prod", "g2")] = 700
    h.step(late + 5)
    h.world.lags[("prod", "g1")] = 0
    h.step(late + 10)  # resolving is written at once, with its readings
    assert h.state("g1") == "resolved"
    with sqlite3.connect(path) as c:
        assert dict(c.execute("SELECT json_extract(labels, '$.group'), state FROM alert_states")) == \
            {"g1": "resolved", "g2": "firing"}
    assert file_readings()["g2"] == (late, late, 650, "g2 lag 650")
    assert kept()["g2"] == (late + 10, late + 10, 700, "g2 lag 700")


def test_kept_readings_outlive_another_connections_commit(tmp_path):
    """The store reads its alerts again when another connection committed to its file (a history
    sharing it does every cycle). A row as this store last wrote it keeps the readings kept since,
    which are newer than the file's; a row another connection rewrote is taken from the file."""
    import sqlite3

    path = tmp_path / "shared.db"
    h = Harness(StateStore(path), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    h.step(0)
    h.world.lags.update({("prod", "g1"): 510, ("prod", "g2"): 610})
    h.step(15)  # readings only: kept, not written
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE IF NOT EXISTS elsewhere (x)")
        other.execute("INSERT INTO elsewhere VALUES (1)")
    assert {a.labels["group"]: a.value for a in h.store.load_alerts().values()} == {"g1": 510, "g2": 610}
    with sqlite3.connect(path) as other:
        other.execute("UPDATE alert_states SET value = 999, last_eval_at = 7 WHERE json_extract(labels, '$.group') = 'g2'")
    assert {a.labels["group"]: a.value for a in h.store.load_alerts().values()} == {"g1": 510, "g2": 999}


def test_every_field_but_the_readings_makes_a_row_written():
    """Whatever an AlertRecord holds, besides its readings (value, annotations and the two
    evaluation timers), is written when it changes (a field added later is covered too)."""
    from dataclasses import fields, replace

    from alerts.store import AlertRecord, _only_readings_differ

    a = AlertRecord("fp", "Lag", "consumer_lag_messages", {"group": "g1"}, {"summary": "s"}, "firing", 500.0,
                    active_at=1.0, fired_at=2.0, last_breach_at=3.0, keep_firing_since=None, resolved_at=None,
                    last_eval_at=3.0)
    readings = {"value": 501.0, "annotations": {"summary": "t"}, "last_eval_at": 99.0, "last_breach_at": 98.0}
    assert _only_readings_differ(a, replace(a, **readings))
    other = {str: "x", float: 7.5, dict: {"k": "v"}}
    for f in fields(AlertRecord):
        if f.name in readings:
            continue
        value = getattr(a, f.name)
        changed = replace(a, **{f.name: other[type(value)] if value is not None else 4.5})
        assert not _only_readings_differ(a, changed), f.name


def test_the_service_keeps_no_evaluation_alive_but_its_time_and_rule_errors(tmp_path, monkeypatch):
    """Between cycles the service keeps the last evaluation's time (/metrics) and rule errors
    (the rules API), not the result: its views would keep a copy of every alert."""
    import gc
    import weakref

    clock = [10.0]
    world = World()
    svc = AlertingService(make_config(), tmp_path / "s.db", lambda: world.inputs(clock[0]), clock=lambda: clock[0],
                          rules=rules_from_dicts([{**LAG_RULE, "for": 0}, {**LAG_RULE, "name": "Broken"}]),
                          notifiers={n: _NullNotifier(n) for n in ("hook", "quiet", "pager", "am")})
    lag_kind, failing = KIND_FUNCTIONS[RuleKind.CONSUMER_LAG_MESSAGES], [True]

    def kind(snap, window, rule, now):
        if rule.name == "Broken" and failing[0]:
            raise RuntimeError("boom")
        return lag_kind(snap, window, rule, now)

    monkeypatch.setitem(KIND_FUNCTIONS, RuleKind.CONSUMER_LAG_MESSAGES, kind)
    world.lags[("prod", "g1")] = 500
    try:
        svc.evaluate_once()
        assert svc.metrics_state().last_evaluation_at == 10.0
        assert {r["name"]: r["last_error"] for r in svc.list_rules()} == {"Lag": None, "Broken": "RuntimeError: boom"}
        # (an evaluation whose rule raised is kept alive by the logged exception's frames)
        failing[0], clock[0] = False, 20.0
        result = svc.evaluate_once()
        assert len(result.alerts) == 2
        kept = weakref.ref(result)
        del result
        gc.collect()
        assert kept() is None
        assert svc.metrics_state().last_evaluation_at == 20.0
        assert {r["name"]: r["last_error"] for r in svc.list_rules()} == {"Lag": None, "Broken": None}
    finally:
        svc.close()


def test_tally_reads_the_stored_alerts_without_copying_them(store, monkeypatch):
    """/metrics counts every alert each cycle: it reads the stored alerts in place
    (`StateStore.reading_alerts`), and what it is handed cannot change them."""
    h = Harness(store, rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("dev", "g1"): 500})
    h.step(0)
    expected = Counter((v.alertname, v.state, v.severity) for v in h.engine.alerts(0))

    def refuse():
        raise AssertionError("every alert copied to be counted")

    monkeypatch.setattr(store, "load_alerts", refuse)
    assert h.engine.tally(0)[0] == expected
    def replace_one(alerts):
        alerts["x"] = None

    with pytest.raises(TypeError):
        store.reading_alerts(replace_one)
    assert h.engine.tally(0)[0] == expected


def test_what_is_kept_of_each_alerts_rendering_is_the_alerts_own_annotations():
    """Kept for every alert between evaluations: what its templates showed of the value (a tuple)
    and its annotations, the very dict the alert carries and the store keeps: one per alert."""
    h = Harness(StateStore(), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    h.step(0)
    h.world.lags[("prod", "g1")] = 501
    h.step(10)
    stored = h.store.load_alerts()
    kept = {a.fingerprint: h.engine._rendered.get(a.fingerprint) for a in h.engine.alerts(10)}
    assert len(kept) == 2 and all(type(r.shown) is tuple for r in kept.values())
    for fp, r in kept.items():
        assert r.annotations is stored[fp].annotations
        assert r.annotations["summary"].endswith(f"lag {stored[fp].value:.0f}")


def test_an_alert_breaching_again_has_its_labels_made_only_where_they_are_read(monkeypatch):
    """An alert's labels are made for its first fingerprint, its first annotations and when it
    starts: an alert breaching again with the same text has its fingerprint and annotations kept,
    and no labels are made for it. What the alerts carry is what they carried."""
    import alerts.engine as engine_module

    made = []
    real = engine_module.alert_labels
    monkeypatch.setattr(engine_module, "alert_labels", lambda rule, sample: made.append(sample) or real(rule, sample))
    h = Harness(StateStore(), rules=[{**LAG_RULE, "for": 0}])
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 600})
    h.step(0)
    assert len(made) == 2  # each alert's first fingerprint, kept for its annotations and its start
    first = {a.fingerprint: (a.labels, a.annotations) for a in h.engine.alerts(0)}
    h.step(10)
    h.step(20)
    assert len(made) == 2
    assert {a.fingerprint: (a.labels, a.annotations) for a in h.engine.alerts(20)} == first
    h.world.lags[("prod", "g1")] = 501  # its text changes: rendered again, from its labels
    h.step(30)
    assert len(made) == 3
    assert {a.labels["group"]: a.annotations["summary"][-3:] for a in h.engine.alerts(30)} == {"g1": "501",
                                                                                               "g2": "600"}
