"""streamscope: alerts.

Rules -> engine (pending/firing/resolved, grouping, silences, inhibition) -> persisted outbox ->
notifiers (Slack, email, webhook, Alertmanager). Depends on `collectors`, never on `monitor`.
Entry point for the app: `alerts.service.AlertingService`; config: `alerts.config.AlertingConfig`.
"""
