"""Generate the Grafana dashboards shipped in this folder (``dashboards/*.json``).

    python -m dashboards.generate            # rewrite the JSON files
    python -m dashboards.generate --check    # exit 1 if a JSON file differs from this code

The JSON files are the product (Grafana provisions them, users import them); this module is how
they are written, so that every panel follows the same rules without copy-paste drift:

- every panel and every target uses the ``${datasource}`` variable (type ``datasource``,
  Prometheus), never a hard-coded datasource uid;
- template variables are chained: cluster -> group -> topic, app -> query (``label_values``
  with the earlier variables as matchers), multi-value with ``All`` = ``.*``;
- every panel has a unit (``fieldConfig.defaults.unit``) and a unique id;
- every metric is one of docs/metrics.md (checked by tests/unit/test_dashboards_lint.py) and
  every expression returns data against the demo pipeline (tests/integration/
  test_prometheus_grafana.py).

A Spark Structured Streaming query does not commit offsets to Kafka, so streamscope exports its
lag as the consumer group ``spark-<query>`` in the ``streamscope_kafka_consumergroup_*`` metrics:
the Spark dashboard shows it from there.

Edited a dashboard in Grafana? Export it, then carry the change over here (the unit test
``test_generated_dashboards_are_up_to_date`` fails until both agree).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["streamscope"]

# Units (Grafana unit ids; "suffix:" is Grafana's custom-unit syntax).
MSGS = "short"
MSG_RATE = "suffix: msg/s"
ROW_RATE = "suffix: rows/s"
SECONDS = "s"
BYTES = "bytes"
NONE = "none"

# Burrow statuses: the number each one is encoded as by status_expr() and its colour.
STATUS_CODES = [("OK", 0, "green"), ("WARN", 1, "yellow"), ("ERR", 2, "orange"),
                ("STALL", 3, "red"), ("STOP", 4, "dark-red"), ("REWIND", 5, "purple")]


# --------------------------------------------------------------------------- building blocks
def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False,
           ref: str = "A") -> dict[str, Any]:
    out: dict[str, Any] = {"datasource": DS, "editorMode": "code", "expr": expr, "refId": ref}
    if table:
        out.update({"format": "table", "instant": True, "range": False, "legendFormat": "__auto"})
    else:
        out.update({"instant": instant, "range": not instant, "legendFormat": legend or "__auto"})
    return out


def mapping_values(values: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """{"1": ("up", "green")} -> a Grafana value mapping."""
    return [{"type": "value", "options": {
        key: {"text": text, "color": color, "index": i}
        for i, (key, (text, color)) in enumerate(values.items())}}]


@dataclass
class Panel:
    title: str
    type: str
    targets: list[dict[str, Any]]
    unit: str
    width: int = 12
    height: int = 8
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        targets = []
        for i, item in enumerate(self.targets):
            item = dict(item)
            item["refId"] = chr(ord("A") + i)
            targets.append(item)
        out: dict[str, Any] = {
            "datasource": DS,
            "description": self.description,
            "fieldConfig": {"defaults": {**self.defaults, "unit": self.unit},
                            "overrides": self.overrides},
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": self.options,
            "targets": targets,
            "title": self.title,
            "type": self.type,
        }
        if self.transformations:
            out["transformations"] = self.transformations
        return out


def timeseries(title: str, targets: list[dict], unit: str, *, description: str = "",
               width: int = 12, height: int = 8, stack: bool = False, min_zero: bool = True,
               overrides: list[dict] | None = None, calcs: tuple[str, ...] = ("lastNotNull", "max"),
               thresholds: list[dict] | None = None) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}, "custom": custom}
    if min_zero:
        defaults["min"] = 0
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        custom["thresholdsStyle"] = {"mode": "dashed"}
    return Panel(title, "timeseries", targets, unit, width, height, description,
                 options={"legend": {"displayMode": "table", "placement": "bottom",
                                     "showLegend": True, "calcs": list(calcs)},
                          "tooltip": {"mode": "multi", "sort": "desc"}},
                 defaults=defaults, overrides=overrides or [])


def stat(title: str, targets: list[dict], unit: str, *, description: str = "", width: int = 4,
         height: int = 4, thresholds: list[dict] | None = None, mappings: list[dict] | None = None,
         graph: bool = True, decimals: int | None = None) -> Panel:
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds"},
        "thresholds": {"mode": "absolute",
                       "steps": thresholds or [{"color": "green", "value": None}]},
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return Panel(title, "stat", targets, unit, width, height, description,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "area" if graph else "none",
                          "justifyMode": "auto", "orientation": "auto", "textMode": "auto",
                          "showPercentChange": False, "wideLayout": True},
                 defaults=defaults)


def state_timeline(title: str, targets: list[dict], mappings: list[dict], *, description: str = "",
                   width: int = 12, height: int = 8) -> Panel:
    return Panel(title, "state-timeline", targets, NONE, width, height, description,
                 options={"mergeValues": True, "showValue": "auto", "alignValue": "left",
                          "rowHeight": 0.9,
                          "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "single", "sort": "none"}},
                 defaults={"color": {"mode": "thresholds"}, "mappings": mappings,
                           "thresholds": {"mode": "absolute",
                                          "steps": [{"color": "green", "value": None}]},
                           "custom": {"fillOpacity": 80, "lineWidth": 0}})


def table(title: str, targets: list[dict], unit: str, *, description: str = "", width: int = 24,
          height: int = 8, rename: dict[str, str] | None = None,
          overrides: list[dict] | None = None, hide: tuple[str, ...] = ()) -> Panel:
    excluded = {name: True for name in ("Time", "__name__", "job", "instance", *hide)}
    return Panel(title, "table", targets, unit, width, height, description,
                 options={"showHeader": True, "cellHeight": "sm",
                          "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
                 defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
                 overrides=overrides or [],
                 transformations=[{"id": "merge", "options": {}},
                                  {"id": "organize", "options": {"excludeByName": excluded,
                                                                 "renameByName": rename or {}}}])


def unit_override(ref_or_name: str, unit: str, *, by: str = "byName") -> dict[str, Any]:
    return {"matcher": {"id": by, "options": ref_or_name},
            "properties": [{"id": "unit", "value": unit}]}


def dashed(name_regex: str) -> dict[str, Any]:
    return {"matcher": {"id": "byRegexp", "options": name_regex},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                           {"id": "custom.fillOpacity", "value": 0}]}


@dataclass
class Row:
    title: str
    panels: list[Panel | dict]
    collapsed: bool = False


def layout(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows of panels, left to right, wrapping at 24 columns; ids 1..n in reading order."""
    out: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row in rows:
        row_panel = {"collapsed": row.collapsed, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                     "id": next_id, "panels": [], "title": row.title, "type": "row"}
        next_id += 1
        out.append(row_panel)
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            width = panel.width if isinstance(panel, Panel) else panel["gridPos"]["w"]
            height = panel.height if isinstance(panel, Panel) else panel["gridPos"]["h"]
            if x + width > 24:
                x, y, line_height = 0, y + line_height, 0
            if isinstance(panel, Panel):
                rendered = panel.render(next_id, x, y)
            else:
                rendered = {**panel, "id": next_id, "gridPos": {"h": height, "w": width, "x": x, "y": y}}
            next_id += 1
            (row_panel["panels"] if row.collapsed else out).append(rendered)
            x += width
            line_height = max(line_height, height)
        y += line_height
    return out


