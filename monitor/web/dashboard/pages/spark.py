"""Spark: applications and their streaming queries (batch duration against the trigger interval,
input vs processing rate, watermark delay, state), DStream batches (scheduling delay and
processing time against the batch interval), failed jobs and stages, executors.

Spark data comes from the latest snapshot only (the recent batches each query carries); the page
is rebuilt when the set of apps/queries changes, and its figures/tables are refreshed in place
(pattern-matching ids) on every new snapshot otherwise.
"""
from __future__ import annotations

import json

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from monitor.web.context import current_context
from monitor.web.views import common
from monitor.web.views import spark as spark_data
from .. import figures, ids, registry
from monitor.web.views import format as fmt
from ..layout import card, empty_state, level_badge, stat, table


FIG = "sp-fig"
TEXT = "sp-text"
TABLE = "sp-table"
QUERY_FIGS = (("duration", "Batch duration vs trigger interval"),
              ("rates", "Input vs processing rate"),
              ("watermark", "Watermark and event-time delay"),
              ("state", "State rows and memory"))
JOB_COLUMNS = [("job", "job"), ("name", "name"), ("description", "description"),
               ("failed_tasks", "failed tasks"), ("failed_stages", "failed stages"),
               ("completed", "completed")]
STAGE_COLUMNS = [("stage", "stage"), ("name", "name"), ("reason", "failure reason"),
                 ("failed_tasks", "failed tasks"), ("completed", "completed")]
EXECUTOR_COLUMNS = [("id", "executor"), ("host", "host:port"), ("active", "active"),
                    ("cores", "cores"), ("active_tasks", "active tasks"),
                    ("completed_tasks", "completed tasks"), ("failed_tasks", "failed tasks"),
                    ("memory", "storage memory"), ("gc", "GC time"), ("removed", "removed because")]
RECEIVER_COLUMNS = [("stream", "stream"), ("name", "name"), ("active", "active"),
                    ("executor", "executor"), ("rate", "avg rate"), ("last_error", "last error")]


def layout(**params):
    app = params.get("app")
    app = app[0] if isinstance(app, list) and app else app
    return html.Div([
        html.H1(["Spark", html.Span(id="sp-sub", className="ss-page-sub")], className="ss-page-title"),
        html.Div(id=ids.SP_CONTENT, children=[empty_state("Loading…")]),
        dcc.Store(id=ids.SP_META),
        dcc.Store(id="sp-filter", data={"app": app if isinstance(app, str) else None}),
    ])


def _cid(kind: str, *parts) -> dict:
    return {"type": kind, "id": json.dumps([str(p) for p in parts])}


def _safe_url(url: str | None) -> str | None:
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _structure(apps: list[spark_data.AppView]) -> list:
    return [[a.id, [q.key for q in a.queries], a.dstream is not None] for a in apps]


def _query_stats(q: spark_data.QueryView) -> list:
    trigger = ""
    if q.trigger_interval_s:
        trigger = f" · trigger {fmt.duration(q.trigger_interval_s)}"
    keeping = {True: "keeping up", False: "falling behind", None: "unknown"}[q.keeping_up]
    return [
        stat("State", q.state, level=q.level, sub=keeping),
        stat("Input rate", fmt.rate(q.input_rate, "rows/s"),
             sub=f"processed {fmt.rate(q.processing_rate, 'rows/s')}"),
        stat("Last batch", fmt.duration(q.last_duration_s), sub=f"batch {q.last_batch_id if q.last_batch_id is not None else '—'}{trigger}"),
        stat("Kafka lag", f"{fmt.count(q.kafka_lag)} msgs" if q.kafka_lag is not None else fmt.MISSING,
             sub=q.kafka_lag_method if q.kafka_lag is not None else "no Kafka source offsets"),
        stat("Watermark delay", fmt.duration(q.watermark_delay_s), sub="trigger time − watermark"),
        stat("State", f"{fmt.count(q.state_rows)} rows" if q.state_rows is not None else fmt.MISSING,
             sub=fmt.bytes_(q.state_bytes) if q.state_bytes is not None else "no state store"),
    ]


