"""Topics: all topics (rate, retained messages, replication), throughput over time per topic,
per-partition throughput of the selected topic and its partition table."""
from __future__ import annotations

import json

import dash
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from monitor.web.context import current_context
from monitor.web.views import common
from monitor.web.views import series as series_data
from monitor.web.views import topics as topics_data
from .. import figures, ids, live, registry, tables, urlstate
from ..layout import card, graph, range_label, table


TOPIC_COLUMNS = [("topic", "topic"), ("partitions", "partitions"), ("rate", "produce rate"),
                 ("messages", "messages retained"), ("size", "size on disk"), ("retention", "retention"),
                 ("urp", "under-replicated"), ("under_min_isr", "under min ISR"), ("offline", "offline")]
PARTITION_COLUMNS = [("partition", "partition"), ("leader", "leader"), ("replicas", "replicas"),
                     ("isr", "ISR"), ("urp", "under-replicated"), ("earliest", "earliest offset"),
                     ("latest", "latest offset"), ("retained", "retained (messages)"),
                     ("size", "size (leader)"), ("rate", "produce rate")]
PAGE_SIZE = 15
TOP_TOPICS = 8
TOPIC_POINTS = 300
LINE_PARTITIONS = 12  # more partitions than this: a heatmap instead of lines


def layout(**params):
    state = urlstate.from_params("/topics", params)
    return html.Div([
        html.H1(["Topics", html.Span(id=ids.TP_TITLE, className="ss-page-sub")],
                className="ss-page-title"),
        html.Div([
            card("Throughput per topic", graph(ids.TP_THROUGHPUT),
                 extra=f"the {TOP_TOPICS} busiest topics and the selected one"),
            card("All topics", table(ids.TP_TABLE, TOPIC_COLUMNS, custom=True, filterable=True,
                                     numeric=("partitions", "rate", "messages", "urp", "offline"),
                                     page_size=10),
                 extra="click a row to select the topic"),
        ], className="ss-grid"),
        html.Div([
            html.Label("Topic", htmlFor=ids.TP_SELECT, className="ss-hint"),
            dcc.Dropdown(id=ids.TP_SELECT, options=[], value=state.topic, clearable=False,
                         className="ss-select", placeholder="select a topic"),
        ], className="ss-query-head"),
        card("Throughput per partition", graph(ids.TP_PARTITION_RATES), id="tp-partition-card"),
        card("Partitions", [
            html.Div(id=ids.TP_PARTITIONS_NOTE, className="ss-hint"),
            table(ids.TP_PARTITIONS, PARTITION_COLUMNS, custom=True, filterable=True,
                  numeric=("partition", "earliest", "latest", "retained", "rate"),
                  page_size=PAGE_SIZE),
        ]),
        dcc.Store(id=ids.TP_THROUGHPUT_META), dcc.Store(id=ids.TP_PARTITION_META),
    ])