# --------------------------------------------------------------------------- template variables
def datasource_variable() -> dict[str, Any]:
    return {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
            "name": "datasource", "options": [], "query": "prometheus", "refresh": 1,
            "regex": "", "skipUrlSync": False, "type": "datasource"}


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {"allValue": ".*" if multi else None, "current": {}, "datasource": DS, "definition": query,
            "hide": 0, "includeAll": multi, "label": label, "multi": multi, "name": name,
            "options": [],
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query"}


CLUSTER = query_variable("cluster", "Cluster", "label_values(streamscope_kafka_brokers, cluster)")
GROUP = query_variable("group", "Consumer group",
                       'label_values(streamscope_kafka_consumergroup_lag{cluster=~"$cluster"}, group)')
GROUP_TOPIC = query_variable(
    "topic", "Topic",
    'label_values(streamscope_kafka_consumergroup_lag{cluster=~"$cluster", group=~"$group"}, topic)')
TOPIC = query_variable("topic", "Topic",
                       'label_values(streamscope_kafka_topic_end_offset{cluster=~"$cluster"}, topic)')
APP = query_variable("app", "Spark application", "label_values(streamscope_spark_app_info, app)")
QUERY = query_variable("query", "Streaming query",
                       'label_values(streamscope_spark_query_info{app=~"$app"}, query)')
COLLECTOR = query_variable("collector", "Collector", "label_values(streamscope_collector_up, collector)")


def dashboard(uid: str, title: str, description: str, rows: list[Row], variables: list[dict],
              tags: list[str]) -> dict[str, Any]:
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
                   "tags": TAGS, "targetBlank": False, "title": "streamscope", "type": "dashboards"}],
        "panels": layout(rows),
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS + tags,
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --------------------------------------------------------------------------- shared expressions
K = 'cluster=~"$cluster"'
KG = 'cluster=~"$cluster", group=~"$group"'
KGT = 'cluster=~"$cluster", group=~"$group", topic=~"$topic"'
KT = 'cluster=~"$cluster", topic=~"$topic"'
SQ = 'app=~"$app", query=~"$query"'
SPARK_GROUPS = 'cluster=~"$cluster", group=~"spark-$query"'


def status_expr(selector: str) -> str:
    """Burrow status as a number per group (0 OK .. 5 REWIND), for a state timeline."""
    parts = [f'{code} * (streamscope_kafka_consumergroup_status{{{selector}, status="{name}"}} == 1)'
             for name, code, _ in STATUS_CODES]
    return "max by (cluster, group) (\n  " + "\n  or ".join(parts) + "\n)"


STATUS_MAPPINGS = mapping_values({str(code): (name, color) for name, code, color in STATUS_CODES})
UP_MAPPINGS = mapping_values({"1": ("up", "green"), "0": ("down", "red")})
STALE_MAPPINGS = mapping_values({"0": ("fresh", "green"), "1": ("stale", "orange")})
EXACT_MAPPINGS = mapping_values({"1": ("exact", "green"), "0": ("interpolated", "blue")})
ETA_MAPPINGS = [{"type": "range", "options": {"from": 3.15e10, "to": None,
                                              "result": {"text": "not catching up", "color": "red",
                                                         "index": 0}}}]
RED_ABOVE_0 = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
# Retention headroom: red under the default "falls off the log within 1 h" threshold.
HEADROOM_STEPS = [{"color": "red", "value": None}, {"color": "orange", "value": 3600},
                  {"color": "green", "value": 86400}]
