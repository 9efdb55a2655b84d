"""The shell around every page (nav, cluster and time-range pickers, theme toggle, status line,
live-update interval) and small shared components (cards, tables, empty states).

URL state: the address bar always shows the current selection (see `urlstate`). `dcc.Location`
URL (refresh="callback-nav") is read on load and on navigation, and written to drill down; the
shell's pickers and page selections write the query string into the `url-search` store, which a
clientside callback applies with `history.replaceState` (no page reload, no re-render).
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update

from monitor.web.context import WebContext, current_context
from monitor.web.views import alerts as alerts_data
from monitor.web.views import common
from monitor.web.views import overview as overview_data
from . import ids, urlstate
from .registry import PAGES
from monitor.web.views import format as fmt



# --------------------------------------------------------------------------------------------
# shared components
# --------------------------------------------------------------------------------------------


def empty_state(text: str, *, title: str | None = None, id: str | None = None) -> html.Div:
    """A friendly message where data would be (text only: names are never markup)."""
    children = [html.Div(title, className="ss-empty-title")] if title else []
    children.append(html.Div(text, className="ss-empty-text"))
    kwargs = {"id": id} if id else {}
    return html.Div(children, className="ss-empty", **kwargs)


def card(title: str, children, *, className: str = "", id: str | None = None,
         extra=None) -> html.Section:
    head = [html.H2(title, className="ss-card-title")]
    if extra is not None:
        head.append(html.Div(extra, className="ss-card-extra"))
    kwargs = {"id": id} if id else {}
    return html.Section([html.Div(head, className="ss-card-head"), html.Div(children, className="ss-card-body")],
                        className=f"ss-card {className}".strip(), **kwargs)


def stat(label: str, value: str, *, sub: str | None = None, level: str | None = None,
         title: str | None = None) -> html.Div:
    children = [html.Div(label, className="ss-stat-label"),
                html.Div(value, className="ss-stat-value")]
    if sub:
        children.append(html.Div(sub, className="ss-stat-sub", title=sub))
    cls = "ss-stat" + (f" ss-level-{level}" if level else "")
    return html.Div(children, className=cls, title=title)


def graph(id: str, figure: dict | None = None, *, height: int | None = None) -> dcc.Graph:
    from .figures import CONFIG, empty_figure

    return dcc.Graph(id=id, figure=figure or empty_figure("Loading…", height=height or 300),
                     config=CONFIG, className="ss-graph")


LEVEL_STYLES = [
    {"if": {"filter_query": '{_level} = "warn"'}, "backgroundColor": "var(--warn-bg)"},
    {"if": {"filter_query": '{_level} = "err"'}, "backgroundColor": "var(--err-bg)"},
    {"if": {"filter_query": '{_level} = "stale"'}, "color": "var(--muted)"},
]


def table(id: str | dict, columns: list[tuple[str, str]], *, custom: bool = False, page_size: int = 25,
          numeric: tuple[str, ...] = (), sortable: bool = True, filterable: bool = False,
          row_select: bool = False, level_column: bool = True, data: list | None = None,
          sort_by: list | None = None, hidden: tuple[str, ...] = ()) -> dash_table.DataTable:
    """A DataTable; custom=True pages/sorts/filters on the server (tables.query)."""
    cols = [{"name": name, "id": cid, "type": "text"} for cid, name in columns]
    hidden_cols = list(hidden)
    if level_column:
        cols.append({"name": "", "id": "_level"})
        hidden_cols.append("_level")
    mode = "custom" if custom else "native"
    return dash_table.DataTable(
        id=id, columns=cols, data=data or [], page_size=page_size, page_current=0,
        page_action=mode, sort_action=mode if sortable else "none", sort_mode="single",
        sort_by=sort_by or [],
        filter_action=mode if filterable else "none",
        filter_options={"case": "insensitive", "placeholder_text": "filter…"},
        hidden_columns=hidden_cols, css=[{"selector": ".show-hide", "rule": "display: none"}],
        style_as_list_view=True, cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_cell={"textAlign": "left", "padding": "6px 10px", "whiteSpace": "pre-line",
                    "maxWidth": "420px", "overflow": "hidden", "textOverflow": "ellipsis",
                    "backgroundColor": "transparent", "color": "var(--fg)",
                    "border": "none", "borderBottom": "1px solid var(--line)",
                    "fontFamily": "inherit", "fontSize": "13px"},
        style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "right"} for c in numeric],
        style_header={"backgroundColor": "transparent", "color": "var(--muted)", "fontWeight": "600",
                      "borderBottom": "1px solid var(--line-strong)"},
        style_filter={"backgroundColor": "var(--input-bg)", "color": "var(--fg)"},
        style_data_conditional=LEVEL_STYLES if level_column else [],
        tooltip_delay=300, tooltip_duration=None,
        markdown_options={"html": False},
    )


def level_badge(level: str, text: str | None = None) -> html.Span:
    return html.Span(text or level.upper(), className=f"ss-badge ss-level-{level}")


# --------------------------------------------------------------------------------------------
# the shell
# --------------------------------------------------------------------------------------------


def shell(context: WebContext) -> html.Div:
    interval_ms = max(1000, int(context.settings.interval_seconds * 1000))
    nav = html.Nav([
        dcc.Link(page.name, href=page.path, id=page.nav_id, className="ss-nav-link")
        for page in PAGES
    ] + [html.Span("", id=ids.ALERT_BADGE, className="ss-alert-badge")], className="ss-nav")
    names = common.cluster_names(context)
    controls = html.Div([
        dcc.Dropdown(id=ids.CLUSTER, options=[{"label": n, "value": n} for n in names], value=None,
                     clearable=False, searchable=False,
                     placeholder=names[0] if names else "no cluster", className="ss-cluster"),
        dcc.RadioItems(id=ids.RANGE, options=[{"label": k, "value": k} for k in urlstate.RANGES],
                       value=urlstate.DEFAULT_RANGE, inline=True, className="ss-range",
                       inputClassName="ss-range-input", labelClassName="ss-range-label"),
        html.Button("◐", id=ids.THEME_TOGGLE, className="ss-theme-toggle", n_clicks=0,
                    title="Toggle light / dark theme"),
    ], className="ss-controls")
    return html.Div([
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.URL_SEARCH, data=None),
        html.Div(id=ids.URL_SYNC, hidden=True),
        dcc.Store(id=ids.THEME, storage_type="local"),
        html.Div(id=ids.THEME_SINK, hidden=True),
        dcc.Interval(id=ids.INTERVAL, interval=interval_ms, n_intervals=0),
        html.Header([
            html.A([html.Span("◉", className="ss-logo"), "streamscope"], href="/", className="ss-brand"),
            nav, controls,
        ], className="ss-header"),
        html.Div(id=ids.BANNER, className="ss-banner", hidden=True),
        html.Div(id=ids.STATUS, className="ss-status"),
        html.Main(dash.page_container, className="ss-main"),
    ], className="ss-app")


def register_callbacks(app: dash.Dash) -> None:
    """Shell callbacks, registered on `app` (page callbacks use @dash.callback)."""

    nav_outputs = [Output(page.nav_id, "href") for page in PAGES]
    nav_classes = [Output(page.nav_id, "className") for page in PAGES]

    @app.callback(
        Output(ids.RANGE, "value"), Output(ids.CLUSTER, "value"), Output(ids.URL_SEARCH, "data"),
        Output(ids.URL, "href"),
        *nav_outputs, *nav_classes,
        Input(ids.URL, "pathname"), Input(ids.URL, "search"),
        Input(ids.RANGE, "value"), Input(ids.CLUSTER, "value"),
        State(ids.URL_SEARCH, "data"),
    )
    def sync_url(pathname, search, range_value, cluster_value, current_search):
        """Address bar <-> pickers. Loading or navigating sets the pickers from the URL; changing
        a picker rewrites the query string (kept: the page's own selection)."""
        trigger = ctx.triggered_id
        redirect = no_update
        if trigger in (ids.RANGE, ids.CLUSTER):
            state = urlstate.parse(pathname, current_search if current_search is not None else search)
            state = state.with_(range=urlstate.normalise_range(range_value), cluster=cluster_value)
            new_range, new_cluster = no_update, no_update
        else:
            state = urlstate.parse(pathname, search)
            new_range = state.range if state.range != range_value else no_update
            new_cluster = state.cluster if state.cluster != cluster_value else no_update
            if state.page != urlstate.normalise_page(pathname):  # /?page=groups -> /groups
                redirect = urlstate.href(state)
        hrefs = [urlstate.page_href(state, page.path) for page in PAGES]
        classes = ["ss-nav-link active" if state.page == page.path else "ss-nav-link" for page in PAGES]
        return (new_range, new_cluster, urlstate.serialise(state), redirect, *hrefs, *classes)

    # Clientside callbacks are registered per app as inline JS (no dependency on the assets
    # folder being installed, no process-global registration).
    app.clientside_callback(
        """
        function(search) {
            // show the selection in the address bar without a reload or a re-render
            if (typeof search === "string" && search !== window.location.search) {
                var url = window.location.pathname + (search === "?" ? "" : search) + window.location.hash;
                window.history.replaceState(window.history.state, "", url);
            }
            return window.dash_clientside.no_update;
        }
        """,
        Output(ids.URL_SYNC, "children"), Input(ids.URL_SEARCH, "data"),
    )
    app.clientside_callback(
        """
        function(clicks, current) {
            if (!clicks) { return window.dash_clientside.no_update; }
            var now = current || document.documentElement.getAttribute("data-theme") || "light";
            return now === "dark" ? "light" : "dark";
        }
        """,
        Output(ids.THEME, "data"), Input(ids.THEME_TOGGLE, "n_clicks"), State(ids.THEME, "data"),
    )
    app.clientside_callback(
        """
        function(theme) {
            if (!theme) {
                var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
                theme = dark ? "dark" : "light";
            }
            document.documentElement.setAttribute("data-theme", theme);
            return window.dash_clientside.no_update;
        }
        """,
        Output(ids.THEME_SINK, "children"), Input(ids.THEME, "data"),
    )

    @app.callback(
        Output(ids.STATUS, "children"), Output(ids.STATUS, "className"),
        Output(ids.BANNER, "children"), Output(ids.BANNER, "hidden"),
        Output(ids.CLUSTER, "options"), Output(ids.CLUSTER, "placeholder"),
        Output(ids.ALERT_BADGE, "children"),
        Input(ids.INTERVAL, "n_intervals"),
        State(ids.CLUSTER, "options"),
    )
    def status(_n, current_options):
        context = current_context()
        snap = context.latest()
        line = overview_data.status_line(context, snap, context.now())
        names = common.cluster_names(context, snap)
        options = [{"label": n, "value": n} for n in names]
        if options == current_options:
            options = no_update
        view = alerts_data.alerts_view(context)
        badge = str(len(view.firing)) if view.configured and view.firing else ""
        return (
            line.text, f"ss-status ss-level-{line.level}",
            line.banner or "", line.banner is None,
            options, names[0] if names else "no cluster",
            badge,
        )


def range_label(range_key: str) -> str:
    return {"15m": "last 15 minutes", "1h": "last hour", "6h": "last 6 hours",
            "24h": "last 24 hours"}.get(range_key, "last hour")


def updated_text(snap_at: float | None, at: float) -> str:
    return f"data from {fmt.timestamp(snap_at, with_date=False)}" if snap_at else ""
