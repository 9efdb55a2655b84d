"""http(s) URLs a request can be sent to: one check for every URL a user configures (Spark
targets, alert receivers), and URLs shown in messages without their credentials."""
from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["http_url_problem", "shown_url"]


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


def shown_url(url: str) -> str:
    """`url` for a message: its user:password@ replaced, even where the rest does not parse."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return f"{scheme}{sep}{netloc}{slash}{path}" if sep else url
