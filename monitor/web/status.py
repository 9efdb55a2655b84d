"""/metrics (the bytes serialised once per cycle) and /healthz (what works and what does not)."""
from __future__ import annotations

import io

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from waitress.buffers import ReadOnlyFileBasedBuffer
from werkzeug.wsgi import wrap_file

from collectors.models import Snapshot
from monitor.web.context import current_context
from monitor.web.jsonable import to_jsonable

blueprint = Blueprint("status", __name__)


@blueprint.get("/metrics")
def metrics():
    ctx = current_context()
    if ctx.metrics is None:
        return Response(b"", content_type=CONTENT_TYPE_LATEST)
    # A large /metrics is ~20x smaller gzipped, and the copy is compressed once per cycle, not per scrape.
    gzipped = request.accept_encodings["gzip"] > 0
    response = _cached_bytes(ctx.metrics.latest_gzip() if gzipped else ctx.metrics.latest())
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


def _cached_bytes(payload: bytes) -> Response:
    """The cached bytes, sent as they are: given as a file, the server writes them to the socket
    from this object (`wsgi.file_wrapper`) instead of copying them into its own buffer first,
    which was a 20 MB allocation per plain scrape at 10,000 groups (8 ms of it new pages)."""
    environ = request.environ
    # waitress passes what the file reads straight to the socket: views, not copies (see
    # `PayloadReader`). Any other server gets bytes, as WSGI asks of what an app yields.
    zero_copy = environ.get("wsgi.file_wrapper") is ReadOnlyFileBasedBuffer
    file = PayloadReader(payload) if zero_copy else io.BytesIO(payload)
    response = Response(wrap_file(environ, file), content_type=CONTENT_TYPE_LATEST, direct_passthrough=True)
    response.content_length = len(payload)
    return response


class PayloadReader:
    """A read-only, seekable file over bytes whose reads are views of them, not copies.

    waitress sends a file response as `read(n)` of the socket's send buffer size, then `seek`s
    back past what the socket took. Each `io.BytesIO` read was a fresh copy of that size (a few
    MB on loopback): with the mmap threshold `run` sets (`collectors.memory.unmap_large_blocks`),
    pages mapped and unmapped five times per 20 MB plain scrape at 10,000 groups (26.7 ms median
    by curl, 9.8 ms with views; docs/performance.md, the thirtieth pass)."""

    def __init__(self, payload: bytes):
        self._view = memoryview(payload)
        self._position = 0

    def read(self, size: int = -1) -> memoryview:
        start = self._position
        end = len(self._view) if size is None or size < 0 else min(len(self._view), start + size)
        self._position = max(start, end)
        return self._view[start:end]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._view = memoryview(b"")  # not release(): a slice read last may still be in a send
        self._position = 0


@blueprint.get("/healthz")
def healthz():
    # 200 even when degraded: the server itself is alive; the body says what is not.
    ctx = current_context()
    return jsonify(health_report(ctx.latest(), ctx.settings.stale_after_seconds, ctx.now()))


def health_report(snapshot: Snapshot | None, stale_after: float, now: float) -> dict:
    collectors = [_collector_health(h, stale_after, now) for h in (snapshot.health if snapshot else ())]
    if snapshot is not None:
        _add_partial_faults(collectors, snapshot)
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


def _collector_health(h, stale_after: float, now: float) -> dict:
    age = None if h.last_success_at is None else max(0.0, now - h.last_success_at)
    entry = {
        "name": h.name, "kind": h.kind, "up": h.up, "stale": h.stale(now, stale_after),
        "last_success_at": h.last_success_at, "age_seconds": age, "error": h.error,
        "error_kind": h.error_kind, "cycles_total": h.cycles_total, "failures_total": h.failures_total,
    }
    if h.restarts:  # collectors with a child process
        entry["restarts_total"] = h.restarts_total
        entry["last_exit"] = to_jsonable(h.last_exit)
    return entry


def _add_partial_faults(collectors: list[dict], snapshot: Snapshot) -> None:
    """Partial faults of a Kafka cycle that succeeded: brokers that did not answer ListGroups
    (groups carried over), groups whose offsets could not be fetched (their lag unknown), log
    directories not given (DescribeLogDirs: kept from before), topics whose settings are unknown
    (DescribeConfigs). `log_dirs_complete` and `topic_configs_complete` only where those are
    asked."""
    by_name = {f"kafka:{state.raw.cluster}": state.raw for state in snapshot.clusters}
    for entry in collectors:
        raw = by_name.get(entry["name"])
        if raw is None or not raw.ok:
            continue
        failed = sorted(raw.failed_groups)
        entry["groups_listing_complete"] = raw.groups_complete
        entry["groups_failed"] = len(failed)
        if failed:
            entry["groups_failed_examples"] = failed[:5]
        for name, complete, error in (("log_dirs", raw.log_dirs_complete, raw.log_dirs_error),
                                      ("topic_configs", raw.topic_configs_complete, raw.topic_configs_error)):
            if complete is not None:
                entry[f"{name}_complete"] = complete
                if error is not None:
                    entry[f"{name}_error"] = error
