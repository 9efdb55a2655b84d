"""Web authentication: any Authorization header a client can send ends in 200 or 401, never in 500
(`hmac.compare_digest` raises TypeError on non-ASCII text); and /healthz shows collector restarts."""
from __future__ import annotations

import base64
import http.client
import threading

from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from collectors.models import CollectorHealth, Snapshot
from monitor.settings import SecretRef
from monitor.web.settings import WebConfig
from monitor.web.app import create_app
from monitor.web.context import WebContext, WebSettings
from monitor.web.status import health_report

TOKEN = "t0ken-ü-€"  # non-ASCII on purpose: a configured secret may hold any character
USER, PASSWORD = "admin", "pässwörd"


class _Metrics:
    @staticmethod
    def latest() -> bytes:
        return b"# metrics\n"


class _Store:
    def __init__(self, snapshot=None):
        self._snapshot = snapshot

    def latest(self):
        return self._snapshot


def _context() -> WebContext:
    return WebContext(snapshots=_Store(), settings=WebSettings(interval_seconds=10.0, stale_after_seconds=30.0),
                      metrics=_Metrics())


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("SS_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("SS_TEST_PASSWORD", PASSWORD)
    web = WebConfig(auth_token=SecretRef(env="SS_TEST_TOKEN"), basic_auth_user=USER,
                    basic_auth_password=SecretRef(env="SS_TEST_PASSWORD"))
    return create_app(_context(), web).test_client()


def basic(user: bytes, password: bytes) -> str:
    """A Basic header as WSGI hands it over: the wire bytes decoded as latin-1."""
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def wire(raw: bytes) -> str:
    return raw.decode("latin-1")


@pytest.mark.parametrize("header", [
    "Bearer tökén",  # non-ASCII, latin-1 representable
    "Bearer 令牌",  # beyond latin-1 (not from a WSGI server, but must not crash either)
    wire(b"Bearer \xff\xfe\x00\x80"),  # raw bytes that are not UTF-8
    wire(b"Bearer " + TOKEN.encode()[:-1]),  # the token cut short
    wire(b"Bearer " + TOKEN.encode() + b"x"),
    basic(USER.encode(), "pässwort".encode()),  # wrong non-ASCII password
    basic("ädmin".encode(), PASSWORD.encode()),
    basic(USER.encode(), b"\xff\xfe"),  # password bytes that are not UTF-8
    "Basic ümlaut-not-base64",
    "Basic !!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "",
])
def test_wrong_or_non_ascii_credentials_get_401_never_500(client, header):
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("header", [
    wire(b"Bearer " + TOKEN.encode()),  # the token's UTF-8 bytes, as a client sends them
    basic(USER.encode(), PASSWORD.encode()),
])
def test_right_credentials_with_non_ascii_characters_are_accepted(client, header):
    response = client.get("/metrics", headers={"Authorization": header})
    assert response.status_code == 200 and response.data == b"# metrics\n"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_raw_non_ascii_header_through_a_wsgi_server_gets_401(monkeypatch):
    # A real HTTP server decodes the header bytes as latin-1 (PEP 3333), as waitress does.
    monkeypatch.setenv("SS_TEST_TOKEN", "ascii-token")
    app = create_app(_context(), WebConfig(auth_token=SecretRef(env="SS_TEST_TOKEN")))
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for raw in (b"Bearer \xc3\xa9t\xc3\xa9", b"Basic " + base64.b64encode("ü:ö".encode()), b"Bearer \xff"):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
            connection.putrequest("GET", "/metrics")
            connection.putheader("Authorization", raw)
            connection.endheaders()
            response = connection.getresponse()
            assert response.status == 401, raw
            assert response.read() == b"authentication required\n"
            connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_healthz_reports_restarts_and_the_last_exit_of_a_child_process():
    from collectors.models import ProcessExit

    exit_ = ProcessExit(reason="signal", message="died between cycles (killed by SIGKILL)", at=90.0, pid=4242,
                        exit_code=-9)
    kafka = CollectorHealth(name="kafka:c1", kind="kafka", up=True, last_attempt_at=99.0, last_success_at=100.0,
                            duration_seconds=0.2, cycles_total=5, restarts=(("exit", 0), ("signal", 1), ("timeout", 0)),
                            last_exit=exit_)
    spark = CollectorHealth(name="spark:x", kind="spark", up=False, last_attempt_at=99.0, last_success_at=None,
                            duration_seconds=0.1, error="connection refused")
    report = health_report(Snapshot(at=100.0, health=(kafka, spark)), stale_after=30.0, now=101.0)
    by_name = {c["name"]: c for c in report["collectors"]}
    assert by_name["kafka:c1"]["restarts_total"] == 1
    assert by_name["kafka:c1"]["last_exit"] == {"reason": "signal", "message": "died between cycles (killed by SIGKILL)",
                                                "at": 90.0, "pid": 4242, "exit_code": -9}
    assert "restarts_total" not in by_name["spark:x"]  # no child process, nothing to restart
    assert by_name["spark:x"]["error_kind"] is None and report["status"] == "degraded"


def test_healthz_names_groups_not_listed_or_not_fetched_in_a_cycle_that_succeeded():
    from collectors.models import ClusterState, ConsumerGroup, KafkaClusterSnapshot, KafkaLagView

    def group(name, error=None):
        return ConsumerGroup(name=name, state="Stable", members=(), offsets=(), offsets_fetched_at=1.0, error=error)

    raw = KafkaClusterSnapshot(cluster="c1", started_at=99.0, finished_at=100.0, groups_complete=False,
                               groups=(group("ok"), group("loading", "CoordinatorLoadInProgressError")))
    state = ClusterState(raw=raw, lag=KafkaLagView(cluster="c1", at=100.0, groups=(), topics=()))
    kafka = CollectorHealth(name="kafka:c1", kind="kafka", up=True, last_attempt_at=99.0, last_success_at=100.0,
                            duration_seconds=0.2, cycles_total=5)
    report = health_report(Snapshot(at=100.0, clusters=(state,), health=(kafka,)), stale_after=30.0, now=101.0)
    entry = report["collectors"][0]
    assert entry["groups_listing_complete"] is False
    assert entry["groups_failed"] == 1 and entry["groups_failed_examples"] == ["loading"]
    healthy = health_report(Snapshot(at=100.0, clusters=(ClusterState(raw=KafkaClusterSnapshot(
        cluster="c1", started_at=99.0, finished_at=100.0, groups=(group("ok"),)), lag=state.lag),), health=(kafka,)),
        stale_after=30.0, now=101.0)["collectors"][0]
    assert healthy["groups_listing_complete"] is True and healthy["groups_failed"] == 0
    assert "groups_failed_examples" not in healthy


def test_healthz_says_when_log_directories_are_not_all_known_and_why():
    from collectors.models import ClusterState, KafkaClusterSnapshot, KafkaLagView, LogDir

    kafka = CollectorHealth(name="kafka:c1", kind="kafka", up=True, last_attempt_at=99.0, last_success_at=100.0,
                            duration_seconds=0.2, cycles_total=5)
    lag = KafkaLagView(cluster="c1", at=100.0, groups=(), topics=())

    def entry(**raw_fields):
        raw = KafkaClusterSnapshot(cluster="c1", started_at=99.0, finished_at=100.0, **raw_fields)
        report = health_report(Snapshot(at=100.0, clusters=(ClusterState(raw=raw, lag=lag),), health=(kafka,)),
                               stale_after=30.0, now=101.0)
        return report["collectors"][0]

    why = "log directories of broker(s) not given (kept from before): 2: ClusterAuthorizationFailedError"
    partial = entry(log_dirs=(LogDir(1, "/data", 10),), log_dirs_fetched_at=90.0, log_dirs_error=why)
    assert partial["log_dirs_complete"] is False and partial["log_dirs_error"] == why
    failed = entry(log_dirs_error="DescribeLogDirs failed: timed out")  # none ever fetched
    assert failed["log_dirs_complete"] is False and failed["log_dirs_error"].endswith("timed out")
    complete = entry(log_dirs=(LogDir(1, "/data", 10),), log_dirs_fetched_at=90.0)
    assert complete["log_dirs_complete"] is True and "log_dirs_error" not in complete
    assert "log_dirs_complete" not in entry()  # not asked (log_dirs_every 0, or the librdkafka client)


def test_healthz_names_topics_whose_settings_are_unknown():
    from collectors.models import ClusterState, KafkaClusterSnapshot, KafkaLagView, Topic, TopicConfig

    kafka = CollectorHealth(name="kafka:c1", kind="kafka", up=True, last_attempt_at=99.0, last_success_at=100.0,
                            duration_seconds=0.2, cycles_total=5)
    lag = KafkaLagView(cluster="c1", at=100.0, groups=(), topics=())
    known = Topic("orders", (), config=TopicConfig("delete", 3_600_000, -1, 2))

    def entry(topics, error=None):
        raw = KafkaClusterSnapshot(cluster="c1", started_at=99.0, finished_at=100.0, topics=topics,
                                   topic_configs_error=error)
        report = health_report(Snapshot(at=100.0, clusters=(ClusterState(raw=raw, lag=lag),), health=(kafka,)),
                               stale_after=30.0, now=101.0)
        return report["collectors"][0]

    why = "settings of 1 topic(s) unknown: secret (TopicAuthorizationFailedError)"
    refused = entry((known, Topic("secret", ())), why)
    assert refused["topic_configs_complete"] is False and refused["topic_configs_error"] == why
    fine = entry((known,))
    assert fine["topic_configs_complete"] is True and "topic_configs_error" not in fine
    assert "topic_configs_complete" not in entry((Topic("orders", ()),))  # settings not asked
