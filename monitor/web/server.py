"""The web server: waitress in a thread, serving the Flask app and (when Dash is installed) the
dashboard on one port, 127.0.0.1 by default.

Dash and plotly are imported when the dashboard is first asked for, not at start: a monitor that
is only scraped and queried never loads them (14 MB of the parent process, measured). Until then
the API app answers its own routes; the first request for anything else mounts the dashboard on a
second app with the same routes, which serves every request from then on."""
from __future__ import annotations

import logging
import threading

from waitress import wasyncore
from waitress.server import create_server
from werkzeug.exceptions import HTTPException, NotFound

from monitor.settings import ConfigError
from monitor.web.app import MAX_REQUEST_BYTES, create_app
from monitor.web.context import WebContext
from monitor.web.settings import WebConfig, listen_problem

log = logging.getLogger(__name__)

# waitress refuses bodies past this itself (plain-text 413) before reading them, so no request
# can make the server buffer more; between the two limits the app answers with JSON.
SERVER_MAX_REQUEST_BYTES = 16 * MAX_REQUEST_BYTES


class WebServer:
    """A `Service`; `port` is the bound port (config port 0 picks a free one)."""

    def __init__(self, ctx: WebContext, web: WebConfig):
        self.app = DashboardOnFirstVisit(ctx, web)
        try:
            self._server = create_server(self.app, host=web.host, port=web.port, threads=8, ident="streamscope",
                                         max_request_body_size=SERVER_MAX_REQUEST_BYTES)
        except OSError as exc:  # port taken, address not local, ...
            raise ConfigError(f"web.port: cannot listen on {web.host}:{web.port}: {exc.strerror or exc}") from None
        except ValueError:  # waitress's word for a host name that does not resolve
            raise ConfigError(f"web.host: {listen_problem(web.host) or f'cannot listen on {web.host}'}") from None
        self.port = self._server.effective_port
        self.host = web.host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        log.info("serving on %s", self.url)

    def stop(self) -> None:
        """Requests being served finish (5 s at most), then every connection closes, kept-alive
        ones too: closing only the listening socket left those to the serving thread, which
        kept polling them (and logged an error a second for a request still answering)."""
        server = self._server
        server.task_dispatcher.shutdown(timeout=5)
        if self._thread is None or not self._thread.is_alive():
            wasyncore.close_all(server._map)
            return
        # closed on the serving thread, between its polls of those connections
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        self._thread.join(timeout=5)


class DashboardOnFirstVisit:
    """The WSGI app served: the API app for its own routes until the dashboard is first asked
    for, then one app with the API and the dashboard for everything."""

    def __init__(self, ctx: WebContext, web: WebConfig):
        self._ctx = ctx
        self.api = create_app(ctx, web)
        # built now (credentials resolved at start, as configured), the dashboard mounted on it
        # at the first visit: no request reaches it before, so Flask still takes new routes
        self._complete = create_app(ctx, web)
        self._mounted = False
        self._lock = threading.Lock()

    @property
    def dashboard_mounted(self) -> bool:
        return self._mounted

    def __call__(self, environ, start_response):
        if not self._mounted:
            if self._is_api_route(environ):
                return self.api(environ, start_response)
            self._mount()
        return self._complete(environ, start_response)

    def _is_api_route(self, environ) -> bool:
        try:
            self.api.url_map.bind_to_environ(environ).match()
        except NotFound:
            return False
        except HTTPException:  # a route of the API, with another method or a trailing slash
            return True
        return True

    def _mount(self) -> None:
        with self._lock:
            if not self._mounted:
                _mount_dashboard(self._complete, self._ctx)
                self._mounted = True


def _mount_dashboard(app, ctx: WebContext) -> None:
    """The dashboard, when Dash is installed (the API and /metrics do not need it)."""
    try:
        from monitor.web.dashboard import mount_dashboard
    except ImportError:
        return
    mount_dashboard(app, ctx)
