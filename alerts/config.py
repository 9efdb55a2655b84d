"""Alerting configuration (the `alerting:` section of streamscope.yaml).

    alerting:
      evaluation_interval: 15s
      rules_files: [/etc/streamscope/rules.yaml]
      dashboard_url: http://streamscope.example:8050
      receivers:
        slack:   [{name: team-slack, url_env: SLACK_WEBHOOK_URL}]
        email:   [{name: oncall-mail, host: smtp.example.com, port: 587, tls: starttls,
                   username: alerts, password_file: /run/secrets/smtp, from: alerts@example.com,
                   to: [oncall@example.com]}]
        webhook: [{name: hook, url: http://127.0.0.1:9000/alerts}]
        alertmanager: [{name: am, url: http://alertmanager:9093}]
      route:
        receivers: [team-slack]
        group_by: [alertname, cluster]
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
        routes:
          - matchers: ['severity="critical"']
            receivers: [team-slack, oncall-mail]

Secrets (webhook URLs, passwords, tokens) are never values here: use `*_env` (environment variable
name) or `*_file` (path). `resolve_*` methods turn them into `alerts.secrets.Secret`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.urls import http_url_problem

from .bounds import DAY, HOUR, Duration, count, number, seconds
from .errors import AlertConfigError, format_validation_error, model_key_paths
from .matchers import Matcher, MatcherError
from .rules import COLLECTOR_KINDS, KAFKA_KINDS, RuleKind
from .secrets import Secret, SecretError, resolve_secret

# A receiver's timeout bounds how long one send may hold up that receiver's queue (receivers are
# served in parallel, so never another receiver's); "for ever" is not a timeout.
MAX_RECEIVER_TIMEOUT = 120.0
_NAME = r"^[A-Za-z0-9_.\-]+$"


def check_receiver_url(url: Secret, what: str) -> Secret:
    """A receiver URL read from a secret: SecretError (that never shows the value) if malformed."""
    problem = http_url_problem(url.get())
    if problem:
        raise SecretError(f"{what}: {problem}")
    return url


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_matchers(v: Any) -> Any:
    if isinstance(v, str):
        v = [v]
    for item in v or ():
        try:
            Matcher.parse(item)
        except MatcherError as exc:
            raise ValueError(str(exc)) from None
    return v


class _SecretSource(_Model):
    """Helpers for `<field>_env` / `<field>_file` pairs."""

    def _secret(self, field: str, *, required: bool, environ: Mapping[str, str] | None = None) -> Secret | None:
        env = getattr(self, f"{field}_env", None)
        path = getattr(self, f"{field}_file", None)
        plain = getattr(self, field, None) if field in type(self).model_fields else None
        what = f"receiver {getattr(self, 'name', '?')}: {field}"
        if plain:
            return Secret(plain)
        if not env and not path:
            if required:
                raise SecretError(f"{what}: set {field}_env or {field}_file")
            return None
        return resolve_secret(value_env=env, value_file=path, what=what, environ=dict(environ) if environ is not None else None)

    def secret_references(self) -> list[tuple[str, str | None, str | None]]:
        """(key, env, file) of each secret this receiver reads, e.g. ("url_env", "SLACK_URL", None):
        what `streamscope check-config` resolves and shows masked."""
        refs: list[tuple[str, str | None, str | None]] = []
        for env_key in (k for k in type(self).model_fields if k.endswith("_env")):
            base = env_key[: -len("_env")]
            env, path = getattr(self, env_key), getattr(self, f"{base}_file", None)
            if env:
                refs.append((env_key, env, None))
            elif path:
                refs.append((f"{base}_file", None, path))
        return refs


def _one_of(model: BaseModel, field: str, *, allow_plain: bool, required: bool) -> None:
    names = [f"{field}_env", f"{field}_file"] + ([field] if allow_plain else [])
    set_ = [n for n in names if getattr(model, n, None)]
    if len(set_) > 1:
        raise ValueError(f"set only one of {', '.join(names)} (got {', '.join(set_)})")
    if required and not set_:
        raise ValueError(f"one of {', '.join(names)} is required")


class SlackReceiver(_SecretSource):
    """Slack incoming webhook. The URL is a secret: only `url_env` or `url_file`."""

    name: str = Field(pattern=_NAME)
    url_env: str | None = None
    url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    send_resolved: bool = True
    max_alerts: int = count(10, ge=1, le=40)  # alerts listed per message
    max_per_second: float = number(1.0, gt=0, le=1000)  # Slack allows ~1 message/s per webhook
    burst: int = count(1, ge=1, le=1000)
    timeout: Duration = seconds(10.0, gt=0, le=MAX_RECEIVER_TIMEOUT)

    @model_validator(mode="after")
    def _check(self) -> "SlackReceiver":
        _one_of(self, "url", allow_plain=False, required=True)
        return self

    def resolve_url(self, environ: Mapping[str, str] | None = None) -> Secret:
        return check_receiver_url(self._secret("url", required=True, environ=environ),  # type: ignore[arg-type]
                                  f"receiver {self.name}: url")


def _check_plain_url(url: str | None) -> None:
    problem = http_url_problem(url) if url else None
    if problem:
        raise ValueError(f"url {url!r}: {problem}")


class EmailReceiver(_SecretSource):
    name: str = Field(pattern=_NAME)
    host: str = Field(min_length=1)
    port: int = count(587, ge=1, le=65535)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    auth_mechanism: Literal["auto", "plain", "login"] = "auto"
    from_: str = Field(alias="from", min_length=3)
    to: tuple[str, ...] = Field(min_length=1)
    ca_file: str | None = None  # extra CA bundle to trust (e.g. an internal relay's self-signed cert)
    verify: bool = True  # verify the server certificate and host name
    allow_insecure_auth: bool = False  # allow AUTH without TLS (tls: none)
    hello: str | None = None
    subject_prefix: str = "[streamscope]"
    send_resolved: bool = True
    max_alerts: int = count(50, ge=1, le=1000)
    max_per_second: float | None = number(None, gt=0, le=1000)
    burst: int = count(1, ge=1, le=1000)
    timeout: Duration = seconds(20.0, gt=0, le=MAX_RECEIVER_TIMEOUT)

    @field_validator("to", mode="before")
    @classmethod
    def _to_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> "EmailReceiver":
        _one_of(self, "password", allow_plain=False, required=False)
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("password_env/password_file given without username")
        if self.username and self.tls == "none" and not self.allow_insecure_auth:
            raise ValueError("username set with tls: none would send the password in clear text "
                             "(use tls: starttls or ssl, or set allow_insecure_auth: true)")
        if any(c.isspace() for c in self.host):
            raise ValueError(f"host: {self.host!r} contains a space")
        for key, address in (("from", self.from_), *(("to", a) for a in self.to)):
            if "@" not in parseaddr(address)[1]:
                raise ValueError(f"{key}: {address!r} is not an email address")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ValueError(f"ca_file: no such file: {self.ca_file}")
        return self

    def resolve_password(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        if not self.username:
            return None
        return self._secret("password", required=True, environ=environ)


class WebhookReceiver(_SecretSource):
    """Generic webhook receiving the Alertmanager webhook JSON payload (version 4)."""

    name: str = Field(pattern=_NAME)
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # non-secret extra headers
    send_resolved: bool = True
    max_alerts: int = count(0, ge=0, le=100_000)  # 0 = all; otherwise truncate and set truncatedAlerts
    max_per_second: float | None = number(None, gt=0, le=1000)
    burst: int = count(1, ge=1, le=1000)
    timeout: Duration = seconds(10.0, gt=0, le=MAX_RECEIVER_TIMEOUT)

    @model_validator(mode="after")
    def _check(self) -> "WebhookReceiver":
        _one_of(self, "url", allow_plain=True, required=True)
        _one_of(self, "bearer_token", allow_plain=False, required=False)
        _check_plain_url(self.url)
        return self

    def resolve_url(self, environ: Mapping[str, str] | None = None) -> Secret:
        return check_receiver_url(self._secret("url", required=True, environ=environ),  # type: ignore[arg-type]
                                  f"receiver {self.name}: url")

    def resolve_bearer_token(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        return self._secret("bearer_token", required=False, environ=environ)


class AlertmanagerReceiver(_SecretSource):
    """Forward alerts to an Alertmanager (POST /api/v2/alerts), like Prometheus does.

    Forwarding is not routed or grouped here: every firing and resolved alert is sent (Alertmanager
    groups, silences and inhibits itself), on change and again every `resend_interval`.
    """

    name: str = Field(pattern=_NAME)
    url: str | None = None  # base URL, e.g. http://alertmanager:9093
    url_env: str | None = None
    url_file: str | None = None
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password_env: str | None = None
    basic_auth_password_file: str | None = None
    resend_interval: Duration = seconds(60.0, gt=0, le=DAY)
    max_per_second: float | None = number(None, gt=0, le=1000)
    burst: int = count(1, ge=1, le=1000)
    timeout: Duration = seconds(10.0, gt=0, le=MAX_RECEIVER_TIMEOUT)

    @model_validator(mode="after")
    def _check(self) -> "AlertmanagerReceiver":
        _one_of(self, "url", allow_plain=True, required=True)
        _one_of(self, "bearer_token", allow_plain=False, required=False)
        _one_of(self, "basic_auth_password", allow_plain=False, required=False)
        if (self.basic_auth_password_env or self.basic_auth_password_file) and not self.basic_auth_username:
            raise ValueError("basic_auth_password_* given without basic_auth_username")
        _check_plain_url(self.url)
        return self

    def resolve_url(self, environ: Mapping[str, str] | None = None) -> Secret:
        return check_receiver_url(self._secret("url", required=True, environ=environ),  # type: ignore[arg-type]
                                  f"receiver {self.name}: url")

    def resolve_bearer_token(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        return self._secret("bearer_token", required=False, environ=environ)

    def resolve_basic_auth_password(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        if not self.basic_auth_username:
            return None
        return self._secret("basic_auth_password", required=False, environ=environ)


class Receivers(_Model):
    slack: tuple[SlackReceiver, ...] = ()
    email: tuple[EmailReceiver, ...] = ()
    webhook: tuple[WebhookReceiver, ...] = ()
    alertmanager: tuple[AlertmanagerReceiver, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> "Receivers":
        seen: dict[str, str] = {}
        for kind in ("slack", "email", "webhook", "alertmanager"):
            for r in getattr(self, kind):
                if r.name in seen:
                    raise ValueError(f"receiver name {r.name!r} used twice ({seen[r.name]} and {kind})")
                seen[r.name] = kind
        return self

    def all(self) -> list[tuple[str, Any]]:
        return [(kind, r) for kind, _, r in self.indexed()]

    def indexed(self) -> list[tuple[str, int, Any]]:
        """(kind, index in its list, receiver) of every receiver: `receivers.<kind>[<index>]`."""
        return [(kind, i, r) for kind in ("slack", "email", "webhook", "alertmanager")
                for i, r in enumerate(getattr(self, kind))]

    def routable_names(self) -> set[str]:
        return {r.name for kind, r in self.all() if kind != "alertmanager"}


class RouteConfig(_Model):
    """Alertmanager-style routing tree. Children inherit unset values from their parent."""

    receivers: tuple[str, ...] = ()
    matchers: tuple[str, ...] = ()
    group_by: tuple[str, ...] | None = None  # ["..."] groups by all labels
    group_wait: Duration | None = seconds(None, le=DAY)
    group_interval: Duration | None = seconds(None, gt=0, le=DAY)
    repeat_interval: Duration | None = seconds(None, gt=0)
    continue_: bool = Field(False, alias="continue")
    routes: tuple["RouteConfig", ...] = ()

    _check_m = field_validator("matchers", mode="before")(classmethod(lambda cls, v: _check_matchers(v)))

    @field_validator("receivers", "group_by", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class InhibitRule(_Model):
    """While an alert matching the source side fires, alerts matching the target side with equal
    values for `equal` labels are not notified. Sides match by matchers and/or rule kinds."""

    source_matchers: tuple[str, ...] = ()
    target_matchers: tuple[str, ...] = ()
    source_kinds: tuple[RuleKind, ...] = ()
    target_kinds: tuple[RuleKind, ...] = ()
    equal: tuple[str, ...] = ()

    _check_s = field_validator("source_matchers", mode="before")(classmethod(lambda cls, v: _check_matchers(v)))
    _check_t = field_validator("target_matchers", mode="before")(classmethod(lambda cls, v: _check_matchers(v)))

    @model_validator(mode="after")
    def _sides(self) -> "InhibitRule":
        if not (self.source_matchers or self.source_kinds):
            raise ValueError("inhibit rule needs source_matchers or source_kinds")
        if not (self.target_matchers or self.target_kinds):
            raise ValueError("inhibit rule needs target_matchers or target_kinds")
        return self


def default_inhibit_rules() -> tuple[InhibitRule, ...]:
    """A collector that is down (or whose cluster is unreachable) mutes that cluster's Kafka alerts."""
    return (
        InhibitRule(
            source_kinds=(RuleKind.COLLECTOR_DOWN, RuleKind.DATA_STALE),
            target_kinds=tuple(sorted(KAFKA_KINDS, key=lambda k: k.value)),
            equal=("cluster",),
        ),
    )


