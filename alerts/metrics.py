"""Alert-state metrics for /metrics, as fresh metric families (no global registry state).

| metric | type | labels | meaning |
|---|---|---|---|
| `streamscope_alerts` | gauge | alertname, state, severity | alerts per state (`pending`, `firing`, `resolved` = resolved and still listed); 0 series for every enabled rule's pending/firing |
| `streamscope_alerts_suppressed` | gauge | alertname, reason | firing alerts not notified because `silenced` or `inhibited` |
| `streamscope_alert_notifications_total` | counter | receiver, result | delivery attempts, `result` = `success` or `failure` (persisted across restarts) |
| `streamscope_alert_outbox_pending` | gauge | receiver | notifications waiting for delivery |
| `streamscope_alert_outbox_oldest_pending_age_seconds` | gauge | receiver | age of the oldest undelivered notification |
| `streamscope_alert_silences` | gauge | state | silences per state (`active`, `pending`, `expired`) |
| `streamscope_alert_rule_errors` | gauge | rule | 1 if the rule failed at its last evaluation |
| `streamscope_alert_last_evaluation_timestamp_seconds` | gauge | | end of the last evaluation |
| `streamscope_alert_evaluation_duration_seconds` | gauge | | duration of the last evaluation |
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


@dataclass(frozen=True)
class AlertMetricsState:
    at: float
    alerts: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (alertname, state, severity)
    suppressed: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (alertname, reason)
    notifications: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (receiver, result)
    outbox_pending: Mapping[str, int] = field(default_factory=dict)
    outbox_oldest_age: Mapping[str, float] = field(default_factory=dict)
    silences: Mapping[str, int] = field(default_factory=dict)
    rule_errors: Mapping[str, bool] = field(default_factory=dict)  # rule -> failed last time
    last_evaluation_at: float | None = None
    evaluation_duration: float | None = None


def alert_metric_families(state: AlertMetricsState) -> Iterable[Metric]:
    g = GaugeMetricFamily("streamscope_alerts", "Alerts of the built-in engine by state.",
                          labels=["alertname", "state", "severity"])
    for (name, st, sev), n in sorted(state.alerts.items()):
        g.add_metric([name, st, sev], n)
    yield g

    g = GaugeMetricFamily("streamscope_alerts_suppressed", "Firing alerts not notified, by reason.",
                          labels=["alertname", "reason"])
    for (name, reason), n in sorted(state.suppressed.items()):
        g.add_metric([name, reason], n)
    yield g

    c = CounterMetricFamily("streamscope_alert_notifications", "Notification delivery attempts by result.",
                            labels=["receiver", "result"])
    for (receiver, result), n in sorted(state.notifications.items()):
        c.add_metric([receiver, result], n)
    yield c

    g = GaugeMetricFamily("streamscope_alert_outbox_pending", "Notifications waiting in the outbox.",
                          labels=["receiver"])
    for receiver, n in sorted(state.outbox_pending.items()):
        g.add_metric([receiver], n)
    yield g

    g = GaugeMetricFamily("streamscope_alert_outbox_oldest_pending_age_seconds",
                          "Age of the oldest undelivered notification.", labels=["receiver"])
    for receiver, age in sorted(state.outbox_oldest_age.items()):
        g.add_metric([receiver], age)
    yield g

    g = GaugeMetricFamily("streamscope_alert_silences", "Silences by state.", labels=["state"])
    for st in ("active", "pending", "expired"):
        g.add_metric([st], state.silences.get(st, 0))
    yield g

    g = GaugeMetricFamily("streamscope_alert_rule_errors", "1 if the rule failed at its last evaluation.",
                          labels=["rule"])
    for rule, failed in sorted(state.rule_errors.items()):
        g.add_metric([rule], 1 if failed else 0)
    yield g

    if state.last_evaluation_at is not None:
        yield GaugeMetricFamily("streamscope_alert_last_evaluation_timestamp_seconds",
                                "End of the last alert evaluation (UNIX seconds).", value=state.last_evaluation_at)
    if state.evaluation_duration is not None:
        yield GaugeMetricFamily("streamscope_alert_evaluation_duration_seconds",
                                "Duration of the last alert evaluation.", value=state.evaluation_duration)
