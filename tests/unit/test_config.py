"""Config: strict, validated up front, one clear message naming the key."""
import math
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, TypeAdapter, ValidationError

from alerts.bounds import MAX_SECONDS, number, seconds
from alerts.config import AlertingConfig
from alerts.rules import RuleSpec
from monitor.cli import cli
from monitor.app.config import Config, load_config
from monitor.collection.settings import bootstrap_problem
from monitor.settings import ConfigError, SecretRef


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamscope.yaml"
    path.write_text(text)
    return path


def test_defaults_are_valid_and_safe():
    config = load_config(None, environ={})
    assert config.clusters == []
    assert config.web.host == "127.0.0.1"  # never exposed by default
    assert config.collection.interval_seconds == 15


def test_full_file_loads(tmp_path):
    path = write(tmp_path, """
clusters:
  - name: prod
    bootstrap_servers: kafka-1:9092,kafka-2:9092
    groups: {allow: ["orders-.*"], deny: ["orders-test"]}
    client: {security.protocol: SASL_SSL, sasl.mechanism: PLAIN, sasl.username: me}
    client_secrets: {sasl.password: {env: KAFKA_PASSWORD}}
collection: {interval_seconds: 5}
web: {port: 9000}
""")
    config = load_config(path, environ={})
    cluster = config.clusters[0]
    assert cluster.name == "prod"
    assert config.web.port == 9000
    groups = cluster.groups.compile()
    assert groups("orders-eu") and not groups("orders-test") and not groups("payments")
    assert groups("orders-new\nline")  # group ids may hold newlines; patterns still match them


@pytest.mark.parametrize("text, key, message", [
    ("clusters:\n  - name: a\n    bootstrap_servers: x:1\n    bogus: 1\n", "clusters[0].bogus", "unknown key 'bogus'"),
    ("web:\n  prot: 80\n", "web.prot", "unknown key"),
    ("collection:\n  interval_seconds: -1\n", "collection.interval_seconds", "greater than 0"),
    ("clusters:\n  - name: a\n", "clusters[0].bootstrap_servers", "required key is missing"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1', groups: {allow: ['(']}}\n", "clusters[0].groups.allow", "invalid regular expression"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1', client: {sasl.password: hunter2}}\n", "clusters[0].client", "secret"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1'}\n  - {name: a, bootstrap_servers: 'y:1'}\n", "", "duplicate cluster names: a"),
    ("nonsense: 1\n", "nonsense", "unknown key"),
    ("spark: {down_app_ttl_seconds: .nan}\n", "spark.down_app_ttl_seconds", "finite number"),
    ("spark: {down_app_ttl_seconds: .inf}\n", "spark.down_app_ttl_seconds", "finite number"),
    ("spark: {down_app_ttl_seconds: 0}\n", "spark.down_app_ttl_seconds", "greater than 0"),
    ("spark: {down_app_ttl_seconds: 1e9}\n", "spark.down_app_ttl_seconds", "less than or equal to 604800"),
    # the port range is checked by the rule the port scan applies, with or without a scan_host
    ("spark:\n  scan_ports: 4050-4040\n", "spark.scan_ports", "bad port range 4050-4040"),
    ("spark:\n  scan_ports: 0-10\n", "spark.scan_ports", "bad port range 0-10"),
    ("spark:\n  scan_ports: '65535-65536'\n", "spark.scan_ports", "bad port range"),
    ("spark:\n  scan_ports: 4000-5000\n", "spark.scan_ports", "too wide"),
    # receivers a send could never reach: refused when loaded, not at the first alert
    ("alerting:\n  receivers: {webhook: [{name: w, url: 'htp:/x'}]}\n", "alerting.receivers.webhook[0]",
     "url 'htp:/x': not an http(s) URL"),
    ("alerting:\n  receivers: {alertmanager: [{name: a, url: 'http://'}]}\n", "alerting.receivers.alertmanager[0]",
     "a URL without a host"),
    ("alerting:\n  receivers: {webhook: [{name: w, url: 'http://h:80x80/'}]}\n", "alerting.receivers.webhook[0]",
     "url 'http://h:80x80/': the port must be a number from 1 to 65535"),
    ("alerting:\n  receivers: {webhook: [{name: w, url: 'http://h o/'}]}\n", "alerting.receivers.webhook[0]",
     "url 'http://h o/': contains a space"),
    ("alerting:\n  receivers: {email: [{name: e, host: 'smtp host', from: a@b.c, to: [x@y.z]}]}\n",
     "alerting.receivers.email[0]", "host: 'smtp host' contains a space"),
    ("alerting:\n  receivers: {email: [{name: e, host: '', from: a@b.c, to: [x@y.z]}]}\n",
     "alerting.receivers.email[0].host", "at least 1 character"),
    ("alerting:\n  receivers: {email: [{name: e, host: smtp, from: a@b.c, to: [oncall]}]}\n",
     "alerting.receivers.email[0]", "to: 'oncall' is not an email address"),
    ("alerting:\n  receivers: {email: [{name: e, host: smtp, from: a@b.c, to: [x@y.z], ca_file: /no/ca.pem}]}\n",
     "alerting.receivers.email[0]", "ca_file: no such file: /no/ca.pem"),
])
def test_invalid_config_names_the_key(tmp_path, text, key, message):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    assert key in str(exc.value)
    assert message in str(exc.value)


