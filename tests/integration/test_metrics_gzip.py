"""/metrics of a running streamscope web server (a real Monitor, waitress on 127.0.0.1) is served
gzip-compressed to a scraper that accepts gzip, as Prometheus does, and plain to one that does
not; both are the same payload; and a real Prometheus scrapes the gzip copy. No Kafka is needed:
the monitor has no clusters (its /metrics has the build, history and alert families)."""
from __future__ import annotations

import gzip
import subprocess

import pytest
import requests
import yaml
from prometheus_client import CONTENT_TYPE_LATEST

from demo.kafka_box import free_port, log_tail

from collectors.metrics_text import TextWriter
from collectors.models import Snapshot, StoreHealth
from monitor.app.config import Config
from monitor.app.root import Monitor
from monitor.web import metrics as web_metrics

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
        # exactly prometheus_client's type: Prometheus 3 fails a scrape whose Content-Type does not
        # parse (Go's mime parser refuses a parameter given twice, e.g. charset)
        assert plain.headers["Content-Type"] == CONTENT_TYPE_LATEST, accept
    assert zipped.headers["Content-Type"] == CONTENT_TYPE_LATEST


def test_a_large_payload_is_sent_whole_from_the_cache(monitor):
    """The cached bytes go to the socket as a file (`wsgi.file_wrapper`), not copied into the
    server's buffer: 8 MB arrive whole, with their length, plain and gzip, and HEAD has the
    length and no body."""
    lines = b"".join(b'big_series{i="%d"} %d.0\n' % (i, i) for i in range(300_000))
    monitor.metrics._text_sources.append(lambda: lines)
    payload = monitor.metrics.refresh()
    assert len(payload) > 8_000_000
    plain = _scrape(monitor, "identity")
    assert plain.raw_body == payload and int(plain.headers["Content-Length"]) == len(payload)
    zipped = _scrape(monitor, "gzip")
    assert gzip.decompress(zipped.raw_body) == payload
    assert int(zipped.headers["Content-Length"]) == len(zipped.raw_body)
    head = requests.head(f"{monitor.web.url}/metrics", headers={"Accept-Encoding": "identity"}, timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(payload) and head.content == b""


def test_gzip_copy_follows_each_refresh(monitor):
    for cycle, failures in enumerate((0, 3, 4)):
        monitor.store.publish(Snapshot(at=1000.0 + cycle, history=StoreHealth(up=True, failures_total=failures)))
        payload = monitor.metrics.refresh()  # compressed here after the first cycle's gzip scrape
        assert f"streamscope_history_write_failures_total {failures}.0\n".encode() in payload
        assert gzip.decompress(_scrape(monitor, "gzip, identity").raw_body) == payload
        assert _scrape(monitor, "identity").raw_body == payload


def test_prometheus_scrapes_the_gzip_copy(monitor, tmp_path, monkeypatch):
    from tests.integration.test_prometheus_grafana import _die_with_parent, _stop_process, prometheus_binary, wait_for

    compressed: list[bytes] = []
    real_gzip = web_metrics._gzip
    monkeypatch.setattr(web_metrics, "_gzip", lambda payload: compressed.append(payload) or real_gzip(payload))
    payload = monitor.metrics.refresh()
    target = monitor.web.url.split("://", 1)[1]
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [{"job_name": "streamscope", "static_configs": [{"targets": [target]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log_path = free_port(), tmp_path / "prometheus.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent)
    try:
        def build_info() -> list:
            response = requests.get(f"http://127.0.0.1:{port}/api/v1/query", timeout=5,
                                    params={"query": 'streamscope_build_info and on() up{job="streamscope"} == 1'})
            return response.json()["data"]["result"] if response.status_code == 200 else []

        series = wait_for("Prometheus to scrape /metrics", build_info, 90,
                          on_timeout=lambda: f"\nprometheus log:\n{log_tail(log_path)}")
        assert series[0]["metric"]["version"]
        assert payload in compressed  # Prometheus asked for gzip and got the compressed copy

        # The refreshes after that make the gzip copy family by family (gzip_segments): a family
        # that changed is compressed again, the others reused; Prometheus reads every copy.
        from collectors.metrics_text import TextFamily

        def families(step: int) -> list[TextFamily]:
            return [TextFamily(f"streamscope_test_{name}", "gauge", "A test family.", ("series",),
                               [((f"s{i}",), float(i * (step if name == "moving" else 1))) for i in range(200)])
                    for name in ("still", "moving")]

        step = [1]
        monitor.metrics._text_sources.append(lambda: families(step[0]))
        for step[0] in (2, 3):
            monitor.metrics.refresh()
            assert gzip.decompress(monitor.metrics.latest_gzip()).endswith(TextWriter().render(families(step[0])).encode())

            def moved(expected=float(7 * step[0])) -> list:
                response = requests.get(f"http://127.0.0.1:{port}/api/v1/query", timeout=5,
                                        params={"query": 'streamscope_test_moving{series="s7"} + streamscope_test_still{series="s7"} * 0'})
                result = response.json()["data"]["result"] if response.status_code == 200 else []
                return [r for r in result if float(r["value"][1]) == expected]

            wait_for(f"Prometheus to scrape the copy of step {step[0]}", moved, 30,
                     on_timeout=lambda: f"\nprometheus log:\n{log_tail(log_path)}")
        assert monitor.metrics._segments.families_reused >= 1  # the still family, not written again
    finally:
        _stop_process(process)


def test_a_plain_scrape_sends_views_of_the_cached_bytes_not_copies(monitor, monkeypatch):
    """waitress writes a file response to the socket as the file reads it: every read is a view
    of the cached payload (no copy of ~4 MB per socket buffer, as `io.BytesIO` made), and the
    body arrives whole."""
    from waitress.buffers import ReadOnlyFileBasedBuffer

    chunks: list[object] = []
    real_get = ReadOnlyFileBasedBuffer.get

    def spy(self, numbytes=-1, skip=False):
        chunk = real_get(self, numbytes, skip)
        chunks.append(chunk)
        return chunk

    monkeypatch.setattr(ReadOnlyFileBasedBuffer, "get", spy)
    lines = b"".join(b'big_series{i="%d"} %d.0\n' % (i, i) for i in range(200_000))
    monitor.metrics._text_sources.append(lambda: lines)
    payload = monitor.metrics.refresh()
    plain = _scrape(monitor, "identity")
    assert plain.raw_body == payload and int(plain.headers["Content-Length"]) == len(payload)
    assert chunks and all(isinstance(c, memoryview) and c.obj is payload for c in chunks if len(c)), \
        {type(c).__name__ for c in chunks}
