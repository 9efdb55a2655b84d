"""`check-config` and `run` give the same verdict on every config (issue 16, item 4).

A table of bad configs goes through both commands: `streamscope check-config` (click's CliRunner)
and `streamscope run` (a real subprocess). Each must exit 2 with the same single line naming the
key, and `run` must start nothing: no history or alert store file, no server. A valid config
passes `check-config` with its secrets masked, and `run` then really starts.
"""
from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from click.testing import CliRunner

from alerts.rules import DEFAULT_RULES_PATH

from demo.kafka_box import free_port
from monitor.cli import cli
from tests.conftest import missing_prerequisite

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 90  # seconds; a run that passes validation by mistake blocks until this and fails
UNSET = "STREAMSCOPE_TEST_NEVER_SET"  # an environment variable no case sets


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def fill(value: Any, paths: dict[str, str]) -> Any:
    """Replace {tmp}/{ro} placeholders in every string of a config structure."""
    if isinstance(value, str):
        return value.format(**paths)
    if isinstance(value, dict):
        return {k: fill(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, paths) for v in value]
    return value


def write_corrupt(tmp: Path) -> None:
    (tmp / "corrupt.db").write_bytes(b"not a database, just bytes " * 200)


def write_newer_schema(tmp: Path) -> None:
    conn = sqlite3.connect(tmp / "newer.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()


def rule_file(name: str, text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_text(text)


@dataclass(frozen=True)
class Case:
    id: str
    config: dict  # merged onto BASE; strings may hold {tmp} (the test's directory) and {ro} (read-only dir)
    expect: tuple[str, ...]  # fragments the one error line must hold: the key, and the file or variable
    env: dict = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


ALERTING = {"alerting": {"route": {"receivers": []}}}
SLACK = {"slack": [{"name": "team", "url_env": UNSET}]}

CASES = [
    # -- the issue's 7 cases where check said OK and run crashed with a traceback ---------------
    Case("web-auth-token-env-unset", {"web": {"auth_token": {"env": UNSET}}}, ("web.auth_token", UNSET)),
    Case("slack-url-env-unset", {"alerting": {"receivers": SLACK}},
         ("alerting.receivers.slack[0].url_env", UNSET)),
    Case("rules-file-missing", {"alerting": {"rules_files": ["{tmp}/missing-rules.yaml"]}},
         ("alerting.rules_files", "missing-rules.yaml", "cannot read")),
    Case("rule-bad-regex", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}},
         ("alerting.rules_files", "rules.yaml", "rules[0] (Bad)", "invalid regex"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Bad, kind: consumer_lag_messages, matchers: ['group=~\"(\"']}\n")),
    Case("rule-bad-kind", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}},
         ("alerting.rules_files", "rules.yaml", "rules[0] (Bad)", "kind"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Bad, kind: no_such_kind}\n")),
    Case("rule-bad-template", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}},
         ("alerting.rules_files", "rules.yaml", "rules[0] (Bad)", "summary"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Bad, kind: consumer_lag_messages, summary: '{value.__class__}'}\n")),
    Case("history-path-is-a-directory", {"history": {"path": "{tmp}/histdir"}},
         ("history.path", "histdir", "directory"), setup=lambda tmp: (tmp / "histdir").mkdir()),
    # -- the issue's 2 cases where check passed and run exited 2 ----------------------------------
    Case("client-secrets-env-unset",
         {"clusters": [{"name": "a", "bootstrap_servers": "127.0.0.1:1", "client_secrets": {"sasl.password": {"env": UNSET}}}]},
         ("clusters[0].client_secrets.sasl.password", UNSET)),
    Case("scan-ports-reversed", {"spark": {"scan_host": "127.0.0.1", "scan_ports": "5000-4000"}},
         ("spark.scan_ports", "5000-4000")),
    # -- non-finite and absurd numbers, everywhere -------------------------------------------------
    Case("route-group-wait-inf", {"alerting": {"route": {"group_wait": math.inf}}}, ("alerting.route.group_wait", "finite")),
    Case("delivery-initial-backoff-nan", {"alerting": {"delivery": {"initial_backoff": math.nan}}},
         ("alerting.delivery.initial_backoff", "finite")),
    Case("delivery-multiplier-absurd", {"alerting": {"delivery": {"multiplier": 1e10}}}, ("alerting.delivery.multiplier",)),
    Case("evaluation-interval-absurd", {"alerting": {"evaluation_interval": "1000d"}}, ("alerting.evaluation_interval",)),
    Case("slack-timeout-inf", {"alerting": {"receivers": {"slack": [{"name": "s", "url_env": "HOME", "timeout": "inf"}]}}},
         ("alerting.receivers.slack[0].timeout", "finite")),
    Case("stale-after-inf", {"collection": {"stale_after_seconds": math.inf}}, ("collection.stale_after_seconds", "finite")),
    Case("rate-window-inf", {"collection": {"rate_window_seconds": math.inf}}, ("collection.rate_window_seconds", "finite")),
    Case("empty-group-ttl-absurd", {"collection": {"empty_group_ttl_seconds": 1e300}}, ("collection.empty_group_ttl_seconds",)),
    Case("history-retention-inf", {"history": {"retention_seconds": math.inf}}, ("history.retention_seconds", "finite")),
    Case("history-retention-absurd", {"history": {"retention_seconds": 1e12}}, ("history.retention_seconds",)),
    Case("kafka-request-timeout-nan",
         {"clusters": [{"name": "a", "bootstrap_servers": "127.0.0.1:1", "request_timeout_seconds": math.nan}]},
         ("clusters[0].request_timeout_seconds", "finite")),
    Case("interval-nan-from-env", {}, ("collection.interval_seconds", "finite"),
         env={"STREAMSCOPE_COLLECTION__INTERVAL_SECONDS": "nan"}),
    Case("rule-window-inf", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}}, ("rules.yaml", "rules[0] (Inf)", "window"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Inf, kind: topic_produce_stopped, window: .inf}\n")),
    Case("rule-threshold-nan", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}},
         ("rules.yaml", "rules[0] (Nan)", "threshold"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Nan, kind: consumer_lag_messages, threshold: .nan}\n")),
    Case("rule-for-absurd", {"alerting": {"rules_files": ["{tmp}/rules.yaml"]}}, ("rules.yaml", "rules[0] (Long)", "for"),
         setup=rule_file("rules.yaml", "rules:\n  - {name: Long, kind: consumer_lag_messages, for: 400d}\n")),
    # -- more secrets: files, empty values, receivers ---------------------------------------------
    Case("web-basic-password-file-missing",
         {"web": {"basic_auth_user": "admin", "basic_auth_password": {"file": "{tmp}/no-such-secret"}}},
         ("web.basic_auth_password", "no-such-secret")),
    Case("web-auth-token-env-empty", {"web": {"auth_token": {"env": "STREAMSCOPE_TEST_EMPTY"}}},
         ("web.auth_token", "STREAMSCOPE_TEST_EMPTY"), env={"STREAMSCOPE_TEST_EMPTY": ""}),
    Case("email-password-file-missing",
         {"alerting": {"receivers": {"email": [{"name": "m", "host": "smtp", "from": "a@b.c", "to": ["x@y.z"],
                                                "username": "u", "password_file": "{tmp}/no-smtp-pw"}]}}},
         ("alerting.receivers.email[0].password_file", "no-smtp-pw")),
    # -- more storage ------------------------------------------------------------------------------
    Case("history-corrupt-file", {"history": {"path": "{tmp}/corrupt.db"}}, ("history.path", "corrupt.db", "not a database"),
         setup=write_corrupt),
    Case("history-newer-schema", {"history": {"path": "{tmp}/newer.db"}}, ("history.path", "newer.db", "schema version 99"),
         setup=write_newer_schema),
    Case("history-under-a-regular-file", {"history": {"path": "{tmp}/afile/sub/h.db"}}, ("history.path", "afile", "not a directory"),
         setup=lambda tmp: (tmp / "afile").write_text("x")),
    Case("history-unwritable-directory", {"history": {"path": "{ro}/h.db"}}, ("history.path", "not writable")),
    Case("alert-store-unwritable-directory", {"alerting": {"store_path": "{ro}/alerts.db"}},
         ("alerting.store_path", "not writable")),
    # -- more Spark ----------------------------------------------------------------------------------
    Case("scan-ports-beyond-65535", {"spark": {"scan_host": "127.0.0.1", "scan_ports": "65500-65600"}}, ("spark.scan_ports",)),
    Case("progress-cluster-unknown", {"spark": {"progress_topic": "p", "progress_cluster": "nope"}}, ("spark.progress_cluster", "nope")),
    Case("nothing-to-monitor", {"clusters": []}, ("nothing to monitor",)),
]