# Finite headrooms only: +Inf (nothing unread can be deleted) would flatten every chart.
HEADROOM = "streamscope_kafka_consumergroup_retention_headroom_seconds{{{sel}}} < +Inf"


def probe_quantile(q: float, name: str, selector: str = "") -> str:
    """A latency quantile of one of the probe's histograms, per cluster."""
    return (f"histogram_quantile({q}, sum by (cluster, le) "
            f"(rate(streamscope_kafka_probe_{name}_seconds_bucket{{{selector}}}[$__rate_interval])))")
LAG_SECONDS_STEPS = [{"color": "green", "value": None}, {"color": "orange", "value": 60},
                     {"color": "red", "value": 300}]


# --------------------------------------------------------------------------- the dashboards
def overview() -> dict[str, Any]:
    rows = [
        Row("Pipeline at a glance", [
            stat("Collectors up", [target("sum(streamscope_collector_up)", instant=True)], MSGS,
                 description="Collectors (Kafka clusters, Spark) whose last cycle succeeded.",
                 graph=False),
            stat("Brokers", [target(f"sum(streamscope_kafka_brokers{{{K}}})", instant=True)], MSGS,
                 description="Brokers in the cluster metadata.", graph=False),
            stat("Groups not OK", [target(
                f'sum(streamscope_kafka_consumergroup_status{{{K}, status!="OK"}})', instant=True)],
                MSGS, thresholds=RED_ABOVE_0, graph=False,
                description="Consumer groups whose Burrow-style status is WARN, ERR, STALL, STOP or REWIND."),
            stat("Total lag", [target(f"sum(streamscope_kafka_consumergroup_lag{{{K}}})")], MSGS,
                 description="Messages not yet consumed, all groups and topics."),
            stat("Worst time lag", [target(f"max(streamscope_kafka_consumergroup_lag_seconds{{{K}}})")],
                 SECONDS, thresholds=LAG_SECONDS_STEPS,
                 description="Age of the oldest unconsumed record, worst group and topic."),
            stat("Produce rate", [target(f"sum(streamscope_kafka_topic_produce_rate{{{K}}})")], MSG_RATE,
                 description="Messages produced per second, all topics."),
        ]),
        Row("Consumer lag", [
            timeseries("Lag by group (messages)", [target(
                f"sum by (cluster, group) (streamscope_kafka_consumergroup_lag{{{K}}})",
                "{{group}} @{{cluster}}")], MSGS,
                description="end offset - committed offset, summed over topics and partitions."),
            timeseries("Time lag by group", [target(
                f"max by (cluster, group) (streamscope_kafka_consumergroup_lag_seconds{{{K}}})",
                "{{group}} @{{cluster}}")], SECONDS, thresholds=LAG_SECONDS_STEPS,
                description="Age of the oldest unconsumed record (worst topic of the group)."),
            state_timeline("Group status", [target(status_expr(K), "{{group}} @{{cluster}}")],
                           STATUS_MAPPINGS, width=24, height=6,
                           description="Burrow-style status per group: OK, WARN (lag grows), ERR, "
                                       "STALL/STOP (no progress with lag), REWIND (offsets went back)."),
        ]),
        Row("Throughput", [
            timeseries("Produce rate by topic", [target(
                f"sum by (cluster, topic) (streamscope_kafka_topic_produce_rate{{{K}}})",
                "{{topic}} @{{cluster}}")], MSG_RATE),
            timeseries("Consume rate by group", [target(
                f"sum by (cluster, group) (streamscope_kafka_consumergroup_consume_rate{{{K}}})",
                "{{group}} @{{cluster}}")], MSG_RATE),
        ]),
        Row("Will we lose data? Is the cluster serving?", [
            stat("Least retention headroom", [target(f"min({HEADROOM.format(sel=K)})")], SECONDS,
                 thresholds=HEADROOM_STEPS, width=6,
                 description="Time until retention deletes records a group has not read, if it stopped now: the "
                             "group and topic closest to losing data. No data when no group lags on a topic with "
                             "retention."),
            stat("Records lost", [target(f"sum(streamscope_kafka_consumergroup_records_lost{{{K}}})")], MSGS,
                 thresholds=RED_ABOVE_0, width=6,
                 description="Records retention deleted before their groups read them (log start offset above "
                             "the committed offset)."),
            stat("End-to-end probe", [target(f"min(streamscope_kafka_probe_up{{{K}}})")], NONE,
                 mappings=UP_MAPPINGS, thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
                 width=6, graph=False,
                 description="Produces to every broker, consumes back and commits (clusters[].probe); absent "
                             "unless enabled."),
            timeseries("Probe round trip", [target(probe_quantile(0.5, "roundtrip", K), "p50 @{{cluster}}"),
                                            target(probe_quantile(0.99, "roundtrip", K), "p99 @{{cluster}}")],
                       SECONDS, width=6, description="Produced to consumed back, per cluster."),
        ]),
        Row("Spark streaming", [
            timeseries("Batch duration vs trigger interval", [
                target("max by (app, query) (streamscope_spark_query_batch_duration_seconds)",
                       "{{query}} batch"),
                target("max by (app, query) (streamscope_spark_query_trigger_interval_seconds)",
                       "{{query}} trigger"),
            ], SECONDS, overrides=[dashed(".* trigger$")],
                description="A query whose batches take longer than its trigger interval falls behind."),
            timeseries("Spark query lag (group spark-<query>)", [target(
                f'sum by (cluster, group) (streamscope_kafka_consumergroup_lag{{{K}, group=~"spark-.+"}})',
                "{{group}} @{{cluster}}")], MSGS,
                description="Structured Streaming commits no offsets to Kafka: streamscope computes "
                            "each query's lag from its source offsets and exports it as group spark-<query>."),
        ]),
        Row("streamscope", [
            stat("Firing alerts", [target('sum(streamscope_alerts{state="firing"})')], MSGS,
                 thresholds=RED_ABOVE_0, width=6,
                 description="Alerts of streamscope's built-in engine (needs an alerting: section)."),
            stat("Stale collectors", [target("sum(streamscope_collector_stale)")], MSGS,
                 thresholds=RED_ABOVE_0, width=6,
                 description="Collectors serving their last good data because the last cycles failed."),
            stat("Last collection", [target(
                "time() - max(streamscope_collector_last_success_timestamp_seconds)")], SECONDS,
                thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 120},
                            {"color": "red", "value": 300}], width=6,
                description="Seconds since the most recent successful collection cycle."),
            stat("Notifications pending", [target("sum(streamscope_alert_outbox_pending)")], MSGS,
                 thresholds=RED_ABOVE_0, width=6,
                 description="Notifications waiting in the outbox (receivers failing?)."),
        ]),
    ]
    return dashboard("streamscope-overview", "streamscope / Pipeline overview",
                     "Kafka -> Spark pipeline health: lag, throughput, Spark batches, streamscope itself.",
                     rows, [CLUSTER], ["overview"])


