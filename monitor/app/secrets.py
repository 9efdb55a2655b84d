"""Every secret the configuration names, found by one walk: what `check-config` resolves and lists
(masked), what a failing reference is reported as, and what no log line may ever show.

The references are `clusters[].client_secrets`, `web.auth_token`, `web.basic_auth_password`,
`history.prometheus.bearer_token` and `.basic_auth_password`, and the alert receivers' `*_env` /
`*_file` keys; each resolves to an `alerts.secrets.Secret`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from alerts.config import check_receiver_url
from alerts.secrets import MASK, Secret, SecretError, resolve_secret
from monitor.app.config import Config
from monitor.settings import ConfigError, describe_source


@dataclass(frozen=True)
class SecretReference:
    key: str  # where the config names it, e.g. "web.auth_token"
    source: str  # "env NAME" or "file PATH"
    resolve: Callable[[], Secret]  # raises ConfigError or SecretError starting with `key`

    def masked(self) -> str:
        return f"{self.key}: {self.source} = {MASK}"


def secret_references(config: Config) -> Iterator[SecretReference]:
    named = [(f"clusters[{i}].client_secrets.{prop}", ref)
             for i, cluster in enumerate(config.clusters) for prop, ref in cluster.client_secrets.items()]
    named += [(f"web.{key}", ref) for key, ref in (("auth_token", config.web.auth_token),
                                                    ("basic_auth_password", config.web.basic_auth_password)) if ref]
    prometheus = config.history.prometheus
    if prometheus is not None:
        named += [(f"history.prometheus.{key}", ref) for key, ref in (
            ("bearer_token", prometheus.bearer_token), ("basic_auth_password", prometheus.basic_auth_password)) if ref]
    for key, ref in named:
        yield SecretReference(key, ref.describe(), lambda ref=ref, key=key: ref.resolve(what=key))
    if config.alerting is None:
        return
    for kind, i, receiver in config.alerting.receivers.indexed():
        for field, env, path in receiver.secret_references():
            key = f"alerting.receivers.{kind}[{i}].{field}"
            # a receiver's URL read from a secret must be one it can be sent to, too
            check = check_receiver_url if field in ("url_env", "url_file") else _as_is
            yield SecretReference(key, describe_source(env, path),
                                  lambda env=env, path=path, key=key, check=check: check(resolve_secret(
                                      value_env=env, value_file=path, what=key), key))


def _as_is(secret: Secret, _what: str) -> Secret:
    return secret


def secret_values(config: Config) -> tuple[str, ...]:
    """The value of every reference that resolves. One that cannot be resolved is skipped: there
    is no value to mask, and starting up reports it with its key."""
    values = []
    for ref in secret_references(config):
        try:
            values.append(ref.resolve().get())
        except (ConfigError, SecretError):
            continue
    return tuple(values)
