"""The served WSGI app (`monitor.web.server.DashboardOnFirstVisit`): the API answers without Dash;
the first request for anything else mounts the dashboard, once, and from then on one app serves
everything, as before."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.test import Client

import monitor.web.server as server
from monitor.storage import History
from monitor.web.settings import WebConfig
from tests import dashboard_sample as sample

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*DataTable will be removed:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx(tmp_path):
    history = History(tmp_path / "history.db")
    yield sample.build(history, cycles=3)
    history.close()


def test_api_routes_are_served_without_the_dashboard(ctx):
    app = server.DashboardOnFirstVisit(ctx, WebConfig())
    client = Client(app)
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/v1/clusters").status_code == 200
    assert client.post("/metrics").status_code == 405  # a route of the API, another method
    assert not app.dashboard_mounted


def test_first_page_mounts_the_dashboard_then_one_app_serves_everything(ctx):
    app = server.DashboardOnFirstVisit(ctx, WebConfig())
    client = Client(app)
    page = client.get("/")
    assert page.status_code == 200 and "_dash-config" in page.text
    assert app.dashboard_mounted
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and json.loads(layout.text)
    assert client.get("/api/v1/clusters").status_code == 200
    missing = client.get("/api/no-such-route")  # the dashboard claims only its own pages
    assert missing.status_code == 404 and missing.json == {"error": missing.json["error"]}


def test_an_unknown_path_first_is_a_404_from_the_complete_app(ctx):
    app = server.DashboardOnFirstVisit(ctx, WebConfig())
    response = Client(app).get("/metricz")
    assert response.status_code == 404 and "error" in response.json


_CONCURRENT_FIRST_VISITS = """
import json, sys, threading
import dash  # imported in the main thread, as where a test or an embedding program loaded it
from werkzeug.test import Client
import monitor.web.server as server
from monitor.storage import History
from monitor.web.settings import WebConfig
from tests import dashboard_sample as sample
mounts = []
real = server._mount_dashboard
server._mount_dashboard = lambda app, ctx: (mounts.append(app), real(app, ctx))
app = server.DashboardOnFirstVisit(sample.build(History(sys.argv[1]), cycles=3), WebConfig())
codes = []
threads = [threading.Thread(target=lambda: codes.append(Client(app).get("/").status_code)) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
print(json.dumps([codes, len(mounts)]))
"""


def _fresh(script: str, tmp_path) -> list:
    """`script`'s last line of output, in a fresh interpreter (this one has Dash loaded and its
    pages imported by other tests)."""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "h.db")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_concurrent_first_visits_from_server_threads_mount_the_dashboard_once(tmp_path):
    codes, mounts = _fresh(_CONCURRENT_FIRST_VISITS, tmp_path)
    assert codes == [200] * 6 and mounts == 1


_FRESH_INTERPRETER = """
import json, sys
from werkzeug.test import Client
from monitor.storage import History
from monitor.web.server import DashboardOnFirstVisit
from monitor.web.settings import WebConfig
from tests import dashboard_sample as sample
history = History(sys.argv[1])
app = DashboardOnFirstVisit(sample.build(history, cycles=3), WebConfig())
client = Client(app)
codes = [client.get(path).status_code for path in ("/healthz", "/metrics", "/api/v1/clusters")]
before = sorted(m for m in ("dash", "plotly") if m in sys.modules)
codes.append(client.get("/").status_code)
after = sorted(m for m in ("dash", "plotly") if m in sys.modules)
print(json.dumps([codes, before, after]))
"""


def test_a_monitor_only_scraped_never_imports_dash_or_plotly(tmp_path):
    codes, before, after = _fresh(_FRESH_INTERPRETER, tmp_path)
    assert codes[1:] == [200, 200, 200] and codes[0] in (200, 503)
    assert before == [] and after == ["dash", "plotly"]


def test_credentials_are_asked_before_and_after_the_dashboard_is_mounted(ctx, monkeypatch):
    from monitor.settings import SecretRef

    monkeypatch.setenv("SS_TEST_TOKEN", "s3cret")
    app = server.DashboardOnFirstVisit(ctx, WebConfig(auth_token=SecretRef(env="SS_TEST_TOKEN")))
    monkeypatch.delenv("SS_TEST_TOKEN")  # resolved at start, as configured: not at the first visit
    client = Client(app)
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/metrics").status_code == 401 and client.get("/").status_code == 401
    assert client.get("/metrics", headers=good).status_code == 200
    assert client.get("/", headers=good).status_code == 200 and app.dashboard_mounted
    assert client.get("/metrics").status_code == 401 and client.get("/_dash-layout").status_code == 401


def test_stop_closes_kept_alive_connections_and_ends_the_serving_thread(ctx, caplog):
    """A scraper or browser keeps its connection open between requests: stopping the server
    closes it too, and the serving thread ends (it used to poll such connections on, and `stop`
    waited 5 s for it in vain)."""
    import logging
    import socket

    web = server.WebServer(ctx, WebConfig(port=0))
    web.start()
    kept = socket.create_connection((web.host, web.port), timeout=5)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += kept.recv(65536)
    assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")) and b"Connection: close" not in answer
    with caplog.at_level(logging.WARNING):
        web.stop()
    assert not web._thread.is_alive()
    while kept.recv(65536):  # the rest of the answer, then the server's close
        pass
    kept.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((web.host, web.port), timeout=5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


def test_listen_problem_names_what_stops_this_machine_listening():
    from monitor.web.settings import listen_problem

    assert listen_problem("127.0.0.1") is None and listen_problem("localhost") is None
    assert "the name does not resolve" in listen_problem("no-such-host.invalid")
    assert listen_problem("192.0.2.1") == "cannot listen on 192.0.2.1: Cannot assign requested address"  # TEST-NET-1


def test_a_monitor_whose_port_is_taken_starts_nothing(tmp_path):
    """The web server's port is taken first: when it cannot be had, no source, no collection loop
    and no alert delivery has started (nothing ran a cycle for a monitor that is not there)."""
    import socket

    from monitor.app.config import Config
    from monitor.app.root import Monitor
    from monitor.settings import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = Config.model_validate({
            "clusters": [{"name": "c", "bootstrap_servers": "127.0.0.1:9"}],
            "history": {"path": str(tmp_path / "h.db")}, "web": {"port": taken.getsockname()[1]},
            "alerting": {"receivers": {"webhook": [{"name": "w", "url": "http://127.0.0.1:9/"}]},
                         "route": {"receivers": ["w"]}}})
        monitor = Monitor(config)
        with pytest.raises(ConfigError, match="web.port: cannot listen on"):
            monitor.start()
        assert monitor._services._running == [] and monitor.web is None
        assert monitor.kafka_sources[0]._collector is None  # no collector (nor its child) either
        monitor.stop()
