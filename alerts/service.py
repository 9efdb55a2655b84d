"""`AlertingService`: what the app wires in. Owns the store, engine, dispatcher and notifiers.

    svc = AlertingService(config.alerting, store_path, inputs_provider=history_inputs)
    svc.start()                       # evaluator, group-timer and per-receiver delivery threads
                                      # (or call the *_once methods)
    ...
    svc.evaluate_once(now)            # -> EngineResult
    svc.dispatch_once(now)            # -> DispatchReport
    svc.flush_groups_once(now)        # flush due group timers without evaluating (the timer thread does this)
    svc.metric_families()             # fresh prometheus_client families for /metrics
    svc.list_alerts() / list_groups() / list_silences() / create_silence({...}) / expire_silence(id)
    svc.list_notifications(limit=100) # the notification log: receiver, time, status, attempts, result
    svc.stop()

All list/create functions return JSON-ready dicts. Silence errors raise `SilenceError`
(ValueError, -> HTTP 400) or `SilenceNotFound` (KeyError, -> HTTP 404).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from .config import AlertingConfig
from .engine import FIRING, AlertEngine, AlertScope, EngineResult, Notification
from .errors import AlertConfigError
from .handover import export_units, import_unit, release_units
from .inputs import AlertInputs, as_inputs
from .metrics import AlertMetricsState, alert_metric_families
from .notification_log import DEFAULT_LIMIT, MAX_LIMIT, notification_entry
from .notifiers import build_notifiers
from .notifiers.base import Notifier
from .outbox import DispatchReport, Dispatcher
from .rules import KIND_INFO, RuleSet, load_rules
from .secrets import SecretError
from .silences import SilenceError, SilenceNotFound
from .store import StateStore

log = logging.getLogger(__name__)


class AlertingService:
    def __init__(self, config: AlertingConfig, store_path: str | Path | StateStore | None = None,
                 inputs_provider: AlertInputs | Callable[[], AlertInputs] | None = None,
                 clock: Callable[[], float] = time.time, *, rules: RuleSet | None = None,
                 notifiers: Mapping[str, Notifier] | None = None, environ: Mapping[str, str] | None = None,
                 scope: AlertScope | None = None) -> None:
        self.config = config
        self.clock = clock
        self.rules = rules if rules is not None else load_rules(config.rules_files,
                                                                include_defaults=config.include_default_rules)
        if isinstance(store_path, StateStore):
            self.store = store_path
        else:
            path = store_path if store_path is not None else (config.store_path or ":memory:")
            self.store = StateStore(path)
        self._inputs_provider = inputs_provider
        self.engine = AlertEngine(config, self.rules, self.store, scope)
        if notifiers is None:
            try:
                notifiers = build_notifiers(config, environ)
            except SecretError as exc:
                raise AlertConfigError(f"alerting.receivers: {exc}") from None
        self.dispatcher = Dispatcher(self.store, notifiers, config.delivery, clock)
        # Of the last evaluation, what /metrics and the rules API show: its time and each rule's
        # error. Not the result itself, whose views would keep a copy of every alert alive
        # between cycles (~2.6 MB at 3,000 alerts, besides the store's own).
        self.last_evaluation_at: float | None = None
        self.last_rule_errors: Mapping[str, str] = {}
        self._last_eval_duration: float | None = None
        self._rule_errors: dict[str, bool] = {r.name: False for r in self.rules.enabled}
        self._stop = threading.Event()
        self._wake_timers = threading.Event()
        # evaluation (evaluate_once) and group flushing (flush_groups_once, timer thread) never interleave
        self._engine_lock = threading.RLock()
        self._threads: list[threading.Thread] = []

    @property
    def receiver_names(self) -> tuple[str, ...]:
        """The configured receivers (none: alerts are evaluated and shown, nothing is sent)."""
        return tuple(r.name for _, r in self.config.receivers.all())

    # ------------------------------------------------------------------------------ cycle
    def evaluate_once(self, now: float | None = None, inputs: AlertInputs | None = None) -> EngineResult:
        if inputs is None:
            if self._inputs_provider is None:
                raise RuntimeError("no inputs: pass inputs= or give the service an inputs_provider")
            inputs = as_inputs(self._inputs_provider)
        with self._engine_lock:
            now = self.clock() if now is None else now
            started = time.perf_counter()
            result = self.engine.evaluate(inputs, now)
            self._last_eval_duration = time.perf_counter() - started
            self.last_evaluation_at, self.last_rule_errors = result.at, result.rule_errors
            self._rule_errors = {r.name: r.name in result.rule_errors for r in self.rules.enabled}
        self._queued(result.notifications)
        if self.engine.next_group_flush_at() is not None:  # (possibly new) group timers
            self._wake_timers.set()
        return result

    def flush_groups_once(self, now: float | None = None) -> list[Notification]:
        """Flush the notification groups whose group_wait/group_interval/repeat_interval timer is
        due (without evaluating rules); the timer thread calls this at each group's timer."""
        with self._engine_lock:
            now = self.clock() if now is None else now
            notifications = self.engine.flush_due(now)
        self._queued(notifications)
        return notifications

    def _queued(self, notifications: Iterable[Notification]) -> None:
        """New outbox items: wake the workers of their receivers."""
        receivers = {n.receiver for n in notifications}
        if receivers:
            self.dispatcher.wake(receivers)

    def dispatch_once(self, now: float | None = None) -> DispatchReport:
        return self.dispatcher.dispatch_once(now)

    # ------------------------------------------------------------------------------ fleet handover
    def export_units(self) -> dict[str, dict]:
        """Each unit's alert state, for the next owner (`alerts.handover`; needs a scope)."""
        with self._engine_lock:
            return export_units(self.store, self.engine.scope.unit)

    def import_unit(self, data: Mapping[str, Any]) -> None:
        """Take a unit's alert state over before evaluating it."""
        with self._engine_lock:
            added = import_unit(self.store, data)
        if added:
            self.dispatcher.wake({item["receiver"] for item in data.get("outbox", ())})

    def release_units(self, units: Iterable[str]) -> int:
        """Drop units another replica owns now (no transition, nothing sent)."""
        with self._engine_lock:
            return release_units(self.store, units, self.engine.scope.unit)

    # ------------------------------------------------------------------------------ threads
    def start(self, *, evaluate: bool = True) -> None:
        """Run delivery (one worker per receiver), the group timers (and, unless `evaluate=False`
        because the caller evaluates after each collection cycle, evaluation every
        `evaluation_interval`) in background threads (no-op when `alerting.enabled` is false)."""
        if self._threads or not self.config.enabled:
            return
        self._stop.clear()
        self.dispatcher.start()
        self._threads = [
            threading.Thread(target=self._timer_loop, name="streamscope-alerts-timers", daemon=True),
        ]
        if evaluate:
            self._threads.append(
                threading.Thread(target=self._eval_loop, name="streamscope-alerts-eval", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake_timers.set()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        self.dispatcher.stop(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.stop()
        self.store.close()

    def _eval_loop(self) -> None:
        interval = self.config.evaluation_interval
        while not self._stop.is_set():
            try:
                self.evaluate_once()
            except Exception:
                log.exception("alert evaluation failed")
            self._stop.wait(interval)

    def _timer_loop(self) -> None:
        """Honours group timers: wakes at the next group flush, so group_wait/group_interval do not
        wait for the next evaluation. Sending is the receivers' workers' job (they are woken)."""
        while not self._stop.is_set():
            # cleared before the work, so a wake-up set while working is not lost
            self._wake_timers.clear()
            try:
                flush_at = self.engine.next_group_flush_at()
                if flush_at is not None and flush_at <= self.clock():
                    self.flush_groups_once()
                flush_at = self.engine.next_group_flush_at()
            except Exception:
                log.exception("alert group flush failed")
                flush_at = None  # retry on the next regular wake-up, not in a tight loop
            wait = 5.0 if flush_at is None else min(5.0, max(0.02, flush_at - self.clock()))
            self._wake_timers.wait(wait)

    # ------------------------------------------------------------------------------ metrics
    def metrics_state(self, now: float | None = None) -> AlertMetricsState:
        now = self.clock() if now is None else now
        alerts, suppressed = self.engine.tally(now)
        for r in self.rules.enabled:
            for st in ("pending", "firing"):
                alerts[(r.name, st, r.severity)] += 0
        notifications = dict(self.store.delivery_stats())
        for name in self.dispatcher.notifiers:
            for result in ("success", "failure"):
                notifications.setdefault((name, result), 0)
        pending = self.store.outbox_pending_summary()
        outbox_pending = {name: 0 for name in self.dispatcher.notifiers}
        oldest: dict[str, float] = {}
        for receiver, (n, created) in pending.items():
            outbox_pending[receiver] = n
            if created is not None:
                oldest[receiver] = max(0.0, now - created)
        silences = Counter(s.state(now) for s in self.engine.silences.list(now))
        return AlertMetricsState(
            at=now, alerts=dict(alerts), suppressed=dict(suppressed), notifications=notifications,
            outbox_pending=outbox_pending, outbox_oldest_age=oldest, silences=dict(silences),
            rule_errors=dict(self._rule_errors),
            last_evaluation_at=self.last_evaluation_at,
            evaluation_duration=self._last_eval_duration,
        )

    def metric_families(self, now: float | None = None) -> Iterable[Metric]:
        return list(alert_metric_families(self.metrics_state(now)))

    # ------------------------------------------------------------------------------ JSON API
    def list_alerts(self, state: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
        now = self.clock() if now is None else now
        views = self.engine.alerts(now)
        if state == "suppressed":
            views = [v for v in views if v.state == FIRING and v.suppressed]
        elif state is not None:
            views = [v for v in views if v.state == state]
        return [v.to_dict() for v in views]

    def list_groups(self, now: float | None = None) -> list[dict[str, Any]]:
        return self.engine.groups(self.clock() if now is None else now)

    def list_silences(self, state: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
        now = self.clock() if now is None else now
        return [s.to_dict(now) for s in self.engine.silences.list(now, state)]

    def create_silence(self, data: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """Body like Alertmanager's postableSilence: matchers (strings or {name,value,isRegex,isEqual}),
        startsAt/endsAt (RFC 3339 or UNIX seconds) or duration ("2h"), createdBy, comment, id (update).
        Validated and serialised before it is stored (limits: `alerts.silences`); raises SilenceError
        naming the key, or SilenceNotFound for an unknown id."""
        if not isinstance(data, Mapping):
            raise SilenceError("silence must be a JSON object")
        allowed = {"matchers", "startsAt", "endsAt", "starts_at", "ends_at", "duration", "createdBy", "created_by",
                   "comment", "id"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SilenceError(f"unknown key(s): {', '.join(unknown)}")
        now = self.clock() if now is None else now
        s = self.engine.silences.create(
            data.get("matchers"), starts_at=data.get("startsAt", data.get("starts_at")),
            ends_at=data.get("endsAt", data.get("ends_at")), duration=data.get("duration"),
            created_by=data.get("createdBy", data.get("created_by", "")), comment=data.get("comment", ""),
            now=now, silence_id=data.get("id"),
        )
        return s.to_dict(now)

    def expire_silence(self, silence_id: str, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        return self.engine.silences.expire(silence_id, now).to_dict(now)

    def alert_history(self, *, since: float | None = None, until: float | None = None,
                      fingerprint: str | None = None, alertname: str | None = None, limit: int = 500) -> list[dict]:
        return self.store.history(since=since, until=until, fingerprint=fingerprint, rule=alertname, limit=limit)

    def list_notifications(self, limit: int = DEFAULT_LIMIT, receiver: str | None = None) -> list[dict[str, Any]]:
        """The newest notifications first, delivered or not (at most MAX_LIMIT rows): see
        `alerts.notification_log`. Delivered ones are kept `delivery.delivered_retention`."""
        limit = max(1, min(MAX_LIMIT, int(limit)))
        return [notification_entry(i) for i in self.store.outbox_items(receiver=receiver, limit=limit)]

    def list_outbox(self, pending_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.store.outbox_items(pending_only=pending_only, limit=limit)]

    def list_rules(self) -> list[dict[str, Any]]:
        return [
            {"name": r.name, "kind": r.kind.value, "enabled": r.enabled, "severity": r.severity,
             "threshold": r.effective_threshold, "for": r.for_, "keep_firing_for": r.keep_firing_for,
             "matchers": list(r.matchers), "labels": dict(r.labels), "meaning": KIND_INFO[r.kind].meaning,
             "source": self.rules.origins.get(r.name), "last_error": self.last_rule_errors.get(r.name)}
            for r in self.rules.rules
        ]


__all__ = ["AlertingService", "SilenceError", "SilenceNotFound"]
