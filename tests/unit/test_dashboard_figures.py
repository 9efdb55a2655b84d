"""monitor.web.dashboard.figures: pure builders (dicts and Patches), names escaped for plotly."""
from __future__ import annotations

import json

import plotly.io as pio
import pytest

from monitor.web.dashboard import figures
from monitor.web.views import spark as spark_data
from monitor.web.views import topology as topology_data
from tests import dashboard_sample as sample
from monitor.web.views import format as fmt
from tests.dash_driver import apply_patch

END = 1_790_000_000.0
HOSTILE = sample.HOSTILE_GROUP


def _all_strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _all_strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _all_strings(v)


def _valid(fig: dict) -> None:
    """plotly accepts the dict as a figure (validates every property)."""
    pio.from_json(json.dumps(fig), skip_invalid=False)


def test_empty_figure():
    fig = figures.empty_figure("No <b>data</b> yet")
    assert figures.is_empty(fig)
    assert fig["layout"]["annotations"][0]["text"] == "No &lt;b&gt;data&lt;/b&gt; yet"
    _valid(fig)


def test_lines_figure_and_window():
    lines = [figures.Line("a", "alpha", [END - 20, END - 10], [1, 2]),
             figures.Line("b", "beta", [END - 10], [5], yaxis="y2")]
    fig = figures.lines_figure(lines, window=(END - 3600, END), ytitle="msg/s", y2title="lag")
    _valid(fig)
    assert [t["name"] for t in fig["data"]] == ["alpha", "beta"]
    assert fig["data"][1]["yaxis"] == "y2"
    assert fig["layout"]["xaxis"]["range"] == [fmt.plot_time(END - 3600), fmt.plot_time(END)]
    assert fig["data"][0]["x"][0] == fmt.plot_time(END - 20)


def test_lines_figure_without_points_is_an_empty_state():
    fig = figures.lines_figure([figures.Line("a", "a")], empty="Nothing here")
    assert figures.is_empty(fig) and "Nothing here" in fig["layout"]["annotations"][0]["text"]


def test_extend_lines_patch_appends_only_new_points():
    lines = [figures.Line("a", "alpha", [END - 20], [1]), figures.Line("b", "beta", [END - 20], [2])]
    fig = figures.lines_figure(lines, window=(END - 3600, END - 10))
    patch = figures.extend_lines(["a", "b"], {"b": ([END], [7]), "zzz": ([END], [0])},
                                 window=(END - 3590, END))
    ops = patch.to_plotly_json()["operations"]
    updated = apply_patch(fig, ops)
    assert updated["data"][1]["y"] == [2, 7] and updated["data"][0]["y"] == [1]
    assert updated["data"][1]["x"][-1] == fmt.plot_time(END)
    assert updated["layout"]["xaxis"]["range"][1] == fmt.plot_time(END)
    assert len(json.dumps(patch.to_plotly_json())) < 400


def test_heatmap_and_extend():
    rows = [{"at": END - 10, "topic": "t", "partition": p, "lag": p} for p in range(3)]
    rows += [{"at": END, "topic": "t", "partition": 1, "lag": 9}]
    labels, times, z, keys = figures.partition_heatmap_data(rows)
    assert labels == ["partition 0", "partition 1", "partition 2"] and times == [END - 10, END]
    assert z == [[0, 1, 2], [None, 9, None]]  # time-major: one column per time
    fig = figures.heatmap_figure(labels, times, z, window=(END - 60, END))
    _valid(fig)
    assert fig["data"][0]["transpose"] is True
    patch = figures.extend_heatmap([END + 10], [[4, 5, 6]])
    ops = patch.to_plotly_json()["operations"]
    assert len(ops) == 2  # x and z: one operation each, whatever the number of rows
    updated = apply_patch(fig, ops)
    assert updated["data"][0]["z"] == [[0, 1, 2], [None, 9, None], [4, 5, 6]]
    assert len(updated["data"][0]["x"]) == 3
    two_topics = figures.partition_heatmap_data(rows + [{"at": END, "topic": "u", "partition": 0, "lag": 1}])
    assert "t[0]" in two_topics[0] and "u[0]" in two_topics[0]


def test_top_partitions_and_lines():
    rows = [{"at": END, "topic": "t", "partition": p, "lag": lag} for p, lag in enumerate([5, 50, 0, 20])]
    assert figures.top_partitions(rows, 2) == [("t", 1), ("t", 3)]
    lines = figures.partition_lag_lines(rows, [("t", 1), ("t", 3)])
    assert [ln.name for ln in lines] == ["partition 1", "partition 3"] and lines[0].y == [50]


