"""A local HTTP endpoint standing in for Slack's incoming webhook or any webhook receiver, for
tests, benchmarks and trying a configuration: answers each POST from a script of (status,
headers) pairs, then 200 `ok`, and records every request with the time it arrived. `hang()`
makes it a receiver that accepts requests but does not answer them until `release()`.

    with RecordingReceiver(path="/services/T000/B000/XXXX") as slack:
        ... point a Slack receiver at slack.url ...
        hit = slack.wait_for_text("[FIRING", start=0, timeout=30)   # -> (index, request) | None
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    at: float  # UNIX time it arrived
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int  # what the stand-in answered

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The `text` field of a Slack message ("" for other bodies)."""
        try:
            body = self.json()
        except ValueError:
            return ""
        return body.get("text", "") if isinstance(body, dict) else ""


class RecordingReceiver:
    def __init__(self, script: Iterable[tuple[int, Mapping[str, str]]] = (), *, port: int = 0, path: str = "") -> None:
        self._script = list(script)
        self._requests: list[ReceivedRequest] = []
        self._changed = threading.Condition()
        self._answering = threading.Event()
        self._answering.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._changed:
                    status, headers = outer._script.pop(0) if outer._script else (200, {})
                    outer._requests.append(ReceivedRequest(time.time(), self.path, dict(self.headers), body, status))
                    outer._changed.notify_all()
                outer._answering.wait()  # set unless hung; close() sets it too
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    payload = b"ok" if status == 200 else b"nope"
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting (a hung request that timed out)
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._changed:
            return list(self._requests)

    def texts(self) -> list[str]:
        return [r.text for r in self.requests]

    def with_text_prefix(self, prefix: str, start: int = 0) -> list[tuple[int, ReceivedRequest]]:
        """(index, request) of the requests from index `start` on whose Slack text starts with `prefix`."""
        return [(i, r) for i, r in enumerate(self.requests) if i >= start and r.text.startswith(prefix)]

    def wait_for_text(self, prefix: str, start: int, timeout: float) -> tuple[int, ReceivedRequest] | None:
        """The first request from index `start` on whose text starts with `prefix`, waiting up to
        `timeout` seconds for it; None if none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                hits = [(i, r) for i, r in enumerate(self._requests) if i >= start and r.text.startswith(prefix)]
                remaining = deadline - time.monotonic()
                if hits or remaining <= 0:
                    return hits[0] if hits else None
                self._changed.wait(remaining)

    def hang(self) -> None:
        """From now on, record requests but do not answer them (the client waits for its timeout)."""
        self._answering.clear()

    def release(self) -> None:
        """Answer again: requests still waiting get their answer, new ones are answered at once."""
        self._answering.set()

    def close(self) -> None:
        self._answering.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "RecordingReceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
