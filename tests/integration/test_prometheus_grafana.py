"""The shipped Grafana dashboards and Prometheus rules against a real Prometheus scraping a real
demo pipeline: no dead panels.

One module-wide stack: ``DemoPipeline`` (a real Kafka broker, the producer, the consumer groups,
the Spark jobs when pyspark, the connector jars and the monitor's Spark support are there, and
the monitor with its web server and built-in alerting) and ``/usr/bin/prometheus`` started on a
free loopback port with a configuration generated from dashboards/prometheus.yml (target = the
monitor, 1 s scrape and evaluation intervals, the rule file by absolute path, no alerting
section). Then:

- Prometheus scrapes streamscope (target health up, several scrapes);
- every template variable of every dashboard resolves, through its ``label_values`` query, to
  real values (cluster ``demo`` -> group ``clickstream-enricher-slow`` -> topic ``clickstream``,
  app -> query ``clickstream_stats``);
- EVERY PromQL expression of every dashboard panel, variables substituted ($cluster=demo,
  $group=clickstream-enricher-slow, $topic=clickstream, $__rate_interval=30s, other multi-value
  variables ``.*``), parses (status success) and returns data; Spark panels only when Spark ran
  (otherwise skipped outside CI, failed in CI). The one exception: a target reading a metric
  that docs/metrics.md says may be absent in a healthy pipeline (CONDITIONAL_METRICS: the
  estimated trigger interval) may be empty, with a warning, when another target of its panel
  has data — no panel is dead;
- every rule of alerts/prometheus/streamscope-rules.yml is loaded and evaluates with health
  ``ok``; alert conditions may legitimately be empty, so instead every metric selector inside
  each rule must return data (a misspelt metric or label value would not).

Waits are bounded; Prometheus and the pipeline are stopped at the end. Prometheus missing: the
test fails when CI is set, else it is skipped.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from demo.kafka_box import free_port, log_tail
from tests.conftest import missing_prerequisite, running_in_ci
from tests.unit.test_dashboards_lint import (PROMETHEUS_CONFIG_PATH, RULE_FILE, data_panels,
                                             load_dashboards, metric_names, rule_expressions,
                                             substitute, variable_query, variables)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

SCRAPE_INTERVAL = "1s"
VALUES = {"cluster": "demo", "group": "clickstream-enricher-slow", "topic": "clickstream",
          "__rate_interval": "30s", "__interval": "5s", "__interval_ms": "5000",
          "__range": "5m", "__range_s": "300", "__range_ms": "300000"}
EXPECTED_VARIABLE_VALUES = {"cluster": "demo", "group": "clickstream-enricher-slow", "topic": "clickstream",
                            "query": "clickstream_stats", "collector": "kafka:demo"}
KAFKA_DATA_TIMEOUT = 180.0
SPARK_DATA_TIMEOUT = 300.0
# Metrics docs/metrics.md says may be absent while the pipeline is healthy. A target reading one
# may be empty (reported as a warning) as long as another target of its panel has data, so the
# panel is never dead.
CONDITIONAL_METRICS = {
    "streamscope_spark_query_trigger_interval_seconds":
        "estimated from batch start times: absent with fewer than 6 batches and while batches "
        "overrun their interval (a busy 2-core machine)",
}

_SELECTOR = re.compile(r'(?<![A-Za-z0-9_:])(streamscope_[A-Za-z0-9_]+)\s*(\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def is_spark(expr: str) -> bool:
    """Spark panels: Spark metrics, or the spark-<query> consumer groups."""
    return "streamscope_spark_" in expr or '"spark-' in expr


def selectors(expr: str) -> list[str]:
    """The streamscope_* vector selectors of an expression (with their label matchers)."""
    masked = _QUOTED.sub(lambda m: "\0" * len(m.group(0)), expr)
    return [expr[m.start():m.end()].strip() for m in _SELECTOR.finditer(masked)]


def spark_support() -> tuple[bool, str]:
    """(True, "") when the demo's Spark jobs can run and the monitor can collect them."""
    for module in ("pyspark", "demo.spark_pipeline", "monitor.collection.spark_source", "collectors.spark.exporter"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return False, f"module {module} is not available"
    from demo import jars

    try:
        jars.java_executable()
        jars.spark_kafka_jars()  # resolves (downloads once) the connector jars
    except jars.PrerequisiteMissing as error:
        return False, f"Spark Kafka connector jars unavailable: {error}"
    return True, ""


# --------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    pipeline: Any
    prometheus_url: str
    prometheus_log: Path
    spark: bool
    spark_reason: str

    def query(self, expr: str, timeout: float = 30) -> dict[str, Any]:
        response = requests.post(f"{self.prometheus_url}/api/v1/query", data={"query": expr}, timeout=timeout)
        try:
            return response.json()
        except ValueError:
            return {"status": "error", "error": f"HTTP {response.status_code}: {response.text[:300]}"}

    def label_values(self, selector: str, label: str) -> list[str]:
        response = requests.get(f"{self.prometheus_url}/api/v1/label/{label}/values",
                                params={"match[]": selector}, timeout=30)
        body = response.json()
        assert body.get("status") == "success", f"label_values({selector}, {label}): {body}"
        return body["data"]


def prometheus_binary() -> str:
    for candidate in ("/usr/bin/prometheus", shutil.which("prometheus")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing_prerequisite("prometheus not found (Debian package prometheus)")
    raise AssertionError("unreachable")


def prometheus_config(target: str) -> dict[str, Any]:
    """dashboards/prometheus.yml pointed at the test's monitor, 1 s intervals, no alerting."""
    config = yaml.safe_load(PROMETHEUS_CONFIG_PATH.read_text(encoding="utf-8"))
    config["global"] = {**config.get("global", {}), "scrape_interval": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL}
    config["rule_files"] = [str(RULE_FILE.resolve())]
    config.pop("alerting", None)
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "streamscope"]
    assert jobs, "dashboards/prometheus.yml has no job 'streamscope'"
    for job in jobs:
        job["scrape_interval"] = SCRAPE_INTERVAL
        job["scrape_timeout"] = SCRAPE_INTERVAL
        job["static_configs"] = [{"targets": [target]}]
    return config


def wait_for(what: str, check, timeout: float, interval: float = 1.0, on_timeout=lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as error:
            last = error
            result = None
        else:
            result = last
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}) {on_timeout()}")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies (even by SIGKILL), so an
    interrupted run leaves no Prometheus behind (Linux prctl PR_SET_PDEATHSIG; no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = prometheus_binary()
    spark, spark_reason = spark_support()
    work = tmp_path_factory.mktemp("ecosystem")

    from demo.jars import PrerequisiteMissing
    from demo.pipeline import DemoPipeline, DemoSettings

    # Built-in alerting with a receiver that cannot be reached, and a rule that fires at once:
    # the alert, outbox and notification metrics then all have series for the health panels.
    rules = work / "alert-rules.yaml"
    rules.write_text("rules:\n  - {name: StreamscopeConsumerLagHigh, threshold: 0, for: 0s}\n")
    alerting = {"evaluation_interval": "2s", "rules_files": [str(rules)],
                "receivers": {"webhook": [{"name": "unreachable-hook",
                                           "url": f"http://127.0.0.1:{free_port()}/hook"}]},
                "route": {"receivers": ["unreachable-hook"], "group_wait": "1s", "group_interval": "5s"}}
    settings = DemoSettings(web_port=free_port(), data_dir=work / "demo", spark=spark, interval_seconds=2,
                            extra={"alerting": alerting})
    (work / "demo").mkdir()
    pipeline = DemoPipeline(settings)
    try:
        pipeline.start()
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start the demo pipeline: {error}")

    process = None
    try:
        web_url = pipeline.monitor.web.url
        target = web_url.split("://", 1)[1].rstrip("/")
        config_path = work / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(prometheus_config(target), sort_keys=False))
        port = free_port()
        log_path = work / "prometheus.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [prometheus, f"--config.file={config_path}", f"--storage.tsdb.path={work / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d",
                 "--log.level=warn"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent)
        url = f"http://127.0.0.1:{port}"
        tail = lambda: f"\nprometheus log:\n{log_tail(log_path)}"  # noqa: E731

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}{tail()}")
            return requests.get(f"{url}/-/ready", timeout=5).status_code == 200

        wait_for("Prometheus to be ready", ready, 90, on_timeout=tail)
        result = Stack(pipeline, url, log_path, spark, spark_reason)

        def scraped() -> bool:
            body = result.query('count_over_time(up{job="streamscope"}[5m]) >= 5 and up{job="streamscope"} == 1')
            return body.get("status") == "success" and bool(body["data"]["result"])

        wait_for("5 successful scrapes of streamscope", scraped, 120, on_timeout=tail)
        yield result
    finally:
        if process is not None:
            _stop_process(process)
        pipeline.stop()


