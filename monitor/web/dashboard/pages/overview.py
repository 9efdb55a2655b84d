"""Overview: headline figures, the pipeline topology, lag over time and collector health."""
from __future__ import annotations

import json

import dash
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from monitor.web.context import current_context
from monitor.web.views import common
from monitor.web.views import overview as overview_data
from monitor.web.views import peers as peers_data
from monitor.web.views import series as series_data
from monitor.web.views import topology as topology_data
from .. import figures, ids, live, registry, urlstate
from monitor.web.views import format as fmt
from ..layout import card, graph, range_label, stat, table


HEALTH_COLUMNS = [("name", "collector"), ("up", "up"), ("stale", "stale"),
                  ("age", "last success"), ("duration", "cycle time"), ("cycles", "cycles"),
                  ("failures", "failures"), ("error", "error")]
LAG_POINTS = 300


def layout(**params):
    state = urlstate.from_params("/", params)
    return html.Div([
        html.H1(["Pipeline overview", html.Span(range_label(state.range), id="ov-sub",
                                                className="ss-page-sub")],
                className="ss-page-title"),
        html.Div(id=ids.OV_HEADLINE, className="ss-stats",
                 children=[stat("Loading", "…")]),
        card("Pipeline topology", graph(ids.OV_TOPOLOGY, height=300),
             extra=[html.Span("producers → topics → consumer groups / Spark queries → output topics · "
                              "click a node to drill down · "),
                    dcc.Checklist(id=ids.OV_INTERNAL, options=[{"label": " show internal topics",
                                                                "value": "internal"}],
                                  value=[], inline=True, style={"display": "inline-block"})]),
        html.Div([
            card("Lag over time", graph(ids.OV_LAG)),
            card("Collector health", table(ids.OV_HEALTH, HEALTH_COLUMNS, numeric=("cycles", "failures"),
                                           sortable=False)),
        ], className="ss-grid"),
        dcc.Store(id=ids.OV_TOPOLOGY_META), dcc.Store(id=ids.OV_LAG_META),
    ])


def headline_cards(h: overview_data.Headline) -> list:
    cards = []
    cards.append(stat("Produce rate", fmt.rate(h.produce_rate),
                      sub=f"{h.topics} topic{'s' if h.topics != 1 else ''}"
                          + (f" · cluster {h.cluster}" if h.cluster else ""),
                      level="stale" if h.stale else None))
    if h.worst_lag is not None:
        name, lag, kind = h.worst_lag
        cards.append(stat("Worst lag", f"{fmt.count(lag)} msgs", sub=f"{name} ({kind})",
                          level="warn" if lag else "ok", title=name))
    else:
        cards.append(stat("Worst lag", fmt.MISSING, sub="no consumer groups"))
    if h.worst_time_lag is not None:
        name, seconds, method, lower = h.worst_time_lag
        cards.append(stat("Worst time lag", fmt.time_lag(seconds, None, lower),
                          sub=f"{name} · {method}", title=name,
                          level="warn" if seconds and seconds > 60 else "ok"))
    else:
        cards.append(stat("Worst time lag", fmt.MISSING, sub="no time lag yet"))
    lv = h.groups_by_level
    bad = " · ".join(f"{lv[k]} {k.upper()}" for k in ("warn", "err", "stale") if lv.get(k))
    cards.append(stat("Consumer groups", f"{lv.get('ok', 0)}/{h.groups} OK" if h.groups else "none",
                      sub=bad or ("all OK" if h.groups else "no groups in this cluster"),
                      level=common.worst_level(k for k, v in lv.items() if v) if h.groups else None))
    r = h.retention
    cards.append(stat("Retention risk", peers_data.risk_text(r) if r else "none",
                      sub=f"{r.group} on {r.topic}" if r else "no group behind on a topic with retention",
                      level=peers_data.risk_level(r), title=f"{r.group} / {r.topic}" if r else None))
    probe = peers_data.probe_summary(h.probe)
    if probe is not None:
        value, sub, level = probe
        cards.append(stat("End-to-end probe", value, sub=sub, level=level))
    if h.queries:
        behind = h.queries - h.queries_keeping_up - h.queries_unknown
        cards.append(stat("Spark queries", f"{h.queries_keeping_up}/{h.queries}",
                          sub="keeping up" + (f" · {behind} falling behind" if behind else "")
                              + (f" · {h.queries_unknown} unknown" if h.queries_unknown else ""),
                          level="warn" if behind else "ok"))
    else:
        cards.append(stat("Spark queries", "none", sub="no Spark application found"))
    if h.alerts_firing is None:
        cards.append(stat("Firing alerts", fmt.MISSING, sub="alert evaluation off"))
    else:
        cards.append(stat("Firing alerts", str(h.alerts_firing),
                          level="err" if h.alerts_firing else "ok",
                          sub="see the Alerts page" if h.alerts_firing else "all quiet"))
    return cards


