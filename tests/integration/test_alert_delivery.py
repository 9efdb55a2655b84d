"""Alert delivery against real servers on 127.0.0.1: SMTP (aiosmtpd, STARTTLS/implicit TLS + AUTH),
an HTTP receiver playing Slack (429 -> 500 -> 200), a generic webhook, a real Alertmanager, and
promtool over the shipped Prometheus rules.

Missing tools (aiosmtpd, cryptography, prometheus-alertmanager, promtool): the test fails when
the CI environment variable is set and is skipped (with the reason) otherwise.
Every wait is a poll with a deadline.
"""
from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import free_port, wait_until
import requests

from tests import snapshot_builders as T
from alerts.config import parse_alerting_config
from tests.http_standin import RecordingReceiver
from alerts.rules import rules_from_dicts
from alerts.service import AlertingService

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "alerts" / "prometheus"


def require(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


# ------------------------------------------------------------------------------ pipeline fixture


class World:
    def __init__(self) -> None:
        self.lag = 50_000
        self.offset = 0.0  # shifts the service clock to skip group timers without sleeping

    def now(self) -> float:
        return time.time() + self.offset

    def inputs(self):
        now = self.now()
        g = T.group_lag("prod", "orders", {("orders", 0): self.lag}, at=now)
        return T.inputs(T.snapshot(now, [T.cluster_state("prod", groups=[g], at=now)],
                                   [T.health("kafka:prod", last_success_at=now)]))


RULES = [{"name": "StreamscopeConsumerLagHigh", "kind": "consumer_lag_messages", "threshold": 1000,
          "summary": "Group {group} <lagging> & {value_human} behind", "description": "see {dashboard_url}"}]


def make_service(tmp_path, receivers: dict, env: dict, route_receivers: list[str], world: World,
                 db: str = "alerts.db", delivery: dict | None = None) -> AlertingService:
    cfg = parse_alerting_config({
        "dashboard_url": "http://127.0.0.1:8050",
        "receivers": receivers,
        "route": {"receivers": route_receivers, "group_wait": "0s", "group_interval": "1m", "repeat_interval": "1h"},
        "delivery": delivery or {"initial_backoff": "200ms", "max_backoff": "1s"},
    })
    return AlertingService(cfg, tmp_path / db, world.inputs, clock=world.now, rules=rules_from_dicts(RULES),
                           environ=env)


def drain(svc: AlertingService, done, timeout: float = 20.0, what: str = "delivery"):
    def step():
        svc.dispatch_once()
        return done()
    return wait_until(step, timeout, what)


# ------------------------------------------------------------------------------ HTTP receiver


@pytest.fixture
def http_receiver():
    made = []

    def make(script=(), port=None):
        r = RecordingReceiver(script, port=port or 0)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ------------------------------------------------------------------------------ Slack


def test_slack_429_then_500_then_200_is_delivered_exactly_once(tmp_path, http_receiver):
    slack = http_receiver([(429, {"Retry-After": "1"}), (500, {}), (200, {})])
    world = World()
    env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/T000/B000/SECRETTOKEN"}
    svc = make_service(tmp_path, {"slack": [{"name": "team-slack", "url_env": "SLACK_WEBHOOK_URL"}]}, env,
                       ["team-slack"], world)
    res = svc.evaluate_once()
    assert [n.receiver for n in res.notifications] == ["team-slack"]
    t0 = time.monotonic()
    drain(svc, lambda: not svc.list_outbox(pending_only=True), what="slack delivery")
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.9, "Retry-After: 1 must be honoured"
    assert [r.status for r in slack.requests] == [429, 500, 200]
    keys = set()
    for r in slack.requests:
        body = r.json()
        key = r.headers["Idempotency-Key"]
        keys.add(key)
        assert f"id `{key}`" in json.dumps(body["attachments"][0]["blocks"])  # visible in the message too
        assert r.path == "/services/T000/B000/SECRETTOKEN"
        att = body["attachments"][0]
        assert att["color"] == "#E01E5A" and att["blocks"][0]["type"] == "header"
        assert "&lt;lagging&gt; &amp;" in json.dumps(att["blocks"])
    assert len(keys) == 1
    # nothing more is sent: delivered exactly once
    for _ in range(3):
        svc.dispatch_once()
        svc.evaluate_once()
    assert sum(1 for r in slack.requests if r.status == 200) == 1 and len(slack.requests) == 3
    outbox = svc.list_outbox(pending_only=False)
    assert outbox[0]["attempts"] == 3 and outbox[0]["delivered_at"] is not None
    assert "SECRETTOKEN" not in json.dumps(outbox)
    svc.close()


# ------------------------------------------------------------------------------ webhook


def test_generic_webhook_gets_alertmanager_payload(tmp_path, http_receiver):
    hook = http_receiver()
    world = World()
    env = {"HOOK_TOKEN": "s3cr3t-token"}
    svc = make_service(tmp_path, {"webhook": [{"name": "hook", "url": f"{hook.url}/alerts",
                                               "bearer_token_env": "HOOK_TOKEN"}]}, env, ["hook"], world)
    svc.evaluate_once()
    drain(svc, lambda: len(hook.requests) == 1, what="webhook firing")
    world.lag = 0
    svc.evaluate_once()  # resolved, reported at the next group_interval tick (1m): force it
    groups = svc.list_groups()
    assert groups and groups[0]["alerts"][0]["state"] == "resolved"
    world.offset = 61.0  # the group's next tick (group_interval 1m)
    svc.evaluate_once()
    drain(svc, lambda: len(hook.requests) == 2, what="webhook resolved")

    firing, resolved = (r.json() for r in hook.requests)
    for body in (firing, resolved):
        assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                             "commonLabels", "commonAnnotations", "externalURL", "alerts"}
        assert body["version"] == "4" and body["receiver"] == "hook"
        assert body["groupLabels"] == {"alertname": "StreamscopeConsumerLagHigh", "cluster": "prod"}
        assert body["externalURL"] == "http://127.0.0.1:8050"
        (a,) = body["alerts"]
        assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert a["labels"] == {"alertname": "StreamscopeConsumerLagHigh", "severity": "warning", "cluster": "prod",
                               "group": "orders", "topic": "orders"}
        assert a["generatorURL"] == "http://127.0.0.1:8050/groups?cluster=prod&group=orders"
        dt.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
    assert firing["status"] == "firing" and firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert firing["groupKey"] == resolved["groupKey"]
    for r in hook.requests:
        assert r.headers["Authorization"] == "Bearer s3cr3t-token"
        assert r.headers["Content-Type"] == "application/json"
    assert hook.requests[0].headers["Idempotency-Key"] != hook.requests[1].headers["Idempotency-Key"]
    svc.close()