def kafka_lag() -> dict[str, Any]:
    rows = [
        Row("Selection", [
            stat("Lag (messages)", [target(f"sum(streamscope_kafka_consumergroup_lag{{{KGT}}})")], MSGS,
                 width=5, description="Messages not yet consumed by the selected groups on the selected topics."),
            stat("Time lag", [target(f"max(streamscope_kafka_consumergroup_lag_seconds{{{KGT}}})")],
                 SECONDS, thresholds=LAG_SECONDS_STEPS, width=5,
                 description="Age of the oldest unconsumed record (worst partition)."),
            stat("Catch-up ETA", [target(f"max(streamscope_kafka_consumergroup_eta_seconds{{{KG}}})")],
                 SECONDS, mappings=ETA_MAPPINGS, width=5,
                 description="lag / (consume rate - produce rate) of the slowest selected group; "
                             "'not catching up' when consumers are slower than producers."),
            stat("Consume rate", [target(f"sum(streamscope_kafka_consumergroup_consume_rate{{{KGT}}})")],
                 MSG_RATE, width=5),
            stat("Members", [target(f"sum(streamscope_kafka_consumergroup_members{{{KG}}})")], MSGS,
                 width=4, graph=False,
                 description="Group members; 0 = empty group (its lag is still reported)."),
        ]),
        Row("Lag", [
            timeseries("Lag by group and topic (messages)", [target(
                f"sum by (cluster, group, topic) (streamscope_kafka_consumergroup_lag{{{KGT}}})",
                "{{group}} / {{topic}} @{{cluster}}")], MSGS),
            timeseries("Time lag by group and topic", [target(
                f"max by (cluster, group, topic) (streamscope_kafka_consumergroup_lag_seconds{{{KGT}}})",
                "{{group}} / {{topic}} @{{cluster}}")], SECONDS, thresholds=LAG_SECONDS_STEPS,
                description="Age of the oldest unconsumed record of the worst partition."),
            state_timeline("Time lag method (exact vs interpolated)", [target(
                f"max by (cluster, group, topic) (streamscope_kafka_consumergroup_lag_seconds_exact{{{KGT}}})",
                "{{group}} / {{topic}} @{{cluster}}")], EXACT_MAPPINGS,
                description="exact: the timestamp of the record at the committed offset was read; "
                            "interpolated: estimated from the end-offset history."),
            timeseries("Lag trend", [target(
                f"sum by (cluster, group, topic) (deriv(streamscope_kafka_consumergroup_lag{{{KGT}}}[$__rate_interval]))",
                "{{group}} / {{topic}} @{{cluster}}")], MSG_RATE, min_zero=False,
                description="Change of lag per second: above 0 the group falls behind, below 0 it catches up."),
        ]),
        Row("Status and catch-up", [
            state_timeline("Status", [target(status_expr(KG), "{{group}} @{{cluster}}")], STATUS_MAPPINGS,
                           description="Burrow-style status over the status window."),
            timeseries("Catch-up ETA", [target(
                f"max by (cluster, group) (streamscope_kafka_consumergroup_eta_seconds{{{KG}}})", "{{group}} @{{cluster}}")],
                SECONDS, overrides=[],
                description="Absent while unknown; +Inf (not drawn) while not catching up."),
            timeseries("Consume vs produce rate", [
                target(f"sum by (cluster, group, topic) (streamscope_kafka_consumergroup_consume_rate{{{KGT}}})",
                       "consumed by {{group}} from {{topic}} @{{cluster}}"),
                target(f"sum by (cluster, topic) (streamscope_kafka_topic_produce_rate{{{KT}}})",
                       "produced to {{topic}} @{{cluster}}"),
            ], MSG_RATE, overrides=[dashed("^produced to .*")]),
            timeseries("Members", [target(
                f"sum by (cluster, group) (streamscope_kafka_consumergroup_members{{{KG}}})", "{{group}} @{{cluster}}")], MSGS),
        ]),
        Row("Lag against retention", [
            timeseries("Retention headroom", [target(
                f"min by (cluster, group, topic) ({HEADROOM.format(sel=KGT)})", "{{group}} / {{topic}} @{{cluster}}")],
                SECONDS, thresholds=HEADROOM_STEPS,
                description="Time until retention (retention.ms, retention.bytes) deletes the oldest record the "
                            "group has not read, if it stopped now. Compacted topics have none; caught-up groups "
                            "are not drawn (+Inf)."),
            timeseries("Records lost", [target(
                f"sum by (cluster, group, topic) (streamscope_kafka_consumergroup_records_lost{{{KGT}}})",
                "{{group}} / {{topic}} @{{cluster}}")], MSGS, thresholds=RED_ABOVE_0,
                description="Records deleted by retention before the group read them: its lag counts records "
                            "that no longer exist, and the consumer jumps per auto.offset.reset."),
        ]),
        Row("Groups", [
            table("Coordinator, protocol and assignor", [
                target(f"max by (cluster, group) (streamscope_kafka_consumergroup_coordinator{{{KG}}})", table=True),
                target(f"max by (cluster, group, protocol_type, assignor) "
                       f"(streamscope_kafka_consumergroup_protocol_info{{{KG}}})", table=True),
            ], NONE, rename={"Value #A": "coordinator (broker)", "protocol_type": "protocol",
                             "assignor": "assignor"}, hide=("Value #B",), height=6,
                description="The group's coordinator broker, protocol type and the partition assignor its "
                            "members agreed on."),
            table("Consumer groups", [
                target(f"sum by (cluster, group) (streamscope_kafka_consumergroup_lag{{{KG}}})", table=True),
                target(f"max by (cluster, group) (streamscope_kafka_consumergroup_lag_seconds{{{KG}}})",
                       table=True),
                target(f"max by (cluster, group) (streamscope_kafka_consumergroup_eta_seconds{{{KG}}})",
                       table=True),
                target(f"max by (cluster, group) (streamscope_kafka_consumergroup_members{{{KG}}})",
                       table=True),
                target(f"max by (cluster, group, status) (streamscope_kafka_consumergroup_status{{{KG}}} == 1)",
                       table=True),
                target(f"max by (cluster, group, state) (streamscope_kafka_consumergroup_info{{{KG}}})",
                       table=True),
            ], MSGS, rename={"Value #A": "lag", "Value #B": "time lag", "Value #C": "ETA",
                             "Value #D": "members", "status": "status", "state": "group state"},
                hide=("Value #E", "Value #F"),
                overrides=[unit_override("time lag", SECONDS), unit_override("ETA", SECONDS)],
                description="One row per group: lag, time lag, ETA, members, status and coordinator state."),
        ]),
    ]
    return dashboard("streamscope-kafka-lag", "streamscope / Kafka consumer lag",
                     "Consumer-group lag in messages and seconds (exact or interpolated), status, "
                     "catch-up ETA. Spark queries appear as groups spark-<query>.",
                     rows, [CLUSTER, GROUP, GROUP_TOPIC], ["kafka"])