def test_secret_values_never_appear_in_errors(tmp_path):
    text = "clusters:\n  - {name: a, bootstrap_servers: 'x:1', client: {sasl.password: hunter2}}\n"
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("clusters: [\n", "not valid YAML"),
    ("- just\n- a list\n", "top level must be a mapping"),
])
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_env_overrides_file_and_flags_override_env(tmp_path):
    path = write(tmp_path, "web: {port: 9000}\n")
    env = {"STREAMSCOPE_WEB__PORT": "9100", "STREAMSCOPE_COLLECTION__INTERVAL_SECONDS": "2.5"}
    config = load_config(path, environ=env)
    assert config.web.port == 9100 and config.collection.interval_seconds == 2.5
    config = load_config(path, environ=env, overrides={"web": {"port": 9200}})
    assert config.web.port == 9200


def test_down_app_ttl_defaults_to_15_minutes_and_can_be_set():
    assert load_config(None, environ={}).spark.down_app_ttl_seconds == 900
    env = {"STREAMSCOPE_SPARK__DOWN_APP_TTL_SECONDS": "120"}
    assert load_config(None, environ=env).spark.down_app_ttl_seconds == 120


def test_env_override_with_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="web.colour: unknown key"):
        load_config(None, environ={"STREAMSCOPE_WEB__COLOUR": "red"})


def test_bootstrap_env_defines_default_cluster():
    config = load_config(None, environ={"STREAMSCOPE_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert [(c.name, c.bootstrap_servers) for c in config.clusters] == [("default", "127.0.0.1:9092")]


def test_secret_ref_needs_exactly_one_source(tmp_path):
    text = "web:\n  auth_token: {env: A, file: /b}\n"
    with pytest.raises(ConfigError, match="web.auth_token: give exactly one of"):
        load_config(write(tmp_path, text), environ={})


def test_secret_from_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    config = load_config(write(tmp_path, f"web:\n  auth_token: {{file: {secret}}}\n"), environ={})
    assert config.web.auth_token.resolve().get() == "s3cr3t"


@pytest.mark.parametrize("key", ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
                                 "ssl.crl.location", "ssl.keystore.location", "sasl.kerberos.keytab"])
def test_a_client_file_that_is_not_there_fails_the_config_not_every_cycle(tmp_path, key):
    """librdkafka reads these when the client is created: a missing one failed every cycle
    ("Failed to create admin client") of a monitor that had started, and passed check-config."""
    missing = tmp_path / "nowhere" / "file.pem"
    text = f"clusters:\n  - {{name: a, bootstrap_servers: 'x:1', client: {{{key}: '{missing}'}}}}\n"
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    assert f"clusters[0].client: {key}: no such file or directory: {missing}" in str(exc.value)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(write(tmp_path, text))])
    assert result.exit_code == 2 and key in result.output
    present = tmp_path / "present.pem"
    present.write_text("-----BEGIN CERTIFICATE-----\n")
    load_config(write(tmp_path, text.replace(str(missing), str(present))), environ={})