# --------------------------------------------------------------------------- helpers
DASHBOARDS = load_dashboards()


def conditional(expr: str) -> bool:
    return bool(metric_names(expr) & set(CONDITIONAL_METRICS))


def dashboard_expressions(spark: bool) -> tuple[list[tuple[str, str]], set[str]]:
    """([(where, expr)], optional wheres) of every dashboard panel target, variables substituted,
    Spark ones or the others. Optional: reads a conditional metric and the panel has another
    target that does not."""
    out, optional = [], set()
    for path, dashboard in DASHBOARDS.items():
        for panel in data_panels(dashboard):
            targets = panel.get("targets", [])
            required = [t for t in targets if not conditional(t["expr"])]
            assert required, f"{path.name}: panel {panel['title']!r} would be dead without " \
                             f"{sorted(CONDITIONAL_METRICS)}"
            for item in targets:
                if is_spark(item["expr"]) != spark:
                    continue
                where = f"{path.name}: {panel['title']!r} {item['refId']}"
                out.append((where, substitute(item["expr"], VALUES)))
                if conditional(item["expr"]):
                    optional.add(where)
    return out, optional


def check_expressions(stack: Stack, expressions: list[tuple[str, str]], timeout: float,
                      optional: set[str] = frozenset()) -> None:
    """Each expression must parse and return data; retried (data may need a few cycles) until timeout.

    ``optional`` ones must parse; no data there is a warning, not a failure."""
    pending = dict((where, expr) for where, expr in expressions)
    problems: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for where, expr in list(pending.items()):
            body = stack.query(expr)
            if body.get("status") != "success":
                problems[where] = f"does not parse/evaluate: {body.get('errorType')}: {body.get('error')}\n    {expr}"
                del pending[where]  # a syntax error does not heal
            elif body["data"]["result"]:
                problems.pop(where, None)
                del pending[where]
            else:
                problems[where] = f"no data\n    {expr}"
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(3)
    for where in sorted(set(problems) & set(optional)):
        if problems[where].startswith("no data"):
            reasons = "; ".join(CONDITIONAL_METRICS[m] for m in metric_names(dict(expressions)[where])
                                if m in CONDITIONAL_METRICS)
            warnings.warn(f"{where}: no data ({reasons})")
            del problems[where]
    assert not problems, f"{len(problems)} of {len(expressions)} panel queries fail:\n" + "\n".join(
        f"- {where}: {problem}" for where, problem in sorted(problems.items()))


