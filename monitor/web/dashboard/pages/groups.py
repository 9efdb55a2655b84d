"""Consumer groups (and Spark queries reading Kafka): a sortable, filterable table; clicking a
row opens the group's drill-down (`/groups?cluster=..&group=..`): lag per partition over time,
a partition × time heatmap, produce vs consume rate and the partition table."""
from __future__ import annotations

import json

import dash
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from monitor.web.context import current_context
from monitor.web.views import common
from monitor.web.views import groups as groups_data
from monitor.web.views import peers as peers_data
from monitor.web.views import series as series_data
from .. import figures, ids, live, registry, tables, urlstate
from monitor.web.views import format as fmt
from ..layout import card, graph, range_label, stat, table


COLUMNS = [("kind", "kind"), ("group", "group / query"), ("status", "status"), ("lag", "lag"),
           ("time_lag", "time lag (method)"), ("eta", "catch-up ETA"), ("consume", "consume rate"),
           ("produce", "produce rate"), ("members", "members"), ("state", "state"),
           ("topics", "topics")]
NUMERIC = ("lag", "eta", "consume", "produce", "members")
PARTITION_COLUMNS = [("topic", "topic"), ("partition", "partition"), ("committed", "committed"),
                     ("end", "end offset"), ("lag", "lag"), ("time_lag", "time lag (method)"),
                     ("headroom", "retention headroom"), ("consume", "consume rate"), ("status", "status"),
                     ("owner", "owner (client id)"), ("host", "host"), ("member", "member id")]
COMMIT_COLUMNS = [("topic", "topic"), ("partition", "partition"), ("offset", "committed offset"),
                  ("committed", "committed between"), ("age", "age")]
PAGE_SIZE = 20
LINES = 10  # partitions drawn as lines
HEAT_ROWS = 50  # partitions in the heatmap
RATE_POINTS = 300


def layout(**params):
    state = urlstate.from_params("/groups", params)
    if state.group:
        return detail_layout(state)
    return html.Div([
        html.H1(["Consumer groups", html.Span(id=ids.GR_COUNT, className="ss-page-sub")],
                className="ss-page-title"),
        html.Div("Click a row to drill down. Sort by clicking a header; filter in the row under "
                 "it: part of a name, or a comparison like > 1000 for lag.", className="ss-hint"),
        card("Groups and Spark queries",
             table(ids.GR_TABLE, COLUMNS, custom=True, filterable=True, numeric=NUMERIC,
                   page_size=PAGE_SIZE)),
    ])


def detail_layout(state: urlstate.UrlState):
    return html.Div([
        dcc.Link("← all consumer groups", href=urlstate.page_href(state, "/groups"),
                 className="ss-back", id="gr-back"),
        html.H1(["Consumer group ", html.Span(state.group, id="gr-name", className="ss-mono"),
                 html.Span(id="gr-detail-sub", className="ss-page-sub")],
                className="ss-page-title"),
        html.Div(id=ids.GR_SUMMARY, className="ss-stats", children=[stat("Loading", "…")]),
        html.Div([
            card("Lag per partition", graph(ids.GR_PARTITION_LAG),
                 extra=f"the {LINES} partitions with the highest lag"),
            card("Produce vs consume rate", graph(ids.GR_RATES)),
        ], className="ss-grid"),
        card("Lag heatmap: partition × time", graph(ids.GR_HEATMAP),
             extra=f"up to {HEAT_ROWS} partitions"),
        card("Partitions", table(ids.GR_PARTITIONS, PARTITION_COLUMNS, custom=True,
                                 filterable=True, numeric=("partition", "committed", "end", "lag", "consume"),
                                 page_size=PAGE_SIZE)),
        card("Recent commits", table(ids.GR_COMMITS, COMMIT_COLUMNS, numeric=("partition", "offset"),
                                     page_size=PAGE_SIZE, level_column=False),
             extra=f"the last {peers_data.COMMITS_PER_PARTITION} per partition within 6 h, as the collection saw them: "
                   "Kafka keeps no commit times, so each one is dated between two cycles"),
        dcc.Store(id=ids.GR_SELECTION, data={"cluster": state.cluster, "group": state.group}),
        dcc.Store(id=ids.GR_DETAIL_META),
    ])


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


