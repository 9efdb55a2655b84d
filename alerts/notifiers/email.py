"""Email over SMTP (smtplib): STARTTLS or implicit TLS, AUTH, text + HTML multipart.

Every value put into the HTML part is escaped. The Message-ID is derived from the idempotency
key, and the key is also in `X-Streamscope-Idempotency-Key`, so a receiving system can drop the
duplicate of a retry whose 250 reply was lost.
"""
from __future__ import annotations

import html
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from .._util import rfc3339
from ..config import EmailReceiver
from ..secrets import Secret, redact
from .base import DeliveryResult, alert_title

_COLOR = {"firing": "#E01E5A", "resolved": "#2EB67D"}


def render(payload: Mapping[str, Any], cfg: EmailReceiver, idempotency_key: str, now: float) -> EmailMessage:
    alerts = list(payload.get("alerts", []))
    shown = alerts[: cfg.max_alerts]
    title = alert_title(payload)
    msg = EmailMessage()
    msg["Subject"] = f"{cfg.subject_prefix} {title}".strip()
    msg["From"] = cfg.from_
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = f"<{idempotency_key}@streamscope>"
    msg["X-Streamscope-Idempotency-Key"] = idempotency_key
    msg["Auto-Submitted"] = "auto-generated"

    text_lines = [title, ""]
    for a in shown:
        ann, labels = a.get("annotations", {}), a.get("labels", {})
        text_lines.append(f"* [{a.get('status', '').upper()}] {ann.get('summary') or labels.get('alertname', '')}")
        if ann.get("description"):
            text_lines.append(f"  {ann['description']}")
        text_lines.append("  labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        text_lines.append(f"  since: {rfc3339(a.get('starts_at'))}"
                          + (f"  until: {rfc3339(a['ends_at'])}" if a.get("ends_at") else ""))
        if a.get("generator_url"):
            text_lines.append(f"  {a['generator_url']}")
        text_lines.append("")
    if len(alerts) > len(shown):
        text_lines.append(f"... and {len(alerts) - len(shown)} more alert(s)")
    text_lines.append(f"-- streamscope (id {idempotency_key})")
    msg.set_content("\n".join(text_lines))

    e = html.escape
    rows = []
    for a in shown:
        ann, labels = a.get("annotations", {}), a.get("labels", {})
        status = a.get("status", "firing")
        link = a.get("generator_url")
        label_html = " ".join(
            f'<code style="background:#f2f2f2;padding:1px 4px">{e(k)}={e(v)}</code>' for k, v in sorted(labels.items()))
        rows.append(
            f'<tr><td style="border-left:6px solid {_COLOR.get(status, "#999")};padding:8px 12px">'
            f"<b>{e(status.upper())}</b> {e(ann.get('summary') or labels.get('alertname', ''))}"
            + (f"<br>{e(ann['description'])}" if ann.get("description") else "")
            + f"<br>{label_html}"
            + f"<br><small>since {e(rfc3339(a.get('starts_at')))}</small>"
            + (f'<br><a href="{e(link, quote=True)}">Open in streamscope</a>' if link else "")
            + "</td></tr>"
        )
    more = (f"<p>... and {len(alerts) - len(shown)} more alert(s)</p>" if len(alerts) > len(shown) else "")
    body = (
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
        f'<h2 style="color:{_COLOR.get(payload.get("status", "firing"), "#333")}">{e(title)}</h2>'
        f'<table style="border-collapse:collapse">{"".join(rows)}</table>{more}'
        f'<p style="color:#888"><small>streamscope &middot; id {e(idempotency_key)}</small></p>'
        "</body></html>"
    )
    msg.add_alternative(body, subtype="html")
    return msg


class EmailNotifier:
    type = "email"

    def __init__(self, cfg: EmailReceiver, password: Secret | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.max_per_second = cfg.max_per_second
        self.burst = cfg.burst
        self._password = password

    def __repr__(self) -> str:
        return f"EmailNotifier(name={self.name!r}, host={self.cfg.host!r}, password=***)"

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cfg.ca_file) if self.cfg.ca_file else ssl.create_default_context()
        if not self.cfg.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _login(self, smtp: smtplib.SMTP) -> None:
        if not self.cfg.username:
            return
        password = self._password.get() if self._password else ""
        mech = self.cfg.auth_mechanism
        if mech == "auto":
            smtp.login(self.cfg.username, password)
            return
        smtp.ehlo_or_helo_if_needed()
        smtp.user, smtp.password = self.cfg.username, password
        try:
            if mech == "plain":
                smtp.auth("PLAIN", smtp.auth_plain)
            else:
                smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
        finally:
            smtp.password = ""

    def send(self, payload: Mapping[str, Any], idempotency_key: str, now: float) -> DeliveryResult:
        msg = render(payload, self.cfg, idempotency_key, now)
        cfg = self.cfg
        smtp: smtplib.SMTP | None = None
        try:
            if cfg.tls == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=cfg.hello, timeout=cfg.timeout,
                                        context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.hello, timeout=cfg.timeout)
                smtp.ehlo()
                if cfg.tls == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
            self._login(smtp)
            refused = smtp.send_message(msg, from_addr=cfg.from_, to_addrs=list(cfg.to))
            if refused and len(refused) == len(cfg.to):
                return DeliveryResult(False, None, None, f"all recipients refused: {sorted(refused)}")
            return DeliveryResult.success(250)
        except smtplib.SMTPResponseException as exc:
            return DeliveryResult(False, exc.smtp_code, None, redact(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", self._password))
        except (smtplib.SMTPException, OSError, ssl.SSLError, socket.timeout) as exc:
            return DeliveryResult(False, None, None, redact(f"{type(exc).__name__}: {exc}", self._password))
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except Exception:
                    try:
                        smtp.close()
                    except Exception:
                        pass
