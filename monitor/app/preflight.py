"""What `streamscope run` needs before it starts, checked without starting anything.

`validate_for_run(config)` is the one validation both `streamscope check-config` and
`streamscope run` perform after `load_config` (which has checked every key, regex and number).
It does what starting would do first, but connects to and sends nothing (the one client it
creates has no brokers, lives in a child process and is dropped at once):

- there is something to monitor (a Kafka cluster or a Spark target);
- every secret reference resolves: `clusters[].client_secrets`, `web.auth_token`,
  `web.basic_auth_password` and the alert receivers' `*_env` / `*_file` (the report names each
  reference and where it comes from, never its value);
- each cluster's client properties (`client:` and the resolved `client_secrets:`) are ones
  librdkafka accepts, names, values and the TLS files they name (`collectors.kafka.client_check`:
  a client created without brokers, in a child process, and dropped);
- this machine can listen on `web.host` (a free port of it bound and closed at once; the port
  itself may be another instance's until that one stops);
- the Spark targets parse (`ui_urls`, `scan_host` + `scan_ports`, `master_url`,
  `history_server_url`) and `spark.progress_cluster` names a configured cluster;
- the alert rules load: the default rules and `alerting.rules_files`, their matchers' regexes
  and their templates compiled;
- the history database, and the alert store next to it, can be opened or created (a directory,
  an unwritable directory, a corrupt file or a newer schema is a problem).

Each problem is one line that names the key, and the file or variable at fault.

`validate_for_serve(config)` is what `streamscope serve` needs: Prometheus to read
(`history.backend: prometheus` with its URL) and the secrets the config names.
"""
from __future__ import annotations

from dataclasses import dataclass

from alerts.config import AlertingConfig
from alerts.errors import AlertConfigError
from alerts.rules import load_rules
from alerts.secrets import SecretError
from collectors.kafka.client_check import check_in_child
from monitor.app.alerting import alert_store_path
from monitor.app.config import Config
from monitor.app.secrets import SecretReference, secret_references
from monitor.settings import ConfigError
from monitor.storage import HistoryError, check_history_path, probe_database
from monitor.web.settings import listen_problem


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
    if not config.clusters and not config.spark.has_targets:
        problems.append("nothing to monitor: no clusters and no spark targets (give --bootstrap-servers or "
                        "a config with clusters, see docs/configuration.md)")
    secrets = tuple(secret_references(config))
    problems += _secret_problems(secrets)
    problem = listen_problem(config.web.host)
    if problem:
        problems.append(f"web.host: {problem}")
    problems += _kafka_client_problems(config)
    problems += _spark_problems(config)
    problems += _storage_problems(config, config.alerting)
    rules = 0
    if config.alerting is not None:
        try:
            rules = len(load_rules(config.alerting.rules_files,
                                   include_defaults=config.alerting.include_default_rules).rules)
        except AlertConfigError as exc:
            problems += [f"alerting.rules_files: {line}" for line in str(exc).splitlines()]
    return RunCheck(tuple(problems), secrets, rules)


def validate_for_serve(config: Config) -> RunCheck:
    """What `serve` needs (no clusters: it reads what a fleet exported to Prometheus)."""
    problems: list[str] = []
    if config.history.backend != "prometheus":
        problems.append("history.backend: serve reads Prometheus: set history.backend: prometheus and "
                        "history.prometheus.url (or give --prometheus-url)")
    secrets = tuple(secret_references(config))
    problems += _secret_problems(secrets)
    prom = config.history.prometheus
    for key, path in (("ca_file", prom and prom.ca_file), ("client_cert_file", prom and prom.client_cert_file),
                      ("client_key_file", prom and prom.client_key_file)):
        if path and not path.is_file():
            problems.append(f"history.prometheus.{key}: no such file: {path}")
    return RunCheck(tuple(problems), secrets, 0)


def _secret_problems(secrets: tuple[SecretReference, ...]) -> list[str]:
    """Every secret reference that does not resolve (unset variable, unreadable file)."""
    problems = []
    for ref in secrets:
        try:
            ref.resolve()
        except (ConfigError, SecretError) as exc:
            problems.append(str(exc))
    return problems


def _kafka_client_problems(config: Config) -> list[str]:
    """librdkafka's verdict on each cluster's client properties (those whose secrets resolve:
    the others are reported as such). A secret's value never appears in a problem."""
    checked: list[tuple[str, dict, tuple[str, ...]]] = []
    for i, cluster in enumerate(config.clusters):
        try:
            secrets = {key: ref.resolve(f"cluster {cluster.name}: client_secrets.{key}").get()
                       for key, ref in cluster.client_secrets.items()}
        except (ConfigError, SecretError):
            continue
        checked.append((f"clusters[{i}] ({cluster.name})", {**cluster.client, **secrets}, tuple(secrets.values())))
    if not checked:
        return []
    try:
        verdicts = check_in_child([conf for _, conf, _ in checked])
    except RuntimeError as exc:
        return [f"clusters: the client properties could not be checked: {exc}"]
    problems = []
    for (where, _, secret_values), verdict in zip(checked, verdicts):
        if verdict:
            for value in secret_values:
                verdict = verdict.replace(str(value), "***") if value else verdict
            problems.append(f"{where}.client: {verdict}")
    return problems


def _spark_problems(config: Config) -> list[str]:
    if not config.spark.enabled:  # no target and no progress topic: nothing to check, nor to import
        return []
    from monitor.collection.spark_source import build_targets, progress_cluster
    problems = []
    for check in (lambda: build_targets(config.spark), lambda: progress_cluster(config.spark, config.clusters)):
        try:
            check()
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _storage_problems(config: Config, alerting: AlertingConfig | None) -> list[str]:
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
