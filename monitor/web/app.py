"""The Flask app: every route on one port, each part a blueprint over the `WebContext`.

Nothing here calls Kafka or Spark: handlers read the latest snapshot, the cached metrics bytes
or the history.
"""
from __future__ import annotations

from flask import Flask, abort, jsonify, request
from werkzeug.routing import PathConverter

from monitor.web import alerts_api, api, status
from monitor.web.auth import require_credentials
from monitor.web.context import CONTEXT_KEY, WebContext
from monitor.web.settings import WebConfig

MAX_REQUEST_BYTES = 1024 * 1024  # every route: larger bodies get a JSON 413


class KafkaNameConverter(PathConverter):
    """A group id or topic name in a URL path: any character Kafka allows, newlines included
    (Werkzeug's `path` does not match a newline), and `/` (the rest of the path). Clients
    percent-encode what a URL cannot carry as is (`?`, `#`, `%`, whitespace)."""

    regex = r"[\s\S]+?"
    part_isolating = False  # the name may hold "/": match across path segments


def create_app(ctx: WebContext, web: WebConfig) -> Flask:
    app = Flask("streamscope")
    app.url_map.converters["name"] = KafkaNameConverter
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES  # bodies sent without a length: refused when read
    app.extensions[CONTEXT_KEY] = ctx
    require_credentials(app, web)
    app.before_request(_limit_body)
    for blueprint in (status.blueprint, api.blueprint, alerts_api.blueprint):
        app.register_blueprint(blueprint)
    _json_errors(app)
    return app


def _limit_body():
    # every route, including those that never read their body
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        abort(413)


def _json_errors(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(exc):
        return jsonify({"error": exc.description or "not found"}), 404

    @app.errorhandler(400)
    def bad_request(exc):
        return jsonify({"error": exc.description or "bad request"}), 400

    @app.errorhandler(413)
    def too_large(exc):
        return jsonify({"error": f"request body larger than {MAX_REQUEST_BYTES} bytes (1 MiB)"}), 413
