"""Every secret value the configuration names, resolved: what no log line may ever show."""
from __future__ import annotations

from monitor.app.config import Config, ConfigError, SecretRef


def secret_values(config: Config) -> tuple[str, ...]:
    """Values of every `*_env` / `*_file` reference: Kafka `client_secrets`, the web auth token
    and password, and every alert receiver's secrets. A reference that cannot be resolved is
    skipped: there is no value to mask, and starting up reports it with its key."""
    refs: list[SecretRef] = [ref for cluster in config.clusters for ref in cluster.client_secrets.values()]
    refs += [ref for ref in (config.web.auth_token, config.web.basic_auth_password) if ref is not None]
    values = []
    for ref in refs:
        try:
            values.append(ref.resolve())
        except ConfigError:
            continue
    return tuple(values) + _receiver_secrets(config)


def _receiver_secrets(config: Config) -> tuple[str, ...]:
    if config.alerting is None:
        return ()
    from alerts.config import parse_alerting_config
    from alerts.errors import AlertConfigError
    from alerts.secrets import SecretError

    try:
        alerting = parse_alerting_config(config.alerting, source="config", prefix="alerting")
    except AlertConfigError:
        return ()
    values: list[str] = []
    for _kind, receiver in alerting.receivers.all():
        try:
            values += [secret.get() for secret in receiver.resolve_secrets()]
        except SecretError:
            continue
    return tuple(values)