def _query_block(a: spark_data.AppView, q: spark_data.QueryView) -> html.Div:
    topics = ", ".join(q.source_topics) or "—"
    children = [
        html.Div([html.H3(q.label, className="ss-card-title"), level_badge(q.level, q.state),
                  html.Span(f"reads {topics} · writes {q.sink}", className="ss-hint")],
                 className="ss-query-head"),
        html.Div(_query_stats(q), id=_cid(TEXT, a.id, q.key, "stats"), className="ss-stats"),
    ]
    if q.exception:
        children.append(html.Pre(q.exception[:2000], className="ss-error"))
    children.append(html.Div([
        card(title, dcc.Graph(id=_cid(FIG, a.id, q.key, kind), figure=_query_figure(q, kind),
                              config=figures.CONFIG))
        for kind, title in QUERY_FIGS
    ], className="ss-grid-2"))
    return html.Div(children, className="ss-query")


def _query_figure(q: spark_data.QueryView, kind: str) -> dict:
    if kind == "duration":
        return figures.batch_duration_figure(q)
    if kind == "rates":
        return figures.query_rates_figure(q)
    if kind == "watermark":
        return figures.watermark_figure(q)
    return figures.state_figure(q)


def _app_stats(a: spark_data.AppView) -> list:
    execs = [e for e in a.executors if e["active"] == "yes"]
    return [
        stat("Application", "stale" if a.stale else ("completed" if a.completed else "running"),
             level=a.level, sub=f"Spark {a.spark_version or '—'}"),
        stat("Jobs", f"{a.jobs_active if a.jobs_active is not None else '—'} active",
             sub=f"{a.jobs_failed if a.jobs_failed is not None else '—'} failed · "
                 f"{a.jobs_succeeded if a.jobs_succeeded is not None else '—'} succeeded",
             level="warn" if a.jobs_failed else None),
        stat("Failed stages", str(len(a.failed_stages)), level="warn" if a.failed_stages else None),
        stat("Executors", f"{len(execs)} active", sub=f"{len(a.executors)} known"),
        stat("Streaming", f"{len(a.queries)} quer{'ies' if len(a.queries) != 1 else 'y'}"
             if a.queries else ("DStreams" if a.dstream else "none"),
             sub=f"started {fmt.timestamp(a.start_time)}"),
    ]


def _app_card(a: spark_data.AppView) -> html.Section:
    url = _safe_url(a.ui_url)
    extra = [f"{a.id}"] + ([" · ", html.A("Spark UI", href=url, target="_blank", rel="noopener")] if url else [])
    body = [html.Div(_app_stats(a), id=_cid(TEXT, a.id, "", "app"), className="ss-stats")]
    if a.source_errors:
        body.append(html.Div([html.Div(f"{e['source']}: {e['error']}", className="ss-error")
                              for e in a.source_errors]))
    for q in a.queries:
        body.append(_query_block(a, q))
    if a.dstream is not None:
        d = a.dstream
        body.append(html.H3("DStream batches", className="ss-card-title"))
        body.append(html.Div([
            stat("Batch interval", fmt.duration(d.batch_interval_s)),
            stat("Scheduling delay", fmt.duration(d.avg_scheduling_delay_s), sub="average"),
            stat("Processing time", fmt.duration(d.avg_processing_s), sub="average",
                 level="warn" if d.keeping_up is False else None),
            stat("Input rate", fmt.rate(d.avg_input_rate, "ev/s"), sub="average"),
        ], className="ss-stats"))
        body.append(card("Scheduling delay and processing time per batch",
                         dcc.Graph(id=_cid(FIG, a.id, "", "dstream"), figure=figures.dstream_figure(d),
                                   config=figures.CONFIG)))
        body.append(card("Receivers", _table(a.id, "receivers", RECEIVER_COLUMNS, d.receivers)))
    body.append(html.Div([
        card("Failed jobs", _table(a.id, "jobs", JOB_COLUMNS, a.failed_jobs)),
        card("Failed stages", _table(a.id, "stages", STAGE_COLUMNS, a.failed_stages)),
    ], className="ss-grid"))
    body.append(card("Executors", _table(a.id, "executors", EXECUTOR_COLUMNS, a.executors)))
    return card(a.name, body, extra=extra, className="ss-app-card")