def test_restart_while_receiver_down_delivers_once_when_it_returns(tmp_path, http_receiver):
    port = free_port()  # nothing listens here yet: the receiver is down
    world = World()
    receivers = {"webhook": [{"name": "hook", "url": f"http://127.0.0.1:{port}/alerts"}]}
    svc = make_service(tmp_path, receivers, {}, ["hook"], world)
    svc.evaluate_once()
    svc.dispatch_once()
    (item,) = svc.list_outbox()
    assert item["attempts"] == 1 and item["last_error"] and item["delivered_at"] is None
    svc.close()  # the process stops while the receiver is still down

    hook = http_receiver(port=port)  # receiver comes back
    svc2 = make_service(tmp_path, receivers, {}, ["hook"], world)  # restarted process, same store
    res = svc2.evaluate_once()
    assert res.transitions == () and res.notifications == ()  # state restored, nothing re-queued
    drain(svc2, lambda: not svc2.list_outbox(pending_only=True), what="delivery after restart")
    for _ in range(3):
        svc2.evaluate_once()
        svc2.dispatch_once()
    assert len(hook.requests) == 1
    assert hook.requests[0].json()["alerts"][0]["labels"]["group"] == "orders"
    svc2.close()


def test_background_threads_evaluate_and_deliver(tmp_path, http_receiver):
    hook = http_receiver()
    world = World()
    cfg = parse_alerting_config({
        "evaluation_interval": "200ms",
        "receivers": {"webhook": [{"name": "hook", "url": f"{hook.url}/alerts"}]},
        "route": {"receivers": ["hook"], "group_wait": "0s"},
    })
    svc = AlertingService(cfg, tmp_path / "bg.db", world.inputs, clock=world.now, rules=rules_from_dicts(RULES))
    svc.start()
    try:
        wait_until(lambda: len(hook.requests) == 1, 15, "background delivery")
    finally:
        t0 = time.monotonic()
        svc.stop()
        assert time.monotonic() - t0 < 10
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("streamscope-alerts"))
    svc.close()


# ------------------------------------------------------------------------------ receivers in parallel

HOOK_TIMEOUT = 6.0  # the hanging webhook's timeout
SLACK_BOUND = 2.5  # Slack's first attempt and its retry (200 ms backoff) must both arrive within this