def test_topology_figure_and_patch():
    m = sample.build(None, spec=sample.default_spec(hostile=True), cycles=3, end=END, spark=True)
    nodes, edges = topology_data.topology(m.latest(), "demo")
    fig = figures.topology_figure(nodes, edges)
    _valid(fig)
    node_trace = fig["data"][1]
    assert len(node_trace["x"]) == len(nodes)
    assert node_trace["customdata"] == list(range(len(nodes)))  # indexes, never names
    colors = dict(zip([n.id for n in nodes], node_trace["marker"]["color"]))
    assert colors["g:orders-billing"] == figures.LEVEL_COLORS["err"]
    assert colors["g:clickstream-enricher-slow"] == figures.LEVEL_COLORS["warn"]
    patch = figures.topology_patch(nodes).to_plotly_json()["operations"]
    assert {tuple(op["location"]) for op in patch} == {(
        "data", 1, "marker", "color"), ("data", 1, "hovertext")}
    assert figures.is_empty(figures.topology_figure([], []))


def test_hostile_names_never_reach_plotly_as_markup():
    """Every string in every figure is escaped: no '<' or '>' from a name survives (plotly
    renders <b>, <a>, <br> in texts); our own <br>/<extra> only appear in hover templates and
    the hover text separators."""
    m = sample.build(None, spec=sample.default_spec(hostile=True), cycles=3, end=END, spark=True)
    snap = m.latest()
    nodes, edges = topology_data.topology(snap, "demo")
    rows = [{"at": END, "topic": "<t>", "partition": 0, "lag": 1}]
    figs = [
        figures.topology_figure(nodes, edges),
        figures.lines_figure([figures.Line(HOSTILE, HOSTILE, [END], [1])]),
        figures.heatmap_figure(["<img src=x onerror=alert(1)>"], [END], [[1]]),
        figures.lines_figure(figures.topic_rate_lines({HOSTILE: [{"at": END, "produce_rate": 1.0}]})),
        figures.heatmap_figure(*figures.partition_heatmap_data(rows)[:3]),
        figures.empty_figure(HOSTILE),
    ]
    for fig in figs:
        for s in _all_strings(fig):
            cleaned = s.replace("<br>", "").replace("<extra></extra>", "")
            assert "<" not in cleaned and ">" not in cleaned, s
        for trace in fig["data"]:
            assert HOSTILE not in trace.get("hovertemplate", "")
    node_trace = figs[0]["data"][1]
    assert fmt.plot_text(fmt.shorten(HOSTILE, 28)) in node_trace["text"]


def test_spark_figures():
    app = spark_data.spark_apps(sample.build(None, cycles=1, end=END, spark=True).latest())[0]
    q = app.queries[0]
    dur = figures.batch_duration_figure(q)
    _valid(dur)
    bars = dur["data"][0]
    assert bars["x"][0] == 100 and len(bars["y"]) == 30
    assert dur["layout"]["annotations"][0]["text"] == "trigger interval 2s"
    late = [c for c, y in zip(bars["marker"]["color"], bars["y"]) if y > q.trigger_interval_s]
    assert late and set(late) == {figures.LEVEL_COLORS["warn"]}
    for builder in (figures.query_rates_figure, figures.watermark_figure, figures.state_figure):
        fig = builder(q)
        _valid(fig)
        assert not figures.is_empty(fig)
    snap = sample.spark_app(END, dstream=True)
    d = spark_data._dstream_view(snap.dstream)
    fig = figures.dstream_figure(d)
    _valid(fig)
    assert fig["layout"]["shapes"][0]["y0"] == 2.0


def test_spark_figures_empty_states():
    q = spark_data.QueryView(
        app_id="a", app_name="a", key="k", label="k", state="unknown", exception=None, batches=[],
        trigger_interval_s=None, source_topics=[], output_topics=[], sink="unknown", sink_kind=None,
        input_rate=None, processing_rate=None, last_duration_s=None, watermark_delay_s=None,
        state_rows=None, state_bytes=None, kafka_lag=None, kafka_lag_method="none", keeping_up=None,
        level="unknown", stale=False, last_batch_id=None, updated_at=None)
    for builder in (figures.batch_duration_figure, figures.query_rates_figure,
                    figures.watermark_figure, figures.state_figure):
        assert figures.is_empty(builder(q))


@pytest.mark.parametrize("rows, expected", [
    ([], ([], [], {})),
    ([{"at": 2, "k": "a", "v": 1}, {"at": 1, "k": "b", "v": 2}], ([1, 2], ["a", "b"], {"a": {2: 1}, "b": {1: 2}})),
])
def test_pivot(rows, expected):
    assert figures.pivot(rows, lambda r: r["k"], "v") == expected