class DeliveryConfig(_Model):
    initial_backoff: Duration = seconds(1.0, gt=0, le=HOUR)
    max_backoff: Duration = seconds(300.0, gt=0, le=DAY)
    multiplier: float = number(2.0, ge=1.0, le=10.0)
    max_retry_after: Duration = seconds(3600.0, le=DAY)  # upper bound on a receiver's Retry-After
    max_per_round: int = count(20, ge=1, le=10_000)  # items per receiver per dispatch_once
    delivered_retention: Duration = seconds(7 * DAY)

    @model_validator(mode="after")
    def _order(self) -> "DeliveryConfig":
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        return self


class AlertingConfig(_Model):
    enabled: bool = True
    evaluation_interval: Duration = seconds(15.0, gt=0, le=HOUR)
    rules_files: tuple[str, ...] = ()
    include_default_rules: bool = True
    dashboard_url: str = "http://127.0.0.1:8050"
    external_url: str | None = None  # `externalURL` in webhook payloads; defaults to dashboard_url
    store_path: str | None = None  # SQLite file; None = the app decides (e.g. next to history)
    resolved_retention: Duration = seconds(900.0)  # keep resolved alerts listed this long
    history_retention: Duration = seconds(30 * DAY)
    receivers: Receivers = Receivers()
    route: RouteConfig = RouteConfig()
    inhibit_rules: tuple[InhibitRule, ...] = Field(default_factory=default_inhibit_rules)
    delivery: DeliveryConfig = DeliveryConfig()

    @field_validator("rules_files", mode="before")
    @classmethod
    def _files(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _refs(self) -> "AlertingConfig":
        known = self.receivers.routable_names()
        am = {r.name for r in self.receivers.alertmanager}

        def walk(route: RouteConfig, path: str) -> None:
            for i, name in enumerate(route.receivers):
                if name in am:
                    raise ValueError(f"{path}.receivers[{i}]: {name!r} is an alertmanager receiver; those get every "
                                     "alert and are not routed")
                if name not in known:
                    defined = ", ".join(sorted(known)) or "none defined"
                    raise ValueError(f"{path}.receivers[{i}]: unknown receiver {name!r} (defined: {defined})")
            for j, child in enumerate(route.routes):
                walk(child, f"{path}.routes[{j}]")

        walk(self.route, "route")
        return self

    @property
    def effective_external_url(self) -> str:
        return (self.external_url or self.dashboard_url).rstrip("/")


RouteConfig.model_rebuild()


def parse_alerting_config(data: Mapping[str, Any] | None, *, source: str = "<config>",
                          prefix: str = "alerting") -> AlertingConfig:
    """Validate a mapping; raises AlertConfigError('file: alerting.key: message')."""
    try:
        return AlertingConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise AlertConfigError(format_validation_error(exc, source=source, prefix=prefix,
                                                       known_keys=model_key_paths(AlertingConfig))) from None


def load_alerting_config(path: str | Path) -> AlertingConfig:
    """Load a YAML file holding either the section itself or a top-level `alerting:` key."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise AlertConfigError(f"{source}: invalid YAML: {exc}") from None
    if isinstance(data, Mapping) and "alerting" in data and len(data) == 1:
        data = data["alerting"]
    if data is not None and not isinstance(data, Mapping):
        raise AlertConfigError(f"{source}: alerting: expected a mapping")
    return parse_alerting_config(data, source=source)


COLLECTOR_SOURCE_KINDS = COLLECTOR_KINDS  # re-export for docs
