"""The Dash dashboard, served by the web layer's Flask app on the same port as /metrics.

    mount_dashboard(flask_app, ctx) -> dash.Dash

Pages (`pages/*.py`, listed once in `registry.PAGES`) register themselves and declare their
callbacks with `@dash.callback`; callbacks are thin: they call `data` (reads the `WebContext`:
the latest Snapshot, the history reader, the alert service) and `figures` (pure builders). The
context is found through `monitor.web.context.current_context()`, so several apps (tests,
benchmarks) can each mount a dashboard in one process.

`@dash.callback` collects callbacks in Dash's process-global list, which the *first* app to
serve a request takes for itself. The page modules are imported once; their callbacks are
captured then and installed on every app mounted afterwards (see `_page_callbacks`).
"""
from __future__ import annotations

import contextvars
import copy
import importlib
import logging
import threading
from pathlib import Path

import dash
from dash import _callback as dash_callback_registry
from dash import _callback_context as dash_callback_context

from monitor.web.context import CONTEXT_KEY, WebContext

from . import layout
from .registry import PAGES, PATHS

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("assets")

_lock = threading.Lock()
_captured: tuple[list, dict] | None = None


def _page_callbacks() -> tuple[list, dict]:
    """Import the page modules once and take their @dash.callback registrations out of Dash's
    global lists (so no other app grabs them); returns (callback_list, callback_map)."""
    global _captured
    with _lock:
        if _captured is None:
            glist = dash_callback_registry.GLOBAL_CALLBACK_LIST
            gmap = dash_callback_registry.GLOBAL_CALLBACK_MAP
            before_len, before_keys = len(glist), set(gmap)
            # Pages register themselves with dash.register_page, which reads Dash's callback
            # context variable: set where Dash was imported, unset in a server thread that mounts
            # the dashboard on a first visit. Imported in a copy of this thread's context with it.
            contextvars.copy_context().run(_import_pages)
            new_list = glist[before_len:]
            del glist[before_len:]
            new_map = {k: gmap.pop(k) for k in list(gmap) if k not in before_keys}
            _captured = (new_list, new_map)
        return _captured


def _import_pages() -> None:
    try:
        dash_callback_context.context_value.get()
    except LookupError:
        dash_callback_context.context_value.set({})
    for page in PAGES:
        importlib.import_module(f"{__name__}.pages.{page.module}")


def mount_dashboard(server, ctx: WebContext) -> dash.Dash:
    """Mount the dashboard at / on `server` (a Flask app) over `ctx`."""
    server.extensions[CONTEXT_KEY] = ctx
    app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder="",  # page modules are imported explicitly (see _page_callbacks)
        assets_folder=str(ASSETS),
        url_base_pathname="/",
        title="streamscope",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        compress=False,
    )
    callback_list, callback_map = _page_callbacks()
    app._callback_list.extend(copy.deepcopy(callback_list))
    for key, entry in callback_map.items():
        app.callback_map[key] = dict(entry)
    app.layout = lambda: layout.shell(ctx)  # per page load: current cluster list
    layout.register_callbacks(app)
    _claim_only_dashboard_pages(server)
    server.extensions["streamscope.dash"] = app
    log.info("dashboard mounted at /")
    return app


def _claim_only_dashboard_pages(server) -> None:
    """Dash routes every unknown path ("/<path:path>") to its index page; keep only the
    dashboard's own pages, so a mistyped /api/... or /metricz still gets a 404 from the
    server's error handler instead of an HTML page with status 200."""
    from flask import abort, request

    pages = set(PATHS)

    @server.before_request
    def _only_dashboard_pages():
        rule = request.url_rule
        if rule is not None and rule.rule == "/<path:path>":
            if "/" + request.path.strip("/") not in pages:
                abort(404)
        return None


__all__ = ["mount_dashboard"]