@dash.callback(
    Output(ids.GR_TABLE, "data"), Output(ids.GR_TABLE, "page_count"),
    Output(ids.GR_TABLE, "page_current"), Output(ids.GR_COUNT, "children"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"),
    Input(ids.GR_TABLE, "page_current"), Input(ids.GR_TABLE, "sort_by"),
    Input(ids.GR_TABLE, "filter_query"),
)
def update_table(_n, cluster, page_current, sort_by, filter_query):
    context = current_context()
    snap = context.latest()
    cluster = common.resolve_cluster(context, cluster, snap)
    rows = groups_data.group_rows(snap, cluster)
    page = tables.query(rows, filter_query=filter_query, sort_by=sort_by, page_current=page_current,
                        page_size=PAGE_SIZE, sort_keys=groups_data.GROUP_SORT_KEYS,
                        default_sort=[("_severity", True), ("_lag", True)])
    kafka = sum(1 for r in rows if r["kind"] == groups_data.KIND_GROUP)
    spark = len(rows) - kafka
    if snap is None:
        count = "waiting for the first collection cycle…"
    else:
        count = f"{kafka} group{'s' if kafka != 1 else ''}" + (f" + {spark} Spark quer{'ies' if spark != 1 else 'y'}" if spark else "")
        if cluster:
            count += f" · cluster {cluster}"
        if filter_query:
            count += f" · {page.total} match the filter"
    visible = tables.visible(groups_data.display_rows(page.rows), [c for c, _ in COLUMNS], extra=("id", "_level"))
    return visible, page.page_count, page.page_current, count


@dash.callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.GR_TABLE, "active_cell"),
    State(ids.RANGE, "value"), State(ids.CLUSTER, "value"),
    prevent_initial_call=True,
)
def open_row(cell, range_key, cluster):
    parts = common.parse_row_id((cell or {}).get("row_id"))
    if not parts or len(parts) != 3:
        return no_update
    kind, where, name = parts
    rng = urlstate.normalise_range(range_key)
    if kind == groups_data.KIND_GROUP:
        return urlstate.href(urlstate.UrlState(page="/groups", cluster=where, group=name, range=rng))
    if kind == groups_data.KIND_QUERY:
        return urlstate.href(urlstate.UrlState(page="/spark", cluster=cluster, app=where, range=rng))
    return no_update


# --------------------------------------------------------------------------------------------
# the drill-down
# --------------------------------------------------------------------------------------------


def summary_cards(g, stale: bool, at: float, state=None) -> list:
    level = "stale" if stale else common.status_level(g.status)
    protocol = peers_data.group_protocol(state, g.group)
    risk = peers_data.worst_risk(peers_data.group_risks(state, g.group))
    cards = [
        stat("Status", common.enum_text(g.status) + (" (stale)" if stale else ""), level=level,
             sub=g.error or f"state {g.state}"),
        stat("Lag", f"{fmt.count(g.lag)} msgs", sub=f"{len(g.partitions)} partitions"),
        stat("Time lag", fmt.time_lag(g.time_lag_seconds, None, g.time_lag_lower_bound),
             sub=f"method: {common.enum_text(g.time_lag_method)}"
                 + (" · lower bound" if g.time_lag_lower_bound else "")),
        stat("Catch-up ETA", groups_data.eta_text(g),
             sub=f"consume {fmt.rate(g.consume_rate)} · produce {fmt.rate(g.produce_rate)}"),
        stat("Members", str(g.members),
             sub=(f"empty for {fmt.duration(at - g.empty_since)}" if g.is_empty and g.empty_since
                  else ", ".join(g.topics)), level="warn" if g.is_empty else None),
        stat("Retention headroom", peers_data.risk_text(risk),
             sub=(f"on {risk.topic}" + (f" · {risk.lost_partitions} partition(s) lost records" if risk.lost else "")
                  if risk else "time until retention deletes unread records"),
             level=peers_data.risk_level(risk) if risk else None),
        stat("Coordinator", fmt.MISSING if protocol.coordinator is None else f"broker {protocol.coordinator}",
             sub=peers_data.protocol_text(protocol)),
    ]
    return cards


