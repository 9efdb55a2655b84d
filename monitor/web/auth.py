"""Authentication of every route: a bearer token or basic auth, when configured (`web:`)."""
from __future__ import annotations

import base64
import hmac

from flask import Flask, Response, request

from monitor.web.settings import WebConfig


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


def require_credentials(app: Flask, web: WebConfig) -> None:
    """Every request must carry the configured credentials (nothing to do when none are)."""
    token = _config_bytes(web.auth_token.resolve("web.auth_token").get()) if web.auth_token else None
    basic = ((_config_bytes(web.basic_auth_user or ""), _config_bytes(web.basic_auth_password.resolve("web.basic_auth_password").get()))
             if web.basic_auth_password else None)
    if token is None and basic is None:
        return

    @app.before_request
    def _authenticate():
        if credentials_match(request.headers.get("Authorization", ""), token, basic):
            return None
        return Response("authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="streamscope"'})
