"""/metrics of a running streamscope web server (a real Monitor, waitress on 127.0.0.1) is served
gzip-compressed to a scraper that accepts gzip, as Prometheus does, and plain to one that does
not; both are the same payload. No Kafka is needed: the monitor has no clusters (its /metrics
has the build, history and alert families)."""
from __future__ import annotations

import gzip

import pytest
import requests

from collectors.models import Snapshot, StoreHealth
from monitor.app.config import Config
from monitor.app.root import Monitor

pytestmark = [pytest.mark.integration]


@pytest.fixture
def monitor(tmp_path):
    config = Config.model_validate({"history": {"path": str(tmp_path / "history.db")},
                                    "web": {"host": "127.0.0.1", "port": 0}})
    monitor = Monitor(config).start(serve=True, loop=False)
    yield monitor
    monitor.stop()


def _scrape(monitor: Monitor, accept_encoding: str) -> requests.Response:
    """The response with its body as sent (`raw_body`), not decoded by requests."""
    response = requests.get(f"{monitor.web.url}/metrics", headers={"Accept-Encoding": accept_encoding},
                            stream=True, timeout=30)
    response.raw_body = response.raw.read(decode_content=False)
    return response


def test_gzip_for_scrapers_that_accept_it_plain_for_the_others(monitor):
    payload = monitor.metrics.refresh()
    assert b"streamscope_build_info" in payload

    zipped = _scrape(monitor, "gzip")  # what Prometheus sends (with identity)
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert zipped.headers["Content-Type"].startswith("text/plain")
    assert int(zipped.headers["Content-Length"]) == len(zipped.raw_body)
    assert gzip.decompress(zipped.raw_body) == payload

    for accept in ("identity", "gzip;q=0, identity", "deflate"):
        plain = _scrape(monitor, accept)
        assert "Content-Encoding" not in plain.headers, accept
        assert "Accept-Encoding" in plain.headers["Vary"]
        assert plain.raw_body == payload, accept


def test_gzip_copy_follows_each_refresh(monitor):
    for cycle, failures in enumerate((0, 3, 4)):
        monitor.store.publish(Snapshot(at=1000.0 + cycle, history=StoreHealth(up=True, failures_total=failures)))
        payload = monitor.metrics.refresh()  # compressed here after the first cycle's gzip scrape
        assert f"streamscope_history_write_failures_total {failures}.0\n".encode() in payload
        assert gzip.decompress(_scrape(monitor, "gzip, identity").raw_body) == payload
        assert _scrape(monitor, "identity").raw_body == payload
