"""The demo's alert receivers: a webhook inbox and an SMTP sink, local, no account needed.

    receivers = LocalReceivers().start()   # both on 127.0.0.1, free ports
    receivers.webhook_url                  # http://127.0.0.1:PORT/alerts (streamscope POSTs here)
    receivers.smtp_port                    # an SMTP server accepting any mail, no auth, no TLS
    receivers.inbox_url                    # http://127.0.0.1:PORT/ : what both received (JSON)
    receivers.stop()

What arrives is kept in memory, the newest `MAX_KEPT` of each kind (a demo that runs for days
stays small). Each server is stopped through its own handle, never by name. Without aiosmtpd
(`pip install aiosmtpd`) there is no SMTP sink: `smtp_port` is None and `smtp_error` says why.
"""
from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from demo.kafka_box import free_port

log = logging.getLogger(__name__)

MAX_KEPT = 200  # notifications of each kind kept in memory
MAX_BODY_BYTES = 1024 * 1024


def webhook_summary(body: bytes, received_at: float) -> dict[str, Any]:
    """What the inbox shows of one webhook POST (the Alertmanager-style JSON streamscope sends)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {"received_at": received_at, "error": "not JSON", "bytes": len(body)}
    if not isinstance(payload, dict):
        return {"received_at": received_at, "error": "not a JSON object", "bytes": len(body)}
    alerts = [a for a in payload.get("alerts") or () if isinstance(a, dict)]
    return {
        "received_at": received_at,
        "status": payload.get("status"),
        "receiver": payload.get("receiver"),
        "alerts": [(a.get("labels") or {}).get("alertname") for a in alerts],
        "summaries": [(a.get("annotations") or {}).get("summary") for a in alerts],
    }


def mail_summary(data: bytes, received_at: float, sender: str, recipients: list[str]) -> dict[str, Any]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    return {"received_at": received_at, "from": sender, "to": list(recipients),
            "subject": str(message.get("Subject", ""))}


class LocalReceivers:
    """A webhook inbox and an SMTP sink on loopback (see the module docstring)."""

    def __init__(self) -> None:
        self.webhooks: deque[dict] = deque(maxlen=MAX_KEPT)
        self.mails: deque[dict] = deque(maxlen=MAX_KEPT)
        self._changed = threading.Condition()
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._smtp = None  # aiosmtpd Controller
        self.smtp_port: int | None = None
        self.smtp_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalReceivers":
        try:
            self._start_http()
            self._start_smtp()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.stop()
            except Exception:  # noqa: BLE001 - stop the other one anyway
                log.exception("stopping the SMTP sink failed")
            self._smtp = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "LocalReceivers":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def http_port(self) -> int:
        assert self._http is not None, "not started"
        return self._http.server_address[1]

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/alerts"

    @property
    def inbox_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def received(self) -> dict[str, list[dict]]:
        with self._changed:
            return {"webhook": list(self.webhooks), "email": list(self.mails)}

    def wait_for(self, kind: str, count: int, timeout: float) -> bool:
        """Until `count` notifications of `kind` ("webhook" or "email") arrived; bounded."""
        store = self.webhooks if kind == "webhook" else self.mails
        with self._changed:
            return self._changed.wait_for(lambda: len(store) >= count, timeout)

    # ------------------------------------------------------------------ servers
    def _record(self, store: deque, entry: dict) -> None:
        with self._changed:
            store.append(entry)
            self._changed.notify_all()

    def _start_http(self) -> None:
        outer = self

        class Inbox(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": "body too large"})
                    return
                outer._record(outer.webhooks, webhook_summary(self.rfile.read(length), time.time()))
                self._answer(200, {"ok": True})

            def do_GET(self):  # noqa: N802
                self._answer(200, outer.received())

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body, indent=1).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="demo-webhook-inbox",
                                             kwargs={"poll_interval": 0.2}, daemon=True)
        self._http_thread.start()

    def _start_smtp(self) -> None:
        try:
            from aiosmtpd.controller import Controller  # noqa: PLC0415
        except ImportError:
            self.smtp_error = "aiosmtpd is not installed (pip install aiosmtpd): no SMTP sink"
            return
        outer = self

        class Sink:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                outer._record(outer.mails, mail_summary(envelope.original_content or envelope.content,
                                                        time.time(), envelope.mail_from, envelope.rcpt_tos))
                return "250 OK"

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
        port = free_port()
        self._smtp = Controller(Sink(), hostname="127.0.0.1", port=port)
        self._smtp.start()
        self.smtp_port = port