# --------------------------------------------------------------------------- tests
def test_prometheus_scrapes_streamscope(stack: Stack):
    targets = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=30).json()["data"]["activeTargets"]
    ours = [t for t in targets if t["labels"].get("job") == "streamscope"]
    assert len(ours) == 1
    assert ours[0]["health"] == "up", ours[0].get("lastError")
    assert ours[0]["scrapeUrl"].endswith("/metrics")


def test_template_variables_resolve_to_real_values(stack: Stack):
    problems = []
    for path, dashboard in DASHBOARDS.items():
        values = dict(VALUES)
        for variable in variables(dashboard):
            if variable.get("type") != "query":
                continue
            name = variable["name"]
            query = variable_query(variable)
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query, re.S)
            assert match, f"{path.name}: variable {name}: {query!r}"
            selector, label = substitute(match.group(1), values), match.group(2)
            if is_spark(selector) and not stack.spark:
                continue
            found = wait_for(f"{path.name}: variable {name} ({selector})",
                             lambda: stack.label_values(selector, label),
                             SPARK_DATA_TIMEOUT if is_spark(selector) else KAFKA_DATA_TIMEOUT, interval=3)
            expected = EXPECTED_VARIABLE_VALUES.get(name)
            if expected is not None and expected not in found:
                problems.append(f"{path.name}: variable {name} = {found}, expected {expected!r} among them")
            if expected is not None and name in values:
                assert values[name] == expected
    assert not problems, "\n".join(problems)


