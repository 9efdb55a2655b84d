"""Pure figure builders: data in, plotly figure dicts (or `dash.Patch` updates) out.

Figures are plain dicts (no `plotly.graph_objects` validation: ten times cheaper, and what
`dcc.Graph` receives anyway). Styling is theme-neutral (transparent backgrounds, grey text and
translucent grid lines), so the light/dark toggle needs no figure rebuild.

Every name (topic, group, query...) that reaches plotly goes through `format.plot_text`: plotly.js
renders a subset of HTML in texts, legends, hover labels and tick labels, and names must show as
text. Names are never put into a hovertemplate (where "%{" would be interpreted either).

Time series take `window=(start, end)` (UNIX seconds) and pin the x axis to it, so a 1 h chart
shows one hour even when the history holds ten minutes. `extend_lines`/`extend_heatmap` return a
`dash.Patch` appending the points that arrived since the last update (interval updates send a
few hundred bytes instead of the whole figure).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dash import Patch

from monitor.web.views import format as fmt

LEVEL_COLORS = {
    "ok": "#2f9e5b", "warn": "#e0a526", "err": "#d9463b", "stale": "#8c96a3", "unknown": "#6b7785",
}
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#eeca3b",
           "#ff9da6", "#9d755d", "#bab0ac")
FONT_COLOR = "#8a94a6"
GRID = "rgba(138,148,166,0.22)"
SECONDS_FORMAT = ",.1~f"  # d3: 0 stays "0" (SI formats print float noise as "53f")
CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": "hover",
          "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]}


def _r(v):
    """Fewer digits on the wire: floats to 4 significant digits (ints and None unchanged)."""
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return None
        return float(f"{v:.4g}")
    return v


def _rs(values) -> list:
    return [_r(v) for v in values]


def _axis(**extra) -> dict:
    out = {"gridcolor": GRID, "zeroline": False, "linecolor": GRID, "automargin": True}
    out.update(extra)
    return out


def base_layout(*, height: int = 300, uirevision: str | None = None, **extra) -> dict:
    layout = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": FONT_COLOR, "size": 12,
                 "family": "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
        "xaxis": _axis(),
        "yaxis": _axis(),
        "legend": {"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 11}},
        "hovermode": "x unified",
        "hoverlabel": {"namelength": 40},
        "uirevision": uirevision or "keep",
    }
    layout.update(extra)
    return layout


def empty_figure(message: str, *, height: int = 300) -> dict:
    """A blank chart with a centred message (the empty state of every chart)."""
    return {
        "data": [],
        "layout": base_layout(
            height=height,
            xaxis={"visible": False}, yaxis={"visible": False},
            annotations=[{"text": fmt.plot_text(message), "showarrow": False,
                          "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                          "font": {"size": 14, "color": FONT_COLOR}}],
        ),
    }


def is_empty(figure: dict) -> bool:
    return not figure.get("data")


def time_range(window: tuple[float, float] | None) -> list[str] | None:
    if window is None:
        return None
    return [fmt.plot_time(window[0]), fmt.plot_time(window[1])]


# --------------------------------------------------------------------------------------------
# time series: lines and heatmaps, full and incremental
# --------------------------------------------------------------------------------------------


@dataclass
class Line:
    key: str  # stable identity (trace index mapping for incremental updates)
    name: str  # legend name (raw; escaped when built)
    x: list = field(default_factory=list)  # UNIX seconds (converted to plot times)
    y: list = field(default_factory=list)
    yaxis: str = "y"
    color: str | None = None
    dash: str | None = None
    fill: str | None = None
    hover: str = "%{y:,.3~f}"


def _line_trace(line: Line, index: int) -> dict:
    trace = {
        "type": "scatter", "mode": "lines", "name": fmt.plot_text(fmt.shorten(line.name, 60)),
        "x": [fmt.plot_time(t) for t in line.x], "y": _rs(line.y),
        "line": {"width": 2, "color": line.color or PALETTE[index % len(PALETTE)]},
        "hovertemplate": line.hover,
        "connectgaps": False,
    }
    if line.dash:
        trace["line"]["dash"] = line.dash
    if line.fill:
        trace["fill"] = line.fill
    if line.yaxis != "y":
        trace["yaxis"] = line.yaxis
    return trace


def lines_figure(lines: Sequence[Line], *, window: tuple[float, float] | None = None,
                 ytitle: str = "", yformat: str = ".3~s", y2title: str | None = None,
                 y2format: str = ".3~s", empty: str = "No data in this time range yet",
                 height: int = 300, uirevision: str | None = None, showlegend: bool = True,
                 ymin_zero: bool = True) -> dict:
    if not any(line.x for line in lines):
        fig = empty_figure(empty, height=height)
        return fig
    data = [_line_trace(line, i) for i, line in enumerate(lines)]
    layout = base_layout(
        height=height, uirevision=uirevision, showlegend=showlegend,
        xaxis=_axis(type="date", range=time_range(window)),
        yaxis=_axis(title={"text": ytitle, "font": {"size": 11}}, tickformat=yformat,
                    rangemode="tozero" if ymin_zero else "normal"),
    )
    if y2title is not None:
        layout["yaxis2"] = _axis(title={"text": y2title, "font": {"size": 11}}, tickformat=y2format,
                                 overlaying="y", side="right", showgrid=False,
                                 rangemode="tozero" if ymin_zero else "normal")
    return {"data": data, "layout": layout}


def extend_lines(keys: Sequence[str], new: dict[str, tuple[list, list]],
                 window: tuple[float, float] | None = None) -> Patch:
    """Append points to the traces of a `lines_figure` built with `keys` (in that order)."""
    patch = Patch()
    index = {k: i for i, k in enumerate(keys)}
    for key, (xs, ys) in new.items():
        i = index.get(key)
        if i is None or not xs:
            continue
        patch["data"][i]["x"].extend([fmt.plot_time(t) for t in xs])
        patch["data"][i]["y"].extend(_rs(ys))
    if window is not None:
        patch["layout"]["xaxis"]["range"] = time_range(window)
    return patch


def heatmap_figure(rows: Sequence[str], x: Sequence[float], columns: Sequence[Sequence], *,
                   window: tuple[float, float] | None = None, title: str = "",
                   empty: str = "No data in this time range yet", height: int | None = None,
                   colorscale: str = "YlOrRd", reverse: bool = True, hover: str = "%{z:,}",
                   uirevision: str | None = None) -> dict:
    """Rows (e.g. partitions) × time. Data is time-major: columns[j][i] is the value of rows[i]
    at x[j] (plotly `transpose`), so a live update appends one column in one operation."""
    if not rows or not x:
        return empty_figure(empty, height=height or 300)
    h = height or max(220, min(900, 60 + 18 * len(rows)))
    data = [{
        "type": "heatmap", "x": [fmt.plot_time(t) for t in x], "y": [fmt.plot_text(r) for r in rows],
        "z": [_rs(c) for c in columns], "transpose": True,
        "colorscale": colorscale, "reversescale": reverse, "hoverongaps": False,
        "colorbar": {"title": {"text": title, "side": "right"}, "thickness": 12, "tickformat": ".3~s"},
        "hovertemplate": "%{y}<br>%{x}<br>" + hover + "<extra></extra>",
    }]
    layout = base_layout(
        height=h, uirevision=uirevision, hovermode="closest",
        xaxis=_axis(type="date", range=time_range(window), showgrid=False),
        yaxis=_axis(type="category", autorange="reversed", showgrid=False),
    )
    return {"data": data, "layout": layout}


def extend_heatmap(x: Sequence[float], columns: Sequence[Sequence],
                   window: tuple[float, float] | None = None) -> Patch:
    """Append time columns (columns[j] = the values of every row at x[j])."""
    patch = Patch()
    if x:
        patch["data"][0]["x"].extend([fmt.plot_time(t) for t in x])
        patch["data"][0]["z"].extend([_rs(c) for c in columns])
    if window is not None:
        patch["layout"]["xaxis"]["range"] = time_range(window)
    return patch


def pivot(rows: Iterable[dict], key, value: str) -> tuple[list[float], list, dict]:
    """rows (with "at") -> (sorted times, row keys in first-seen order, {key: {at: value}})."""
    times: set[float] = set()
    keys: list = []
    cells: dict = {}
    for r in rows:
        k = key(r)
        if k not in cells:
            cells[k] = {}
            keys.append(k)
        cells[k][r["at"]] = r.get(value)
        times.add(r["at"])
    return sorted(times), keys, cells


def series_by(rows: Iterable[dict], key, value: str) -> dict:
    """rows -> {key: (xs, ys)} in time order."""
    out: dict = {}
    for r in sorted(rows, key=lambda r: r["at"]):
        xs, ys = out.setdefault(key(r), ([], []))
        xs.append(r["at"])
        ys.append(r.get(value))
    return out


# --------------------------------------------------------------------------------------------
# overview
# --------------------------------------------------------------------------------------------

_SYMBOLS = {"producers": "diamond", "topic": "square", "group": "circle", "query": "hexagon",
            "more": "circle-open"}


def topology_positions(nodes: Sequence, edges: Sequence) -> dict[str, tuple[float, float]]:
    """x = layer; y spread evenly per layer, ordered by the mean y of predecessors."""
    layers: dict[int, list] = {}
    for n in nodes:
        layers.setdefault(n.layer, []).append(n)
    preds: dict[str, list[str]] = {}
    for e in edges:
        preds.setdefault(e.target, []).append(e.source)
    pos: dict[str, tuple[float, float]] = {}
    tallest = max((len(v) for v in layers.values()), default=1)
    for layer in sorted(layers):
        members = layers[layer]

        def bary(n):
            ys = [pos[p][1] for p in preds.get(n.id, ()) if p in pos]
            return (sum(ys) / len(ys) if ys else 0.0, n.kind == "more", n.label)

        members.sort(key=bary)
        count = len(members)
        for i, n in enumerate(members):
            # centre each layer on the tallest one; y grows upwards in plotly
            y = (tallest - 1) / 2 - (i - (count - 1) / 2) if count > 1 else (tallest - 1) / 2
            pos[n.id] = (float(layer), float(tallest - 1 - y))
    return pos


def topology_figure(nodes: Sequence, edges: Sequence, *, empty: str = "No topics or consumers yet",
                    uirevision: str | None = None) -> dict:
    if not nodes:
        fig = empty_figure(empty, height=260)
        return fig
    pos = topology_positions(nodes, edges)
    tallest = max(_layer_counts(nodes).values())
    # one trace draws every edge: a line per edge and an arrowhead near its end, oriented along
    # the line (marker.angleref "previous"); None separates edges
    ex, ey, sizes = [], [], []
    for e in edges:
        (x0, y0), (x1, y1) = pos[e.source], pos[e.target]
        ex += [x0, x0 + (x1 - x0) * 0.93, None]
        ey += [y0, y0 + (y1 - y0) * 0.93, None]
        sizes += [0, 9, 0]
    edge_trace = {"type": "scatter", "mode": "lines+markers", "x": ex, "y": ey, "hoverinfo": "skip",
                  "line": {"color": "rgba(138,148,166,0.55)", "width": 1.5}, "showlegend": False,
                  "marker": {"symbol": "arrow", "angleref": "previous", "size": sizes,
                             "color": "rgba(138,148,166,0.85)"}}
    node_trace = {
        "type": "scatter", "mode": "markers+text",
        "x": [pos[n.id][0] for n in nodes], "y": [pos[n.id][1] for n in nodes],
        "text": [fmt.plot_text(fmt.shorten(n.label, 28)) for n in nodes],
        "textposition": "bottom center",
        "hovertext": [_hover(n) for n in nodes], "hoverinfo": "text",
        "customdata": list(range(len(nodes))),  # index into the caller's node list (no names)
        "marker": {"size": [22 if n.kind != "more" else 16 for n in nodes],
                   "color": [LEVEL_COLORS.get(n.level, LEVEL_COLORS["unknown"]) for n in nodes],
                   "symbol": [_SYMBOLS.get(n.kind, "circle") for n in nodes],
                   "line": {"width": 1.5, "color": "rgba(255,255,255,0.7)"}},
        "showlegend": False, "cliponaxis": False,
    }
    max_layer = max(n.layer for n in nodes)
    layout = base_layout(
        height=max(240, min(1100, 90 + 70 * tallest)), uirevision=uirevision, hovermode="closest",
        xaxis={"visible": False, "range": [-0.4, max_layer + 0.4], "fixedrange": True},
        yaxis={"visible": False, "range": [-0.8, tallest - 0.05], "fixedrange": True},
        annotations=_layer_titles(nodes, tallest),
        dragmode=False,
    )
    return {"data": [edge_trace, node_trace], "layout": layout}


def _layer_counts(nodes: Sequence) -> dict[int, int]:
    counts: dict[int, int] = {}
    for n in nodes:
        counts[n.layer] = counts.get(n.layer, 0) + 1
    return counts


def _layer_titles(nodes: Sequence, tallest: int) -> list[dict]:
    kinds: dict[int, set[str]] = {}
    for n in nodes:
        kinds.setdefault(n.layer, set()).add(n.kind)
    out = []
    for layer, ks in sorted(kinds.items()):
        ks = ks - {"more"}
        if ks == {"producers"}:
            title = "producers"
        elif ks <= {"topic"}:
            title = "topics" if layer <= 1 else "output topics"
        elif ks <= {"group", "query"}:
            title = "consumers" if "group" in ks else "Spark queries"
        else:
            title = ""
        if title:
            out.append({"text": title, "x": layer, "y": tallest - 0.55, "xref": "x", "yref": "y",
                        "showarrow": False, "yanchor": "bottom",
                        "font": {"size": 11, "color": FONT_COLOR}})
    return out


def _hover(node) -> str:
    return "<br>".join(fmt.plot_text(line) for line in (node.detail or [node.label]))


def topology_patch(nodes: Sequence) -> Patch:
    """Update colours and hover texts of an unchanged node set (same order as built)."""
    patch = Patch()
    patch["data"][1]["marker"]["color"] = [LEVEL_COLORS.get(n.level, LEVEL_COLORS["unknown"]) for n in nodes]
    patch["data"][1]["hovertext"] = [_hover(n) for n in nodes]
    return patch


def cluster_lag_lines(rows: Sequence[dict]) -> list[Line]:
    xs = [r["at"] for r in rows]
    return [
        Line("total_lag", "total lag (messages)", xs, [r.get("total_lag") for r in rows],
             color=PALETTE[0], hover="%{y:,.0f} messages"),
        Line("max_time_lag", "worst time lag (s)", xs, [r.get("max_time_lag_seconds") for r in rows],
             yaxis="y2", color=PALETTE[1], dash="dot", hover="%{y:,.1f} s"),
    ]


# --------------------------------------------------------------------------------------------
# consumer groups
# --------------------------------------------------------------------------------------------


def group_rate_lines(rows: Sequence[dict]) -> list[Line]:
    xs = [r["at"] for r in rows]
    return [
        Line("produce", "produce rate", xs, [r.get("produce_rate") for r in rows],
             color=PALETTE[1], hover="%{y:,.3~s} msg/s"),
        Line("consume", "consume rate", xs, [r.get("consume_rate") for r in rows],
             color=PALETTE[0], hover="%{y:,.3~s} msg/s"),
        Line("lag", "lag (messages)", xs, [r.get("lag") for r in rows], yaxis="y2",
             color="rgba(138,148,166,0.9)", dash="dot", hover="%{y:,.0f} messages"),
    ]


def partition_label(topic: str, partition: int, topics: int = 1) -> str:
    return f"{topic}[{partition}]" if topics > 1 else f"partition {partition}"


def top_partitions(rows: Sequence[dict], n: int = 10) -> list[tuple[str, int]]:
    """(topic, partition) of the n partitions with the highest latest lag."""
    latest: dict[tuple[str, int], tuple[float, int]] = {}
    for r in rows:
        k = (r["topic"], r["partition"])
        if k not in latest or r["at"] >= latest[k][0]:
            latest[k] = (r["at"], r.get("lag") or 0)
    ranked = sorted(latest, key=lambda k: (-latest[k][1], k))
    return ranked[:n]


def partition_lag_lines(rows: Sequence[dict], keys: Sequence[tuple[str, int]]) -> list[Line]:
    topics = len({k[0] for k in keys})
    wanted = set(keys)
    per = series_by((r for r in rows if (r["topic"], r["partition"]) in wanted),
                    lambda r: (r["topic"], r["partition"]), "lag")
    return [Line(json.dumps(list(k)), partition_label(k[0], k[1], topics), *per.get(k, ([], [])),
                 hover="%{y:,.0f}") for k in keys]


def partition_heatmap_data(rows: Sequence[dict], keys: Sequence[tuple[str, int]] | None = None,
                           value: str = "lag") -> tuple[list[str], list[float], list[list], list]:
    """(row labels, times, columns, row keys) for a partition × time heatmap; columns[j][i] is
    the value of partition keys[i] at times[j]."""
    times, found, cells = pivot(rows, lambda r: (r["topic"], r["partition"]), value)
    keys = list(keys) if keys is not None else sorted(found)
    topics = len({k[0] for k in keys})
    labels = [partition_label(k[0], k[1], topics) for k in keys]
    columns = [[cells.get(k, {}).get(t) for k in keys] for t in times]
    return labels, times, columns, keys


# --------------------------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------------------------


def topic_rate_lines(series: dict[str, list[dict]]) -> list[Line]:
    return [Line(topic, topic, [r["at"] for r in rows], [r.get("produce_rate") for r in rows],
                 hover="%{y:,.3~s} msg/s")
            for topic, rows in series.items()]


def partition_rate_lines(rows: Sequence[dict]) -> list[Line]:
    per = series_by(rows, lambda r: r["partition"], "rate")
    return [Line(str(p), f"partition {p}", *per[p], hover="%{y:,.3~s} msg/s") for p in sorted(per)]


# --------------------------------------------------------------------------------------------
# spark
# --------------------------------------------------------------------------------------------


def _batch_axis(batches) -> dict:
    return _axis(tickformat="d", tickprefix="#")


def batch_duration_figure(query, *, height: int = 260) -> dict:
    """Duration of each micro-batch against the trigger interval (bars over the line = late)."""
    batches = [b for b in query.batches if b.batch_id is not None and b.duration_s is not None]
    if not batches:
        return empty_figure("No completed batches reported yet", height=height)
    trigger = query.trigger_interval_s
    colors = [LEVEL_COLORS["warn"] if trigger and b.duration_s > trigger else PALETTE[0] for b in batches]
    data = [{"type": "bar", "name": "batch duration", "x": [b.batch_id for b in batches],
             "y": [b.duration_s for b in batches], "marker": {"color": colors},
             "hovertemplate": "batch %{x}<br>%{y:.3~f} s<extra></extra>"}]
    shapes, annotations = [], []
    if trigger:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                       "y0": trigger, "y1": trigger, "line": {"color": LEVEL_COLORS["err"], "dash": "dash", "width": 1.5}})
        annotations.append({"xref": "paper", "x": 1, "y": trigger, "yref": "y", "xanchor": "right",
                            "yanchor": "bottom", "showarrow": False,
                            "text": f"trigger interval {fmt.duration(trigger)}",
                            "font": {"size": 11, "color": LEVEL_COLORS["err"]}})
    layout = base_layout(height=height, hovermode="closest", showlegend=False,
                         xaxis=_batch_axis(batches),
                         yaxis=_axis(title={"text": "seconds", "font": {"size": 11}}, rangemode="tozero"),
                         shapes=shapes, annotations=annotations)
    return {"data": data, "layout": layout}


def _batch_lines(batches, specs, *, height: int, ytitle: str, y2title: str | None = None,
                 empty: str, yformat: str = ".3~s") -> dict:
    data = []
    for i, (attr, name, axis, hover) in enumerate(specs):
        pts = [(b.batch_id, getattr(b, attr)) for b in batches
               if b.batch_id is not None and getattr(b, attr) is not None]
        if not pts:
            continue
        trace = {"type": "scatter", "mode": "lines+markers", "name": name,
                 "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                 "line": {"width": 2, "color": PALETTE[i]}, "marker": {"size": 4},
                 "hovertemplate": hover}
        if axis != "y":
            trace["yaxis"] = axis
        data.append(trace)
    if not data:
        return empty_figure(empty, height=height)
    layout = base_layout(height=height, xaxis=_batch_axis(batches),
                         yaxis=_axis(title={"text": ytitle, "font": {"size": 11}}, tickformat=yformat,
                                     rangemode="tozero"))
    if y2title:
        layout["yaxis2"] = _axis(title={"text": y2title, "font": {"size": 11}}, tickformat=".3~s",
                                 overlaying="y", side="right", showgrid=False, rangemode="tozero")
    return {"data": data, "layout": layout}


def query_rates_figure(query, *, height: int = 260) -> dict:
    return _batch_lines(query.batches, [
        ("input_rate", "input rows/s", "y", "%{y:,.3~s} rows/s"),
        ("processing_rate", "processed rows/s", "y", "%{y:,.3~s} rows/s"),
    ], height=height, ytitle="rows/s",
        empty="No input/processing rates yet (they come from the progress feed)")


def watermark_figure(query, *, height: int = 260) -> dict:
    return _batch_lines(query.batches, [
        ("watermark_delay_s", "watermark delay", "y", "%{y:,.3~f} s"),
        ("event_time_delay_s", "event-time delay", "y", "%{y:,.3~f} s"),
    ], height=height, ytitle="seconds", yformat=SECONDS_FORMAT,
        empty="No watermark: the query has no event-time watermark, or no progress feed")


def state_figure(query, *, height: int = 260) -> dict:
    return _batch_lines(query.batches, [
        ("state_rows", "state rows", "y", "%{y:,.0f} rows"),
        ("state_bytes", "state memory", "y2", "%{y:,.3~s}B"),
    ], height=height, ytitle="rows", y2title="bytes", yformat=",~f",
        empty="No state store (stateless query), or no progress feed")


def dstream_figure(dstream, *, height: int = 280) -> dict:
    """Scheduling delay and processing time per DStream batch against the batch interval."""
    batches = [b for b in dstream.batches if b.get("batch_time") is not None]
    if not batches:
        return empty_figure("No DStream batches reported yet", height=height)
    x = [fmt.plot_time(b["batch_time"]) for b in batches]
    data = [
        {"type": "bar", "name": "scheduling delay", "x": x, "y": [b["scheduling_delay_s"] for b in batches],
         "marker": {"color": PALETTE[1]}, "hovertemplate": "%{y:.3~f} s"},
        {"type": "bar", "name": "processing time", "x": x, "y": [b["processing_s"] for b in batches],
         "marker": {"color": PALETTE[0]}, "hovertemplate": "%{y:.3~f} s"},
    ]
    shapes, annotations = [], []
    if dstream.batch_interval_s:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                       "y0": dstream.batch_interval_s, "y1": dstream.batch_interval_s,
                       "line": {"color": LEVEL_COLORS["err"], "dash": "dash", "width": 1.5}})
        annotations.append({"xref": "paper", "x": 1, "y": dstream.batch_interval_s, "yref": "y",
                            "xanchor": "right", "yanchor": "bottom", "showarrow": False,
                            "text": f"batch interval {fmt.duration(dstream.batch_interval_s)}",
                            "font": {"size": 11, "color": LEVEL_COLORS["err"]}})
    layout = base_layout(height=height, barmode="stack",
                         xaxis=_axis(type="date"),
                         yaxis=_axis(title={"text": "seconds", "font": {"size": 11}}, rangemode="tozero"),
                         shapes=shapes, annotations=annotations)
    return {"data": data, "layout": layout}
