"""SparkCollector against real HTTP servers (http.server on 127.0.0.1) serving the Spark 4.3.0
fixture files at the paths Spark serves them. No sleeps: waits are bounded request timeouts."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from demo.kafka_box import free_port
from tests.helpers import ManualClock
from tests.spark_fixtures import spark_fixtures

from collectors.spark.collector import SparkCollector
from collectors.spark.discovery import HistoryTarget, MasterTarget, PortRangeTarget, UiTarget, parse_target
from collectors.spark.models import QueryState
from collectors.spark.models import SRC_DSTREAM_STATISTICS, SRC_METRICS, SRC_STREAMING_UI


FIX = spark_fixtures()

T = 1_800_000_000.0
SS_APP = "local-1795607342131"
DS_APP = "local-1795607432174"
SA_APP = "app-20261125115234-0000"  # standalone structured app (also in the History Server)
RP_APP = "app-20261125115516-0000"  # standalone with spark.ui.reverseProxy=true
SS_QUERY_ID = "a419f25d-579a-4032-a9c5-f48531d4a0cb"


class FakeSpark:
    """A real HTTP server answering Spark paths with fixture files."""

    def __init__(self, port: int = 0):
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[str] = []
        self.hanging = False
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                if fake.hanging:
                    fake._release.wait(10)
                    return
                path = urlsplit(self.path).path
                route = fake.routes.get(self.path) or fake.routes.get(path)
                if callable(route):
                    route = route(parse_qs(urlsplit(self.path).query))
                status, ctype, body = route or (
                    404, "text/html;charset=iso-8859-1",
                    b"<html><body><h2>HTTP ERROR 404 Not Found</h2></body></html>")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def file(self, path: str, fixture: str, status: int = 200, ctype: str | None = None) -> None:
        body = (FIX / fixture).read_bytes()
        if ctype is None:
            ctype = "application/json" if fixture.endswith(".json") else "text/plain"
        self.routes[path] = (status, ctype, body)

    def body(self, path: str, body: str | bytes, status: int = 200,
             ctype: str = "application/json") -> None:
        self.routes[path] = (status, ctype, body.encode() if isinstance(body, str) else body)

    def take_requests(self) -> list[str]:
        out, self.requests = self.requests, []
        return out

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def structured_app(srv: FakeSpark) -> FakeSpark:
    api = f"/api/v1/applications/{SS_APP}"
    srv.file("/api/v1/applications", "ss_applications.json")
    srv.file(f"{api}/jobs", "ss_jobs.json")
    srv.file(f"{api}/stages", "ss_stages.json")
    srv.file(f"{api}/allexecutors", "ss_allexecutors.json")
    srv.file(f"{api}/sql", "ss_sql.json")
    srv.file(f"{api}/streaming/statistics", "ss_streaming_statistics.txt", status=404)
    srv.file("/metrics/json/", "ss_metrics_json_trailing.json", ctype="text/json;charset=utf-8")
    srv.file("/metrics/prometheus/", "ss_metrics_prometheus_trailing.txt")
    srv.file("/StreamingQuery/", "ss_ui_StreamingQuery.html", ctype="text/html;charset=utf-8")
    return srv


def dstream_app(srv: FakeSpark, app_id: str = DS_APP) -> FakeSpark:
    """`app_id`: the id the driver reports (two local drivers started in one millisecond share one)."""
    api = f"/api/v1/applications/{app_id}"
    srv.body("/api/v1/applications",
             (FIX / "ds_applications.json").read_text().replace(DS_APP, app_id))
    srv.file(f"{api}/jobs", "ds_jobs.json")
    srv.file(f"{api}/stages", "ds_stages.json")
    srv.file(f"{api}/allexecutors", "ds_executors.json")
    srv.file(f"{api}/sql", "ds_sql.json")
    srv.file(f"{api}/streaming/statistics", "ds_streaming_statistics.json")
    srv.file(f"{api}/streaming/batches", "ds_streaming_batches.json")
    srv.file(f"{api}/streaming/receivers", "ds_streaming_receivers.json")
    srv.file("/metrics/json/", "ds_metrics_json.json")
    return srv


@pytest.fixture
def servers():
    made: list[FakeSpark] = []

    def make(port: int = 0) -> FakeSpark:
        s = FakeSpark(port)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def collectors():
    made: list[SparkCollector] = []

    def make(*args, **kw) -> SparkCollector:
        kw.setdefault("timeout", (1.0, 2.0))
        c = SparkCollector(*args, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def health(c: SparkCollector, name: str):
    return {h.name: h for h in c.health()}[name]


# --------------------------------------------------------------------------------------------


def test_parse_target_strings():
    assert parse_target("http://h:4040/") == UiTarget("http://h:4040")
    assert parse_target("h:4040-4050") == PortRangeTarget("h", 4040, 4050)
    assert parse_target("ports=http://10.0.0.5:4040-4042") == PortRangeTarget("10.0.0.5", 4040, 4042)
    assert parse_target("master=http://m:8080") == MasterTarget("http://m:8080")
    assert parse_target("master+proxy=http://m:8080") == MasterTarget("http://m:8080", reverse_proxy=True)
    assert parse_target("history=http://shs:18080") == HistoryTarget("http://shs:18080")
    for bad in ("", "h:4050-4040", "ftp://x", "ports=h"):
        with pytest.raises(ValueError):
            parse_target(bad)
    with pytest.raises(ValueError, match="duplicate Spark targets"):
        SparkCollector(["http://h:4040", "ui=http://h:4040/"]).close()


@pytest.mark.parametrize("spec, problem", [
    ("http://h:40x40", "'http://h:40x40': the port must be a number from 1 to 65535"),
    ("http://h:0", "the port must be a number"),
    ("history=https://shs:99999", "the port must be a number"),
    ("master=http:// m:8080", "'http:// m:8080': contains a space"),
    ("http://:4040", "'http://:4040': a URL without a host"),
    ("http://user:s3cret@h:40x40", "'http://h:40x40': the port must be a number"),
    ("ftp://user:s3cret@h", "expected an http(s) URL, got 'ftp://h'"),
])
def test_urls_no_request_can_be_sent_to_are_refused_without_their_credentials(spec, problem):
    """They passed check-config, and each cycle of `run` then failed (InvalidURL)."""
    with pytest.raises(ValueError) as exc:
        parse_target(spec)
    assert problem in str(exc.value)
    assert "s3cret" not in str(exc.value)


def test_urls_with_a_path_an_ipv6_host_or_no_port_are_targets():
    assert parse_target("http://proxy:8088/proxy/application_1/") == UiTarget("http://proxy:8088/proxy/application_1")
    assert parse_target("https://[::1]:4040") == UiTarget("https://[::1]:4040")
    assert parse_target("http://spark-driver") == UiTarget("http://spark-driver")


def test_structured_app_one_cycle(servers, collectors):
    srv = structured_app(servers())
    c = collectors([srv.url])
    (snap,) = c.collect(T)
    assert snap.ok and snap.errors == {} and not snap.stale
    assert snap.collected_at == T
    app = snap.app
    assert (app.id, app.name, app.spark_version, app.completed) == (SS_APP, "fixture-structured", "4.3.0", False)
    assert app.ui_url == srv.url and app.discovered_via == "ui"
    # jobs: filtered listing (running + failed), succeeded from the driver's lifetime counter
    assert (snap.jobs.active, snap.jobs.failed, snap.jobs.succeeded) == (0, 0, 19)
    assert snap.stages.failed_stages == () and snap.stages.failed_tasks == 0
    (drv,) = snap.executors
    assert drv.is_driver and drv.memory_used_bytes == 4284586 and drv.total_gc_time_ms == 439
    assert snap.driver.namespace == SS_APP and snap.driver.tasks_completed_total == 112
    assert snap.dstream is None and not snap.is_dstream
    (q,) = snap.queries
    assert (q.name, q.id) == ("windowed_counts", SS_QUERY_ID)
    assert (q.state, q.state_source, q.ui_status) == (QueryState.ACTIVE, "ui", "RUNNING")
    assert q.last_batch_id == 18 and [b.batch_id for b in q.batches] == list(range(19))
    assert q.gauges.input_rate == 50.0 and q.gauges.latency_ms == 463
    assert q.trigger_interval_ms == 2000  # estimated: the fixture ran a 2 s trigger
    # 404 on /streaming/* for a Structured app: "not a DStream app", not an error
    st = snap.source(SRC_DSTREAM_STATISTICS)
    assert st.ok and st.http_status == 404 and st.skipped == "not a DStream app"
    # every value carries the time of its fetch
    fetched = snap.fetched_at
    assert set(fetched) == {"applications", "jobs", "stages", "executors", "sql", "metrics", "streaming_ui"}
    assert all(abs(t - time.time()) < 60 for t in fetched.values())
    assert snap.jobs.fetched_at == fetched["jobs"] and drv.fetched_at == fetched["executors"]
    assert q.gauges.fetched_at == fetched["metrics"]

    # one request per source per cycle
    reqs = srv.take_requests()
    paths = [urlsplit(r).path for r in reqs]
    assert len(paths) == len(set(paths)) == 8
    by_path = {urlsplit(r).path: urlsplit(r).query for r in reqs}
    api = f"/api/v1/applications/{SS_APP}"
    assert by_path[f"{api}/jobs"] == "status=RUNNING&status=FAILED"
    assert by_path[f"{api}/stages"] == "status=FAILED"
    assert "details=false" in by_path[f"{api}/sql"] and "planDescription=false" in by_path[f"{api}/sql"]
    assert f"{api}/allexecutors" in by_path and "/metrics/json/" in by_path

    # next cycle: the DStream endpoints are not asked again (known absent), the rest is
    (snap2,) = c.collect(T + 10)
    paths2 = [urlsplit(r).path for r in srv.take_requests()]
    assert f"{api}/streaming/statistics" not in paths2 and len(paths2) == 7
    assert snap2.queries[0].last_batch_id == 18 and snap2.ok
    h = health(c, f"spark:ui:{srv.url}")
    assert h.up and h.cycles_total == 2 and h.failures_total == 0 and h.last_success_at == T + 10


def test_sql_listing_is_read_incrementally(servers, collectors):
    srv = structured_app(servers())
    executions = json.loads((FIX / "ss_sql.json").read_text())  # 39 executions, batches 0..18

    def sql(query):  # Spark: executionsList(offset, length), oldest first
        offset, length = int(query["offset"][0]), int(query["length"][0])
        return 200, "application/json", json.dumps(executions[offset:offset + length]).encode()

    srv.routes[f"/api/v1/applications/{SS_APP}/sql"] = sql
    c = collectors([srv.url], sql_tail=9)  # the tail starts inside batch 14
    (first,) = c.collect(T)
    (second,) = c.collect(T + 10)
    sql_queries = [parse_qs(urlsplit(r).query) for r in srv.requests if urlsplit(r).path.endswith("/sql")]
    assert [q["offset"] for q in sql_queries] == [["0"], ["30"]]  # then only the newest 9
    def spans(snap):
        return [(b.batch_id, b.timestamp, b.duration_ms, b.status) for b in snap.queries[0].batches]

    assert spans(first) == spans(second)  # merged with what was read before
    assert second.queries[0].batches[-1].received_at > first.queries[0].batches[-1].received_at
    assert second.queries[0].last_batch_id == 18 and len(second.queries[0].batches) == 19


def test_dstream_app(servers, collectors):
    srv = dstream_app(servers())
    (snap,) = collectors([srv.url]).collect(T)
    assert snap.ok, snap.errors
    ds = snap.dstream
    assert ds.batch_duration_ms == 2000 and ds.total_completed_batches == 10
    assert ds.avg_scheduling_delay_ms == 372 and ds.avg_total_delay_ms == 2003
    assert len(ds.batches) == 11 and ds.last_completed_batch.processing_time_ms == 796
    assert [r.name for r in ds.receivers] == ["SocketReceiver-0", "Queue stream [1]"]
    assert snap.queries == ()
    assert (snap.jobs.active, snap.jobs.succeeded) == (1, 20)
    assert snap.driver.namespace == "fixture_dstream"
    assert snap.source(SRC_STREAMING_UI).skipped == "no Structured Streaming tab"


def test_port_range_discovery_and_disappearance(servers, collectors):
    for _ in range(20):  # find p, p+2 both bindable (p+1 stays closed: refused)
        ss = structured_app(servers())
        try:
            ds = dstream_app(servers(ss.port + 2))
            break
        except OSError:
            continue
    else:
        pytest.skip("no free port pair")
    target = PortRangeTarget("127.0.0.1", ss.port, ss.port + 2)
    c = collectors([target])
    snaps = c.collect(T)
    assert {s.app.id for s in snaps} == {SS_APP, DS_APP}
    assert all(s.app.discovered_via == "port-scan" and s.ok for s in snaps)
    assert {s.app.id: s.app.ui_url for s in snaps} == {SS_APP: ss.url, DS_APP: ds.url}
    h = health(c, target.name)
    assert h.up and h.error is None
    # the structured driver hangs: its app stays, stale, with the error (the range is still up)
    c.client.timeout = (0.5, 0.5)
    ss.hanging = True
    snaps = c.collect(T + 10)
    assert [(s.app.id, s.stale) for s in snaps] == [(DS_APP, False), (SS_APP, True)]
    assert "timed out" in snaps[1].errors["applications"]
    assert health(c, target.name).up
    # the DStream driver ends: its port refuses; the app is shown down (its last data, stale),
    # while the range itself is fine (a refused port is no error for the target)
    ds.close()
    snaps = c.collect(T + 20)
    assert [(s.app.id, s.stale) for s in snaps] == [(DS_APP, True), (SS_APP, True)]
    assert "refused" in snaps[0].errors["applications"].lower()
    assert snaps[0].dstream is not None  # last good data
    assert health(c, target.name).up


def test_two_drivers_reporting_one_id_are_two_apps(servers, collectors):
    """Spark names a local app `local-<the millisecond it started>`, so two drivers started
    together can report one id (a CI run saw it: one app shown, with one driver's name and the
    other's query). Each is shown with its own data; the one started later as <id>@<host:port>,
    a key it keeps while it is found, also once the other is gone."""
    ss = structured_app(servers())
    ds = dstream_app(servers(), app_id=SS_APP)
    clock = ManualClock(T)
    c = collectors([ds.url, ss.url], clock=clock, down_app_ttl=15.0)
    twin = f"{SS_APP}@127.0.0.1:{ds.port}"
    for t in (T, T + 10):
        clock.t = t
        by_id = {s.app.id: s for s in c.collect()}
        assert set(by_id) == {SS_APP, twin}
        structured, dstream = by_id[SS_APP], by_id[twin]
        assert (structured.app.name, structured.app.ui_url) == ("fixture-structured", ss.url)
        assert [q.name for q in structured.queries] == ["windowed_counts"]
        assert structured.dstream is None and structured.ok
        assert (dstream.app.name, dstream.app.ui_url) == ("fixture-dstream", ds.url)
        assert dstream.queries == () and dstream.dstream.batch_duration_ms == 2000 and dstream.ok
        assert dstream.driver.namespace == "fixture_dstream"

    ss.close()  # the first driver ends: shown down under its id; the other keeps its key
    clock.t = T + 20
    assert [(s.app.id, s.stale) for s in c.collect()] == [(twin, False), (SS_APP, True)]
    clock.t = T + 30
    assert [(s.app.id, s.stale) for s in c.collect()] == [(twin, False)]


def test_listener_progress_goes_to_the_app_of_its_name_when_two_report_one_id(servers, collectors):
    """Queries only the progress feed knows carry the app's id and name: where two drivers
    report that id, each goes to the app of its name."""
    ss = structured_app(servers())
    ds = dstream_app(servers(), app_id=SS_APP)
    events = [json.loads(line) for line in (FIX / "listener_events.jsonl").read_text().splitlines()]
    other = json.loads((FIX / "standalone/lastProgress_final.json").read_text())
    assert other["id"] != SS_QUERY_ID

    def feed() -> ListFeed:
        return ListFeed([[{**e, "app_id": SS_APP, "app_name": "fixture-structured"}
                          for e in events[:-1]]
                         + [{"event": "progress", "wall": T, "app_id": SS_APP,
                             "app_name": "fixture-dstream", "payload": other}]])

    for order in ([ss.url, ds.url], [ds.url, ss.url]):
        by_id = {s.app.id: s for s in collectors(order, feed=feed()).collect(T)}
        structured, dstream = by_id[SS_APP], by_id[f"{SS_APP}@127.0.0.1:{ds.port}"]
        assert [(q.id, q.last_batch_id) for q in structured.queries] == [(SS_QUERY_ID, 85)]
        assert [(q.id, q.last_batch_id) for q in dstream.queries] == [(other["id"], other["batchId"])]


def test_unreachable_port_is_fast_and_recorded(collectors):
    port = free_port()
    c = collectors([f"http://127.0.0.1:{port}"])
    start = time.monotonic()
    assert c.collect(T) == ()
    assert time.monotonic() - start < 1.5
    h = health(c, f"spark:ui:http://127.0.0.1:{port}")
    assert not h.up and "connection refused" in h.error and h.failures_total == 1


def test_unresponsive_driver_bounded_timeout(collectors):
    with socket.socket() as lsock:  # accepts TCP connections (backlog) but never answers
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        url = f"http://127.0.0.1:{lsock.getsockname()[1]}"
        c = collectors([url], timeout=(0.5, 0.5))
        start = time.monotonic()
        assert c.collect(T) == ()
        elapsed = time.monotonic() - start
    assert elapsed < 3.0
    h = health(c, f"spark:ui:{url}")
    assert not h.up and "timed out" in h.error


def test_streaming_tab_redirect_means_no_queries_yet(servers, collectors):
    # pyspark 4.2 live: before any query starts, /StreamingQuery/ answers 302 -> /jobs/
    srv = structured_app(servers())
    srv.body("/StreamingQuery/", "", status=302, ctype="text/html")
    srv.body("/jobs/", "<html><title>Spark Jobs</title></html>", ctype="text/html")
    (snap,) = collectors([srv.url]).collect(T)
    assert snap.ok, snap.errors
    st = snap.source(SRC_STREAMING_UI)
    assert (st.http_status, st.skipped) == (302, "no Structured Streaming tab")
    assert "/jobs/" not in [urlsplit(r).path for r in srv.requests]


def test_malformed_json_on_one_source(servers, collectors):
    srv = structured_app(servers())
    api = f"/api/v1/applications/{SS_APP}"
    srv.body(f"{api}/jobs", (FIX / "ss_jobs.json").read_text()[:500])  # truncated JSON
    srv.body(f"{api}/stages", "<html>Server Error</html>", status=500, ctype="text/html")
    (snap,) = collectors([srv.url]).collect(T)
    assert set(snap.errors) == {"jobs", "stages"}
    assert "invalid JSON" in snap.errors["jobs"] and f"{api}/jobs" in snap.errors["jobs"]
    assert snap.errors["stages"].startswith("HTTP 500 from ")
    assert not snap.ok and snap.jobs is None and snap.stages is None
    # everything else parsed
    assert len(snap.executors) == 1 and snap.driver is not None
    assert snap.queries[0].name == "windowed_counts" and snap.queries[0].gauges is not None


def test_malformed_metrics_keep_queries(servers, collectors):
    srv = structured_app(servers())
    srv.file("/metrics/json/", "shs/metrics_json.txt", ctype="text/html")  # HTML, not JSON
    (snap,) = collectors([srv.url]).collect(T)
    assert set(snap.errors) == {SRC_METRICS}
    (q,) = snap.queries
    assert q.gauges is None and q.state == QueryState.ACTIVE  # still from the UI page


def test_stale_on_timeout_then_down_on_refusal(servers, collectors):
    srv = structured_app(servers())
    c = collectors([srv.url], timeout=(0.5, 0.5))
    (first,) = c.collect(T)
    assert first.ok
    srv.hanging = True  # the driver stops answering (GC pause, overload)
    start = time.monotonic()
    (stale,) = c.collect(T + 10)
    assert time.monotonic() - start < 3.0
    assert stale.stale and not stale.ok and stale.collected_at == T + 10
    assert stale.app.id == SS_APP and stale.unreachable
    assert stale.queries[0].batches == first.queries[0].batches  # last good data
    assert "timed out" in stale.errors["applications"]
    assert not health(c, f"spark:ui:{srv.url}").up
    srv.close()  # the driver exits: refused -> still shown, down
    (down,) = c.collect(T + 20)
    assert down.stale and down.unreachable and "refused" in down.errors["applications"].lower()


def test_killed_driver_stays_down_with_its_last_values_then_expires(servers, collectors):
    """A driver that was up and then refuses connections (kill -9): the app keeps being
    returned, stale, its query not active whatever the listener said last, until
    down_app_ttl after its last answer; then it is gone, and stays gone."""
    srv = structured_app(servers())
    events = [json.loads(line) for line in (FIX / "listener_events.jsonl").read_text().splitlines()]
    events = [{**e, "app_id": SS_APP} for e in events[:-1]]  # no "terminated": killed
    t0 = events[-1]["wall"] + 1
    clock = ManualClock(t0)
    c = collectors([srv.url], feed=ListFeed([events]), clock=clock, down_app_ttl=100.0)
    (live,) = c.collect()
    assert live.ok and not live.unreachable and live.queries[0].state == QueryState.ACTIVE

    srv.close()  # connection refused from now on
    clock.t = t0 + 15
    (down,) = c.collect()
    assert down.app.id == SS_APP and down.stale and down.unreachable and not down.ok
    assert "refused" in down.errors["applications"].lower()
    (q,) = down.queries
    assert q.state == QueryState.TERMINATED and q.state_source == "app unreachable"
    assert q.exception is None  # not known to have failed
    # its last values are kept
    (lq,) = live.queries
    assert (q.id, q.last_batch_id, q.batches) == (lq.id, lq.last_batch_id, lq.batches)
    assert (down.jobs, down.executors, down.driver) == (live.jobs, live.executors, live.driver)

    clock.t = t0 + 100  # down_app_ttl after its last answer: still shown
    (still,) = c.collect()
    assert still.unreachable and still.collected_at == t0 + 100
    clock.t = t0 + 100.5
    assert c.collect() == ()
    # the listener's last events (still recent) do not bring it back as a feed-only app
    clock.t = t0 + 130
    assert c.collect() == ()


def test_standalone_master_discovery(servers, collectors):
    drv = servers()
    api = f"/api/v1/applications/{SA_APP}"
    drv.file("/api/v1/applications", "standalone/drv_applications.json")
    drv.file(f"{api}/jobs", "shs/ss_jobs.json")  # same app, as the History Server replayed it
    drv.file(f"{api}/allexecutors", "standalone/drv_executors.json")
    drv.file(f"{api}/sql", "shs/ss_sql.json")
    master = servers()
    master.file("/json/", "standalone/master_json.json", ctype="text/json;charset=utf-8")
    html = (FIX / "standalone/master_index.html").read_text().replace("http://192.0.2.2:4040", drv.url)
    master.body("/", html, ctype="text/html;charset=utf-8")
    c = collectors([f"master={master.url}"])
    (snap,) = c.collect(T)
    app = snap.app
    assert (app.id, app.name, app.discovered_via, app.master_state) == \
        (SA_APP, "fixture-structured-standalone", "master", "RUNNING")
    assert app.ui_url == drv.url and app.spark_version == "4.3.0"  # from the driver itself
    assert [e.id for e in snap.executors] == ["driver", "0"]
    assert snap.jobs.active == 0
    (q,) = snap.queries
    assert q.id == "063c66ea-2235-4c60-944e-257923e419a7" and q.last_batch_id == 49
    assert len(q.batches) == 50
    assert q.state == QueryState.UNKNOWN  # no gauges, no UI page, no listener: say so
    # no capture of /stages for this app: a 404 is an error for that source only
    assert set(snap.errors) == {"stages"}
    assert snap.source(SRC_METRICS).skipped == "metrics servlet disabled"
    assert health(c, f"spark:master:{master.url}").up


def test_standalone_master_reverse_proxy(servers, collectors):
    master = servers()
    proxy = f"/proxy/{RP_APP}"
    master.file("/json/", "standalone/rproxy/master_json.json")
    master.file(f"{proxy}/api/v1/applications", "standalone/rproxy/proxy_applications.json")
    master.file(f"{proxy}/api/v1/applications/{RP_APP}/sql", "standalone/rproxy/proxy_sql.json")
    master.file(f"{proxy}/metrics/prometheus/", "standalone/rproxy/proxy_metrics_prometheus.txt")
    c = collectors([f"master+proxy={master.url}"], prometheus=True)
    (snap,) = c.collect(T)
    assert snap.app.ui_url == f"{master.url}{proxy}"
    assert snap.app.name == "fixture-structured-rproxy"
    (q,) = snap.queries
    assert q.name == "windowed_counts" and q.last_batch_id == 21
    assert q.gauges is not None and q.gauges.input_rate is not None  # from PrometheusServlet
    assert q.state == QueryState.ACTIVE and q.state_source == "metrics"
    # without proxy mode and without an index page link, the driver URL is unknown: say so
    (unknown,) = collectors([f"master={master.url}"]).collect(T)
    assert unknown.app.id == RP_APP and unknown.app.ui_url is None
    assert "driver UI URL unknown" in unknown.errors["applications"]


def test_history_server(servers, collectors):
    shs = servers()
    shs.file("/api/v1/applications?status=running", "shs/applications_running.json")
    shs.file("/api/v1/applications?limit=20", "shs/applications.json")
    api = f"/api/v1/applications/{SA_APP}"
    shs.file(f"{api}/jobs", "shs/ss_jobs.json")
    shs.file(f"{api}/allexecutors", "shs/ss_allexecutors.json")
    shs.file(f"{api}/sql", "shs/ss_sql.json")
    shs.file(f"{api}/streaming/statistics", "shs/ss_streaming_statistics.txt", status=404)
    shs.file(f"/history/{SA_APP}/StreamingQuery/", "shs/ss_ui_StreamingQuery.html")
    shs.file("/api/v1/applications/local-1795607611605/jobs", "shs/ds_jobs.json")
    shs.file("/api/v1/applications/local-1795607611605/streaming/statistics",
             "shs/ds_streaming_statistics.txt", status=404)

    assert collectors([HistoryTarget(shs.url)]).collect(T) == ()  # nothing running

    c = collectors([HistoryTarget(shs.url, running_only=False)])
    snaps = c.collect(T)
    # sorted by app name: fixture-dstream-evlog, fixture-structured-standalone
    assert [s.app.id for s in snaps] == ["local-1795607611605", SA_APP]
    ds, ss = snaps
    assert ss.app.completed and ss.app.discovered_via == "history"
    assert ss.app.ui_url == f"{shs.url}/history/{SA_APP}"
    assert ss.driver is None and ss.source(SRC_METRICS) is None  # no metrics on a History Server
    (q,) = ss.queries
    assert (q.state, q.ui_status, q.last_batch_id) == (QueryState.TERMINATED, "FINISHED", 49)
    assert ss.jobs.active == 0 and ss.jobs.failed == 0
    assert ds.dstream is None and ds.source(SRC_DSTREAM_STATISTICS).skipped == "not a DStream app"
    # finished apps do not change: next cycle reads only the application list
    shs.take_requests()
    again = c.collect(T + 10)
    assert [urlsplit(r).path for r in shs.take_requests()] == ["/api/v1/applications"]
    assert [s.app.id for s in again] == ["local-1795607611605", SA_APP]
    assert again[1].queries == ss.queries and again[1].collected_at == T + 10


class ListFeed:
    def __init__(self, batches):
        self.batches = list(batches)

    def drain(self) -> list[dict]:
        return self.batches.pop(0) if self.batches else []


class BrokenFeed:
    def drain(self) -> list[dict]:
        raise ConnectionError("progress topic unavailable")


def test_progress_feed_merged_per_query(servers, collectors):
    srv = structured_app(servers())
    events = [json.loads(line) for line in (FIX / "listener_events.jsonl").read_text().splitlines()]
    other = json.loads((FIX / "standalone/lastProgress_final.json").read_text())
    feed = ListFeed([
        events[:-1] + [{"event": "progress", "wall": T, "app_id": "app-elsewhere",
                        "app_name": "remote-job", "payload": other},
                       {"event": "progress", "payload": {"id": "not-enough"}}],
        [events[-1]],  # the terminated event arrives a cycle later
    ])
    c = collectors([srv.url], feed=feed)
    snaps = c.collect(T)
    assert [s.app.id for s in snaps] == [SS_APP, "app-elsewhere"]
    ss, remote = snaps
    (q,) = ss.queries
    assert len(q.batches) == 50 and q.last_batch_id == 85
    assert [b.batch_id for b in q.batches][-3:] == [83, 84, 85]
    assert q.last_progress.durations.add_batch_ms == 311
    assert q.state == QueryState.ACTIVE and q.gauges.input_rate == 50.0
    assert ss.fetched_at["progress"] == pytest.approx(events[-2]["wall"])
    # an app only the feed knows (its UI is not reachable from here)
    assert remote.app.discovered_via == "progress-feed" and remote.app.name == "remote-job"
    assert remote.queries[0].last_batch_id == other["batchId"]
    fh = health(c, "spark:progress-feed")
    assert fh.up and "1 malformed event(s) skipped" in fh.error

    (ss2, _) = c.collect(T + 10)
    (q2,) = ss2.queries
    assert q2.state == QueryState.TERMINATED and q2.state_source == "listener"
    assert q2.exception is None


def test_broken_feed_does_not_stop_collection(servers, collectors):
    srv = structured_app(servers())
    c = collectors([srv.url], feed=BrokenFeed())
    (snap,) = c.collect(T)
    assert snap.ok and snap.queries[0].name == "windowed_counts"
    fh = health(c, "spark:progress-feed")
    assert not fh.up and "progress topic unavailable" in fh.error


def test_apps_collected_concurrently(servers, collectors):
    a = structured_app(servers())
    b = dstream_app(servers())
    c = collectors([a.url, b.url], workers=2)
    snaps = c.collect(T)
    assert [s.app.id for s in snaps] == [DS_APP, SS_APP]  # sorted by app name
    assert all(s.ok for s in snaps)