@pytest.fixture(scope="module")
def readonly_dir(tmp_path_factory) -> Path:
    """A directory nobody can create files in: a read-only tmpfs as root (root ignores mode bits),
    else a directory without write permission."""
    path = tmp_path_factory.mktemp("readonly")
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        missing_prerequisite(f"cannot mount a read-only tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without STREAMSCOPE_* settings, plus the case's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOPE_")}
    env.pop(UNSET, None)
    env["PYTHONPATH"] = str(ROOT)  # the code of this checkout, not the installed one
    return {**env, **extra}


def run_streamscope(args: list[str], env: dict[str, str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """`python -m monitor.cli ARGS` in its own session, so every process it starts can be ended."""
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`streamscope {' '.join(args)}` was still running after {timeout} s, so it passed validation "
                    f"and started; stderr:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def base_config(tmp: Path) -> dict:
    return {
        "clusters": [{"name": "a", "bootstrap_servers": "127.0.0.1:1"}],
        "collection": {"isolate_process": False},
        "web": {"port": free_port()},
        "history": {"path": str(tmp / "history.db")},
    }


def write_config(tmp: Path, config: dict) -> Path:
    path = tmp / "streamscope.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def created_files(tmp: Path, before: set[Path]) -> set[Path]:
    return {p for p in tmp.rglob("*") if p not in before}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_config_and_run_give_the_same_verdict(case: Case, tmp_path: Path, request):
    paths = {"tmp": str(tmp_path), "ro": ""}
    if "{ro}" in repr(case.config):
        paths["ro"] = str(request.getfixturevalue("readonly_dir"))
    if case.setup is not None:
        case.setup(tmp_path)
    config = deep_merge(base_config(tmp_path), fill(case.config, paths))
    path = write_config(tmp_path, config)
    before = set(tmp_path.rglob("*"))
    env = clean_environ(case.env)

    checked = CliRunner().invoke(cli, ["check-config", "--config", str(path)],
                                 env={**{k: None for k in os.environ if k.startswith("STREAMSCOPE_")}, UNSET: None,
                                      **case.env})
    assert checked.exit_code == 2, f"check-config accepted it:\n{checked.output}"
    check_lines = checked.stderr.splitlines()
    assert len(check_lines) == 1, checked.stderr
    for fragment in case.expect:
        assert fragment in check_lines[0], f"{fragment!r} not in {check_lines[0]!r}"

    ran = run_streamscope(["run", "--config", str(path)], env)
    assert ran.returncode == 2, f"run exited {ran.returncode}:\n{ran.stderr[-3000:]}"
    assert ran.stderr.splitlines() == check_lines, "run and check-config disagree"
    assert ran.stdout == ""
    assert created_files(tmp_path, before) == set(), "run created files although it must not start"


def web_answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
    except urllib.error.HTTPError:  # 401: the token is required, but it is serving
        return True
    except OSError:
        return False
    return True


def test_valid_config_passes_with_secrets_masked_and_run_starts(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("file-token-SECRET-1\n")
    config = deep_merge(base_config(tmp_path), {
        "clusters": [{"name": "a", "bootstrap_servers": "127.0.0.1:1", "client": {"sasl.username": "u"},
                      "client_secrets": {"sasl.password": {"env": "SS_TEST_KAFKA_PW"}}}],
        "history": {"path": str(tmp_path / "not-yet" / "created" / "history.db")},
        "web": {"auth_token": {"file": str(token_file)}},
        "alerting": {"receivers": {"slack": [{"name": "team", "url_env": "SS_TEST_SLACK_URL"}]},
                     "route": {"receivers": ["team"], "group_wait": "30s"}},
    })
    path = write_config(tmp_path, config)
    secrets = {"SS_TEST_KAFKA_PW": "kafka-pw-SECRET-2", "SS_TEST_SLACK_URL": "https://hooks.slack.com/services/T/B/SECRET-3"}
    env = clean_environ(secrets)

    checked = run_streamscope(["check-config", "--config", str(path)], env)
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK: 1 Kafka cluster(s)" in checked.stdout
    default_rules = len(yaml.safe_load(DEFAULT_RULES_PATH.read_text())["rules"])
    assert f"alert rules: {default_rules} loaded" in checked.stdout
    for line in ("secret clusters[0].client_secrets.sasl.password: env SS_TEST_KAFKA_PW = ***",
                 f"secret web.auth_token: file {token_file} = ***",
                 "secret alerting.receivers.slack[0].url_env: env SS_TEST_SLACK_URL = ***"):
        assert line in checked.stdout.splitlines()
    assert "SECRET" not in checked.stdout + checked.stderr
    assert not (tmp_path / "not-yet").exists(), "check-config created the history directory"

    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(path)], env=env, cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not web_answers(config["web"]["port"]) and proc.poll() is None:  # then its SIGTERM handler is set
            assert time.monotonic() < deadline, "run did not start serving in time"
            time.sleep(0.2)
        assert proc.poll() is None, f"run exited {proc.returncode}: {proc.communicate()[1][-3000:]}"
        assert (tmp_path / "not-yet" / "created" / "history.db").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "streamscope serving on" in err
    assert "SECRET" not in err


def test_run_with_its_port_taken_is_one_line_exit_2(tmp_path: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, deep_merge(base_config(tmp_path), {"web": {"port": port}}))
        ran = run_streamscope(["run", "--config", str(path)], clean_environ({}))
    assert ran.returncode == 2, ran.stderr[-3000:]
    errors = [line for line in ran.stderr.splitlines() if line.startswith("streamscope:")]
    assert errors == [f"streamscope: cannot start: web.port: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize("host, reason", [("no-such-host.invalid", "the name does not resolve"),
                                          ("192.0.2.1", "Cannot assign requested address")])
def test_a_web_host_this_machine_cannot_listen_on_is_refused_by_check_config_and_run(tmp_path: Path, host, reason):
    """`run` used to end in waitress's traceback for a name that does not resolve, after its
    collector had started a cycle; check-config said OK to both."""
    path = write_config(tmp_path, deep_merge(base_config(tmp_path), {"web": {"host": host}}))
    for command in ("check-config", "run"):
        ran = run_streamscope([command, "--config", str(path)], clean_environ({}))
        assert ran.returncode == 2, ran.stderr[-3000:]
        errors = [line for line in ran.stderr.splitlines() if line.startswith("streamscope:")]
        assert len(errors) == 1 and errors[0].startswith(f"streamscope: web.host: cannot listen on {host}: {reason}"), errors
        assert "Traceback" not in ran.stderr and "[collector" not in ran.stderr
