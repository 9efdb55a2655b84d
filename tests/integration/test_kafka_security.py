"""Secrets and security faults against a real broker with a SASL/PLAIN listener (users set by JAAS).

- `streamscope run -vv` (a real process, its Kafka collector child included) with the SASL password
  from an environment variable and a Slack receiver whose webhook URL comes from one too: neither
  the password nor the webhook path appears anywhere in its stdout or stderr, although kafka-python
  logs the SASL request and urllib3 the webhook request at DEBUG.
- a wrong SASL password is reported as an authentication failure (`/healthz`, the log and
  `streamscope_collector_last_error_info`), not as "Broker transport failure"; so is a TLS
  handshake that fails, and the batched group path (kafka-python) reports a refused login as one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.http_standin import RecordingReceiver
from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from collectors.kafka.group_requests import BatchedGroupRequests, kafka_python_config
from tests.helpers import free_port, wait_until
from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration

WORKTREE = Path(__file__).resolve().parents[2]
USER = "streamscope"
# A quote on purpose: kafka-python logs the SASL request as a bytes repr, which escapes it.
PASSWORD = "sasl-Pa'ss-7Qx9"
PASSWORD_ENV = "STREAMSCOPE_TEST_SASL_PASSWORD"
SLACK_PATH = "/services/T0SECRET/B0SECRET/hook-token-5f1e9a"
SLACK_ENV = "STREAMSCOPE_TEST_SLACK_URL"


@pytest.fixture(scope="module")
def sasl_broker():
    from demo.jars import PrerequisiteMissing
    from demo.kafka_box import KafkaBox
    from tests.conftest import missing_prerequisite

    box = KafkaBox(sasl_users={USER: PASSWORD, "admin": "admin-secret"})
    try:
        box.start()
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start a real Kafka broker: {error}")
    try:
        yield box
    finally:
        box.stop()


def sasl_client(password_env: str = PASSWORD_ENV) -> dict:
    return {"client": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": USER},
            "client_secrets": {"sasl.password": {"env": password_env}}}


class StreamscopeRun:
    """`streamscope run -vv --config <file>` as a process; stdout and stderr kept in files."""

    def __init__(self, tmp_path: Path, config: dict, env: dict[str, str]):
        self.port = free_port()
        config = {**config, "web": {"port": self.port},
                  "history": {"path": str(tmp_path / "history.db")}}
        config_path = tmp_path / "streamscope.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self.stdout_path, self.stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "-vv", "--config", str(config_path)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(WORKTREE), **env})
        self.url = f"http://127.0.0.1:{self.port}"

    def healthz(self) -> dict | None:
        assert self.process.poll() is None, f"streamscope exited:\n{self.output()[-3000:]}"
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).json()
        except requests.ConnectionError:
            return None

    def collector(self, name: str) -> dict | None:
        health = self.healthz()
        return next((c for c in health["collectors"] if c["name"] == name), None) if health else None

    def metrics(self) -> dict:
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return {f.name: f for f in text_string_to_metric_families(text)}

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def stop(self) -> str:
        """SIGTERM, wait (bounded), and return everything the process (and its child) wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.output()