def test_hanging_webhook_never_delays_slack_and_is_delivered_once_it_answers(tmp_path, http_receiver):
    hook = http_receiver()
    hook.hang()  # accepts the request, never answers (until released)
    slack = http_receiver([(500, {})])  # Slack's first attempt fails: its retry is due 200 ms later
    world = World()
    env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/T000/B000/SECRETTOKEN"}
    receivers = {"slack": [{"name": "team-slack", "url_env": "SLACK_WEBHOOK_URL"}],
                 "webhook": [{"name": "hook", "url": f"{hook.url}/alerts", "timeout": f"{HOOK_TIMEOUT}s"}]}
    svc = make_service(tmp_path, receivers, env, ["hook", "team-slack"], world)
    svc.start(evaluate=False)  # the delivery workers, as `streamscope run` runs them
    try:
        started = time.time()
        res = svc.evaluate_once()
        assert sorted(n.receiver for n in res.notifications) == ["hook", "team-slack"]

        hit = slack.wait_for_text("[FIRING", start=1, timeout=3 * HOOK_TIMEOUT)
        assert hit is not None, "the Slack retry never came"
        assert [r.status for r in slack.requests] == [500, 200]
        assert hit[1].at - started < SLACK_BOUND, f"Slack retry came {hit[1].at - started:.1f}s after firing"
        first_hook = hook.wait_for_text("", start=0, timeout=5)
        assert first_hook is not None and hit[1].at < first_hook[1].at + HOOK_TIMEOUT  # while the hook hung

        def hook_timed_out():
            (item,) = [i for i in svc.list_outbox(pending_only=False) if i["receiver"] == "hook"]
            return item["attempts"] >= 1 and "Timeout" in (item["last_error"] or "")

        wait_until(hook_timed_out, 3 * HOOK_TIMEOUT, "the webhook's first attempt to time out")
        hook.release()
        wait_until(lambda: not svc.list_outbox(pending_only=True), 3 * HOOK_TIMEOUT, "the webhook delivery")
    finally:
        svc.stop()
    (item,) = [i for i in svc.list_outbox(pending_only=False) if i["receiver"] == "hook"]
    assert item["delivered_at"] is not None and item["attempts"] >= 2  # retried after the timeout
    keys = {r.headers["Idempotency-Key"] for r in hook.requests}
    assert keys == {item["idempotency_key"]} and len(hook.requests) == item["attempts"]
    # delivered once: nothing more goes out to either receiver
    sent = (len(hook.requests), len(slack.requests))
    for _ in range(3):
        svc.evaluate_once()
        svc.dispatch_once()
    assert (len(hook.requests), len(slack.requests)) == sent
    svc.close()


# ------------------------------------------------------------------------------ SMTP


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        require(False, "the 'cryptography' package is needed to generate a test certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SmtpServer:
    USER, PASSWORD = "alerts", "correct horse battery staple"

    def __init__(self, cert, key, *, implicit_tls: bool) -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[dict] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                outer.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                       "data": envelope.original_content or envelope.content,
                                       "tls": server.transport.get_extra_info("ssl_object") is not None,
                                       "user": session.auth_data.login.decode()
                                       if isinstance(session.auth_data, LoginPassword) else None})
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == outer.USER
                  and auth_data.password.decode() == outer.PASSWORD)
            outer.auth_attempts.append((mechanism, auth_data.login.decode() if auth_data else "", ok))
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        self.port = free_port()
        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        if implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; the whole connection is TLS here
            kwargs["auth_require_tls"] = False
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ssl_context=ctx, **kwargs)
        else:
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=ctx,
                                         require_starttls=True, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server(tls_cert):
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        require(False, "aiosmtpd is not installed (pip install aiosmtpd)")
    servers = []

    def make(implicit_tls=False):
        s = SmtpServer(*tls_cert, implicit_tls=implicit_tls)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.mark.parametrize("tls,mechanism", [("starttls", "login"), ("starttls", "plain"), ("ssl", "auto")])