@dash.callback(
    Output(ids.OV_HEADLINE, "children"),
    Output(ids.OV_TOPOLOGY, "figure"), Output(ids.OV_TOPOLOGY_META, "data"),
    Output(ids.OV_LAG, "figure"), Output(ids.OV_LAG_META, "data"),
    Output(ids.OV_HEALTH, "data"), Output("ov-sub", "children"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"), Input(ids.RANGE, "value"),
    Input(ids.OV_INTERNAL, "value"),
    State(ids.OV_TOPOLOGY_META, "data"), State(ids.OV_LAG_META, "data"),
)
def update(_n, cluster, range_key, internal, topo_meta, lag_meta):
    context = current_context()
    snap = context.latest()
    at = context.now()
    cluster = common.resolve_cluster(context, cluster, snap)
    snap_at = common.snapshot_at(snap)
    show_internal = "internal" in (internal or [])
    sig = [cluster, range_key, show_internal]
    if live.nothing_new(topo_meta, sig, snap_at):
        raise PreventUpdate
    start, end = common.window(range_key, at)

    cards = headline_cards(overview_data.headline(context, snap, cluster))

    nodes, edges = topology_data.topology(snap, cluster, show_internal=show_internal,
                                          extra_internal=context.settings.internal_topics)
    node_ids = [n.id for n in nodes]
    if live.is_tick() and live.same_selection(topo_meta, sig) and topo_meta.get("keys") == node_ids and node_ids:
        topo = figures.topology_patch(nodes)
    else:
        empty = ("Waiting for the first collection cycle…" if snap is None
                 else "No topics or consumer groups in this cluster yet")
        topo = figures.topology_figure(nodes, edges, empty=empty, uirevision=json.dumps(sig))
    topo_meta = live.make_meta(sig, snap_at, None, node_ids, len(node_ids),
                               links=[n.link for n in nodes])

    if cluster is None:
        lag_fig, lag_meta = figures.empty_figure("No Kafka cluster configured"), None
    elif live.can_extend(lag_meta, sig, 2 * LAG_POINTS):
        since = lag_meta["last_at"]
        rows = series_data.after(series_data.cluster_series(context, cluster, since, end, LAG_POINTS), since)
        lines = figures.cluster_lag_lines(rows)
        lag_fig = figures.extend_lines(lag_meta["keys"], {ln.key: (ln.x, ln.y) for ln in lines},
                                       (start, end))
        lag_meta = {**lag_meta, "snap_at": snap_at, "last_at": live.last_time(rows) or since,
                    "n": lag_meta["n"] + len(rows)}
    else:
        rows = series_data.cluster_series(context, cluster, start, end, LAG_POINTS)
        lines = figures.cluster_lag_lines(rows)
        lag_fig = figures.lines_figure(lines, window=(start, end), ytitle="messages",
                                       y2title="seconds", y2format=figures.SECONDS_FORMAT,
                                       uirevision=json.dumps(sig))
        lag_meta = live.make_meta(sig, snap_at, live.last_time(rows),
                                  [ln.key for ln in lines] if rows else [], len(rows))

    health = overview_data.health_rows(context, snap, at)
    sub = f"{range_label(range_key)}" + (f" · cluster {cluster}" if cluster else "")
    return cards, topo, topo_meta, lag_fig, lag_meta, health, sub


@dash.callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.OV_TOPOLOGY, "clickData"),
    State(ids.OV_TOPOLOGY_META, "data"), State(ids.RANGE, "value"), State(ids.CLUSTER, "value"),
    prevent_initial_call=True,
)
def drill_down(click, meta, range_key, cluster):
    """Click a topology node: group → its drill-down, topic → Topics, query → Spark."""
    try:
        link = (meta or {}).get("links", [])[int(click["points"][0]["customdata"])]
    except (TypeError, KeyError, IndexError, ValueError):
        return no_update
    if not isinstance(link, dict) or "page" not in link:
        return no_update
    state = urlstate.UrlState(
        page=urlstate.normalise_page(link["page"]), cluster=cluster,
        group=link.get("group"), topic=link.get("topic"), app=link.get("app"),
        range=urlstate.normalise_range(range_key),
    )
    return urlstate.href(state)


# registered last so the layout function exists (imported by mount_dashboard, not scanned)
registry.register(__name__, layout)