def topics() -> dict[str, Any]:
    rows = [
        Row("Topics", [
            stat("Partitions", [target(f"sum(streamscope_kafka_topic_partitions{{{KT}}})", instant=True)],
                 MSGS, graph=False, width=4),
            stat("Under-replicated", [target(
                f"sum(streamscope_kafka_topic_partitions_under_replicated{{{KT}}})")], MSGS,
                thresholds=RED_ABOVE_0, width=4,
                description="Partitions whose ISR is smaller than their replica set."),
            stat("Offline", [target(f"sum(streamscope_kafka_topic_partitions_offline{{{KT}}})")], MSGS,
                 thresholds=RED_ABOVE_0, width=4, description="Partitions without a leader."),
            stat("Produced in range", [target(
                f"sum(increase(streamscope_kafka_topic_end_offset{{{KT}}}[$__range]))", instant=True)],
                MSGS, graph=False, width=4, description="Messages produced over the dashboard's time range."),
            stat("Brokers", [target(f"sum(streamscope_kafka_brokers{{{K}}})")], MSGS, width=4),
            stat("Controller", [target(f"max(streamscope_kafka_controller_id{{{K}}})", instant=True)], NONE,
                 graph=False, width=4, description="Node id of the active controller: the KRaft metadata quorum's leader."),
        ]),
        Row("Throughput", [
            timeseries("Produce rate by topic", [target(
                f"sum by (cluster, topic) (streamscope_kafka_topic_produce_rate{{{KT}}})", "{{topic}} @{{cluster}}")], MSG_RATE,
                description="Computed by streamscope over collection.rate_window_seconds."),
            timeseries("Produce rate from end offsets (Prometheus rate)", [target(
                f"sum by (cluster, topic) (rate(streamscope_kafka_topic_end_offset{{{KT}}}[$__rate_interval]))",
                "{{topic}} @{{cluster}}")], MSG_RATE,
                description="rate() of the summed end offsets: same quantity, Prometheus' window."),
            timeseries("Consume rate by group", [target(
                f"sum by (cluster, group, topic) (streamscope_kafka_consumergroup_consume_rate{{{KT}}})",
                "{{group}} / {{topic}} @{{cluster}}")], MSG_RATE),
            timeseries("Messages retained", [target(
                f"sum by (cluster, topic) (streamscope_kafka_topic_messages{{{KT}}})", "{{topic}} @{{cluster}}")], MSGS,
                description="Sum over partitions of end - earliest offset."),
        ]),
        Row("Replication", [
            timeseries("Under-replicated and offline partitions", [
                target(f"sum by (cluster, topic) (streamscope_kafka_topic_partitions_under_replicated{{{KT}}})",
                       "under-replicated {{topic}} @{{cluster}}"),
                target(f"sum by (cluster, topic) (streamscope_kafka_topic_partitions_offline{{{KT}}})",
                       "offline {{topic}} @{{cluster}}"),
            ], MSGS, width=16, height=6),
            stat("Under min ISR", [target(
                f"sum(streamscope_kafka_topic_partitions_under_min_isr{{{KT}}})")], MSGS,
                thresholds=RED_ABOVE_0, width=8, height=6,
                description="Partitions with fewer in-sync replicas than min.insync.replicas: producers with "
                            "acks=all cannot write to them."),
        ]),
        Row("Storage and settings", [
            timeseries("Size on disk by topic", [target(
                f"sum by (cluster, topic) (streamscope_kafka_topic_log_bytes{{{KT}}})", "{{topic}} @{{cluster}}")],
                BYTES, description="Every replica on every broker (DescribeLogDirs, every log_dirs_every cycles)."),
            timeseries("Broker disks", [
                target(f"sum by (cluster, broker) (streamscope_kafka_broker_log_dir_bytes{{{K}}})",
                       "logs on broker {{broker}} @{{cluster}}"),
                target(f"sum by (cluster, broker) (streamscope_kafka_broker_log_dir_usable_bytes{{{K}}})",
                       "free on broker {{broker}} @{{cluster}}"),
            ], BYTES, overrides=[dashed("^free on .*")],
                description="Bytes of the partition replicas in each broker's log directories, and the free "
                            "space of their volumes (Kafka 3.3+)."),
            table("Topic settings", [
                target(f"max by (cluster, topic, cleanup_policy, retention_ms, retention_bytes) "
                       f"(streamscope_kafka_topic_info{{{KT}}})", table=True),
                target(f"max by (cluster, topic) (streamscope_kafka_topic_min_insync_replicas{{{KT}}})", table=True),
                target(f"max by (cluster, topic) (streamscope_kafka_topic_replication_factor{{{KT}}})", table=True),
            ], NONE, rename={"cleanup_policy": "cleanup policy", "retention_ms": "retention.ms",
                             "retention_bytes": "retention.bytes", "Value #B": "min.insync.replicas",
                             "Value #C": "replication factor"}, hide=("Value #A",),
                description="Effective settings as Kafka reports them (broker defaults included); -1 = no limit."),
        ]),
    ]
    return dashboard("streamscope-topics", "streamscope / Kafka topics",
                     "Topic throughput (produce and consume rates), retention, partition health.",
                     rows, [CLUSTER, TOPIC], ["kafka"])


