"""The silence API of a running streamscope web server (a real Monitor, waitress on 127.0.0.1):
bad silences are refused with 400/404/413 and a JSON error naming the key, nothing is saved, and
`GET /api/v1/silences` keeps answering 200, also with an unreadable row written straight into
the SQLite store and after a restart. No Kafka is needed: the monitor has no clusters and the
tests drive the HTTP API only. Every wait is a request with a timeout.
"""
from __future__ import annotations

import json
import logging
import sqlite3

import pytest
import requests

from monitor.app.alerting import alert_store_path
from monitor.app.root import Monitor
from monitor.app.config import Config

pytestmark = [pytest.mark.integration]

TEN_MB = 10 * 1024 * 1024
GOOD = {"matchers": ['group="orders"'], "duration": "1h", "createdBy": "ops", "comment": "maintenance"}


class Server:
    """A monitor serving HTTP on a free port; `restart()` stops it and starts a new one on the same files."""

    def __init__(self, tmp_path) -> None:
        self.config = Config.model_validate({
            "history": {"path": str(tmp_path / "history.db")},
            "web": {"host": "127.0.0.1", "port": 0},
            "alerting": {"include_default_rules": True},
        })
        self.monitor: Monitor | None = None
        self.start()

    def start(self) -> None:
        self.monitor = Monitor(self.config).start(serve=True, loop=False)
        self.base = self.monitor.web.url

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def store_path(self):
        return alert_store_path(self.config)

    def post_raw(self, body: str | bytes) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/silences", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)

    def listed(self) -> list[str]:
        r = requests.get(f"{self.base}/api/v1/silences", timeout=30)
        assert r.status_code == 200, r.text[:500]
        return [s["id"] for s in r.json()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("silence-api"))
    yield s
    s.stop()


def matcher_body(**extra) -> str:
    return json.dumps({"matchers": ['alertname=~".+"'], **extra})


# (raw JSON body, expected status, text the JSON error must contain). Raw text because NaN,
# -Infinity and 1e400 (which Python's JSON reads as infinity) are what a client can really send.
TABLE = [
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "endsAt": 1e300}', 400, "endsAt", id="endsAt 1e300"),
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "endsAt": 1e400}', 400, "endsAt", id="endsAt 1e400"),
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "endsAt": -Infinity}', 400, "endsAt", id="endsAt -inf"),
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "duration": 1e400}', 400, "duration", id="duration 1e400"),
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "startsAt": NaN, "duration": "1h"}', 400, "startsAt",
                 id="startsAt NaN"),
    pytest.param('{"matchers": ["alertname=~\\".+\\""], "startsAt": -Infinity, "duration": "1h"}', 400, "startsAt",
                 id="startsAt -inf"),
    pytest.param(json.dumps({**GOOD, "id": "no-such-silence"}), 404, "no-such-silence", id="unknown id"),
    pytest.param(json.dumps({**GOOD, "matchers": ['group=~"(orders"']}), 400, "matchers[0]", id="bad regex"),
    pytest.param(json.dumps({**GOOD, "matchers": [f'group="g{i}"' for i in range(100)]}), 400,
                 "at most", id="too many matchers"),  # the limit is alerts.silences.MAX_MATCHERS (32)
    pytest.param(json.dumps({**GOOD, "comment": "x" * TEN_MB}), 413, "1 MiB", id="10 MB body"),
]


@pytest.mark.parametrize("body,status,error", TABLE)
def test_bad_silence_is_refused_and_not_saved(server, body, status, error):
    before = server.listed()
    r = server.post_raw(body)
    assert r.status_code == status, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json")
    assert error in r.json()["error"]
    assert server.listed() == before  # nothing saved, and the list still answers


def test_good_silence_is_saved_and_listed(server):
    r = server.post_raw(json.dumps(GOOD))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"]["state"] == "active" and created["createdBy"] == "ops"
    assert created["id"] in server.listed()
    # updating it by id works; an unknown id does not create one
    r = server.post_raw(json.dumps({**GOOD, "id": created["id"], "comment": "longer"}))
    assert r.status_code == 201 and r.json()["id"] == created["id"]


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/silences"), ("DELETE", "/api/v1/silences/anything"), ("GET", "/api/v1/silences"),
    ("GET", "/healthz"), ("POST", "/_dash-update-component"),
])
def test_request_bodies_over_1_mib_are_refused_on_every_route(server, method, path):
    r = requests.request(method, f"{server.base}{path}", data=b"{" + b" " * (1024 * 1024), timeout=30,
                         headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "1 MiB" in r.json()["error"]
    assert requests.get(f"{server.base}/healthz", timeout=30).status_code == 200


def test_unreadable_stored_row_is_skipped_with_a_warning_also_after_restart(tmp_path, caplog):
    server = Server(tmp_path)
    try:
        good = server.post_raw(json.dumps(GOOD)).json()["id"]
        for body, *_ in (p.values for p in TABLE):
            server.post_raw(body)
        # what older versions saved for `endsAt: 1e300` (read as milliseconds), and a corrupt row
        with sqlite3.connect(server.store_path) as conn:
            for sid, matchers, ends in (("saved-1e300", '[{"name":"alertname","op":"=~","value":".+"}]', 1e297),
                                        ("corrupt", "{not json", 4e9)):
                conn.execute("INSERT INTO alert_silences VALUES (?, ?, 1.7e9, ?, 'old', '', 1.7e9, 1.7e9)",
                             (sid, matchers, ends))
        caplog.set_level(logging.WARNING, logger="alerts.silences")
        for _ in range(3):
            assert server.listed() == [good]
        warned = [r.getMessage() for r in caplog.records if r.name == "alerts.silences"]
        assert len(warned) == 2 and any("'saved-1e300'" in w for w in warned) and any("'corrupt'" in w for w in warned)
        active = requests.get(f"{server.base}/api/v1/silences", params={"state": "active"}, timeout=30).json()
        assert [s["id"] for s in active] == [good]  # the never-ending one silences nothing

        server.restart()
        assert server.listed() == [good]
        assert requests.delete(f"{server.base}/api/v1/silences/{good}", timeout=30).json()["status"]["state"] \
            == "expired"
        assert server.listed() == [good]
    finally:
        server.stop()
