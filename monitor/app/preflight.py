"""What `streamscope run` needs before it starts, checked without starting anything.

`validate_for_run(config)` is the one validation both `streamscope check-config` and
`streamscope run` perform after `load_config` (which has checked every key, regex and number).
It does what starting would do first, but creates, connects to and sends nothing:

- there is something to monitor (a Kafka cluster or a Spark target);
- every secret reference resolves: `clusters[].client_secrets`, `web.auth_token`,
  `web.basic_auth_password` and the alert receivers' `*_env` / `*_file` (the report names each
  reference and where it comes from, never its value);
- the Spark targets parse (`ui_urls`, `scan_host` + `scan_ports`, `master_url`,
  `history_server_url`) and `spark.progress_cluster` names a configured cluster;
- the alert rules load: the default rules and `alerting.rules_files`, their matchers' regexes
  and their templates compiled;
- the history database, and the alert store next to it, can be opened or created (a directory,
  an unwritable directory, a corrupt file or a newer schema is a problem).

Each problem is one line that names the key, and the file or variable at fault.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from alerts.config import AlertingConfig, parse_alerting_config
from alerts.errors import AlertConfigError
from alerts.rules import load_rules
from alerts.secrets import MASK, SecretError, resolve_secret
from monitor.app.config import Config, ConfigError
from monitor.storage import HistoryError, check_history_path, probe_database


@dataclass(frozen=True)
class SecretReference:
    key: str  # where the config names it, e.g. "web.auth_token"
    source: str  # "env NAME" or "file PATH"
    resolve: Callable[[], object]  # raises ConfigError/SecretError starting with `key`

    def masked(self) -> str:
        return f"{self.key}: {self.source} = {MASK}"


@dataclass(frozen=True)
class RunCheck:
    problems: tuple[str, ...]
    secrets: tuple[SecretReference, ...]  # every reference; the unresolvable ones are problems
    alert_rules: int  # rules loaded (0 when alerting is not configured)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_for_run(config: Config) -> RunCheck:
    """Everything `run` needs, as one-line problems naming the key (empty: it can start)."""
    problems: list[str] = []
    if not _has_something_to_monitor(config):
        problems.append("nothing to monitor: no clusters and no spark targets (give --bootstrap-servers or "
                        "a config with clusters, see docs/configuration.md)")
    alerting = parse_alerting_config(config.alerting, prefix="alerting") if config.alerting is not None else None
    secrets = tuple(_secret_references(config, alerting))
    for ref in secrets:
        try:
            ref.resolve()
        except (ConfigError, SecretError) as exc:
            problems.append(str(exc))
    problems += _spark_problems(config)
    problems += _storage_problems(config, alerting)
    rules = 0
    if alerting is not None:
        try:
            rules = len(load_rules(alerting.rules_files, include_defaults=alerting.include_default_rules).rules)
        except AlertConfigError as exc:
            problems += [f"alerting.rules_files: {line}" for line in str(exc).splitlines()]
    return RunCheck(tuple(problems), secrets, rules)


def _has_something_to_monitor(config: Config) -> bool:
    return bool(config.clusters) or config.spark.has_targets


def _secret_references(config: Config, alerting: AlertingConfig | None) -> Iterator[SecretReference]:
    named = [(f"clusters.{i}.client_secrets.{prop}", ref)
             for i, cluster in enumerate(config.clusters) for prop, ref in cluster.client_secrets.items()]
    named += [(f"web.{key}", ref) for key, ref in (("auth_token", config.web.auth_token),
                                                    ("basic_auth_password", config.web.basic_auth_password)) if ref]
    for key, ref in named:
        yield SecretReference(key, ref.describe(), lambda ref=ref, key=key: ref.resolve(what=key))
    if alerting is None:
        return
    for kind in ("slack", "email", "webhook", "alertmanager"):
        for i, receiver in enumerate(getattr(alerting.receivers, kind)):
            for field, env, path in receiver.secret_references():
                key = f"alerting.receivers.{kind}[{i}].{field}"
                yield SecretReference(key, f"env {env}" if env else f"file {path}",
                                      lambda env=env, path=path, key=key: resolve_secret(
                                          value_env=env, value_file=path, what=key))


def _spark_problems(config: Config) -> list[str]:
    from monitor.collection.spark_source import build_targets, progress_cluster

    problems = []
    for check in (build_targets, progress_cluster):
        try:
            check(config)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _storage_problems(config: Config, alerting: AlertingConfig | None) -> list[str]:
    from monitor.app.alerting import alert_store_path

    problems = []
    try:
        check_history_path(config.history.path)
    except HistoryError as exc:
        problems.append(f"history.path: {exc}")
    # The alert store lives beside the history unless store_path says otherwise: one fault, one line.
    if alerting is not None and (alerting.store_path or not problems):
        key = "alerting.store_path" if alerting.store_path else "history.path (alert store beside it)"
        try:
            probe_database(alerting.store_path or alert_store_path(config), what="alert store")
        except HistoryError as exc:
            problems.append(f"{key}: {exc}")
    return problems