def spark() -> dict[str, Any]:
    app = 'app=~"$app"'
    rows = [
        _spark_apps_row(app),
        _spark_queries_row(),
        _spark_state_row(),
        _spark_query_lag_row(),
        _dstream_row(app),
    ]
    return dashboard("streamscope-spark", "streamscope / Spark streaming",
                     "Spark applications and Structured Streaming queries: batch durations vs "
                     "trigger, rates, watermark, state, and each query's lag against Kafka.",
                     rows, [CLUSTER, APP, QUERY], ["spark"])


def _spark_apps_row(app: str) -> Row:
    return Row("Applications", [
        table("Applications", [
            target(f"max by (app, app_id, spark_version) (streamscope_spark_app_info{{{app}}})", table=True),
            target(f"max by (app) (streamscope_spark_app_up{{{app}}})", table=True),
            target(f"sum by (app) (streamscope_spark_jobs_active{{{app}}})", table=True),
        ], MSGS, width=12, height=6, hide=("Value #A",),
            rename={"Value #B": "up", "Value #C": "active jobs", "app_id": "application id",
                    "spark_version": "Spark"}),
        timeseries("Failed jobs, stages, tasks", [
            target(f"sum by (app) (increase(streamscope_spark_jobs_failed_total{{{app}}}[$__rate_interval]))",
                   "jobs {{app}}"),
            target(f"sum by (app) (increase(streamscope_spark_stages_failed_total{{{app}}}[$__rate_interval]))",
                   "stages {{app}}"),
            target(f"sum by (app) (increase(streamscope_spark_tasks_failed_total{{{app}}}[$__rate_interval]))",
                   "tasks {{app}}"),
        ], MSGS, height=6, description="Failures per rate interval (increase of the counters)."),
        timeseries("Executors", [target(
            f"sum by (app, state) (streamscope_spark_executors{{{app}}})", "{{app}} {{state}}")], MSGS,
            width=8, height=7),
        timeseries("Executor memory used", [target(
            f"sum by (app) (streamscope_spark_executor_memory_used_bytes{{{app}}})", "{{app}}")], BYTES,
            width=8, height=7),
        timeseries("Time in GC", [target(
            f"sum by (app) (rate(streamscope_spark_executor_gc_seconds_total{{{app}}}[$__rate_interval]))",
            "{{app}}")], "percentunit", width=8, height=7,
            description="GC seconds per second over all executors (1 = 100 % of one core)."),
    ])