def test_secrets_never_reach_the_log_at_debug(sasl_broker, unique_name, tmp_path):
    topic, group = unique_name("orders"), unique_name("billing")
    create_topic(sasl_broker.bootstrap, topic, 1)
    produce(sasl_broker.bootstrap, topic, per_partition=20, partitions=1)
    commit(sasl_broker.bootstrap, group, {(topic, 0): 5})  # lag 15: the rule below fires
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{
        "name": "BillingBehind", "kind": "consumer_lag_messages", "threshold": 1, "for": "0s",
        "matchers": [f'group="{group}"'], "severity": "warning", "summary": "{group} is behind"}]}))
    with RecordingReceiver(path=SLACK_PATH) as slack:
        config = {
            "clusters": [{"name": "secure", "bootstrap_servers": sasl_broker.sasl_bootstrap,
                          "request_timeout_seconds": 5, **sasl_client()}],
            "collection": {"interval_seconds": 1},
            "alerting": {
                "receivers": {"slack": [{"name": "team-slack", "url_env": SLACK_ENV, "max_per_second": 10}]},
                "route": {"receivers": ["team-slack"], "group_wait": "0s", "group_interval": "1s"},
                "include_default_rules": False, "rules_files": [str(rules)],
            },
        }
        run = StreamscopeRun(tmp_path, config, {PASSWORD_ENV: PASSWORD, SLACK_ENV: slack.url})
        try:
            wait_until(lambda: (run.collector("kafka:secure") or {}).get("cycles_total", 0) >= 3, 120,
                       "three collection cycles over SASL")
            assert run.collector("kafka:secure")["up"] is True
            assert slack.wait_for_text("[FIRING", start=0, timeout=60), "no Slack notification"
        finally:
            output = run.stop()
    assert slack.requests[0].path == SLACK_PATH  # the secrets were in use...
    for secret in (PASSWORD, SLACK_PATH, "hook-token-5f1e9a", slack.url, repr(PASSWORD.encode())[2:-1]):
        assert secret not in output, f"{secret!r} appears in the log"
    # ...and were logged at DEBUG, masked: the SASL request (collector child) and the webhook POST
    assert 'auth_bytes=b"streamscope\\x00streamscope\\x00***"' in output, output[-3000:]
    assert '"POST *** HTTP/1.1" 200' in output, output[-3000:]


def test_wrong_sasl_password_is_reported_as_an_authentication_failure(sasl_broker, tmp_path):
    config = {"clusters": [{"name": "secure", "bootstrap_servers": sasl_broker.sasl_bootstrap,
                            "request_timeout_seconds": 3, **sasl_client()}],
              "collection": {"interval_seconds": 1}}
    run = StreamscopeRun(tmp_path, config, {PASSWORD_ENV: "not-the-password"})
    try:
        collector = wait_until(lambda: (run.collector("kafka:secure") or {}).get("failures_total", 0) >= 1
                               and run.collector("kafka:secure"), 120, "a failed cycle")
        assert run.healthz()["status"] == "degraded"
        assert collector["up"] is False and collector.get("error_kind") == "authentication"
        assert collector["error"].startswith("authentication failed:"), collector["error"]
        assert "SASL authentication error" in collector["error"]
        info = run.metrics()["streamscope_collector_last_error_info"].samples
        assert [(s.labels["collector"], s.labels["error"], s.value) for s in info] == [
            ("kafka:secure", "authentication", 1.0)]
    finally:
        output = run.stop()
    assert "kafka cluster secure: collection failed: authentication failed:" in output
    assert "not-the-password" not in output


def test_tls_handshake_failure_is_reported_as_such(kafka_broker):
    # TLS spoken to a PLAINTEXT listener: the handshake fails, librdkafka says "transport failure"
    raw = KafkaCollector(KafkaCollectorSettings(
        cluster="tls", bootstrap_servers=kafka_broker.bootstrap, client_config={"security.protocol": "SSL"},
        request_timeout=3)).collect()
    assert not raw.ok and raw.error.startswith("TLS handshake failed:"), raw.error
    assert "SSL handshake failed" in raw.error and raw.error_kind == "tls"


def test_batched_group_requests_report_a_refused_login(kafka_broker):
    # SASL spoken to a PLAINTEXT listener: the broker refuses the SASL handshake and keeps the
    # connection, so kafka-python gets its answer on every attempt. (A wrong password is refused
    # too, but the broker closes the connection with its answer, and kafka-python often loses the
    # answer then: see collectors.kafka.group_requests._SecurityErrorCapture.)
    config = kafka_python_config({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                  "sasl.username": USER, "sasl.password": PASSWORD})
    batched = BatchedGroupRequests(kafka_broker.bootstrap, config, request_timeout=3.0,
                                   client_id="streamscope-kp-auth")
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the type and text are checked below
            batched.committed_offsets(["any-group"])
    finally:
        batched.close()
    assert type(caught.value).__name__ == "ClusterSecurityError" and caught.value.kind == "authentication"
    assert str(caught.value).startswith("authentication failed: IllegalSaslStateError"), caught.value