def _heat_keys(g, rows) -> list[tuple[str, int]]:
    if g is not None:
        parts = sorted(g.partitions, key=lambda p: (-p.lag, p.topic, p.partition))[:HEAT_ROWS]
        return sorted((p.topic, p.partition) for p in parts)
    return sorted({(r["topic"], r["partition"]) for r in rows})[:HEAT_ROWS]


def _line_keys(g, rows) -> list[tuple[str, int]]:
    if g is not None and g.partitions:
        parts = sorted(g.partitions, key=lambda p: (-p.lag, p.topic, p.partition))[:LINES]
        return [(p.topic, p.partition) for p in parts]
    return figures.top_partitions(rows, LINES)


@dash.callback(
    Output(ids.GR_SUMMARY, "children"), Output("gr-detail-sub", "children"),
    Output(ids.GR_PARTITION_LAG, "figure"), Output(ids.GR_HEATMAP, "figure"),
    Output(ids.GR_RATES, "figure"), Output(ids.GR_DETAIL_META, "data"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.RANGE, "value"), Input(ids.CLUSTER, "value"),
    Input(ids.GR_SELECTION, "data"),
    State(ids.GR_DETAIL_META, "data"),
)
def update_detail(_n, range_key, shell_cluster, selection, meta):
    context = current_context()
    snap = context.latest()
    at = context.now()
    selection = selection or {}
    group = selection.get("group")
    cluster = common.resolve_cluster(context, selection.get("cluster") or shell_cluster, snap)
    snap_at = common.snapshot_at(snap)
    sig = [cluster, group, range_key]
    if live.nothing_new(meta, sig, snap_at):
        raise PreventUpdate
    start, end = common.window(range_key, at)
    state = common.cluster_state(snap, cluster)
    g = groups_data.find_group(snap, cluster, group)
    sub = f"{range_label(range_key)} · cluster {cluster}" if cluster else range_label(range_key)
    if g is not None:
        cards = summary_cards(g, bool(state and state.stale), at, state)
    elif snap is None:
        cards = [stat("Status", "waiting", sub="waiting for the first collection cycle…")]
    else:
        cards = [stat("Status", "not found", level="unknown",
                      sub=f"no group of this name in cluster {cluster} now (deleted, or its "
                          "empty-group TTL expired); history is shown if there is any")]

    n_parts = len(g.partitions) if g is not None else 50
    ppp = series_data.points_per_series(n_parts)
    limit = 2 * ppp
    if live.can_extend(meta, sig, limit) and meta.get("heat_rows") is not None:
        since = meta["last_at"]
        rate_rows = series_data.after(series_data.group_series(context, cluster, group, since, end, RATE_POINTS), since)
        part_rows = series_data.after(series_data.partition_lag_series(context, cluster, group, since, end, ppp), since)
        rate_lines = figures.group_rate_lines(rate_rows)
        rates_fig = figures.extend_lines(meta["rate_keys"], {ln.key: (ln.x, ln.y) for ln in rate_lines},
                                         (start, end))
        line_keys = [tuple(json.loads(k)) for k in meta["keys"]]
        lines = figures.partition_lag_lines(part_rows, line_keys)
        lag_fig = figures.extend_lines(meta["keys"], {ln.key: (ln.x, ln.y) for ln in lines}, (start, end))
        heat_keys = [tuple(k) for k in meta["heat_rows"]]
        _, times, columns, _ = figures.partition_heatmap_data(part_rows, heat_keys)
        heat_fig = figures.extend_heatmap(times, columns, (start, end))
        last = max([x for x in (live.last_time(rate_rows), live.last_time(part_rows)) if x is not None],
                   default=since)
        meta = {**meta, "snap_at": snap_at, "last_at": last,
                "n": meta["n"] + len(times)}
        return cards, sub, lag_fig, heat_fig, rates_fig, meta

    rate_rows = series_data.group_series(context, cluster, group, start, end, RATE_POINTS)
    part_rows = series_data.partition_lag_series(context, cluster, group, start, end, ppp)
    uirev = json.dumps(sig)
    rate_lines = figures.group_rate_lines(rate_rows)
    rates_fig = figures.lines_figure(rate_lines, window=(start, end), ytitle="messages/s",
                                     y2title="lag (messages)", uirevision=uirev,
                                     empty="No history for this group in this time range")
    line_keys = _line_keys(g, part_rows)
    lines = figures.partition_lag_lines(part_rows, line_keys)
    lag_fig = figures.lines_figure(lines, window=(start, end), ytitle="lag (messages)",
                                   uirevision=uirev,
                                   empty=series_data.partition_empty_text(
                                       context, "No partition history for this group in this time range"))
    heat_keys = _heat_keys(g, part_rows)
    labels, times, columns, _ = figures.partition_heatmap_data(part_rows, heat_keys)
    heat_fig = figures.heatmap_figure(labels, times, columns, window=(start, end), title="lag",
                                      uirevision=uirev,
                                      empty=series_data.partition_empty_text(
                                          context, "No partition history for this group in this time range"))
    last = max([x for x in (live.last_time(rate_rows), live.last_time(part_rows)) if x is not None],
               default=None)
    meta = live.make_meta(sig, snap_at, last,
                          [ln.key for ln in lines] if not figures.is_empty(lag_fig) else [],
                          len(times),
                          rate_keys=[ln.key for ln in rate_lines] if rate_rows else [],
                          heat_rows=[list(k) for k in heat_keys] if times else None)
    if figures.is_empty(rates_fig) or figures.is_empty(heat_fig):
        meta["keys"] = []  # rebuild next time instead of extending an empty chart
    return cards, sub, lag_fig, heat_fig, rates_fig, meta