def _spark_queries_row() -> Row:
    return Row("Structured Streaming queries", [
        table("Queries", [
            target(f"max by (app, query, query_id, run_id) (streamscope_spark_query_info{{{SQ}}})", table=True),
            target(f"max by (app, query) (streamscope_spark_query_active{{{SQ}}})", table=True),
            target(f"max by (app, query) (streamscope_spark_query_failed{{{SQ}}})", table=True),
            target(f"max by (app, query) (streamscope_spark_query_last_batch_id{{{SQ}}})", table=True),
            target(f"time() - max by (app, query) (streamscope_spark_query_last_batch_timestamp_seconds{{{SQ}}})",
                   table=True),
        ], MSGS, height=6, hide=("Value #A",),
            rename={"Value #B": "active", "Value #C": "failed", "Value #D": "last batch",
                    "Value #E": "last batch age", "query_id": "id", "run_id": "run id"},
            overrides=[unit_override("last batch age", SECONDS)]),
        timeseries("Batch duration vs trigger interval", [
            target(f"max by (app, query) (streamscope_spark_query_batch_duration_seconds{{{SQ}}})",
                   "{{query}} batch"),
            target(f"max by (app, query) (streamscope_spark_query_trigger_interval_seconds{{{SQ}}})",
                   "{{query}} trigger"),
        ], SECONDS, overrides=[dashed(".* trigger$")],
            description="Batches longer than the trigger interval mean the query falls behind "
                        "(alert StreamscopeSparkBatchOverTrigger)."),
        timeseries("Trigger phases", [target(
            f"max by (app, query, phase) (streamscope_spark_query_trigger_phase_duration_seconds{{{SQ}}})",
            "{{query}} {{phase}}")], SECONDS,
            description="Duration of each phase of the last trigger (addBatch, getBatch, latestOffset, "
                        "queryPlanning, walCommit, commitOffsets; triggerExecution is the whole)."),
        timeseries("Input vs processed rows/s", [
            target(f"max by (app, query) (streamscope_spark_query_input_rows_per_second{{{SQ}}})",
                   "{{query}} input"),
            target(f"max by (app, query) (streamscope_spark_query_processed_rows_per_second{{{SQ}}})",
                   "{{query}} processed"),
        ], ROW_RATE, overrides=[dashed(".* input$")],
            description="Processed below input for long = falling behind."),
        timeseries("Rows per batch", [target(
            f"max by (app, query) (streamscope_spark_query_batch_input_rows{{{SQ}}})", "{{query}}")], MSGS,
            width=8),
        timeseries("Time since last batch", [target(
            f"time() - max by (app, query) (streamscope_spark_query_last_batch_timestamp_seconds{{{SQ}}})",
            "{{query}}")], SECONDS, width=8),
        timeseries("Kafka offsets behind latest", [target(
            f"max by (app, query, stat) (streamscope_spark_query_offsets_behind_latest{{{SQ}}})",
            "{{query}} {{stat}}")], MSGS, width=8,
            description="The Kafka source's own min/avg/max offsets behind the latest offset."),
    ])


def _spark_state_row() -> Row:
    return Row("Event time and state", [
        timeseries("Watermark and event-time delay", [
            target(f"max by (app, query) (streamscope_spark_query_watermark_delay_seconds{{{SQ}}})",
                   "{{query}} watermark delay"),
            target(f"max by (app, query) (streamscope_spark_query_event_time_delay_seconds{{{SQ}}})",
                   "{{query}} event-time delay"),
        ], SECONDS, width=8,
            description="How far the watermark, and the newest event time seen, trail the wall clock."),
        timeseries("State rows", [target(
            f"sum by (app, query) (streamscope_spark_query_state_rows{{{SQ}}})", "{{query}}")], MSGS,
            width=8),
        timeseries("State memory", [target(
            f"sum by (app, query) (streamscope_spark_query_state_memory_bytes{{{SQ}}})", "{{query}}")],
            BYTES, width=8),
    ])


def _spark_query_lag_row() -> Row:
    return Row("Query lag against Kafka (consumer group spark-<query>)", [
        timeseries("Query lag (messages)", [target(
            f"sum by (cluster, group, topic) (streamscope_kafka_consumergroup_lag{{{SPARK_GROUPS}}})",
            "{{group}} / {{topic}} @{{cluster}}")], MSGS,
            description="Spark commits no offsets to Kafka; streamscope computes the lag of each "
                        "query's source offsets and exports it as group spark-<query>."),
        timeseries("Query time lag", [target(
            f"max by (cluster, group, topic) (streamscope_kafka_consumergroup_lag_seconds{{{SPARK_GROUPS}}})",
            "{{group}} / {{topic}} @{{cluster}}")], SECONDS, thresholds=LAG_SECONDS_STEPS),
    ])


def _dstream_row(app: str) -> Row:
    return Row("DStream applications (legacy)", [
        timeseries("Batch interval vs processing time", [
            target(f"max by (app) (streamscope_spark_dstream_processing_time_seconds{{{app}}})",
                   "{{app}} processing"),
            target(f"max by (app) (streamscope_spark_dstream_batch_interval_seconds{{{app}}})",
                   "{{app}} batch interval"),
        ], SECONDS, width=8, overrides=[dashed(".* batch interval$")]),
        timeseries("Scheduling and total delay", [
            target(f"max by (app) (streamscope_spark_dstream_scheduling_delay_seconds{{{app}}})",
                   "{{app}} scheduling"),
            target(f"max by (app) (streamscope_spark_dstream_total_delay_seconds{{{app}}})",
                   "{{app}} total"),
        ], SECONDS, width=8, description="A growing scheduling delay means batches queue up."),
        timeseries("Active batches and input rate", [
            target(f"max by (app) (streamscope_spark_dstream_active_batches{{{app}}})",
                   "{{app}} active batches"),
            target(f"max by (app) (streamscope_spark_dstream_input_rate{{{app}}})",
                   "{{app}} records/s"),
        ], MSGS, width=8, overrides=[unit_override("B", "suffix: records/s", by="byFrameRefID")]),
    ], collapsed=True)


