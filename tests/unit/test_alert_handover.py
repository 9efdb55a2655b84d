"""Alerts across a takeover (a fleet, `alerts.handover`), with an injected clock: the replica
that owns a unit evaluates its alerts, a replica that does not neither starts nor resolves
them; the state handed over (alerts, per-unit notification groups, what each receiver was told,
notifications not delivered yet) makes the new owner send nothing the old one sent, send what
it left pending under the same idempotency key, and resolve exactly once."""
from __future__ import annotations

from alerts.engine import AlertEngine
from alerts.handover import export_units, import_unit, release_units
from alerts.store import StateStore
from tests.unit.test_alert_engine import LAG_RULE, Harness, make_config, notes


class Scope:
    """Owns the units in `owned` (units: group/<cluster>/<group>)."""

    def __init__(self, *owned: str) -> None:
        self.owned = set(owned)

    def unit(self, labels):
        return f"group/{labels['cluster']}/{labels['group']}" if labels.get("group") else None

    def owns(self, labels):
        unit = self.unit(labels)
        return unit is None or unit in self.owned


G1, G2 = "group/prod/g1", "group/prod/g2"


def replica(scope: Scope) -> Harness:
    h = Harness(StateStore(":memory:"), rules=[LAG_RULE], config=make_config())
    h.engine = AlertEngine(h.config, h.rules, h.store, scope)
    return h


def test_a_replica_evaluates_only_the_units_it_owns():
    h = replica(Scope(G1))
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 500})
    for t in (0, 60, 90):
        res = h.step(t)
    assert h.state("g1") == "firing" and h.state("g2") == "inactive"
    assert notes(res) == [("firing", ["firing:g1"])]
    # a group's notifications are grouped per unit: the group key names it
    assert all(n.group_key.endswith(f"@{G1}") for n in res.notifications if n.receiver == "hook")


def test_takeover_sends_nothing_twice_and_resolves_once():
    old, new = replica(Scope(G1)), replica(Scope())
    for h in (old, new):
        h.world.lags[("prod", "g1")] = 500
    for t in (0, 60, 90):
        old.step(t)
    assert notes_of(old.sent) == [("firing", ["firing:g1"])]
    delivered = [i for i in old.store.outbox_items(pending_only=True) if i.receiver == "hook"]
    old.store.mark_delivered([i.id for i in delivered], 91, 200, "hook")
    # what the old owner could not deliver before it died (the forward to Alertmanager): pending
    pending_keys = {i.idempotency_key for i in old.store.outbox_items(pending_only=True)
                    if i.payload["alerts"][0]["labels"].get("group") == "g1"}
    assert pending_keys

    handed = export_units(old.store, old.engine.scope.unit)
    assert set(handed) == {G1} and handed[G1]["alerts"][0]["state"] == "firing"
    old.engine.scope.owned.clear()
    release_units(old.store, [G1], old.engine.scope.unit)
    import_unit(new.store, handed[G1])
    new.engine.scope.owned.add(G1)

    # the new owner keeps it firing and tells nobody again; the old one neither resolves nor sends
    assert not notes(new.step(100)) and not notes(old.step(100))
    assert new.state("g1") == "firing" and old.state("g1") == "inactive"
    assert {i.idempotency_key for i in new.store.outbox_items(pending_only=True)} >= pending_keys
    assert not [i for i in old.store.outbox_items(pending_only=True)
                if i.payload["alerts"][0]["labels"].get("group") == "g1"]

    new.world.lags[("prod", "g1")] = 0
    for t in range(120, 1000, 30):
        new.step(t)
        old.step(t)
    assert notes_of(new.sent) == [("resolved", ["resolved:g1"])]
    assert notes_of(old.sent) == [("firing", ["firing:g1"])]  # nothing more from the old owner


def notes_of(sent) -> list:
    return [(n.status, sorted(f"{a['status']}:{a['labels']['group']}" for a in n.payload["alerts"]))
            for n in sent if n.receiver == "hook"]


def test_import_is_idempotent_and_release_forgets_only_the_unit():
    h = replica(Scope(G1, G2))
    h.world.lags.update({("prod", "g1"): 500, ("prod", "g2"): 500})
    for t in (0, 60, 90):
        h.step(t)
    handed = export_units(h.store, h.engine.scope.unit)
    assert set(handed) == {G1, G2}
    other = StateStore(":memory:")
    assert import_unit(other, handed[G1]) == len(handed[G1]["outbox"])
    assert import_unit(other, handed[G1]) == 0  # the same idempotency keys: nothing added twice
    assert release_units(h.store, [G1], h.engine.scope.unit) == 1
    assert {a.labels["group"] for a in h.store.load_alerts().values()} == {"g2"}
