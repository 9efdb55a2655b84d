"""The mounted Dash app, driven without a browser: layout, initial callbacks, interval updates,
URL state, drill-down, hostile names (through tests.dash_driver and a Flask test client).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from collectors.models import Snapshot
from monitor.web.dashboard import ids, mount_dashboard
from monitor.web.views import groups as groups_data
from tests import dashboard_sample as sample
from tests.dash_driver import DashDriver
from monitor.storage import History
from tests.helpers import ManualClock

# Dash 4 deprecates dash_table.DataTable (see docs/dashboard.md, "Known limits")
pytestmark = pytest.mark.filterwarnings("ignore:(?s).*DataTable will be removed:DeprecationWarning")

END = 1_790_000_000.0
INTERVAL = 10.0
PACKAGE = Path(__file__).resolve().parents[2] / "monitor" / "web" / "dashboard"




@pytest.fixture
def env(tmp_path):
    clock = ManualClock(END)
    history = History(tmp_path / "history.db", clock=clock)
    spec = sample.default_spec(hostile=True)
    monitor = sample.build(history, spec=spec, cycles=30, interval=INTERVAL, end=END, spark=True, clock=clock,
                           alerting=sample.SampleAlerting([sample.alert(
                               "ConsumerLagHigh", "firing", labels={"group": "clickstream-enricher-slow"},
                               value=5000, active_at=END - 120, summary="lag above 1000")]))
    app = Flask("test-dashboard")
    mount_dashboard(app, monitor)
    driver = DashDriver(app.test_client())

    def advance(cycles: int = 1):
        """New collection cycles: history appended, a new snapshot published."""
        for _ in range(cycles):
            clock.t += INTERVAL
            i = int(round((clock.t - END) / INTERVAL)) + 29
            state = sample.cluster_state(spec, clock.t, i, interval=INTERVAL)
            history.kafka.append(state)
            old = monitor.snapshots.latest()
            monitor.snapshots.publish(Snapshot(at=clock.t, clusters=(state,), health=old.health, spark=old.spark))

    yield monitor, driver, advance
    history.close()


def _fig(driver, cid):
    return driver.props(cid)["figure"]


def test_every_page_renders_with_data(env):
    _monitor, driver, _ = env
    expectations = {
        "/": ["Pipeline overview", "102 msg/s", "clickstream-enricher-slow", "kafka:demo"],
        "/topics": ["Topics", "clickstream", "orders", "under-replicated"],
        "/groups": ["clickstream-enricher-slow", "clickstream-archiver", "spark query", "enrich"],
        "/spark": ["streamscope-demo-enricher", "enrich", "keeping up", "foreachBatch at enrich.py:42"],
        "/alerts": ["ConsumerLagHigh", "1 firing", "group=clickstream-enricher-slow"],
    }
    for page, texts in expectations.items():
        driver.load(page)
        assert not driver.errors, driver.errors
        text = driver.text()
        for t in texts:
            assert t in text, (page, t)
        posts = [r for r in driver.requests if not r.output.startswith("GET")]
        assert posts and all(r.status in (200, 204) for r in posts)
    driver.load("/")
    assert not _fig(driver, ids.OV_TOPOLOGY)["data"] == []
    assert _fig(driver, ids.OV_LAG)["data"]


def test_group_drill_down_renders_charts(env):
    _monitor, driver, _ = env
    driver.load("/groups", "?cluster=demo&group=clickstream-enricher-slow&range=15m")
    assert not driver.errors
    assert driver.props("gr-name")["children"] == "clickstream-enricher-slow"
    lines = _fig(driver, ids.GR_PARTITION_LAG)["data"]
    assert len(lines) == 6 and all(len(t["x"]) == 30 for t in lines)
    heat = _fig(driver, ids.GR_HEATMAP)["data"][0]
    assert len(heat["z"]) == 30 and len(heat["z"][0]) == 6 and len(heat["x"]) == 30
    assert [t["name"] for t in _fig(driver, ids.GR_RATES)["data"]] == ["produce rate", "consume rate", "lag (messages)"]
    assert len(driver.props(ids.GR_PARTITIONS)["data"]) == 6
    assert "WARN" in driver.text(ids.GR_SUMMARY)


def test_interval_update_is_a_small_patch(env):
    _monitor, driver, advance = env
    driver.load("/groups", "?cluster=demo&group=clickstream-enricher-slow&range=1h")
    nothing = driver.tick()  # no new snapshot: charts are not redrawn
    detail = [r for r in nothing if "gr-summary" in r.output]
    assert detail and detail[0].status == 204
    advance()
    reqs = driver.tick()
    detail = [r for r in reqs if "gr-summary" in r.output][0]
    assert detail.status == 200 and detail.bytes_out < 8000, detail
    lines = _fig(driver, ids.GR_PARTITION_LAG)["data"]
    assert all(len(t["x"]) == 31 for t in lines)  # one point appended to each line
    heat = _fig(driver, ids.GR_HEATMAP)["data"][0]
    assert len(heat["x"]) == 31 and len(heat["z"]) == 31 and all(len(col) == 6 for col in heat["z"])
    assert len(_fig(driver, ids.GR_RATES)["data"][0]["x"]) == 31


def test_overview_tick_patches_topology(env):
    _monitor, driver, advance = env
    driver.load("/")
    before = _fig(driver, ids.OV_TOPOLOGY)
    advance()
    reqs = driver.tick()
    ov = [r for r in reqs if "ov-headline" in r.output][0]
    assert ov.status == 200 and ov.bytes_out < 20_000
    after = _fig(driver, ids.OV_TOPOLOGY)
    assert after["data"][1]["x"] == before["data"][1]["x"]  # same nodes, colours/hover patched
    assert len(_fig(driver, ids.OV_LAG)["data"][0]["x"]) == 31


def test_time_range_change_requeries(env):
    _monitor, driver, _ = env
    driver.load("/groups", "?cluster=demo&group=clickstream-enricher-slow&range=1h")
    rng = _fig(driver, ids.GR_RATES)["layout"]["xaxis"]["range"]
    reqs = driver.set_props(ids.RANGE, value="15m")
    assert any("gr-summary" in r.output and r.status == 200 for r in reqs)
    new = _fig(driver, ids.GR_RATES)["layout"]["xaxis"]["range"]
    assert new[1] == rng[1] and new[0] > rng[0]  # 15 minutes instead of an hour
    assert driver.props(ids.URL_SEARCH)["data"] == "?cluster=demo&group=clickstream-enricher-slow&range=15m"


def test_url_state_round_trip(env):
    _monitor, driver, _ = env
    driver.load("/groups", "?cluster=demo&group=clickstream-archiver&range=6h")
    assert driver.props(ids.RANGE)["value"] == "6h"
    assert driver.props(ids.CLUSTER)["value"] == "demo"
    assert driver.props(ids.GR_SELECTION)["data"] == {"cluster": "demo", "group": "clickstream-archiver"}
    assert driver.props(ids.URL_SEARCH)["data"] == "?cluster=demo&group=clickstream-archiver&range=6h"
    assert driver.props("nav-topics")["href"] == "/topics?cluster=demo&range=6h"
    assert "active" in driver.props("nav-groups")["className"]
    driver.load("/topics", "?cluster=demo&topic=orders&range=24h")
    assert driver.props(ids.TP_SELECT)["value"] == "orders"
    assert driver.props(ids.RANGE)["value"] == "24h"
    assert "3 partitions" in driver.props(ids.TP_PARTITIONS_NOTE)["children"]


def test_page_in_the_query_string_redirects(env):
    _monitor, driver, _ = env
    driver.load("/", "?page=groups&group=clickstream-archiver&range=6h")
    assert driver.props(ids.URL)["href"] == "/groups?group=clickstream-archiver&range=6h"


def test_click_a_group_row_drills_down(env):
    _monitor, driver, _ = env
    driver.load("/groups", "?range=6h")
    rows = driver.props(ids.GR_TABLE)["data"]
    row = next(r for r in rows if r["group"] == "clickstream-enricher-slow")
    driver.set_props(ids.GR_TABLE, active_cell={"row": 0, "column": 1, "column_id": "group", "row_id": row["id"]})
    assert driver.props(ids.URL)["href"] == "/groups?cluster=demo&group=clickstream-enricher-slow&range=6h"
    query = next(r for r in rows if r["kind"] == groups_data.KIND_QUERY)
    driver.set_props(ids.GR_TABLE, active_cell={"row": 1, "column": 1, "column_id": "group", "row_id": query["id"]})
    assert driver.props(ids.URL)["href"].startswith("/spark?") and "app=app-20261124-0001" in driver.props(ids.URL)["href"]


def test_groups_table_sort_filter_page(env):
    _monitor, driver, _ = env
    driver.load("/groups")
    default = [r["group"] for r in driver.props(ids.GR_TABLE)["data"]]
    assert default[0] == "orders-billing"  # worst status first
    driver.set_props(ids.GR_TABLE, filter_query="{lag} > 1000 && {kind} icontains consumer")
    rows = driver.props(ids.GR_TABLE)["data"]
    assert {r["group"] for r in rows} == {"clickstream-enricher-slow", "orders-billing"}
    assert "match the filter" in driver.props(ids.GR_COUNT)["children"]
    driver.set_props(ids.GR_TABLE, filter_query="", sort_by=[{"column_id": "lag", "direction": "asc"}])
    assert [r["group"] for r in driver.props(ids.GR_TABLE)["data"]][:2] == [sample.HOSTILE_GROUP, "clickstream-archiver"]
    assert set(driver.props(ids.GR_TABLE)["data"][0]) <= {"id", "_level", *[c for c, _ in __import__(
        "monitor.web.dashboard.pages.groups", fromlist=["COLUMNS"]).COLUMNS]}


def test_topology_click_and_topic_selection(env):
    _monitor, driver, _ = env
    driver.load("/", "?range=15m")
    idx = driver.props(ids.OV_TOPOLOGY_META)["data"]["keys"].index("g:clickstream-archiver")
    driver.set_props(ids.OV_TOPOLOGY, clickData={"points": [{"customdata": idx}]})
    assert driver.props(ids.URL)["href"] == "/groups?group=clickstream-archiver&range=15m"
    driver.load("/topics", "?range=15m")
    assert driver.props(ids.TP_SELECT)["value"] == "clickstream"  # busiest by default
    driver.set_props(ids.TP_TABLE, active_cell={"row": 0, "column": 0, "row_id": "orders"})
    assert driver.props(ids.TP_SELECT)["value"] == "orders"
    assert driver.props(ids.URL_SEARCH)["data"] == "?topic=orders&range=15m"
    assert "partition 2" in json.dumps(_fig(driver, ids.TP_PARTITION_RATES))


def test_hostile_names_render_as_text(env):
    _monitor, driver, _ = env
    driver.load("/groups")
    rows = driver.props(ids.GR_TABLE)["data"]
    assert sample.HOSTILE_GROUP in [r["group"] for r in rows]  # a plain string cell
    hostile_id = next(r["id"] for r in rows if r["group"] == sample.HOSTILE_GROUP)
    driver.set_props(ids.GR_TABLE, active_cell={"row": 0, "column": 1, "row_id": hostile_id})
    href = driver.props(ids.URL)["href"]
    assert "<" not in href and "\n" not in href and '"' not in href
    path, _, search = href.partition("?")
    driver.load(path, "?" + search)
    assert not driver.errors
    assert driver.props("gr-name")["children"] == sample.HOSTILE_GROUP  # text child, not markup
    for page in ("/", "/groups", "/topics", "/spark", "/alerts"):
        driver.load(page)
        tree = json.dumps(driver.layout) + json.dumps([driver.components[k] for k in driver.components])
        assert '"type": "Markdown"' not in tree and "dangerously_allow_html" not in tree


def test_no_markup_apis_in_the_dashboard_source():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "dangerously_allow_html" not in text, path
        assert "dcc.Markdown" not in text and "presentation\": \"markdown" not in text, path
        assert "html.Iframe" not in text and "srcDoc" not in text, path


def test_pages_render_before_the_first_cycle(tmp_path):
    history = History(tmp_path / "h.db")
    monitor = sample.context(sample.SampleStore(), history)
    app = Flask("empty")
    mount_dashboard(app, monitor)
    driver = DashDriver(app.test_client())
    for page in ("/", "/topics", "/groups", "/spark", "/alerts"):
        driver.load(page)
        assert not driver.errors, (page, driver.errors)
    driver.load("/")
    assert "waiting for the first collection cycle" in driver.text().lower()
    driver.load("/spark")
    assert "Waiting for the first collection cycle" in driver.text()
    monitor.snapshots.publish(Snapshot(at=END))
    driver.tick()  # the open page leaves "waiting" by itself
    assert "No Spark application found" in driver.text() and "spark.ui_urls" in driver.text()
    driver.load("/spark")
    assert "No Spark application found" in driver.text() and "spark.ui_urls" in driver.text()
    driver.load("/alerts")
    assert "alerting.enabled: false" in driver.text()
    history.close()


def test_two_dashboards_in_one_process(env, tmp_path):
    """@dash.callback registrations are installed on every mounted app, not only the first."""
    _monitor, driver, _ = env
    other = sample.build(None, cycles=2, end=END)
    app = Flask("second")
    mount_dashboard(app, other)
    second = DashDriver(app.test_client())
    second.load("/groups")
    assert not second.errors and "clickstream-archiver" in second.text()
    assert sample.HOSTILE_GROUP not in second.text()  # its own monitor, not the first one
    driver.load("/groups")
    assert sample.HOSTILE_GROUP in driver.text()


def test_metrics_routes_still_served_next_to_the_dashboard(env):
    from monitor.web.settings import WebConfig
    from monitor.web.app import create_app

    monitor, _driver, _ = env
    monitor = replace(monitor, metrics=type("M", (), {"latest": staticmethod(lambda: b"# metrics\n")})())
    app = create_app(monitor, WebConfig())
    mount_dashboard(app, monitor)
    client = app.test_client()
    assert client.get("/metrics").data == b"# metrics\n"
    assert client.get("/").status_code == 200
    assert client.get("/groups?group=x").status_code == 200
    assert client.get("/topics/").status_code == 200
    # the dashboard claims its pages only: unknown paths keep the server's JSON 404
    for path in ("/api/v1/nope", "/metricz", "/groups/x/y", "/favicon.ico"):
        r = client.get(path)
        assert r.status_code == 404 and r.is_json, path


def test_auth_covers_dashboard_routes(env, monkeypatch):
    from monitor.settings import SecretRef
    from monitor.web.settings import WebConfig
    from monitor.web.app import create_app

    monitor, _driver, _ = env
    monkeypatch.setenv("SS_TEST_TOKEN", "s3cret")
    app = create_app(monitor, WebConfig(auth_token=SecretRef(env="SS_TEST_TOKEN")))
    mount_dashboard(app, monitor)
    client = app.test_client()
    for path in ("/", "/groups", "/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401, path
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_spark_page_updates_in_place(env):
    monitor, driver, advance = env
    driver.load("/spark")
    figs = driver.find({"type": "sp-fig", "id": "x"} | {"id": ["ALL"]})
    assert len(figs) == 4
    advance()
    reqs = driver.tick()
    structure = [r for r in reqs if "sp-content" in r.output][0]
    values = [r for r in reqs if "sp-fig" in r.output][0]
    assert structure.status == 204 and values.status == 200  # same apps: figures refreshed only
    assert not driver.errors


def test_what_the_peers_show_on_the_pages_and_the_api(env):
    """Issue 15: retention risk and the probe in the overview headline; the group's coordinator,
    assignor, retention headroom, partition owners and recent commits in its drill-down; the same
    in the JSON API."""
    from monitor.web.app import create_app
    from monitor.web.settings import WebConfig

    monitor, driver, _ = env
    driver.load("/")
    headline = driver.text(ids.OV_HEADLINE)
    # orders keeps 1 h; the stopped orders-billing group is ~1.5 min behind: under an hour left
    assert "Retention risk" in headline and "orders-billing on orders" in headline and "(by retention.ms)" in headline
    assert "End-to-end probe" in headline and "mean round trip 12 ms" in headline

    driver.load("/groups", "?cluster=demo&group=orders-billing&range=15m")
    assert not driver.errors
    summary = driver.text(ids.GR_SUMMARY)
    assert "Retention headroom" in summary and "on orders" in summary
    assert "Coordinator" in summary and "broker" in summary
    driver.load("/groups", "?cluster=demo&group=clickstream-archiver&range=15m")
    assert "assignor cooperative-sticky" in driver.text(ids.GR_SUMMARY)
    rows = driver.props(ids.GR_PARTITIONS)["data"]
    assert {r["host"] for r in rows} == {"/127.0.0.1"} and {r["member"] for r in rows} == {"m-0"}
    assert all("(by retention.ms)" in r["headroom"] for r in rows)  # 3-8 records behind on a 7-day topic
    commits = driver.props(ids.GR_COMMITS)["data"]
    assert len(commits) == 6 * 5  # the last 5 of each of the 6 partitions (the offsets move every cycle)
    assert all(" – " in c["committed"] for c in commits)  # dated between two cycles

    app = create_app(monitor, WebConfig())
    client = app.test_client()
    group = client.get("/api/v1/clusters/demo/groups/orders-billing").get_json()
    assert group["coordinator"] in (1, 2, 3) and group["protocol_type"] == "consumer"
    (risk,) = group["retention"]
    assert risk["topic"] == "orders" and risk["basis"] == "time" and 0 < risk["headroom_seconds"] < 3600
    archiver = client.get("/api/v1/clusters/demo/groups/clickstream-archiver").get_json()
    assert archiver["assignor"] == "cooperative-sticky"
    assert {(p["owner_client_id"], p["owner_host"]) for p in archiver["partitions"]} == {("consumer-0", "/127.0.0.1")}
    listed = {g["group"]: g for g in client.get("/api/v1/clusters/demo/groups").get_json()}
    assert listed["orders-billing"]["records_lost"] == 0 and listed["orders-billing"]["retention_basis"] == "time"
    assert "partitions" not in listed["orders-billing"]  # the list leaves them to the group's own endpoint
    assert sum(t["lag"] for t in listed["orders-billing"]["topic_lags"]) == listed["orders-billing"]["lag"]
    commits = client.get(f"/api/v1/history/commits/demo/clickstream-archiver?end={END}&seconds=600&limit=2").get_json()
    assert len(commits) == 6 * 2 and {c["partition"] for c in commits} == set(range(6))
    assert client.get("/api/v1/history/commits/demo/clickstream-archiver?limit=x").status_code == 400
    topics = {t["topic"]: t for t in client.get("/api/v1/clusters/demo/topics").get_json()}
    assert topics["orders"]["config"]["retention_ms"] == 3_600_000 and topics["orders"]["under_min_isr"] == 1
    (cluster,) = client.get("/api/v1/clusters").get_json()
    assert cluster["probe"]["up"] is True and cluster["log_dirs"][0]["usable_bytes"] == 320_000_000_000
