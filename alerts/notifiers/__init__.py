"""Notifiers only send. Policy (grouping, retries, rate limits) lives in the engine/dispatcher."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import DeliveryResult, Notifier


def build_notifiers(config: Any, environ: Mapping[str, str] | None = None) -> dict[str, Notifier]:
    """One notifier per configured receiver. Resolves secrets now (raises SecretError if missing)."""
    from .alertmanager import AlertmanagerNotifier
    from .email import EmailNotifier
    from .slack import SlackNotifier
    from .webhook import WebhookNotifier

    out: dict[str, Notifier] = {}
    r = config.receivers
    for c in r.slack:
        out[c.name] = SlackNotifier(c, c.resolve_url(environ))
    for c in r.email:
        out[c.name] = EmailNotifier(c, c.resolve_password(environ))
    for c in r.webhook:
        out[c.name] = WebhookNotifier(c, c.resolve_url(environ), c.resolve_bearer_token(environ),
                                      external_url=config.effective_external_url)
    for c in r.alertmanager:
        out[c.name] = AlertmanagerNotifier(c, c.resolve_url(environ), c.resolve_bearer_token(environ),
                                           c.resolve_basic_auth_password(environ))
    return out


__all__ = ["DeliveryResult", "Notifier", "build_notifiers"]
