"""The dashboard in a real headless Chromium against a running demo pipeline.

Starts `demo.pipeline.DemoPipeline` (real Kafka broker, producer, two consumer groups, Spark when
pyspark, the connector jars and the Spark source are available, the demo's local alert receivers,
the Monitor with its web server and the demo's alert tuning) plus one consumer group with a
hostile name, then drives every page with selenium: data shown, no browser console errors,
drill-down, time-range change, URL state round trip, live updates, theme toggle, the complete
topology without internal topics, the slow group's alert firing and its notification log.
Screenshots of every page go to docs/screenshots/.

Chromium (`/usr/bin/chromium` + `/usr/bin/chromedriver`) missing: skipped outside CI, failed in CI.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import missing_prerequisite
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:(?s).*DataTable will be removed:DeprecationWarning")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = os.environ.get("STREAMSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STREAMSCOPE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1000", "--hide-scrollbars")
# No newline here: the collector's default group filter (allow ".*", fullmatch without DOTALL)
# drops names containing one; newlines are covered by the unit tests.
HOSTILE_GROUP = 'evil"\'<script>window.__pwned=1</script><b>bold</b>&amp;'
# The hostile group reads an idle topic of its own: it is drawn and listed, but never lags, so
# the screenshots' alerts are the demo's own.
HOSTILE_TOPIC = "audit-log"
SLOW = "clickstream-enricher-slow"
WAIT = 60
ALERT_WAIT = 180  # the slow group passes the demo's 600-message threshold ~1 min after start
SCHEMAS = "_schemas"  # an internal topic by name (Schema Registry's), created by the fixture
INTERNAL_TOPICS = (SCHEMAS, "streamscope-progress")


def spark_available() -> bool:
    """Spark in the demo needs pyspark, the demo's Spark jobs, the monitor's Spark source and
    the Kafka connector jars already in the cache (no network here)."""
    for module in ("pyspark", "demo.spark_pipeline", "monitor.collection.spark_source"):
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except ImportError:
            return False
    try:
        from demo import jars

        return jars.is_resolved("spark-kafka")
    except Exception:
        return False


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from demo.jars import PrerequisiteMissing
    from demo.pipeline import DemoPipeline, DemoSettings, create_topics

    settings = DemoSettings(web_port=free_port(), data_dir=tmp_path_factory.mktemp("demo"),
                            spark=spark_available(), interval_seconds=2)
    pipe = DemoPipeline(settings)
    try:
        pipe.start()
    except PrerequisiteMissing as exc:
        pipe.stop()
        missing_prerequisite(f"cannot start the demo pipeline: {exc}")
    try:
        create_topics(pipe.bootstrap, {SCHEMAS: 1, HOSTILE_TOPIC: 1})
        _commit_hostile_group(pipe.bootstrap)
        assert pipe.wait_for_cycles(4, 120), "the monitor did not complete 4 collection cycles"
        pipe.base_url = f"http://127.0.0.1:{settings.web_port}"
        yield pipe
    finally:
        pipe.stop()


def _commit_hostile_group(bootstrap: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": HOSTILE_GROUP,
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(HOSTILE_TOPIC, 0, 0)], asynchronous=False)
    consumer.close()


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()) or not Path(CHROMEDRIVER).exists():
        missing_prerequisite(f"headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def wait(driver, condition, what: str, timeout: float = WAIT):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def safe(d):
        try:
            return condition(d)
        except WebDriverException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(safe)
    except Exception as exc:  # TimeoutException: say what we waited for, with the page text
        text = driver.execute_script("return document.body ? document.body.innerText : ''")[:2000]
        raise AssertionError(f"timed out waiting for {what}; page text:\n{text}") from exc


def open_page(driver, base: str, path: str) -> None:
    driver.get(base + path)
    wait(driver, lambda d: d.execute_script(
        "return !!document.querySelector('#_pages_content') && "
        "document.querySelector('#_pages_content').children.length > 0"), f"page {path}")


def body_text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def plot_traces(driver, graph_id: str) -> list[dict]:
    """The traces plotly drew in a dcc.Graph: [{name, type, n}]."""
    return driver.execute_script(
        """
        const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
        if (!gd || !gd.data) return null;
        return gd.data.map(t => ({name: t.name || '', type: t.type || 'scatter',
                                  n: (t.x || []).length,
                                  rows: t.transpose ? ((t.z || [])[0] || []).length : (t.z || []).length}));
        """, graph_id) or []


def xaxis_range(driver, graph_id: str):
    return driver.execute_script(
        "const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "return gd && gd.layout && gd.layout.xaxis ? gd.layout.xaxis.range : null;", graph_id)


def severe_logs(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def query(driver) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    driver.set_window_size(1400, max(800, min(int(height) + 20, 2600)))
    time.sleep(0.8)  # plotly relayout after the resize
    driver.save_screenshot(str(SCREENSHOTS / name))
    driver.set_window_size(1400, 1000)


def table_cells(driver, table_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' td.dash-cell'))"
        ".map(td => td.innerText);", table_id)


def click_live_cell(driver, table_id: str, matches, clicked, what: str, *, reopen, attempts: int = 3) -> None:
    """Click the cell of a live table whose text `matches` until `clicked(driver)` holds.

    A live update can replace the table between finding a cell and clicking it (the element is
    then stale), or re-sort it (the element then holds another row, e.g. the Spark query's, which
    links to /spark): the cell is looked up inside a wait, and a missed click reopens the page
    (`reopen`) and tries again."""
    from selenium.common.exceptions import StaleElementReferenceException

    def cell(d):
        return next((td for td in d.find_elements("css selector", f"#{table_id} td.dash-cell")
                     if matches(td.text)), False)

    for attempt in range(attempts):
        try:
            wait(driver, cell, what).click()
        except StaleElementReferenceException:
            pass
        try:
            wait(driver, clicked, f"what a click on {what} shows", timeout=10)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise
            reopen()


# --------------------------------------------------------------------------------------------
# the tests (one pipeline and one browser for all; ordered like a user's visit)
# --------------------------------------------------------------------------------------------


def test_overview(pipeline, browser):
    browser.get_log("browser")  # drop anything logged before
    open_page(browser, pipeline.base_url, "/")
    wait(browser, lambda d: "msg/s" in d.find_element("id", "ov-headline").text, "headline figures")
    wait(browser, lambda d: len(plot_traces(d, "ov-topology")) == 2, "topology figure")
    wait(browser, lambda d: SLOW in d.find_element("id", "ov-topology").text, "group node label")
    topo_text = browser.find_element("id", "ov-topology").text
    assert "clickstream" in topo_text and "producers" in topo_text
    if pipeline.spark is not None:  # the query and what it writes complete the picture
        wait(browser, lambda d: "clickstream-stats" in d.find_element("id", "ov-topology").text,
             "the Spark query's output topic", timeout=120)
    topo_text = browser.find_element("id", "ov-topology").text
    assert not [t for t in INTERNAL_TOPICS if t in topo_text], topo_text
    wait(browser, lambda d: any(t["n"] > 1 for t in plot_traces(d, "ov-lag")), "lag over time")
    health = browser.find_element("id", "ov-health").text
    assert "kafka:demo" in health and "up" in health
    assert "WORST LAG" in browser.find_element("id", "ov-headline").text.upper()
    assert query(browser).get("range") == "1h"
    assert severe_logs(browser) == []


def test_overview_live_updates(pipeline, browser):
    open_page(browser, pipeline.base_url, "/?range=15m")
    wait(browser, lambda d: any(t["n"] > 1 for t in plot_traces(d, "ov-lag")), "lag over time")
    before = max(t["n"] for t in plot_traces(browser, "ov-lag"))
    wait(browser, lambda d: max(t["n"] for t in plot_traces(d, "ov-lag")) > before,
         "a new point appended by an interval update", timeout=30)
    assert severe_logs(browser) == []


def test_topics(pipeline, browser):
    open_page(browser, pipeline.base_url, "/topics")
    wait(browser, lambda d: "clickstream" in table_cells(d, "tp-table"), "topics table")
    wait(browser, lambda d: any(t["name"] == "clickstream" and t["n"] > 1
                                for t in plot_traces(d, "tp-throughput")), "throughput per topic")
    wait(browser, lambda d: len(plot_traces(d, "tp-partition-rates")) == 6, "throughput per partition")
    wait(browser, lambda d: "6 partitions" in d.find_element("id", "tp-partitions-note").text,
         "partition table")
    cells = table_cells(browser, "tp-partitions")
    assert "0" in cells and "no" in cells  # partition 0, not under-replicated
    assert query(browser).get("topic") == "clickstream"
    assert severe_logs(browser) == []


def test_groups_table_and_drill_down(pipeline, browser):
    open_page(browser, pipeline.base_url, "/groups?range=15m")
    wait(browser, lambda d: SLOW in table_cells(d, "gr-table"), "groups table")
    cells = table_cells(browser, "gr-table")
    assert "clickstream-archiver" in cells and "consumer group" in cells
    # click the slow group's row: the URL carries the selection, the drill-down renders.
    click_live_cell(browser, "gr-table", lambda text: text == SLOW, lambda d: query(d).get("group") == SLOW,
                    "the slow group's row", reopen=lambda: open_page(browser, pipeline.base_url, "/groups?range=15m"))
    assert query(browser) == {"cluster": "demo", "group": SLOW, "range": "15m"}
    wait(browser, lambda d: d.find_element("id", "gr-name").text == SLOW, "group detail title")
    wait(browser, lambda d: len(plot_traces(d, "gr-partition-lag")) == 6, "lag per partition chart")
    wait(browser, lambda d: (plot_traces(d, "gr-heatmap") or [{}])[0].get("rows") == 6, "heatmap")
    wait(browser, lambda d: len(plot_traces(d, "gr-rates")) == 3, "produce vs consume chart")
    wait(browser, lambda d: len(table_cells(d, "gr-partitions")) > 0, "partition table")
    assert "LAG" in browser.find_element("id", "gr-summary").text.upper()
    assert severe_logs(browser) == []


def test_time_range_change_requeries(pipeline, browser):
    open_page(browser, pipeline.base_url, f"/groups?cluster=demo&group={SLOW}&range=15m")
    wait(browser, lambda d: xaxis_range(d, "gr-rates") is not None, "rates chart")
    a, b = xaxis_range(browser, "gr-rates")
    span_15m = _span(a, b)
    assert abs(span_15m - 900) < 5
    label = next(el for el in browser.find_elements("css selector", "#range label") if el.text == "6h")
    label.click()
    wait(browser, lambda d: abs(_span(*xaxis_range(d, "gr-rates")) - 21600) < 30, "6 h x axis")
    wait(browser, lambda d: query(d).get("range") == "6h", "range in the URL")
    assert query(browser)["group"] == SLOW  # the page's selection is kept
    assert severe_logs(browser) == []


def _span(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def test_url_state_round_trip(pipeline, browser):
    url = "/groups?cluster=demo&group=clickstream-archiver&range=24h"
    open_page(browser, pipeline.base_url, url)
    wait(browser, lambda d: d.find_element("id", "gr-name").text == "clickstream-archiver", "detail")
    selected = browser.find_element("css selector", "#range .selected").text
    assert selected == "24h"
    wait(browser, lambda d: len(plot_traces(d, "gr-partition-lag")) == 6, "lag chart")
    assert abs(_span(*xaxis_range(browser, "gr-partition-lag")) - 86400) < 60
    assert query(browser) == {"cluster": "demo", "group": "clickstream-archiver", "range": "24h"}
    nav = browser.find_element("id", "nav-topics").get_attribute("href")
    assert nav.endswith("/topics?cluster=demo&range=24h")
    # and a topic selection survives a reload
    open_page(browser, pipeline.base_url, "/topics?topic=clickstream&range=6h")
    wait(browser, lambda d: "6 partitions" in d.find_element("id", "tp-partitions-note").text, "topic")
    assert browser.find_element("css selector", "#range .selected").text == "6h"
    # the page can also be given in the query string
    open_page(browser, pipeline.base_url, "/?page=alerts&range=15m")
    wait(browser, lambda d: urlparse(d.current_url).path == "/alerts", "redirect to /alerts")
    wait(browser, lambda d: d.find_element("id", "al-sub").text != "", "alerts page")
    assert query(browser) == {"range": "15m"}
    assert severe_logs(browser) == []


def test_hostile_group_name_is_text(pipeline, browser):
    wait(browser, lambda d: pipeline.monitor.store.latest() is not None and any(
        g.group == HOSTILE_GROUP for c in pipeline.monitor.store.latest().clusters for g in c.lag.groups),
        "the hostile group in a snapshot", timeout=30)
    open_page(browser, pipeline.base_url, "/groups?range=15m")
    wait(browser, lambda d: any("<script>" in c for c in table_cells(d, "gr-table")), "hostile row")
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.execute_script("return document.querySelectorAll('#gr-table b, #gr-table script').length") == 0
    click_live_cell(browser, "gr-table", lambda text: "<script>" in text,
                    lambda d: "<script>" in d.find_element("id", "gr-name").text, "the hostile group's row",
                    reopen=lambda: open_page(browser, pipeline.base_url, "/groups?range=15m"))
    assert query(browser)["group"] == HOSTILE_GROUP  # exact round trip through the URL
    assert browser.execute_script("return window.__pwned === undefined")
    open_page(browser, pipeline.base_url, "/")
    wait(browser, lambda d: "<script>" in d.find_element("id", "ov-topology").text, "hostile node label")
    assert browser.execute_script(
        "return document.querySelectorAll('#ov-topology script, #ov-topology b').length") == 0
    assert browser.execute_script("return window.__pwned === undefined")
    assert severe_logs(browser) == []


def test_spark(pipeline, browser):
    open_page(browser, pipeline.base_url, "/spark")
    if pipeline.spark is not None:
        wait(browser, lambda d: "Batch duration" in body_text(d), "Spark queries", timeout=120)
        # the verdict needs a few batches of progress: "unknown" until then (a fresh pipeline)
        wait(browser, lambda d: "keeping up" in body_text(d) or "falling behind" in body_text(d),
             "the query's keeping-up verdict", timeout=120)
    else:
        wait(browser, lambda d: "No Spark application found" in body_text(d), "Spark empty state")
        assert "spark.ui_urls" in body_text(browser)
    assert severe_logs(browser) == []


def slow_alert_firing(driver) -> bool:
    cells = table_cells(driver, "al-firing")
    return "StreamscopeConsumerLagHigh" in cells and any(SLOW in c for c in cells)


def notifications_delivered(driver) -> bool:
    cells = table_cells(driver, "al-notifications")
    return {"demo-webhook (webhook)", "demo-mail (email)"} <= set(cells) and "delivered" in cells


def test_internal_topics_toggle(pipeline, browser):
    open_page(browser, pipeline.base_url, "/")
    wait(browser, lambda d: "clickstream" in d.find_element("id", "ov-topology").text, "topology")
    assert SCHEMAS not in browser.find_element("id", "ov-topology").text
    browser.find_element("css selector", "#ov-internal input").click()
    wait(browser, lambda d: SCHEMAS in d.find_element("id", "ov-topology").text,
         "internal topics shown on request")
    browser.find_element("css selector", "#ov-internal input").click()
    wait(browser, lambda d: SCHEMAS not in d.find_element("id", "ov-topology").text,
         "internal topics hidden again")
    assert severe_logs(browser) == []


def test_alerts(pipeline, browser):
    open_page(browser, pipeline.base_url, "/alerts")
    wait(browser, lambda d: "firing" in d.find_element("id", "al-sub").text, "alert counts")
    wait(browser, slow_alert_firing, "the slow group's lag alert firing", timeout=ALERT_WAIT)
    wait(browser, notifications_delivered, "its notifications delivered to both local receivers",
         timeout=ALERT_WAIT)
    assert "FIRING" in table_cells(browser, "al-notifications")
    assert severe_logs(browser) == []


def test_theme_toggle_persists(pipeline, browser):
    open_page(browser, pipeline.base_url, "/")
    theme = browser.execute_script("return document.documentElement.dataset.theme")
    browser.find_element("id", "theme-toggle").click()
    other = "dark" if theme == "light" else "light"
    wait(browser, lambda d: d.execute_script("return document.documentElement.dataset.theme") == other,
         "theme switched")
    open_page(browser, pipeline.base_url, "/groups")
    wait(browser, lambda d: d.execute_script("return document.documentElement.dataset.theme") == other,
         "theme kept after navigation (local storage)")
    browser.find_element("id", "theme-toggle").click()
    wait(browser, lambda d: d.execute_script("return document.documentElement.dataset.theme") == theme,
         "theme switched back")
    assert severe_logs(browser) == []


def test_screenshots(pipeline, browser):
    """Every page, last (the demo has run longest), into docs/screenshots/; light theme, plus
    the overview in the dark theme."""
    base = pipeline.base_url
    if browser.execute_script("return document.documentElement.dataset.theme") == "dark":
        browser.find_element("id", "theme-toggle").click()
    def complete_topology(d) -> bool:
        text = d.find_element("id", "ov-topology").text
        return len(plot_traces(d, "ov-topology")) == 2 and (
            pipeline.spark is None or "clickstream-stats" in text)

    shots = [
        ("overview.png", "/?range=15m", complete_topology),
        ("topics.png", "/topics?topic=clickstream&range=15m",
         lambda d: len(plot_traces(d, "tp-partition-rates")) == 6),
        ("groups.png", "/groups?range=15m", lambda d: SLOW in table_cells(d, "gr-table")),
        ("group-detail.png", f"/groups?cluster=demo&group={SLOW}&range=15m",
         lambda d: len(plot_traces(d, "gr-partition-lag")) == 6
         and len(table_cells(d, "gr-partitions")) > 0),
        ("spark.png", "/spark?range=15m",
         lambda d: "Batch duration" in body_text(d) or "No Spark application" in body_text(d)),
        ("alerts.png", "/alerts?range=15m", lambda d: slow_alert_firing(d) and notifications_delivered(d)),
    ]
    for name, path, ready in shots:
        open_page(browser, base, path)
        wait(browser, ready, f"{path} ready for its screenshot")
        time.sleep(1.0)
        screenshot(browser, name)
    open_page(browser, base, "/?range=15m")
    browser.find_element("id", "theme-toggle").click()
    wait(browser, lambda d: d.execute_script("return document.documentElement.dataset.theme") == "dark"
         and len(plot_traces(d, "ov-topology")) == 2, "dark overview")
    time.sleep(1.0)
    screenshot(browser, "overview-dark.png")
    browser.find_element("id", "theme-toggle").click()
    assert severe_logs(browser) == []


def test_metrics_still_served_on_the_same_port(pipeline):
    import requests

    r = requests.get(pipeline.base_url + "/metrics", timeout=10)
    assert r.status_code == 200 and "streamscope_" in r.text
    assert requests.get(pipeline.base_url + "/groups", timeout=10).status_code == 200