@dash.callback(
    Output(ids.TP_TABLE, "data"), Output(ids.TP_TABLE, "page_count"),
    Output(ids.TP_TABLE, "page_current"),
    Output(ids.TP_SELECT, "options"), Output(ids.TP_SELECT, "value"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"),
    Input(ids.TP_TABLE, "page_current"), Input(ids.TP_TABLE, "sort_by"),
    Input(ids.TP_TABLE, "filter_query"),
    State(ids.TP_SELECT, "value"), State(ids.TP_SELECT, "options"),
)
def update_topics(_n, cluster, page_current, sort_by, filter_query, selected, options):
    context = current_context()
    snap = context.latest()
    cluster = common.resolve_cluster(context, cluster, snap)
    rows = topics_data.topic_rows(snap, cluster)
    page = tables.query(rows, filter_query=filter_query, sort_by=sort_by, page_current=page_current,
                        page_size=10, sort_keys=topics_data.TOPIC_SORT_KEYS,
                        default_sort=[("internal", False), ("_rate", True), ("topic", False)])
    names = topics_data.topic_names(snap, cluster, internal=True)
    new_options = [{"label": n, "value": n} for n in names]
    if new_options == options:
        new_options = no_update
    value = no_update
    if selected is None or (names and selected not in names):
        busiest = topics_data.top_topics(snap, cluster, 1)
        value = busiest[0] if busiest else (names[0] if names else no_update)
        if value == selected:
            value = no_update
    visible = tables.visible(page.rows, [c for c, _ in TOPIC_COLUMNS], extra=("id", "_level"))
    return visible, page.page_count, page.page_current, new_options, value


@dash.callback(
    Output(ids.TP_SELECT, "value", allow_duplicate=True),
    Input(ids.TP_TABLE, "active_cell"),
    prevent_initial_call=True,
)
def select_row(cell):
    topic = (cell or {}).get("row_id")
    return topic if isinstance(topic, str) and topic else no_update


@dash.callback(
    Output(ids.URL_SEARCH, "data", allow_duplicate=True),
    Input(ids.TP_SELECT, "value"),
    State(ids.URL_SEARCH, "data"),
    prevent_initial_call=True,
)
def topic_in_url(topic, search):
    state = urlstate.parse("/topics", search).with_(page="/topics", topic=topic)
    new = urlstate.serialise(state)
    return new if new != search else no_update


@dash.callback(
    Output(ids.TP_THROUGHPUT, "figure"), Output(ids.TP_THROUGHPUT_META, "data"),
    Output(ids.TP_PARTITION_RATES, "figure"), Output(ids.TP_PARTITION_META, "data"),
    Output(ids.TP_TITLE, "children"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.RANGE, "value"), Input(ids.CLUSTER, "value"),
    Input(ids.TP_SELECT, "value"),
    State(ids.TP_THROUGHPUT_META, "data"), State(ids.TP_PARTITION_META, "data"),
)
def update_charts(_n, range_key, cluster, topic, tmeta, pmeta):
    context = current_context()
    snap = context.latest()
    at = context.now()
    cluster = common.resolve_cluster(context, cluster, snap)
    snap_at = common.snapshot_at(snap)
    start, end = common.window(range_key, at)
    title = range_label(range_key) + (f" · cluster {cluster}" if cluster else "")

    topics = topics_data.top_topics(snap, cluster, TOP_TOPICS, include=[topic] if topic else [])
    tsig = [cluster, range_key, topics]
    if live.nothing_new(tmeta, tsig, snap_at) and live.nothing_new(pmeta, [cluster, range_key, topic], snap_at):
        raise PreventUpdate
    uirev = json.dumps(tsig)
    if live.can_extend(tmeta, tsig, 2 * TOPIC_POINTS):
        since = tmeta["last_at"]
        series = series_data.topic_throughput(context, cluster, topics, start, end, since=since,
                                       max_points=TOPIC_POINTS)
        lines = figures.topic_rate_lines(series)
        tfig = figures.extend_lines(tmeta["keys"], {ln.key: (ln.x, ln.y) for ln in lines}, (start, end))
        new = [r for rows in series.values() for r in rows]
        tmeta = {**tmeta, "snap_at": snap_at, "last_at": live.last_time(new) or since,
                 "n": tmeta["n"] + len({r["at"] for r in new})}
    else:
        series = series_data.topic_throughput(context, cluster, topics, start, end, max_points=TOPIC_POINTS)
        lines = figures.topic_rate_lines(series)
        empty = "No topics yet" if not topics else "No history in this time range yet"
        tfig = figures.lines_figure(lines, window=(start, end), ytitle="messages/s",
                                    uirevision=uirev, empty=empty)
        rows = [r for rows in series.values() for r in rows]
        tmeta = live.make_meta(tsig, snap_at, live.last_time(rows),
                               [] if figures.is_empty(tfig) else [ln.key for ln in lines],
                               len({r["at"] for r in rows}))

    psig = [cluster, range_key, topic]
    if topic is None:
        pfig = figures.empty_figure("Select a topic")
        pmeta = None
    else:
        parts = topics_data.partition_count(snap, cluster, topic) or 1
        ppp = series_data.points_per_series(parts)
        heat = parts > LINE_PARTITIONS
        if live.can_extend(pmeta, psig, 2 * ppp):
            since = pmeta["last_at"]
            rows = series_data.after(series_data.partition_rate_series(context, cluster, topic, since, end, ppp), since)
            if pmeta.get("heat"):
                keys = [int(k) for k in pmeta["keys"]]
                times, _, cells = figures.pivot(rows, lambda r: r["partition"], "rate")
                columns = [[cells.get(k, {}).get(t) for k in keys] for t in times]
                pfig = figures.extend_heatmap(times, columns, (start, end))
                count = len(times)
            else:
                lines = figures.partition_rate_lines(rows)
                pfig = figures.extend_lines(pmeta["keys"], {ln.key: (ln.x, ln.y) for ln in lines},
                                            (start, end))
                count = len({r["at"] for r in rows})
            pmeta = {**pmeta, "snap_at": snap_at, "last_at": live.last_time(rows) or since,
                     "n": pmeta["n"] + count}
        else:
            rows = series_data.partition_rate_series(context, cluster, topic, start, end, ppp)
            uirev = json.dumps(psig)
            if heat:
                times, keys, cells = figures.pivot(rows, lambda r: r["partition"], "rate")
                keys = sorted(keys)
                columns = [[cells[k].get(t) for k in keys] for t in times]
                pfig = figures.heatmap_figure([f"partition {k}" for k in keys], times, columns,
                                              window=(start, end), title="msg/s",
                                              hover="%{z:,.3~s} msg/s", colorscale="Blues",
                                              uirevision=uirev,
                                              empty=series_data.partition_empty_text(context, "No data in this time range yet"))
                keys_out = [str(k) for k in keys]
            else:
                lines = figures.partition_rate_lines(rows)
                pfig = figures.lines_figure(lines, window=(start, end), ytitle="messages/s",
                                            uirevision=uirev,
                                            empty=series_data.partition_empty_text(context, "No data in this time range yet"))
                keys_out = [ln.key for ln in lines]
            pmeta = live.make_meta(psig, snap_at, live.last_time(rows),
                                   [] if figures.is_empty(pfig) else keys_out,
                                   len({r["at"] for r in rows}), heat=heat)
    return tfig, tmeta, pfig, pmeta, title


@dash.callback(
    Output(ids.TP_PARTITIONS, "data"), Output(ids.TP_PARTITIONS, "page_count"),
    Output(ids.TP_PARTITIONS, "page_current"), Output(ids.TP_PARTITIONS_NOTE, "children"),
    Input(ids.INTERVAL, "n_intervals"), Input(ids.CLUSTER, "value"), Input(ids.TP_SELECT, "value"),
    Input(ids.TP_PARTITIONS, "page_current"), Input(ids.TP_PARTITIONS, "sort_by"),
    Input(ids.TP_PARTITIONS, "filter_query"),
)
def update_partitions(_n, cluster, topic, page_current, sort_by, filter_query):
    context = current_context()
    snap = context.latest()
    cluster = common.resolve_cluster(context, cluster, snap)
    rows = topics_data.partition_rows(snap, cluster, topic)
    page = tables.query(rows, filter_query=filter_query, sort_by=sort_by, page_current=page_current,
                        page_size=PAGE_SIZE, sort_keys=topics_data.PARTITION_SORT_KEYS,
                        default_sort=[("partition", False)])
    if topic is None:
        note = "Select a topic."
    elif not rows:
        note = "This topic is not in the latest metadata."
    else:
        urp = sum(1 for r in rows if r["_urp"])
        offline = sum(1 for r in rows if r["leader"] == "offline")
        note = (f"{len(rows)} partitions · {urp} under-replicated · {offline} offline · retained = "
                "latest − earliest offset (approximate for compacted topics)")
    visible = tables.visible(page.rows, [c for c, _ in PARTITION_COLUMNS], extra=("id", "_level"))
    return visible, page.page_count, page.page_current, note


# registered last so the layout function exists (imported by mount_dashboard, not scanned)
registry.register(__name__, layout)
