"""HTTP server: /metrics, /healthz, the JSON API and (when installed) the Dash dashboard, one port.

Nothing here calls Kafka or Spark: handlers read the latest snapshot, the cached metrics bytes
or the history. Served by waitress (a production WSGI server) on 127.0.0.1 by default.
"""
from __future__ import annotations

import base64
import dataclasses
import enum
import hmac
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from waitress.server import create_server
from werkzeug.routing import PathConverter

from monitor.config import ConfigError, WebConfig

if TYPE_CHECKING:
    from monitor.app.root import Monitor

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024  # every route: larger bodies get a JSON 413
# waitress refuses bodies past this itself (plain-text 413) before reading them, so no request
# can make the server buffer more; between the two limits the app answers with JSON.
SERVER_MAX_REQUEST_BYTES = 16 * MAX_REQUEST_BYTES


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, tuples and non-finite floats → plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def health_report(monitor: "Monitor", now: float) -> dict:
    snapshot = monitor.store.latest()
    stale_after = monitor.config.stale_after_seconds
    collectors = []
    for h in (snapshot.health if snapshot else ()):
        age = None if h.last_success_at is None else max(0.0, now - h.last_success_at)
        entry = {
            "name": h.name, "kind": h.kind, "up": h.up, "stale": h.stale(now, stale_after),
            "last_success_at": h.last_success_at, "age_seconds": age, "error": h.error,
            "error_kind": h.error_kind, "cycles_total": h.cycles_total, "failures_total": h.failures_total,
        }
        if h.restarts:  # collectors with a child process
            entry["restarts_total"] = h.restarts_total
            entry["last_exit"] = to_jsonable(h.last_exit)
        collectors.append(entry)
    history = snapshot.history if snapshot is not None else None
    if snapshot is None:
        status = "starting"
    elif all(c["up"] and not c["stale"] for c in collectors) and (history is None or history.up):
        status = "ok"
    else:
        status = "degraded"
    return {"status": status, "at": now, "stale_after_seconds": stale_after, "collectors": collectors,
            "history": None if history is None else {
                "up": history.up, "error": history.error, "write_failures_total": history.failures_total,
                "last_write_success_at": history.last_success_at}}


class KafkaNameConverter(PathConverter):
    """A group id or topic name in a URL path: any character Kafka allows, newlines included
    (Werkzeug's `path` does not match a newline), and `/` (the rest of the path). Clients
    percent-encode what a URL cannot carry as is (`?`, `#`, `%`, whitespace)."""

    regex = r"[\s\S]+?"
    part_isolating = False  # the name may hold "/": match across path segments


