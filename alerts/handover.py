"""Alert state handed from one owner to the next (a fleet, docs/scaling.md).

In a fleet every alert has one owner: the replica owning the alert's unit (its cluster, group,
or Spark). The engine groups notifications per unit then, so what a receiver was told about a
unit's alerts (the notification log) moves with the unit. `export_units` cuts the store's state
by unit; the new owner `import_unit`s it before it evaluates the unit, so it sends nothing the
last owner sent and sends what it left pending, under the same idempotency keys; the last owner
`release_units` (drops them without a transition: no RESOLVED for an alert that only moved).

A unit's state is a JSON-ready dict: `alerts` (the engine's records), `groups` (with their
members), `nflog` (what each receiver was told) and `outbox` (notifications not delivered yet).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from .store import AlertRecord, EngineChanges, GroupRecord, NewOutboxItem, NflogEntry, StateStore

UnitOf = Callable[[Mapping[str, str]], "str | None"]  # an alert's labels -> its unit (None: this replica's own)
MAX_OUTBOX = 1000  # pending notifications looked at per export


def _payload_unit(payload: Mapping[str, Any], unit_of: UnitOf) -> str | None:
    for alert in payload.get("alerts") or ():
        labels = alert.get("labels") if isinstance(alert, Mapping) else None
        if isinstance(labels, Mapping):
            return unit_of(labels)
    return None


def export_units(store: StateStore, unit_of: UnitOf) -> dict[str, dict[str, list]]:
    """Every unit's alert state (units without any are absent)."""
    state = store.load_engine_state()
    out: dict[str, dict[str, list]] = defaultdict(lambda: {"alerts": [], "groups": [], "nflog": [], "outbox": []})
    unit_of_fp: dict[str, str] = {}
    for fp, a in state.alerts.items():
        unit = unit_of(a.labels)
        if unit is not None:
            unit_of_fp[fp] = unit
            out[unit]["alerts"].append(asdict(a))
    for key, g in state.groups.items():
        unit = next((unit_of_fp[fp] for fp in sorted(g.members) if fp in unit_of_fp), None)
        if unit is None:
            continue
        out[unit]["groups"].append({**asdict(g), "members": sorted(g.members)})
        out[unit]["nflog"] += [{**asdict(e), "firing": sorted(e.firing), "resolved": sorted(e.resolved)}
                               for (group_key, _), e in state.nflog.items() if group_key == key]
    for item in store.outbox_items(pending_only=True, limit=MAX_OUTBOX):
        unit = _payload_unit(item.payload, unit_of)
        if unit is not None:
            out[unit]["outbox"].append({"idempotency_key": item.idempotency_key, "receiver": item.receiver,
                                        "receiver_type": item.receiver_type, "group_key": item.group_key,
                                        "created_at": item.created_at, "payload": item.payload})
    return dict(out)


def import_unit(store: StateStore, data: Mapping[str, Any]) -> int:
    """Take a unit's state over (in one transaction); returns the pending notifications added
    (one whose idempotency key is already in the outbox is not added twice)."""
    changes = EngineChanges(
        upsert_alerts=[AlertRecord(**a) for a in data.get("alerts", ())],
        upsert_groups=[GroupRecord(**{**g, "members": set(g["members"])}) for g in data.get("groups", ())],
        upsert_nflog=[NflogEntry(**{**e, "firing": frozenset(e["firing"]), "resolved": frozenset(e["resolved"])})
                      for e in data.get("nflog", ())],
        outbox=[NewOutboxItem(**item) for item in data.get("outbox", ())],
    )
    return store.commit(changes)


def release_units(store: StateStore, units: Iterable[str], unit_of: UnitOf) -> int:
    """Forget the units' alert state (another replica owns them now); returns alerts dropped."""
    wanted = set(units)
    state = store.load_engine_state()
    dropped = [fp for fp, a in state.alerts.items() if unit_of(a.labels) in wanted]
    groups = [key for key, g in state.groups.items() if g.members and g.members <= set(dropped)]
    pending = [item.id for item in store.outbox_items(pending_only=True, limit=MAX_OUTBOX)
               if _payload_unit(item.payload, unit_of) in wanted]
    store.commit(EngineChanges(delete_alerts=dropped, delete_groups=groups))
    if pending:
        with store.transaction() as c:
            c.executemany("DELETE FROM alert_outbox WHERE id = ? AND delivered_at IS NULL", [(i,) for i in pending])
    return len(dropped)
