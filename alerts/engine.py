"""The alert engine: rule evaluation, alert states, grouping, silences, inhibition, outbox.

`AlertEngine.evaluate(inputs, now)` is deterministic given the store contents, the inputs and
`now` (an injected clock; nothing here reads the time). One call:

1. evaluates every enabled rule on the latest snapshot (a rule that raises keeps its alerts
   as they are and is reported in `rule_errors`);
2. moves each alert (fingerprint = hash of its labels) through
   inactive -> pending -> firing -> resolved, honouring `for` and `keep_firing_for`;
3. puts firing alerts into aggregation groups (route + group_by labels) and flushes groups whose
   timer is due (group_wait for a new group, then every group_interval; an unchanged group is
   re-sent after repeat_interval), leaving out silenced and inhibited alerts. The same flush step
   is available alone as `flush_due(now)` (with `next_group_flush_at()`), which the service's
   group-timer thread calls so timers are honoured between evaluations;
4. forwards every firing/resolved alert to each Alertmanager receiver on change and every
   resend_interval;
5. commits the new states, history events, group timers and the notifications (outbox rows)
   in ONE SQLite transaction, so a crash either loses the whole evaluation (redone next time)
   or keeps all of it; a restarted engine reads everything back and sends nothing twice.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, Protocol

from collectors.models import Snapshot

from ._util import fingerprint as label_fingerprint
from ._util import rfc3339, stable_hash
from .config import AlertingConfig
from .inputs import AlertInputs, Sample
from .kinds import evaluate_rule
from .routing import (CompiledInhibitRule, InhibitCandidate, all_routes, build_route, dashboard_link, group_key,
                      inhibited, match_routes)
from .rules import RuleSet, RuleSpec
from .silences import Silence, SilenceManager
from .store import AlertRecord, EngineChanges, EngineState, GroupRecord, NewOutboxItem, NflogEntry, StateStore
from .templates import VALUE_FIELDS, Template, template_context, value_context

log = logging.getLogger(__name__)

PENDING, FIRING, RESOLVED, INACTIVE = "pending", "firing", "resolved", "inactive"


def alert_labels(rule: RuleSpec, sample: Sample) -> dict[str, str]:
    """An alert's labels: its sample's (those with a value), then its rule's, its name and its
    severity."""
    labels = {k: v for k, v in sample.labels if v != ""}
    labels.update(rule.labels)
    labels["alertname"] = rule.name
    labels["severity"] = rule.severity
    return labels


@dataclass(frozen=True)
class Transition:
    fingerprint: str
    alertname: str
    labels: Mapping[str, str]
    old: str
    new: str
    at: float
    value: float | None


@dataclass(frozen=True)
class Notification:
    receiver: str
    receiver_type: str
    group_key: str
    idempotency_key: str
    status: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class AlertView:
    """An alert as the API and dashboard show it."""

    fingerprint: str
    alertname: str
    state: str
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float | None
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    dashboard_url: str = ""

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "alertname": self.alertname, "state": self.state,
            "severity": self.severity, "labels": dict(self.labels), "annotations": dict(self.annotations),
            "value": self.value, "active_at": self.active_at, "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "startsAt": rfc3339(self.fired_at if self.fired_at is not None else self.active_at),
            "endsAt": rfc3339(self.resolved_at) if self.resolved_at is not None else None,
            "status": {
                "state": "suppressed" if self.suppressed and self.state == FIRING else self.state,
                "silencedBy": list(self.silenced_by), "inhibitedBy": list(self.inhibited_by),
            },
            "dashboard_url": self.dashboard_url,
        }


@dataclass(frozen=True)
class EngineResult:
    at: float
    evaluated: bool  # False when there was no snapshot yet
    # Builds `alerts`: views are made when first asked for (the app does not ask; they were ~7% of
    # an evaluation of 3,000 alerts)
    make_views: Callable[[], tuple[AlertView, ...]] = field(repr=False, compare=False)
    transitions: tuple[Transition, ...] = ()
    notifications: tuple[Notification, ...] = ()
    rule_errors: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def alerts(self) -> tuple[AlertView, ...]:
        """Every alert after the evaluation (resolved ones still kept too), firing first."""
        return self.make_views()

    def firing(self) -> list[AlertView]:
        return [a for a in self.alerts if a.state == FIRING]


@dataclass(frozen=True)
class _ReceiverInfo:
    name: str
    type: str
    send_resolved: bool


class AlertScope(Protocol):
    """Which alerts this engine owns, in a fleet (`alerts.handover`): one unit per alert."""

    def unit(self, labels: Mapping[str, str]) -> str | None:
        """The alert's unit; None: this replica's own alert (e.g. its history)."""

    def owns(self, labels: Mapping[str, str]) -> bool:
        """Whether this replica evaluates and notifies the alert now."""


class AlertEngine:
    def __init__(self, config: AlertingConfig, rules: RuleSet, store: StateStore,
                 scope: AlertScope | None = None) -> None:
        self.config = config
        # A fleet's replica: samples of other replicas' units are left out, their alerts kept as
        # they are until handed over, and notifications are grouped per unit (None: all, as ever).
        self.scope = scope
        self.rules = rules
        self.store = store
        self.silences = SilenceManager(store)
        self.route = build_route(config.route)
        self.routes = all_routes(self.route)
        self.inhibit_rules = tuple(CompiledInhibitRule.of(r) for r in config.inhibit_rules)
        self.receivers: dict[str, _ReceiverInfo] = {}
        for kind, r in config.receivers.all():
            self.receivers[r.name] = _ReceiverInfo(r.name, kind, bool(getattr(r, "send_resolved", True)))
        self._rules_by_name = {r.name: r for r in rules.rules}
        self._lock = threading.Lock()
        # What the previous evaluation worked out per alert, reused while its inputs are the
        # same: an alert's fingerprint (of its rule and sample labels) and its annotations (of
        # its rule and what they show of its value; their strings are the stored alert's).
        # Hashing and rendering them for every alert each cycle was ~half of an evaluation of
        # 2,000 alerts whose values stay.
        # (an engine's rules never change, and the fingerprint holds the rule's name)
        self._identities = _LastRound()  # (rule name, sample labels) -> fingerprint
        self._rendered = _LastRound()  # fingerprint -> _Rendering
        self._texts = {r.name: _RuleTexts.of(r) for r in rules.rules}

    # ------------------------------------------------------------------------------ helpers
    def _annotations(self, rule: RuleSpec, labels: Mapping[str, str], value: float | None, link: str,
                     shown: Mapping[str, Any]) -> dict[str, str]:
        """The alert's annotations: its rule's templates over the context its alerts share, its
        value, its dashboard link and `shown` (`value_context` of the value)."""
        texts = self._texts[rule.name]
        ctx = {**texts.context, "value": value, "dashboard_url": link, **shown}
        out = {}
        for key, tpl in texts.templates:
            text = tpl.render(ctx, labels)
            if text:
                out[key] = text
        return out

    def _muting(self, alerts: Mapping[str, AlertRecord], now: float,
                silences: list[Silence]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        firing = [a for a in alerts.values() if a.state == FIRING]
        silenced: dict[str, list[str]] = {}
        for a in firing:
            ids = [s.id for s in silences if s.is_active(now) and s.matches(a.labels)]
            if ids:
                silenced[a.fingerprint] = ids
        inhib = inhibited(self.inhibit_rules, (InhibitCandidate(a.fingerprint, a.kind, a.labels) for a in firing))
        return silenced, inhib

    def _view(self, a: AlertRecord, silenced: Mapping[str, list[str]], inhib: Mapping[str, list[str]]) -> AlertView:
        # The view takes the record's dicts: they are never changed in place (`store._copy`), and
        # `to_dict` copies them for whoever reads the view.
        return AlertView(
            fingerprint=a.fingerprint, alertname=a.alertname, state=a.state, severity=a.severity,
            labels=a.labels, annotations=a.annotations, value=a.value, active_at=a.active_at,
            fired_at=a.fired_at, resolved_at=a.resolved_at,
            silenced_by=tuple(silenced.get(a.fingerprint, ())), inhibited_by=tuple(inhib.get(a.fingerprint, ())),
            dashboard_url=dashboard_link(self.config.dashboard_url, a.labels),
        )

    def _alert_payload(self, a: AlertRecord) -> dict[str, Any]:
        return {
            "status": FIRING if a.state == FIRING else RESOLVED,
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "starts_at": a.fired_at if a.fired_at is not None else a.active_at,
            "ends_at": a.resolved_at if a.state == RESOLVED else None,
            "fingerprint": a.fingerprint,
            "generator_url": dashboard_link(self.config.dashboard_url, a.labels),
            "value": a.value,
        }

    def _notification(self, *, receiver: _ReceiverInfo, key: str, group_labels: Mapping[str, str],
                      alerts: list[AlertRecord], now: float, idem: str) -> Notification:
        alerts = sorted(alerts, key=lambda a: (a.state != FIRING, a.fired_at or a.active_at, a.fingerprint))
        payload_alerts = [self._alert_payload(a) for a in alerts]
        status = FIRING if any(a.state == FIRING for a in alerts) else RESOLVED
        label_sets = [a.labels for a in alerts]
        ann_sets = [a.annotations for a in alerts]
        common_labels = {k: v for k, v in label_sets[0].items() if all(ls.get(k) == v for ls in label_sets)} if label_sets else {}
        common_ann = {k: v for k, v in ann_sets[0].items() if all(s.get(k) == v for s in ann_sets)} if ann_sets else {}
        payload = {
            "receiver": receiver.name,
            "receiver_type": receiver.type,
            "group_key": key,
            "status": status,
            "group_labels": dict(group_labels),
            "common_labels": common_labels,
            "common_annotations": common_ann,
            "external_url": self.config.effective_external_url,
            "alerts": payload_alerts,
            "created_at": now,
            "idempotency_key": idem,
        }
        return Notification(receiver.name, receiver.type, key, idem, status, payload)

    # ------------------------------------------------------------------------------ evaluate
    def evaluate(self, inputs: AlertInputs, now: float) -> EngineResult:
        with self._lock:
            try:
                return self._evaluate(inputs, now)
            finally:
                self._identities.end_round()
                self._rendered.end_round()

    def _evaluate(self, inputs: AlertInputs, now: float) -> EngineResult:
        state = self.store.load_engine_state()
        silences = self.silences.list(now)
        rnd = _Round(now, state.alerts)
        snapshot = inputs.latest_snapshot()
        if snapshot is not None:
            for rule in self.rules.enabled:
                self._evaluate_rule(rule, snapshot, inputs, rnd)
            self._settle_unseen(rnd)
        silenced, inhib = self._muting(rnd.alerts, now, silences)
        notifications = self._flush_due(state, now, silenced, inhib, rnd.changes)
        self._forward(state, now, rnd.changes, notifications)
        self._forget_resolved(state, rnd)
        changes = rnd.changes
        changes.upsert_alerts = [rnd.alerts[fp] for fp in sorted(rnd.dirty) if fp in rnd.alerts]
        changes.outbox = [NewOutboxItem(n.idempotency_key, n.receiver, n.receiver_type, n.group_key, now,
                                        dict(n.payload)) for n in notifications]
        changes.prune_before = now - self.config.history_retention
        changes.prune_delivered_before = now - self.config.delivery.delivered_retention
        self.store.commit(changes)

        records = rnd.alerts

        def views() -> tuple[AlertView, ...]:
            return tuple(sorted((self._view(a, silenced, inhib) for a in records.values()),
                                key=lambda v: (v.state != FIRING, v.alertname, v.fingerprint)))

        return EngineResult(now, snapshot is not None, views, tuple(rnd.transitions), tuple(notifications),
                            rnd.rule_errors)

    def _evaluate_rule(self, rule: RuleSpec, snapshot: Snapshot, inputs: AlertInputs, rnd: _Round) -> None:
        """Step 1 and 2 for one rule: its samples start, keep or fire alerts. A rule that raises
        keeps its alerts as they are and is reported."""
        try:
            samples = evaluate_rule(rule, snapshot, inputs.window, rnd.now, getattr(inputs, "peaks", None))
        except Exception as exc:  # a broken rule must not stop the others
            rnd.rule_errors[rule.name] = f"{type(exc).__name__}: {exc}"
            log.exception("alert rule %s failed to evaluate", rule.name)
            return
        rnd.evaluated_rules.add(rule.name)
        name, identities, scope = rule.name, self._identities, self.scope
        for s in samples:
            # An alert's labels are made where they are read: for its first fingerprint, a
            # fleet's scope, its first annotations and a new alert. Most samples are an alert
            # breaching again, whose fingerprint and annotations are kept from the last round.
            labels = None
            fp = identities.get((name, s.labels))
            if fp is None:
                labels = alert_labels(rule, s)
                fp = label_fingerprint(labels)
                identities.put((name, s.labels), fp)
            if scope is not None:
                labels = labels if labels is not None else alert_labels(rule, s)
                if not scope.owns(labels):
                    continue
            if fp in rnd.seen:
                continue
            if s.hold:
                self._hold(fp, rnd)
            else:
                self._breach(rule, fp, s, labels, rnd)

    @staticmethod
    def _hold(fp: str, rnd: _Round) -> None:
        """A lower bound below the threshold: the truth is unknown, so an alert already pending
        or firing stays as it is, and none starts."""
        held = rnd.alerts.get(fp)
        if held is not None and held.state in (PENDING, FIRING):
            rnd.seen.add(fp)
            held.last_eval_at = rnd.now
            rnd.dirty.add(fp)

    def _breach(self, rule: RuleSpec, fp: str, sample: Sample, labels: dict[str, str] | None, rnd: _Round) -> None:
        """A breaching sample: the alert starts pending (or is kept), and fires after `for`.
        `labels`: the alert's, when already made (else made here if needed)."""
        now, value = rnd.now, sample.value
        rnd.seen.add(fp)
        rendered = self._rendered.get(fp)
        if rendered is not None and rendered.value == value:
            annotations = rendered.annotations
        else:
            shown = value_context(value, self._texts[rule.name].fields)
            seen = tuple(shown.values())  # the rule's fields, always in the same order
            if rendered is not None and rendered.shown == seen:  # the value moved, not its text
                annotations, link = rendered.annotations, rendered.link
            else:
                if labels is None:
                    labels = alert_labels(rule, sample)
                # the alert's dashboard link follows from its labels, the same for its fingerprint
                link = rendered.link if rendered is not None else dashboard_link(self.config.dashboard_url, labels)
                annotations = self._annotations(rule, labels, value, link, shown)
            self._rendered.put(fp, _Rendering(value, seen, annotations, link))
        a = rnd.alerts.get(fp)
        if a is None or a.state == RESOLVED:
            old = INACTIVE if a is None else RESOLVED
            if labels is None:
                labels = alert_labels(rule, sample)
            a = AlertRecord(fp, rule.name, rule.kind.value, labels, annotations, PENDING, value,
                            active_at=now, fired_at=None, last_breach_at=now, keep_firing_since=None,
                            resolved_at=None, last_eval_at=now)
            rnd.alerts[fp] = a
            rnd.transition(a, old, PENDING)
        else:
            a.value, a.annotations, a.last_breach_at, a.last_eval_at = value, annotations, now, now
            a.keep_firing_since = None
        if a.state == PENDING and now - a.active_at >= rule.for_:
            a.state, a.fired_at = FIRING, now
            rnd.transition(a, PENDING, FIRING)
        rnd.dirty.add(fp)

    def _settle_unseen(self, rnd: _Round) -> None:
        """Alerts no sample breached this round: pending ones end, firing ones resolve (after
        `keep_firing_for`); alerts of a rule that failed this time are kept as they are."""
        now = rnd.now
        for fp, a in list(rnd.alerts.items()):
            if fp in rnd.seen:
                continue
            rule = self._rules_by_name.get(a.rule)
            live_rule = rule is not None and rule.enabled
            if live_rule and a.rule not in rnd.evaluated_rules:
                continue  # the rule failed this time: keep the alert as it is
            if self.scope is not None and not self.scope.owns(a.labels):
                continue  # not this replica's (any more, or not yet): handed over, never resolved here
            if a.state == PENDING:
                del rnd.alerts[fp]
                rnd.changes.delete_alerts.append(fp)
                rnd.transition(a, PENDING, INACTIVE)
                rnd.dirty.discard(fp)
            elif a.state == FIRING:
                kff = rule.keep_firing_for if live_rule else 0.0
                if a.keep_firing_since is None:
                    a.keep_firing_since = now
                if kff > 0 and now - a.keep_firing_since < kff:
                    a.last_eval_at = now
                else:
                    a.state, a.resolved_at, a.last_eval_at = RESOLVED, now, now
                    rnd.transition(a, FIRING, RESOLVED)
                rnd.dirty.add(fp)

    def _forget_resolved(self, state: EngineState, rnd: _Round) -> None:
        """Resolved alerts nobody needs anymore: past `resolved_retention` and in no group."""
        members = set().union(*(g.members for g in state.groups.values())) if state.groups else set()
        for fp, a in list(rnd.alerts.items()):
            if (a.state == RESOLVED and a.resolved_at is not None
                    and rnd.now - a.resolved_at >= self.config.resolved_retention and fp not in members):
                del rnd.alerts[fp]
                rnd.changes.delete_alerts.append(fp)
                rnd.dirty.discard(fp)

    # ------------------------------------------------------------------------------ group timers
    def flush_due(self, now: float) -> list[Notification]:
        """Flush the groups whose group_wait / group_interval / repeat_interval timer is due at
        `now`, from the alert and group state already in the store, without evaluating rules.

        Called by the group-timer thread so timers fire at their time rather than at the next
        evaluation. The notifications (outbox rows), nflog and group timers are committed in ONE
        transaction, exactly as `evaluate` does; flushing and evaluating never interleave."""
        with self._lock:
            state = self.store.load_engine_state()
            silenced, inhib = self._muting(state.alerts, now, self.silences.list(now))
            changes = EngineChanges()
            notifications = self._flush_due(state, now, silenced, inhib, changes)
            changes.outbox = [NewOutboxItem(n.idempotency_key, n.receiver, n.receiver_type, n.group_key, now,
                                            dict(n.payload)) for n in notifications]
            if changes.outbox or changes.upsert_groups or changes.delete_groups or changes.upsert_nflog:
                self.store.commit(changes)
            return notifications

    def next_group_flush_at(self) -> float | None:
        """Earliest `next_flush_at` of any aggregation group in the store (None without groups).
        Read from the store, so a restarted engine reports the same timers."""
        return self.store.next_group_flush_at()

    def _flush_due(self, state: EngineState, now: float, silenced: Mapping[str, list[str]],
                   inhib: Mapping[str, list[str]], changes: EngineChanges) -> list[Notification]:
        """The group step shared by `evaluate` (in its transaction) and `flush_due`."""
        out: list[Notification] = []
        self._group(state, now, silenced, inhib, changes, out)
        return out

    # ------------------------------------------------------------------------------ grouping
    def _group(self, state: EngineState, now: float, silenced: Mapping[str, list[str]],
               inhib: Mapping[str, list[str]], changes: EngineChanges, out: list[Notification]) -> None:
        alerts = state.alerts
        groups = state.groups
        touched: set[str] = set()
        expected: dict[str, set[str]] = {}
        # 1. membership: firing alerts join (and create) their groups
        for a in alerts.values():
            if a.state != FIRING:
                continue
            for route in match_routes(self.route, a.labels):
                if not route.receivers:
                    continue
                glabels = route.group_labels(a.labels)
                key = group_key(route, glabels)
                unit = self.scope.unit(a.labels) if self.scope is not None else None
                if unit is not None:
                    key = f"{key}@{unit}"
                expected.setdefault(key, set()).add(a.fingerprint)
                g = groups.get(key)
                if g is None:
                    g = GroupRecord(key, route.id, glabels, created_at=now, next_flush_at=now + route.group_wait,
                                    last_flush_at=None, members=set())
                    groups[key] = g
                    touched.add(key)
                if a.fingerprint not in g.members:
                    g.members.add(a.fingerprint)
                    touched.add(key)
        # 2. flush due groups
        for key, g in sorted(groups.items()):
            route = self.routes.get(g.route_id)
            # firing alerts stay only in the groups the current routing puts them in (the config
            # may have changed since they joined); resolved ones stay until flushed
            live = {fp for fp in g.members if fp in alerts and (
                (alerts[fp].state == FIRING and fp in expected.get(key, ())) or alerts[fp].state == RESOLVED)}
            if live != g.members:
                g.members = live
                touched.add(key)
            if route is None:  # config changed and the route is gone: drop the group
                changes.delete_groups.append(key)
                touched.discard(key)
                continue
            if now < g.next_flush_at:
                continue
            firing = {fp for fp in g.members if alerts[fp].state == FIRING
                      and fp not in silenced and fp not in inhib}
            resolved = {fp for fp in g.members if alerts[fp].state == RESOLVED}
            for rname in route.receivers:
                info = self.receivers.get(rname)
                if info is None:
                    continue
                entry = state.nflog.get((key, rname))
                told_resolved = resolved & entry.firing if entry else set()
                if not _needs_update(entry, firing, told_resolved, route.repeat_interval, info.send_resolved, now):
                    continue
                chosen = [alerts[fp] for fp in firing]
                if info.send_resolved:
                    chosen += [alerts[fp] for fp in told_resolved]
                if chosen:
                    idem = stable_hash("group", key, rname, now, sorted(firing), sorted(told_resolved))
                    out.append(self._notification(receiver=info, key=key, group_labels=g.labels, alerts=chosen,
                                                  now=now, idem=idem))
                    new_entry = NflogEntry(key, rname, frozenset(firing), frozenset(told_resolved), now)
                    state.nflog[(key, rname)] = new_entry
                    changes.upsert_nflog.append(new_entry)
                elif entry is not None and not firing and not told_resolved:
                    pass  # everything is muted: the receiver keeps what it was told
                elif entry is not None:
                    new_entry = NflogEntry(key, rname, frozenset(firing), frozenset(told_resolved), now)
                    state.nflog[(key, rname)] = new_entry
                    changes.upsert_nflog.append(new_entry)
            g.members -= resolved  # resolved alerts leave the group once flushed
            g.last_flush_at = now
            g.next_flush_at = now + route.group_interval
            touched.add(key)
            if not g.members:
                del groups[key]
                changes.delete_groups.append(key)
                touched.discard(key)
                for nk in [k for k in state.nflog if k[0] == key]:
                    del state.nflog[nk]
        changes.upsert_groups = [groups[k] for k in sorted(touched) if k in groups]
        gone = set(changes.delete_groups)
        changes.upsert_nflog = [e for e in changes.upsert_nflog if e.group_key not in gone]

    # ------------------------------------------------------------------------------ forwarding
    def _forward(self, state: EngineState, now: float, changes: EngineChanges, out: list[Notification]) -> None:
        alerts = state.alerts
        firing = {fp for fp, a in alerts.items() if a.state == FIRING}
        for r in self.config.receivers.alertmanager:
            kv_key = f"forward:{r.name}"
            prev = state.kv.get(kv_key) or {"firing": [], "sent_at": None}
            prev_firing = set(prev.get("firing", ()))
            resolved = {fp for fp in prev_firing - firing if fp in alerts and alerts[fp].state == RESOLVED}
            changed = not firing <= prev_firing or bool(resolved)
            due = bool(firing) and (prev.get("sent_at") is None or now - prev["sent_at"] >= r.resend_interval)
            if not (changed or due):
                if prev_firing - firing:  # gone without a resolved record: forget them
                    state.kv[kv_key] = changes.kv[kv_key] = {"firing": sorted(firing & prev_firing), "sent_at": prev.get("sent_at")}
                continue
            chosen = [alerts[fp] for fp in sorted(firing | resolved)]
            if chosen:
                info = _ReceiverInfo(r.name, "alertmanager", True)
                idem = stable_hash("forward", r.name, now, sorted(firing), sorted(resolved))
                out.append(self._notification(receiver=info, key=f"forward:{r.name}", group_labels={},
                                              alerts=chosen, now=now, idem=idem))
            state.kv[kv_key] = changes.kv[kv_key] = {"firing": sorted(firing), "sent_at": now}

    # ------------------------------------------------------------------------------ read side
    def alerts(self, now: float, *, include_resolved: bool = True, include_pending: bool = True) -> list[AlertView]:
        records = self.store.load_alerts()
        silenced, inhib = self._muting(records, now, self.silences.list(now))
        views = [self._view(a, silenced, inhib) for a in records.values()
                 if (include_resolved or a.state != RESOLVED) and (include_pending or a.state != PENDING)]
        return sorted(views, key=lambda v: (v.state != FIRING, v.state != PENDING, v.alertname, v.fingerprint))

    def tally(self, now: float) -> tuple[Counter, Counter]:
        """Alerts per (alertname, state, severity), and firing ones per (alertname, reason) that
        silences or inhibitions keep quiet: what `alerts()` would count, without building views."""
        silences = self.silences.list(now)

        def count(records: Mapping[str, AlertRecord]) -> tuple[Counter, Counter]:
            silenced, inhib = self._muting(records, now, silences)
            by_state: Counter = Counter()
            suppressed: Counter = Counter()
            for a in records.values():
                by_state[(a.alertname, a.state, a.severity)] += 1
                if a.state == FIRING:
                    if silenced.get(a.fingerprint):
                        suppressed[(a.alertname, "silenced")] += 1
                    if inhib.get(a.fingerprint):
                        suppressed[(a.alertname, "inhibited")] += 1
            return by_state, suppressed

        return self.store.reading_alerts(count)  # a count: no copy of each alert

    def groups(self, now: float) -> list[dict[str, Any]]:
        state = self.store.load_engine_state()
        silenced, inhib = self._muting(state.alerts, now, self.silences.list(now))
        out = []
        for key, g in sorted(state.groups.items()):
            route = self.routes.get(g.route_id)
            out.append({
                "group_key": key, "labels": g.labels, "route": g.route_id,
                "receivers": list(route.receivers) if route else [],
                "created_at": g.created_at, "next_flush_at": g.next_flush_at, "last_flush_at": g.last_flush_at,
                "alerts": [self._view(state.alerts[fp], silenced, inhib).to_dict()
                           for fp in sorted(g.members) if fp in state.alerts],
            })
        return out


