"""http(s) URLs a request can be sent to: one check for every URL a user configures (Spark
targets, alert receivers), and URLs shown without their credentials."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["http_url_problem", "redact_url"]


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL a request can be sent to (None: it is). Each of these
    passed the configuration's checks once and then failed every send (InvalidURL)."""
    if any(c.isspace() for c in url):
        return "contains a space"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "a URL without a host"
    try:
        port = parts.port
    except ValueError:  # not a number, or past 65535
        port = 0
    if port == 0:
        return "the port must be a number from 1 to 65535"
    return None


def redact_url(url: str) -> str:
    """`url` without its user:password@, before it goes into a message or a snapshot; also for a
    URL that does not parse (a port like 40x40), which a message about it has to show."""
    m = _AUTHORITY.match(url)
    if m is None or "@" not in m.group(2):
        return url
    return m.group(1) + m.group(2).rsplit("@", 1)[1] + url[m.end(2):]


_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)")