def test_every_kafka_and_self_monitoring_panel_returns_data(stack: Stack):
    expressions, optional = dashboard_expressions(spark=False)
    assert len(expressions) > 50
    check_expressions(stack, expressions, KAFKA_DATA_TIMEOUT, optional)


def test_every_spark_panel_returns_data(stack: Stack):
    if not stack.spark:
        missing_prerequisite(f"Spark did not run in the demo pipeline ({stack.spark_reason}); "
                             "the Spark panels were not checked")
    assert stack.pipeline.spark is not None, "DemoPipeline did not start Spark"
    expressions, optional = dashboard_expressions(spark=True)
    assert len(expressions) > 20
    check_expressions(stack, expressions, SPARK_DATA_TIMEOUT, optional)


def test_the_rule_file_loads_and_every_rule_evaluates(stack: Stack):
    expected = {name for name, _ in rule_expressions()}

    def evaluated() -> list[dict] | None:
        groups = requests.get(f"{stack.prometheus_url}/api/v1/rules", timeout=30).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if {r["name"] for r in rules} == expected and all(r.get("health") != "unknown" for r in rules):
            return rules
        return None

    rules = wait_for("every rule to be evaluated", evaluated, 60)
    bad = [f"{r['name']}: health {r['health']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    assert not bad, "\n".join(bad)


def test_every_metric_selector_of_the_rule_file_has_data(stack: Stack):
    """Alert conditions may be legitimately empty; the series they compare must not be."""
    checks, optional = [], set()
    for name, expr in rule_expressions():
        for selector in selectors(expr):
            if is_spark(selector) and not stack.spark:
                continue
            where = f"rule {name}: {selector}"
            checks.append((where, selector))
            if conditional(selector):
                optional.add(where)
    assert checks
    check_expressions(stack, checks, SPARK_DATA_TIMEOUT if stack.spark else KAFKA_DATA_TIMEOUT, optional)
    if not stack.spark and running_in_ci():
        pytest.fail(f"Spark did not run ({stack.spark_reason}): the Spark rules' metrics were not checked")


def test_selector_extraction():
    expr = ('sum by (cluster, group) (streamscope_kafka_consumergroup_lag) > 0\n'
            '  and on (cluster, group) streamscope_kafka_consumergroup_empty == 1 or '
            'label_replace(streamscope_collector_up{kind="kafka", x="a}b"} == 0, "c", "$1", "collector", "kafka:(.+)")')
    assert selectors(expr) == ["streamscope_kafka_consumergroup_lag", "streamscope_kafka_consumergroup_empty",
                               'streamscope_collector_up{kind="kafka", x="a}b"}']