def test_the_system_ca_store_is_a_valid_ca_location(tmp_path):
    text = "clusters:\n  - {name: a, bootstrap_servers: 'x:1', client: {ssl.ca.location: probe}}\n"
    assert load_config(write(tmp_path, text), environ={}).clusters[0].client == {"ssl.ca.location": "probe"}


def test_check_config_cli_exit_codes(tmp_path):
    runner = CliRunner()
    good = write(tmp_path, "clusters:\n  - {name: a, bootstrap_servers: 'x:1'}\n")
    result = runner.invoke(cli, ["check-config", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "configuration OK: 1 Kafka cluster" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("web: {prot: 1}\n")
    result = runner.invoke(cli, ["check-config", "--config", str(bad)])
    assert result.exit_code == 2
    assert "web.prot: unknown key" in result.output


def test_run_without_anything_to_monitor_exits_2(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMSCOPE_BOOTSTRAP_SERVERS", raising=False)
    result = CliRunner().invoke(cli, ["run", "--history", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    assert "nothing to monitor" in result.output


@pytest.mark.parametrize("servers", [
    "localhost", "localhost:9092", "b1:9092,b2:9092", " b1:9092 , b2:9093 ", "PLAINTEXT://b1:9092",
    "SASL_SSL://kafka.example.com:9093,SASL_SSL://kafka2.example.com:9093", "[::1]:9092", "[::1]", "::1",
    "10.0.0.1:1", "10.0.0.1:65535",
])
def test_bootstrap_lists_both_clients_read_are_accepted(servers):
    assert bootstrap_problem(servers) is None


@pytest.mark.parametrize("servers, problem", [
    ("127.0.0.1:90x92", "'127.0.0.1:90x92': the port must be a number from 1 to 65535"),
    ("b1:0", "the port must be a number"),
    ("b1:65536", "the port must be a number"),
    ("b1:", "the port must be a number"),
    ("b1:9092 b2:9092", "contains a space: brokers are separated by commas"),
    ("b1:9092,,b2:9092", "an empty entry (a stray comma?)"),
    ("b1:9092,", "an empty entry"),
    (":9092", "has no host"),
    ("PLAINTEXT://:9092", "has no host"),
    ("[::1", "an IPv6 address is written [address] or [address]:port"),
    ("[::1]9092", "an IPv6 address is written"),
    ("fe80::1:9092x", "an IPv6 address with a port is written [address]:port"),
])
def test_bootstrap_lists_no_client_can_read_are_refused(servers, problem):
    assert problem in bootstrap_problem(servers)


@pytest.mark.parametrize("section, line", [
    # passed check-config; run then failed every cycle: "ValueError: invalid literal for int()
    # with base 10: '90x92'", and "InvalidURL"
    ("clusters:\n  - {name: a, bootstrap_servers: '127.0.0.1:90x92'}\n",
     "clusters[0].bootstrap_servers: '127.0.0.1:90x92': the port must be a number"),
    ("spark: {ui_urls: ['http://localhost:40x40']}\n",
     "spark.ui_urls.0: 'http://localhost:40x40': the port must be a number"),
])
def test_an_address_run_would_fail_on_every_cycle_fails_check_config_and_run(tmp_path, section, line):
    path = write(tmp_path, section + f"history: {{path: '{tmp_path / 'h.db'}'}}\nweb: {{port: 0}}\n")
    for command in ("check-config", "run"):
        result = CliRunner().invoke(cli, [command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert line in result.output
    assert not (tmp_path / "h.db").exists()  # run refused it before creating anything


def test_a_bootstrap_list_from_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("STREAMSCOPE_BOOTSTRAP_SERVERS", "b1:9092 b2:9092")
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 2 and "contains a space" in result.output, result.output


# -- finite and bounded numbers: one rule for every numeric key (alerts/bounds.py) ---------------

def _leaves(annotation) -> list:
    """The types an annotation admits, through Annotated, Optional/unions and containers."""
    if get_origin(annotation) is Annotated:
        return _leaves(get_args(annotation)[0])
    args = get_args(annotation)
    return [leaf for arg in args for leaf in _leaves(arg)] if args else [annotation]


def _numeric_keys(model: type[BaseModel], prefix: str = "", seen: frozenset = frozenset()) -> list[tuple[str, TypeAdapter, type]]:
    """(key, validator of that key's value, int or float) for every numeric key in a model tree."""
    found = []
    for name, info in model.model_fields.items():
        leaves = _leaves(info.annotation)
        for leaf in leaves:
            if isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in seen | {model}:  # routes nest
                found += _numeric_keys(leaf, f"{prefix}{name}.", seen | {model})
        container = get_origin(info.annotation) in (dict, list, tuple)
        numbers = {leaf for leaf in leaves if leaf in (int, float)}
        if numbers and not container:  # `client` values are librdkafka's, which range-checks them itself
            constrained = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            found.append((f"{prefix}{name}", TypeAdapter(constrained), float if float in numbers else int))
    return found


NUMERIC_KEYS = [key for model in (Config, AlertingConfig, RuleSpec) for key in _numeric_keys(model, f"{model.__name__}.")]


def test_the_walk_finds_the_numeric_keys():
    keys = {key for key, _, _ in NUMERIC_KEYS}
    assert {"Config.collection.stale_after_seconds", "AlertingConfig.route.group_wait",
            "AlertingConfig.delivery.initial_backoff", "RuleSpec.threshold", "RuleSpec.window"} <= keys
    assert len(keys) > 40


@pytest.mark.parametrize("key, adapter, kind", NUMERIC_KEYS, ids=[key for key, _, _ in NUMERIC_KEYS])
def test_every_numeric_key_is_finite_and_bounded(key, adapter, kind):
    absurd = [math.inf, -math.inf, math.nan, 1e300, -1e300, "inf", "nan"] if kind is float else [10**15, -10**15]
    for value in absurd:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
            pytest.fail(f"{key} accepts {value!r}")


def test_caps_cannot_be_raised_past_the_shared_ones():
    with pytest.raises(ValueError, match="MAX_SECONDS"):
        seconds(1.0, le=MAX_SECONDS * 2)
    with pytest.raises(ValueError, match="MAX_MAGNITUDE"):
        number(1.0, le=1e300)


@pytest.mark.parametrize("text, line", [
    ("alerting:\n  route: {group_wait: .inf}\n", "alerting.route.group_wait: duration must be a finite number of seconds, got inf"),
    ("alerting:\n  delivery: {initial_backoff: .nan}\n", "alerting.delivery.initial_backoff: duration must be a finite number of seconds, got nan"),
    ("alerting:\n  route: {repeat_interval: 400d}\n", "alerting.route.repeat_interval: Input should be less than or equal to 31622400"),
    ("collection: {stale_after_seconds: .inf}\n", "collection.stale_after_seconds: Input should be a finite number"),
    ("history: {retention_seconds: 1e12}\n", "history.retention_seconds: Input should be less than or equal to 31622400"),
])
def test_non_finite_and_absurd_values_are_one_line_naming_the_key(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ={})
    assert str(exc.value) == f"invalid configuration ({path}): {line}"


def test_every_error_is_its_own_line_naming_file_and_key(tmp_path):
    path = write(tmp_path, "web: {prot: 1}\ncollection: {interval_seconds: .nan}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ={})
    assert str(exc.value).splitlines() == [
        f"invalid configuration ({path}): collection.interval_seconds: Input should be a finite number",
        f"invalid configuration ({path}): web.prot: unknown key 'prot' (did you mean 'port'?)",
    ]
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "web: {port: [\n"), environ={})
    assert len(str(exc.value).splitlines()) == 1 and "not valid YAML" in str(exc.value)


def test_secret_ref_names_its_key_and_refuses_an_empty_value(monkeypatch):
    monkeypatch.setenv("SS_TEST_EMPTY_SECRET", "  ")
    with pytest.raises(ConfigError, match="^web.auth_token: environment variable SS_TEST_EMPTY_SECRET is not set or empty$"):
        SecretRef(env="SS_TEST_EMPTY_SECRET").resolve(what="web.auth_token")
    monkeypatch.setenv("SS_TEST_EMPTY_SECRET", "s3cr3t\n")
    assert SecretRef(env="SS_TEST_EMPTY_SECRET").resolve().get() == "s3cr3t"
    assert str(SecretRef(env="SS_TEST_EMPTY_SECRET").resolve()) == "***"  # masked wherever it is printed
    assert SecretRef(env="SS_TEST_EMPTY_SECRET").describe() == "env SS_TEST_EMPTY_SECRET"


# -- the fleet section (issue 13) ------------------------------------------------------------------

FLEET_CLUSTERS = "clusters:\n  - {name: a, bootstrap_servers: 'x:1'}\n  - {name: b, bootstrap_servers: 'y:1'}\n"


def test_fleet_settings_without_a_name_are_refused(tmp_path):
    """Fleet settings with no name would run one process monitoring (and paging) everything."""
    path = write(tmp_path, FLEET_CLUSTERS + "fleet: {partitions: 12, cluster: b}\n")
    with pytest.raises(ConfigError, match=r"fleet: cluster, partitions set but no fleet.name"):
        load_config(path, environ={})
    config = load_config(path, overrides={"fleet": {"name": "team1"}}, environ={})  # as `run --fleet team1`
    assert config.fleet.enabled and config.fleet_cluster.name == "b"
    assert not load_config(write(tmp_path, FLEET_CLUSTERS + "fleet: {}\n"), environ={}).fleet.enabled
    default = load_config(write(tmp_path, FLEET_CLUSTERS), environ={})
    assert not Config.model_validate(default.model_dump()).fleet.enabled  # a dump sets every key: still valid


def test_check_config_checks_and_describes_the_fleet(tmp_path):
    path = write(tmp_path, FLEET_CLUSTERS + "fleet: {partitions: 12, cluster: b, session_timeout_seconds: 3}\n")
    runner = CliRunner()
    refused = runner.invoke(cli, ["check-config", "--config", str(path)])
    assert refused.exit_code == 2 and "no fleet.name" in refused.output
    checked = runner.invoke(cli, ["check-config", "--config", str(path), "--fleet", "team1"])
    assert checked.exit_code == 0, checked.output
    assert "fleet team1: coordination topic streamscope-fleet-team1 (12 partitions) on cluster b" in checked.output
    assert "note: fleet.session_timeout_seconds: 3 s is outside what brokers accept by default" in checked.output
    bad = runner.invoke(cli, ["check-config", "--config", str(path), "--fleet", "a b"])
    assert bad.exit_code == 2 and "fleet.name" in bad.output
    unknown = write(tmp_path, FLEET_CLUSTERS + "fleet: {name: t, whole_clusters: [c]}\n")
    result = runner.invoke(cli, ["check-config", "--config", str(unknown)])
    assert result.exit_code == 2 and "fleet.whole_clusters: no cluster named c" in result.output


def test_librdkafka_judges_the_client_properties_it_would_refuse_at_every_cycle():
    """The properties are librdkafka's: it alone knows their names and values (and loads the
    files they name), when a client is created. Checked without brokers: nothing connects."""
    from collectors.kafka.client_check import client_problems

    verdicts = client_problems([
        {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"},
        {"security.protocol": "SSLX"},
        {"fetch.wait.max.mz": 5},
        {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"},
        {"fetch.wait.max.ms": 5},  # a consumer's property: a warning on an admin client, not an error
    ])
    assert verdicts[0] is None and verdicts[4] is None
    assert verdicts[1] == 'Invalid value "SSLX" for configuration property "security.protocol"'
    assert verdicts[2] == 'No such configuration property: "fetch.wait.max.mz"'
    assert "sasl.username and sasl.password must be set" in verdicts[3]


def test_check_config_and_run_refuse_client_properties_librdkafka_refuses(tmp_path, monkeypatch):
    """Each problem names the cluster; a secret's value never shows, even where librdkafka
    quotes it back."""
    monkeypatch.setenv("PROTOCOL_SECRET", "hunter2")
    path = write(tmp_path, "clusters:\n"
                           "  - {name: good, bootstrap_servers: 'x:1', client: {security.protocol: SSL}}\n"
                           "  - {name: typo, bootstrap_servers: 'x:1', client: {secuirty.protocol: SSL}}\n"
                           "  - {name: hidden, bootstrap_servers: 'x:1', client_secrets: {security.protocol: {env: PROTOCOL_SECRET}}}\n"
                           f"history: {{path: '{tmp_path / 'h.db'}'}}\n")
    runner = CliRunner()
    for command in (["check-config"], ["run"]):
        result = runner.invoke(cli, [*command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert 'clusters[1] (typo).client: No such configuration property: "secuirty.protocol"' in result.output
        assert 'clusters[2] (hidden).client: Invalid value "***" for configuration property "security.protocol"' \
            in result.output
        assert "clusters[0]" not in result.output and "hunter2" not in result.output


def test_a_receiver_url_from_a_secret_must_be_a_url_and_is_never_shown(tmp_path, monkeypatch):
    path = write(tmp_path, "clusters:\n  - {name: a, bootstrap_servers: 'x:1'}\n"
                           f"history: {{path: '{tmp_path / 'h.db'}'}}\n"
                           "alerting:\n  receivers: {slack: [{name: s, url_env: SLACK_URL}]}\n"
                           "  route: {receivers: [s]}\n")
    runner = CliRunner()
    monkeypatch.setenv("SLACK_URL", "hooks.slack.com/services/T000/B000/XXXSECRET")
    for command in (["check-config"], ["run"]):
        result = runner.invoke(cli, [*command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert "alerting.receivers.slack[0].url_env: not an http(s) URL" in result.output
        assert "XXXSECRET" not in result.output
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/T000/B000/XXXSECRET")
    result = runner.invoke(cli, ["check-config", "--config", str(path)])
    assert result.exit_code == 0 and "XXXSECRET" not in result.output, result.output


def test_check_config_notes_log_directories_that_the_librdkafka_client_cannot_collect(tmp_path):
    """log_dirs_every asks for DescribeLogDirs, which only the batched client sends: with
    batched_group_requests false nothing would say the log directories are never collected."""
    runner = CliRunner()
    plain = write(tmp_path, "clusters:\n  - {name: a, bootstrap_servers: 'x:1', batched_group_requests: false}\n")
    checked = runner.invoke(cli, ["check-config", "--config", str(plain)])
    assert checked.exit_code == 0, checked.output
    assert ("note: clusters[a]: log_dirs_every is 20 but batched_group_requests is false: log directories "
            "(disk use, free space, the size-based retention headroom) are not collected") in checked.output
    for fine in ("batched_group_requests: false, log_dirs_every: 0", "batched_group_requests: true"):
        path = write(tmp_path, f"clusters:\n  - {{name: a, bootstrap_servers: 'x:1', {fine}}}\n")
        checked = runner.invoke(cli, ["check-config", "--config", str(path)])
        assert checked.exit_code == 0 and "note:" not in checked.output, (fine, checked.output)