class _RuleTexts(NamedTuple):
    """What a rule's annotations are rendered from, read once: the rule's own fields (a pydantic
    model's private attributes cost microseconds a read), and the part of the templates' context
    that is the same for all its alerts."""

    templates: tuple[tuple[str, Template], ...]
    fields: frozenset[str]  # the context fields the templates use
    context: dict[str, Any]  # the context but for the alert's value and dashboard link

    @classmethod
    def of(cls, rule: RuleSpec) -> _RuleTexts:
        fields = rule.context_fields
        context = template_context(value=None, threshold=rule.effective_threshold, alertname=rule.name,
                                   severity=rule.severity, kind=rule.kind.value, dashboard_url="",
                                   for_seconds=rule.for_, fields=fields - VALUE_FIELDS)
        return cls(tuple(rule.templates.items()), fields, context)


class _Rendering(NamedTuple):
    """An alert's annotations as last rendered, and what they were rendered from. Kept for every
    alert. The annotations dict is the alert record's own, and the store's (never changed in
    place: an alert whose text changes gets a new one), so each alert has one."""

    value: float | None
    shown: tuple  # what the templates show of the value (`value_context`), its values in order
    annotations: dict[str, str]
    link: str  # the alert's dashboard link


class _LastRound:
    """A cache of what one evaluation worked out, for the next: what an evaluation does not ask
    for is dropped at its end (`end_round`), so it holds at most two evaluations' entries."""

    def __init__(self) -> None:
        self._previous: dict[Any, Any] = {}
        self._current: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        value = self._current.get(key)
        if value is None:
            value = self._previous.pop(key, None)
            if value is not None:
                self._current[key] = value
        return value

    def put(self, key: Any, value: Any) -> None:
        self._current[key] = value

    def end_round(self) -> None:
        self._previous, self._current = self._current, {}

    def __len__(self) -> int:
        return len(self._previous) + len(self._current)


class _Round:
    """What one evaluation changes: alert states, their transitions and history, errors."""

    def __init__(self, now: float, alerts: dict[str, AlertRecord]) -> None:
        self.now = now
        self.alerts = alerts
        self.changes = EngineChanges()
        self.transitions: list[Transition] = []
        self.rule_errors: dict[str, str] = {}
        self.seen: set[str] = set()  # fingerprints a sample breached (or held) this round
        self.evaluated_rules: set[str] = set()
        self.dirty: set[str] = set()  # alerts to store

    def transition(self, a: AlertRecord, old: str, new: str) -> None:
        self.transitions.append(Transition(a.fingerprint, a.alertname, dict(a.labels), old, new, self.now, a.value))
        if new in (FIRING, RESOLVED):
            self.changes.history.append((self.now, a.fingerprint, a.rule, "fired" if new == FIRING else "resolved",
                                         dict(a.labels), a.value))


def _needs_update(entry: NflogEntry | None, firing: set[str], resolved: set[str], repeat: float,
                  send_resolved: bool, now: float) -> bool:
    """Alertmanager's DedupStage.needsUpdate."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return now - entry.notified_at >= repeat