def _table(app_id: str, kind: str, columns, rows):
    return [table(_cid(TABLE, app_id, "", kind), columns, level_column=False, data=rows, page_size=10),
            html.Div(_none_text(kind, rows), id=_cid(TEXT, app_id, "", f"{kind}-none"), className="ss-hint")]


_NONE = {"jobs": "No failed jobs.", "stages": "No failed stages.", "executors": "No executors reported.",
         "receivers": "No receivers."}


def _none_text(kind: str, rows) -> str:
    return "" if rows else _NONE.get(kind, "None.")


@dash.callback(
    Output(ids.SP_CONTENT, "children"), Output(ids.SP_META, "data"), Output("sp-sub", "children"),
    Input(ids.INTERVAL, "n_intervals"), Input("sp-filter", "data"),
    State(ids.SP_META, "data"),
)
def update_structure(_n, selection, meta):
    context = current_context()
    snap = context.latest()
    apps = spark_data.spark_apps(snap)
    wanted = (selection or {}).get("app")
    if wanted and any(a.id == wanted for a in apps):
        apps = [a for a in apps if a.id == wanted]
    structure = ["waiting" if snap is None else "snapshot", _structure(apps)]
    snap_at = common.snapshot_at(snap)
    if ctx.triggered_id == ids.INTERVAL and meta and meta.get("structure") == structure:
        raise PreventUpdate  # same apps and queries: update_values refreshes them in place
    meta = {"structure": structure, "snap_at": snap_at}
    sub = f"{len(apps)} application{'s' if len(apps) != 1 else ''}" if apps else ""
    if snap is None:
        return [empty_state("Waiting for the first collection cycle…")], meta, sub
    if not apps:
        configured = context.settings.spark_configured
        title = ("Spark is configured, but no application was found yet" if configured
                 else "No Spark application found")
        return [empty_state(spark_data.SPARK_EMPTY_NOTICE, title=title)], meta, sub
    return [_app_card(a) for a in apps], meta, sub


@dash.callback(
    Output({"type": FIG, "id": ALL}, "figure"),
    Output({"type": TEXT, "id": ALL}, "children"),
    Output({"type": TABLE, "id": ALL}, "data"),
    Input(ids.INTERVAL, "n_intervals"),
    prevent_initial_call=True,
)
def update_values(_n):
    context = current_context()
    apps = {a.id: a for a in spark_data.spark_apps(context.latest())}
    if not apps:
        raise PreventUpdate

    def find(cid):
        app_id, key, kind = json.loads(cid["id"])
        a = apps.get(app_id)
        q = next((q for q in a.queries if q.key == key), None) if a else None
        return a, q, kind

    figs, texts, rows = [], [], []
    for out in ctx.outputs_list[0]:
        a, q, kind = find(out["id"])
        if kind == "dstream":
            figs.append(figures.dstream_figure(a.dstream) if a and a.dstream else no_update)
        else:
            figs.append(_query_figure(q, kind) if q else no_update)
    for out in ctx.outputs_list[1]:
        a, q, kind = find(out["id"])
        if kind == "app":
            texts.append(_app_stats(a) if a else no_update)
        elif kind.endswith("-none"):
            texts.append(_none_text(kind[:-5], _rows(a, kind[:-5])) if a else no_update)
        else:
            texts.append(_query_stats(q) if q else no_update)
    for out in ctx.outputs_list[2]:
        a, q, kind = find(out["id"])
        value = _rows(a, kind) if a is not None else None
        rows.append(no_update if value is None else value)
    return figs, texts, rows


def _rows(a: spark_data.AppView, kind: str) -> list | None:
    if kind == "jobs":
        return a.failed_jobs
    if kind == "stages":
        return a.failed_stages
    if kind == "executors":
        return a.executors
    if kind == "receivers":
        return a.dstream.receivers if a.dstream else []
    return None


# registered last so the layout function exists (imported by mount_dashboard, not scanned)
registry.register(__name__, layout)