def _wire_bytes(text: str) -> bytes:
    """A header as it came over the wire: WSGI hands headers over as latin-1 decoded text."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI server; compare its UTF-8 form
        return text.encode("utf-8", "surrogatepass")


def credentials_match(header: str, token: bytes | None, basic: tuple[bytes, bytes] | None) -> bool:
    """Whether an Authorization header carries the bearer token or the basic-auth user and
    password. Compared as bytes in constant time: `hmac.compare_digest` on text raises for
    anything but ASCII, and any header a client sends must end in 401, never in an error."""
    sent = _wire_bytes(header)
    if token is not None and hmac.compare_digest(sent, b"Bearer " + token):
        return True
    if basic is None or not sent.startswith(b"Basic "):
        return False
    try:
        decoded = base64.b64decode(sent[6:])
    except ValueError:
        return False
    user, _, password = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, basic[0])
    return hmac.compare_digest(password, basic[1]) and user_ok


def _config_bytes(text: str) -> bytes:
    # an environment variable holding bytes that are not UTF-8 arrives surrogate-escaped
    return text.encode("utf-8", "surrogateescape")


def create_app(monitor: "Monitor", web: WebConfig) -> Flask:
    app = Flask("streamscope")
    app.url_map.converters["name"] = KafkaNameConverter
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES  # bodies sent without a length: refused when read
    token = _config_bytes(web.auth_token.resolve("web.auth_token")) if web.auth_token else None
    basic = ((_config_bytes(web.basic_auth_user or ""), _config_bytes(web.basic_auth_password.resolve("web.basic_auth_password")))
             if web.basic_auth_password else None)

    @app.before_request
    def _authenticate():
        if token is None and basic is None:
            return None
        if credentials_match(request.headers.get("Authorization", ""), token, basic):
            return None
        return Response("authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="streamscope"'})

    @app.before_request
    def _limit_body():
        # every route, including those that never read their body
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            abort(413)

    @app.get("/metrics")
    def metrics():
        return Response(monitor.metrics.latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz():
        # 200 even when degraded: the server itself is alive; the body says what is not.
        return jsonify(health_report(monitor, time.time()))

    def _cluster(name: str):
        snapshot = monitor.store.latest()
        for state in (snapshot.clusters if snapshot else ()):
            if state.raw.cluster == name:
                return state
        abort(404, description=f"unknown cluster {name!r}")

    @app.get("/api/v1/clusters")
    def clusters():
        snapshot = monitor.store.latest()
        return jsonify([
            {
                "cluster": s.raw.cluster, "stale": s.stale, "fetched_at": s.raw.finished_at,
                "brokers": to_jsonable(s.raw.brokers), "controller_id": s.raw.controller_id,
                "topics": len(s.lag.topics), "groups": len(s.lag.groups), "error": s.raw.error,
            }
            for s in (snapshot.clusters if snapshot else ())
        ])

    @app.get("/api/v1/clusters/<cluster>/groups")
    def groups(cluster: str):
        state = _cluster(cluster)
        rows = []
        for g in state.lag.groups:
            row = to_jsonable(g)
            row.pop("partitions")
            row["stale"] = state.stale
            rows.append(row)
        return jsonify(rows)

    @app.get("/api/v1/clusters/<cluster>/groups/<name:group>")
    def group(cluster: str, group: str):
        state = _cluster(cluster)
        for g in state.lag.groups:
            if g.group == group:
                return jsonify({**to_jsonable(g), "stale": state.stale})
        abort(404, description=f"unknown group {group!r}")

    @app.get("/api/v1/clusters/<cluster>/topics")
    def topics(cluster: str):
        state = _cluster(cluster)
        meta = {t.name: t for t in state.raw.topics}
        rows = []
        for t in state.lag.topics:
            row = to_jsonable(t)
            topic = meta.get(t.topic)
            row["partition_detail"] = to_jsonable(topic.partitions) if topic else []
            rows.append(row)
        return jsonify(rows)

    @app.get("/api/v1/clusters/<cluster>/topology")
    def topology(cluster: str):
        """The overview's pipeline graph: producers → topics → groups / Spark queries → output
        topics; internal topics only with ?internal=true."""
        from monitor.dashboard import data

        _cluster(cluster)
        show_internal = request.args.get("internal", "").lower() in ("1", "true", "yes")
        nodes, edges = data.topology(monitor.store.latest(), cluster, show_internal=show_internal,
                                     extra_internal=data.internal_topics(monitor))
        return jsonify({
            "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "level": n.level} for n in nodes],
            "edges": [{"source": e.source, "target": e.target, "label": e.label} for e in edges],
        })

    @app.get("/api/v1/spark/queries")
    def spark_queries():
        """Every Structured Streaming query: what it reads, what it writes, how it keeps up."""
        from monitor.dashboard import data

        return jsonify([{
            "app_id": q.app_id, "app_name": q.app_name, "query": q.label, "id": q.key, "state": q.state,
            "source_topics": q.source_topics, "sink": q.sink, "sink_kind": q.sink_kind,
            "output_topics": q.output_topics, "kafka_lag": q.kafka_lag, "kafka_lag_method": q.kafka_lag_method,
            "input_rows_per_second": to_jsonable(q.input_rate),
            "processed_rows_per_second": to_jsonable(q.processing_rate),
            "keeping_up": q.keeping_up, "last_batch_id": q.last_batch_id, "stale": q.stale,
        } for q in data.spark_queries(monitor.store.latest())])

    @app.get("/api/v1/history/groups/<cluster>/<name:group>")
    def group_history(cluster: str, group: str):
        start, end = _time_range()
        return jsonify(monitor.history.kafka.group_series(cluster, group, start, end, max_points=_max_points()))

    @app.get("/api/v1/history/topics/<cluster>/<name:topic>")
    def topic_history(cluster: str, topic: str):
        start, end = _time_range()
        return jsonify(monitor.history.kafka.topic_series(cluster, topic, start, end, max_points=_max_points()))

    def _alerting():
        if monitor.alerting is None:
            abort(404, description="alert evaluation is turned off (alerting.enabled: false)")
        return monitor.alerting.service

    @app.get("/api/v1/alerts")
    def alerts():
        return jsonify(_alerting().list_alerts(request.args.get("state")))

    @app.get("/api/v1/alerts/history")
    def alerts_history():
        return jsonify(_alerting().alert_history())

    @app.get("/api/v1/alerts/notifications")
    def alert_notifications():
        from alerts.notification_log import clamp_limit

        service = _alerting()
        try:
            limit = clamp_limit(request.args.get("limit"))
        except ValueError as exc:
            abort(400, description=str(exc))
        return jsonify(service.list_notifications(limit, receiver=request.args.get("receiver") or None))

    @app.get("/api/v1/silences")
    def silences():
        return jsonify(_alerting().list_silences(request.args.get("state")))

    @app.post("/api/v1/silences")
    def create_silence():
        from alerts.silences import SilenceError, SilenceNotFound

        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, description="expected a JSON object")
        try:
            return jsonify(_alerting().create_silence(body)), 201
        except SilenceError as exc:
            abort(400, description=str(exc))
        except SilenceNotFound:
            abort(404, description=f"id: unknown silence {str(body.get('id'))[:80]!r}")

    @app.delete("/api/v1/silences/<silence_id>")
    def expire_silence(silence_id: str):
        from alerts.silences import SilenceNotFound

        try:
            return jsonify(_alerting().expire_silence(silence_id))
        except SilenceNotFound:
            abort(404, description=f"unknown silence {silence_id!r}")

    @app.errorhandler(404)
    def not_found(exc):
        return jsonify({"error": getattr(exc, "description", "not found")}), 404

    @app.errorhandler(400)
    def bad_request(exc):
        return jsonify({"error": getattr(exc, "description", "bad request")}), 400

    @app.errorhandler(413)
    def too_large(exc):
        return jsonify({"error": f"request body larger than {MAX_REQUEST_BYTES} bytes (1 MiB)"}), 413

    return app


def _time_range() -> tuple[float, float]:
    now = time.time()
    try:
        end = float(request.args.get("end", now))
        start = float(request.args.get("start", end - float(request.args.get("seconds", 3600))))
    except ValueError:
        abort(400, description="start, end and seconds must be numbers (UNIX seconds)")
    if start >= end:
        abort(400, description="start must be before end")
    return start, end


def _max_points() -> int:
    try:
        return max(2, min(5000, int(request.args.get("max_points", 500))))
    except ValueError:
        abort(400, description="max_points must be an integer")


class WebServer:
    """waitress in a thread; `port` is the bound port (config port 0 picks a free one)."""

    def __init__(self, monitor: "Monitor", web: WebConfig):
        self.app = create_app(monitor, web)
        self._extend(monitor)
        try:
            self._server = create_server(self.app, host=web.host, port=web.port, threads=8, ident="streamscope",
                                         max_request_body_size=SERVER_MAX_REQUEST_BYTES)
        except OSError as exc:  # port taken, address not local, ...
            raise ConfigError(f"web.port: cannot listen on {web.host}:{web.port}: {exc.strerror or exc}") from None
        self.port = self._server.effective_port
        self.host = web.host
        self._thread: threading.Thread | None = None

    def _extend(self, monitor: "Monitor") -> None:
        """Mount optional parts (dashboard, alert API) when their packages are present."""
        try:
            from monitor.dashboard import mount_dashboard
        except ImportError:
            return
        mount_dashboard(self.app, monitor)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        log.info("serving on %s", self.url)

    def stop(self) -> None:
        self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