def test_email_over_tls_with_auth(tmp_path, smtp_server, tls_cert, tls, mechanism):
    server = smtp_server(implicit_tls=(tls == "ssl"))
    pw_file = tmp_path / "smtp-password"
    pw_file.write_text(SmtpServer.PASSWORD + "\n")
    world = World()
    receivers = {"email": [{
        "name": "oncall", "host": "127.0.0.1", "port": server.port, "tls": tls, "username": SmtpServer.USER,
        "password_file": str(pw_file), "auth_mechanism": mechanism, "from": "streamscope@example.com",
        "to": ["oncall@example.com", "lead@example.com"], "ca_file": str(tls_cert[0]), "timeout": "10s",
    }]}
    svc = make_service(tmp_path, receivers, {}, ["oncall"], world)
    svc.evaluate_once()
    drain(svc, lambda: server.messages, what="mail delivery")
    (m,) = server.messages
    assert m["tls"] and m["user"] == SmtpServer.USER
    assert m["from"] == "streamscope@example.com" and m["to"] == ["oncall@example.com", "lead@example.com"]
    expected_mech = {"login": "LOGIN", "plain": "PLAIN"}.get(mechanism)
    assert all(ok for _, _, ok in server.auth_attempts)
    if expected_mech:
        assert [a[0] for a in server.auth_attempts] == [expected_mech]
    msg = email.message_from_bytes(m["data"])
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Group orders <lagging> & 50k behind" in parts["text/plain"]
    assert "&lt;lagging&gt; &amp;" in parts["text/html"] and "<lagging>" not in parts["text/html"]
    assert msg["Subject"].startswith("[streamscope] [FIRING:1] StreamscopeConsumerLagHigh")
    key = msg["X-Streamscope-Idempotency-Key"]
    assert key and msg["Message-ID"] == f"<{key}@streamscope>"
    assert svc.list_outbox(pending_only=True) == []
    svc.close()


def test_email_wrong_password_is_retried_not_dropped(tmp_path, smtp_server, tls_cert):
    server = smtp_server()
    world = World()
    receivers = {"email": [{
        "name": "oncall", "host": "127.0.0.1", "port": server.port, "tls": "starttls", "username": SmtpServer.USER,
        "password_env": "SMTP_PW", "from": "s@example.com", "to": ["o@example.com"], "ca_file": str(tls_cert[0]),
    }]}
    svc = make_service(tmp_path, receivers, {"SMTP_PW": "wrong-password-value"}, ["oncall"], world)
    svc.evaluate_once()
    report = svc.dispatch_once()
    assert report.failed and "535" in report.failed[0][1]
    assert "wrong-password-value" not in report.failed[0][1]
    (item,) = svc.list_outbox(pending_only=True)
    assert item["attempts"] == 1 and not server.messages
    svc.close()


# ------------------------------------------------------------------------------ Alertmanager


@pytest.fixture
def alertmanager(tmp_path):
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    require(binary is not None, "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    port = free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text('route:\n  receiver: "null"\n  group_wait: 1s\nreceivers:\n  - name: "null"\n')
    log = open(tmp_path / "alertmanager.log", "wb")
    proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address=", f"--storage.path={tmp_path / 'am-data'}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()[-2000:]}")
        try:
            return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(ready, 20, "alertmanager ready", interval=0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_forward_to_real_alertmanager(tmp_path, alertmanager):
    world = World()
    svc = make_service(tmp_path, {"alertmanager": [{"name": "am", "url": alertmanager, "resend_interval": "1m"}]},
                       {}, [], world)
    res = svc.evaluate_once()
    assert [n.receiver for n in res.notifications] == ["am"]
    drain(svc, lambda: not svc.list_outbox(pending_only=True), what="forward to alertmanager")

    def am_alerts():
        return requests.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()

    (a,) = wait_until(am_alerts, 10, "alert visible in alertmanager")
    assert a["labels"] == {"alertname": "StreamscopeConsumerLagHigh", "severity": "warning", "cluster": "prod",
                           "group": "orders", "topic": "orders"}
    assert a["annotations"]["summary"] == "Group orders <lagging> & 50k behind"
    assert a["generatorURL"] == "http://127.0.0.1:8050/groups?cluster=prod&group=orders"
    assert a["status"]["state"] == "active"
    ends = dt.datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")).timestamp()
    assert ends > time.time() + 60  # kept alive for 4 x resend_interval

    world.lag = 0  # resolve: forwarded at once with its end time
    res = svc.evaluate_once()
    assert [n.status for n in res.notifications] == ["resolved"]
    drain(svc, lambda: not svc.list_outbox(pending_only=True), what="resolved forward")
    wait_until(lambda: not [x for x in am_alerts() if x["status"]["state"] == "active"], 10,
               "alert resolved in alertmanager")
    svc.close()


# ------------------------------------------------------------------------------ promtool


def test_promtool_check_and_test_rules():
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (apt-get install prometheus)")
    rules = PROM_DIR / "streamscope-rules.yml"
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # every rule of the file is loaded (the count comes from the file, not from this test)
    expected = sum(len(g["rules"]) for g in yaml.safe_load(rules.read_text())["groups"])
    assert expected >= 22 and f"SUCCESS: {expected} rules found" in check.stdout
    tests = sorted(str(p) for p in (PROM_DIR / "tests").glob("*.yml"))
    assert tests
    run = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == len(tests)