def health() -> dict[str, Any]:
    c = 'collector=~"$collector"'
    rows = [
        Row("Collectors", [
            state_timeline("Collector up", [target(
                f"max by (collector) (streamscope_collector_up{{{c}}})", "{{collector}}")], UP_MAPPINGS,
                height=6),
            state_timeline("Serving stale data", [target(
                f"max by (collector) (streamscope_collector_stale{{{c}}})", "{{collector}}")], STALE_MAPPINGS,
                height=6, description="1 while a failed collector's last good data is served."),
            timeseries("Age of last successful cycle", [target(
                f"time() - max by (collector) (streamscope_collector_last_success_timestamp_seconds{{{c}}})",
                "{{collector}}")], SECONDS, width=8, thresholds=[
                    {"color": "green", "value": None}, {"color": "red", "value": 300}]),
            timeseries("Cycle duration", [target(
                f"max by (collector) (streamscope_collector_duration_seconds{{{c}}})", "{{collector}}")],
                SECONDS, width=8),
            timeseries("Cycles and failures", [
                target(f"sum by (collector) (increase(streamscope_collector_cycles_total{{{c}}}[$__rate_interval]))",
                       "{{collector}} cycles"),
                target(f"sum by (collector) (increase(streamscope_collector_failures_total{{{c}}}[$__rate_interval]))",
                       "{{collector}} failures"),
            ], MSGS, width=8, description="Per rate interval."),
            timeseries("Kafka requests per cycle", [target(
                "max by (cluster) (streamscope_kafka_collector_requests)", "{{cluster}}")], MSGS,
                description="Requests the last cycle sent to each cluster (ListOffsets per leader, "
                            "OffsetFetch, Metadata, ...)."),
            table("Build", [target("max by (version) (streamscope_build_info)", table=True)], NONE,
                  width=12, hide=("Value",)),
        ]),
        Row("End-to-end probe (clusters[].probe)", [
            state_timeline("Probe up", [target("max by (cluster) (streamscope_kafka_probe_up)", "{{cluster}}")],
                           UP_MAPPINGS, width=8, height=6,
                           description="1 while each round gets every record back in time and commits."),
            timeseries("Probe latency (p99)", [
                target(probe_quantile(0.99, "roundtrip"), "round trip @{{cluster}}"),
                target(probe_quantile(0.99, "produce"), "produce (acks=all) @{{cluster}}"),
                target(probe_quantile(0.99, "commit"), "commit @{{cluster}}"),
            ], SECONDS, width=8, height=6),
            timeseries("Probe failures", [target(
                "sum by (cluster, reason) (increase(streamscope_kafka_probe_failures_total[$__rate_interval]))",
                "{{reason}} @{{cluster}}")], MSGS, width=8, height=6,
                description="produce and timeout: records; commit: rounds; setup: the probe's topic or clients."),
        ]),
        Row("Alerts (built-in engine)", [
            stat("Firing", [target('sum(streamscope_alerts{state="firing"})')], MSGS,
                 thresholds=RED_ABOVE_0, width=6),
            stat("Pending", [target('sum(streamscope_alerts{state="pending"})')], MSGS,
                 thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}], width=6),
            stat("Rule errors", [target("sum(streamscope_alert_rule_errors)")], MSGS,
                 thresholds=RED_ABOVE_0, width=6,
                 description="Rules that failed at their last evaluation."),
            stat("Active silences", [target('sum(streamscope_alert_silences{state="active"})')], MSGS,
                 width=6),
            timeseries("Alerts by name and state", [target(
                'sum by (alertname, state, severity) (streamscope_alerts{state=~"pending|firing"})',
                "{{alertname}} {{state}} ({{severity}})")], MSGS, stack=True),
            timeseries("Evaluation duration", [target(
                "max(streamscope_alert_evaluation_duration_seconds)", "evaluation")], SECONDS),
        ]),
        Row("Notifications", [
            timeseries("Outbox pending", [target(
                "sum by (receiver) (streamscope_alert_outbox_pending)", "{{receiver}}")], MSGS, width=8,
                description="Notifications waiting for delivery; grows while a receiver fails."),
            timeseries("Oldest pending notification", [target(
                "max by (receiver) (streamscope_alert_outbox_oldest_pending_age_seconds)", "{{receiver}}")],
                SECONDS, width=8, description="Absent while nothing is pending."),
            timeseries("Delivery attempts", [target(
                "sum by (receiver, result) (increase(streamscope_alert_notifications_total[$__rate_interval]))",
                "{{receiver}} {{result}}")], MSGS, width=8,
                overrides=[{"matcher": {"id": "byRegexp", "options": ".* failure$"},
                            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]}]),
        ]),
    ]
    return dashboard("streamscope-health", "streamscope / Self-monitoring",
                     "streamscope's own health: collectors up/stale/duration, the built-in alert "
                     "engine and notification delivery.",
                     rows, [COLLECTOR], ["self-monitoring"])


DASHBOARDS = {
    "streamscope-overview.json": overview,
    "streamscope-kafka-lag.json": kafka_lag,
    "streamscope-topics.json": topics,
    "streamscope-spark.json": spark,
    "streamscope-health.json": health,
}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this package)")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = args.out / name
        content = render(build)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                stale.append(name)
        else:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python -m dashboards.generate): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
