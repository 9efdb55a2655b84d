"""Config: strict, validated up front, one clear message naming the key."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import ConfigError, load_config


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
    ("clusters:\n  - name: a\n    bootstrap_servers: x:1\n    bogus: 1\n", "clusters.0.bogus", "unknown key"),
    ("web:\n  prot: 80\n", "web.prot", "unknown key"),
    ("collection:\n  interval_seconds: -1\n", "collection.interval_seconds", "greater than 0"),
    ("clusters:\n  - name: a\n", "clusters.0.bootstrap_servers", "Field required"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1', groups: {allow: ['(']}}\n", "clusters.0.groups.allow", "invalid regular expression"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1', client: {sasl.password: hunter2}}\n", "clusters.0.client", "secret"),
    ("clusters:\n  - {name: a, bootstrap_servers: 'x:1'}\n  - {name: a, bootstrap_servers: 'y:1'}\n", "", "duplicate cluster names: a"),
    ("nonsense: 1\n", "nonsense", "unknown key"),
    ("spark: {down_app_ttl_seconds: .nan}\n", "spark.down_app_ttl_seconds", "finite number"),
    ("spark: {down_app_ttl_seconds: .inf}\n", "spark.down_app_ttl_seconds", "finite number"),
    ("spark: {down_app_ttl_seconds: 0}\n", "spark.down_app_ttl_seconds", "greater than 0"),
    ("spark: {down_app_ttl_seconds: 1e9}\n", "spark.down_app_ttl_seconds", "less than or equal to 604800"),
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
    with pytest.raises(ConfigError, match="web.auth_token: Value error, give exactly one of"):
        load_config(write(tmp_path, text), environ={})


def test_secret_from_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    config = load_config(write(tmp_path, f"web:\n  auth_token: {{file: {secret}}}\n"), environ={})
    assert config.web.auth_token.resolve() == "s3cr3t"


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
