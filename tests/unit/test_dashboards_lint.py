"""Lint of the shipped Grafana dashboards (dashboards/*.json) and of the metric names they and the
Prometheus rule file use.

- every dashboard is valid JSON with a unique uid and a current-ish schemaVersion;
- panel ids are unique, nested rows included;
- every panel and every target uses the ``${datasource}`` variable (type datasource, Prometheus),
  no hard-coded datasource uid (Grafana's builtin ``-- Grafana --`` / ``-- Mixed --`` allowed);
- every non-row, non-text panel sets ``fieldConfig.defaults.unit``;
- every ``streamscope_*`` metric referenced in a PromQL expression (``_bucket``/``_sum``/``_count``
  stripped) is documented (docs/metrics.md, the metric contract; alert-engine metrics in
  docs/alerts.md);
- template variables are chained (cluster -> group -> topic, app -> query), defined before
  they are used, and every variable is used;
- every expression parses (``promtool check rules`` over the expressions, variables substituted);
- the JSON files are what ``python -m dashboards.generate`` writes.

Helpers here (``iter_panels``, ``panel_expressions``, ``substitute``, ``metric_names``) are also
used by tests/integration/test_prometheus_grafana.py.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
import yaml

from tests.conftest import missing_prerequisite

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
RULE_FILE = ROOT / "alerts" / "prometheus" / "streamscope-rules.yml"
PROMETHEUS_CONFIG_PATH = DASHBOARD_DIR / "prometheus.yml"
METRIC_DOCS = [ROOT / "docs" / "metrics.md", ROOT / "docs" / "alerts.md"]

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
BUILTIN_DATASOURCE_UIDS = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"}
NO_DATA_PANEL_TYPES = {"row", "text", "news", "dashlist", "alertlist", "annolist"}
GRAFANA_BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                             "__range_ms", "__from", "__to", "__dashboard", "__org", "__user",
                             "__name", "__timeFilter", "__all"}
EXPECTED_DASHBOARDS = {"streamscope-overview", "streamscope-kafka-lag", "streamscope-topics",
                       "streamscope-spark", "streamscope-health"}

# Values that make every expression valid PromQL (the integration test uses real ones).
PARSE_VALUES = {"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
                "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_METRIC = re.compile(r"(?<![A-Za-z0-9_:])streamscope_[A-Za-z0-9_]+")
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --------------------------------------------------------------------------- helpers (shared)
def load_dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARD_FILES}


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels nested in (collapsed) rows included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


def data_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    return (p for p in iter_panels(dashboard.get("panels", [])) if p.get("type") not in NO_DATA_PANEL_TYPES)


def variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    if isinstance(query, Mapping):
        return str(query.get("query", ""))
    return str(query or "")


def panel_expressions(dashboard: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """[(panel title, refId, expr)] of every target of every data panel."""
    out = []
    for panel in data_panels(dashboard):
        for item in panel.get("targets", []):
            out.append((panel.get("title", ""), item.get("refId", ""), item.get("expr", "")))
    return out


def referenced_variables(text: str) -> set[str]:
    return {next(g for g in match.groups() if g) for match in _VARIABLE.finditer(text)}


def substitute(expr: str, values: Mapping[str, str], default: str = ".*") -> str:
    """Replace $var, ${var}, ${var:fmt} and [[var]] like Grafana would for a single value."""
    def replace(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        return values.get(name, PARSE_VALUES.get(name, default))
    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """streamscope_* metric names referenced by a PromQL expression (quoted strings ignored)."""
    return set(_METRIC.findall(_QUOTED.sub('""', expr)))


def documented_metrics() -> set[str]:
    names: set[str] = set()
    for doc in METRIC_DOCS:
        if doc.is_file():
            names |= set(_METRIC.findall(doc.read_text(encoding="utf-8")))
    return names


def undocumented(names: set[str], documented: set[str]) -> set[str]:
    missing = set()
    for name in names:
        if name in documented:
            continue
        base = next((name[: -len(s)] for s in _HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is None or base not in documented:
            missing.add(name)
    return missing


def rule_expressions() -> list[tuple[str, str]]:
    """[(alert or record name, expr)] of the Prometheus rule file."""
    data = yaml.safe_load(RULE_FILE.read_text(encoding="utf-8"))
    return [(rule.get("alert") or rule.get("record"), rule["expr"])
            for group in data["groups"] for rule in group["rules"]]


# --------------------------------------------------------------------------- tests
DASHBOARDS = load_dashboards()
IDS = [path.name for path in DASHBOARDS]


def test_the_expected_dashboards_are_shipped():
    assert {d.get("uid") for d in DASHBOARDS.values()} == EXPECTED_DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_dashboard_is_valid(path: Path):
    dashboard = DASHBOARDS[path]
    assert isinstance(dashboard.get("title"), str) and dashboard["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard.get("uid", "")), "uid: 1-40 characters, no spaces"
    assert dashboard.get("id") is None, "exported for sharing: id must be null"
    assert 36 <= dashboard.get("schemaVersion", 0) <= 41
    assert isinstance(dashboard.get("panels"), list) and dashboard["panels"]
    assert "streamscope" in dashboard.get("tags", [])
    for panel in iter_panels(dashboard["panels"]):
        grid = panel.get("gridPos", {})
        assert {"h", "w", "x", "y"} <= set(grid), f"panel {panel.get('title')!r}: incomplete gridPos"
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, f"panel {panel.get('title')!r} overflows 24 columns"


def test_dashboard_uids_and_titles_are_unique():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_panel_ids_are_unique_including_nested_rows(path: Path):
    ids = [panel.get("id") for panel in iter_panels(DASHBOARDS[path]["panels"])]
    assert all(isinstance(i, int) for i in ids), "every panel needs an integer id"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate panel ids: {duplicates}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_panel_and_target_uses_the_datasource_variable(path: Path):
    dashboard = DASHBOARDS[path]
    ds_vars = [v for v in variables(dashboard) if v.get("type") == "datasource"]
    assert [v["name"] for v in ds_vars] == ["datasource"], "one datasource variable named 'datasource'"
    assert ds_vars[0].get("query") == "prometheus"

    def ok(ref: Any) -> bool:
        if ref == DATASOURCE_REF:
            return True
        return isinstance(ref, Mapping) and ref.get("uid") in BUILTIN_DATASOURCE_UIDS

    problems = []
    for panel in data_panels(dashboard):
        if not ok(panel.get("datasource")):
            problems.append(f"panel {panel.get('title')!r}: datasource {panel.get('datasource')!r}")
        for item in panel.get("targets", []):
            if not ok(item.get("datasource")):
                problems.append(f"panel {panel.get('title')!r} target {item.get('refId')}: "
                                f"datasource {item.get('datasource')!r}")
    for variable in variables(dashboard):
        if variable.get("type") == "query" and variable.get("datasource") != DATASOURCE_REF:
            problems.append(f"variable {variable['name']}: datasource {variable.get('datasource')!r}")
    assert not problems, "\n".join(problems)


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("datasource")
        if isinstance(ref, Mapping) and "uid" in ref:
            yield str(ref["uid"])
        for value in node.values():
            yield from _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_uids(value)


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_no_hard_coded_datasource_uid_anywhere(path: Path):
    uids = set(_datasource_uids(DASHBOARDS[path])) - BUILTIN_DATASOURCE_UIDS
    assert uids == {"${datasource}"}, f"datasource uids besides the variable: {uids - {'${datasource}'}}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_data_panel_sets_a_unit(path: Path):
    missing = [panel.get("title") for panel in data_panels(DASHBOARDS[path])
               if not (panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or "").strip()]
    assert not missing, f"panels without fieldConfig.defaults.unit: {missing}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_data_panel_has_queries(path: Path):
    for panel in data_panels(DASHBOARDS[path]):
        targets = panel.get("targets", [])
        assert targets, f"panel {panel.get('title')!r} has no targets"
        ref_ids = [item.get("refId") for item in targets]
        assert len(set(ref_ids)) == len(ref_ids), f"panel {panel.get('title')!r}: duplicate refIds"
        for item in targets:
            assert (item.get("expr") or "").strip(), f"panel {panel.get('title')!r}: empty expr"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_metric_is_documented(path: Path):
    documented = documented_metrics()
    dashboard = DASHBOARDS[path]
    used: dict[str, str] = {}
    for title, ref, expr in panel_expressions(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, f"panel {title!r} ({ref})")
    for variable in variables(dashboard):
        for name in metric_names(variable_query(variable)):
            used.setdefault(name, f"variable {variable['name']}")
    missing = undocumented(set(used), documented)
    assert not missing, "metrics not in docs/metrics.md (or docs/alerts.md):\n" + "\n".join(
        f"  {name}  <- {used[name]}" for name in sorted(missing))


def test_every_metric_of_the_prometheus_rule_file_is_documented():
    documented = documented_metrics()
    missing = {}
    for name, expr in rule_expressions():
        for metric in undocumented(metric_names(expr), documented):
            missing.setdefault(metric, name)
    assert not missing, "rule file metrics not in docs/metrics.md:\n" + "\n".join(
        f"  {metric}  <- alert {alert}" for metric, alert in sorted(missing.items()))


def test_metric_name_extraction():
    expr = ('sum by (group) (rate(streamscope_a_total{job="streamscope_not_a_metric"}[5m])) '
            '/ on() streamscope_b_seconds_bucket and label_replace(streamscope_c, "x", "$1", "y", "(.*)")')
    assert metric_names(expr) == {"streamscope_a_total", "streamscope_b_seconds_bucket", "streamscope_c"}
    assert undocumented({"streamscope_b_seconds_bucket", "streamscope_d"}, {"streamscope_b_seconds"}) == {
        "streamscope_d"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_template_variables_are_chained_and_used(path: Path):
    dashboard = DASHBOARDS[path]
    defined: list[str] = []
    by_name = {}
    for variable in variables(dashboard):
        name = variable["name"]
        by_name[name] = variable
        query = variable_query(variable)
        if variable.get("type") == "query":
            assert query.startswith("label_values("), f"variable {name}: use label_values(...)"
            assert variable.get("refresh") in (1, 2), f"variable {name}: refresh on load or time change"
            unknown = referenced_variables(query) - set(defined) - GRAFANA_BUILTIN_VARIABLES
            assert not unknown, f"variable {name} refers to {unknown}, not defined before it"
            if variable.get("multi") or variable.get("includeAll"):
                assert variable.get("allValue") == ".*", f"variable {name}: All must be '.*' (regex matchers)"
        defined.append(name)

    # The chains.
    def refs(name: str) -> set[str]:
        return referenced_variables(variable_query(by_name[name]))

    if "group" in by_name:
        assert "cluster" in refs("group"), "group must be chained to cluster"
    if "topic" in by_name:
        assert "cluster" in refs("topic"), "topic must be chained to cluster"
        if "group" in by_name:
            assert "group" in refs("topic"), "topic must be chained to group"
    if "query" in by_name:
        assert "app" in refs("query"), "query must be chained to app"

    # Panels use only defined variables, and every variable is used somewhere.
    used: set[str] = set()
    for title, ref, expr in panel_expressions(dashboard):
        names = referenced_variables(expr)
        unknown = names - set(defined) - GRAFANA_BUILTIN_VARIABLES
        assert not unknown, f"panel {title!r} ({ref}) uses undefined variables {unknown}"
        used |= names
    for variable in variables(dashboard):
        used |= referenced_variables(variable_query(variable))
    unused = set(defined) - used - {"datasource"}
    assert not unused, f"variables never used: {unused}"


def test_kafka_lag_dashboard_chains_cluster_group_topic():
    lag = next(d for d in DASHBOARDS.values() if d["uid"] == "streamscope-kafka-lag")
    names = [v["name"] for v in variables(lag)]
    assert names == ["datasource", "cluster", "group", "topic"]
    by_name = {v["name"]: variable_query(v) for v in variables(lag)}
    assert by_name["group"] == 'label_values(streamscope_kafka_consumergroup_lag{cluster=~"$cluster"}, group)'
    assert '{cluster=~"$cluster", group=~"$group"}' in by_name["topic"]


def test_spark_dashboard_shows_query_lag_as_consumer_group():
    spark = next(d for d in DASHBOARDS.values() if d["uid"] == "streamscope-spark")
    exprs = [expr for _, _, expr in panel_expressions(spark)]
    assert any('group=~"spark-$query"' in expr and "streamscope_kafka_consumergroup_lag" in expr
               for expr in exprs)


def test_every_expression_parses():
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_prerequisite("promtool not found (Debian package prometheus)")
    rules = []
    for path, dashboard in DASHBOARDS.items():
        for i, (title, ref, expr) in enumerate(panel_expressions(dashboard)):
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:{i}", "expr": substitute(expr, {}),
                          "labels": {"panel": f"{title} {ref}"}})
        for variable in variables(dashboard):
            query = variable_query(variable)
            if variable.get("type") == "query":
                inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query, re.S)
                assert inner, f"{path.name}: variable {variable['name']}: cannot parse {query!r}"
                rules.append({"record": f"variable:{variable['name']}", "expr": substitute(inner.group(1), {})})
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rule_file = Path(tmp) / "dashboards.rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
        result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_dashboards_are_up_to_date():
    from dashboards import generate

    stale = [name for name, build in generate.DASHBOARDS.items()
             if (DASHBOARD_DIR / name).read_text(encoding="utf-8") != generate.render(build)]
    assert not stale, f"run `python -m dashboards.generate`: {stale} differ from dashboards/generate.py"
    assert {p.name for p in DASHBOARD_FILES} == set(generate.DASHBOARDS)