@dash.callback(
    Output(ids.GR_PARTITIONS, "data"), Output(ids.GR_PARTITIONS, "page_count"),
    Output(ids.GR_PARTITIONS, "page_current"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"), Input(ids.GR_SELECTION, "data"),
    Input(ids.GR_PARTITIONS, "page_current"), Input(ids.GR_PARTITIONS, "sort_by"),
    Input(ids.GR_PARTITIONS, "filter_query"),
)
def update_partitions(_n, shell_cluster, selection, page_current, sort_by, filter_query):
    context = current_context()
    snap = context.latest()
    selection = selection or {}
    cluster = common.resolve_cluster(context, selection.get("cluster") or shell_cluster, snap)
    group = selection.get("group")
    state = common.cluster_state(snap, cluster)
    rows = groups_data.partition_lag_rows(
        groups_data.find_group(snap, cluster, group), peers_data.owners(state, group),
        peers_data.partition_retention(peers_data.group_risks(state, group)))
    page = tables.query(rows, filter_query=filter_query, sort_by=sort_by, page_current=page_current,
                        page_size=PAGE_SIZE,
                        sort_keys={"lag": "_lag", "time_lag": "_time_lag", "consume": "_consume",
                                   "status": "_severity", "headroom": "_headroom"},
                        default_sort=[("_lag", True), ("topic", False), ("partition", False)])
    visible = tables.visible(page.rows, [c for c, _ in PARTITION_COLUMNS], extra=("id", "_level"))
    return visible, page.page_count, page.page_current


@dash.callback(
    Output(ids.GR_COMMITS, "data"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"), Input(ids.GR_SELECTION, "data"),
)
def update_commits(_n, shell_cluster, selection):
    context = current_context()
    snap = context.latest()
    selection = selection or {}
    cluster = common.resolve_cluster(context, selection.get("cluster") or shell_cluster, snap)
    rows = peers_data.commit_rows(context, cluster, selection.get("group"), context.now())
    return tables.visible(rows, [c for c, _ in COMMIT_COLUMNS], extra=("id",))


# registered last so the layout function exists (imported by mount_dashboard, not scanned)
registry.register(__name__, layout)
