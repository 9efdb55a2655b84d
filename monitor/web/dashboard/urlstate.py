"""What the dashboard shows, as a URL: page (the path), cluster, group, topic, range.

    /groups?cluster=demo&group=clickstream-enricher-slow&range=6h

`parse(pathname, search)` and `serialise(state)` are inverse of each other (unit tested round
trip), so any view can be shared as a link. The page is the path; `/?page=groups&...` is accepted
as well and redirected to `/groups?...`. Unknown pages fall back to the overview, unknown
ranges to the default; names are percent-encoded, so any group name survives.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from monitor.web.dashboard.registry import PATHS
from monitor.web.views.common import DEFAULT_RANGE, RANGES

_KEYS = ("cluster", "group", "topic", "app", "range")  # serialisation order


@dataclass(frozen=True)
class UrlState:
    page: str = "/"
    cluster: str | None = None
    group: str | None = None
    topic: str | None = None
    app: str | None = None  # Spark application id (spark page)
    range: str = DEFAULT_RANGE

    def with_(self, **changes) -> "UrlState":
        return replace(self, **changes)

    @property
    def range_seconds(self) -> float:
        return RANGES.get(self.range, RANGES[DEFAULT_RANGE])


def normalise_page(pathname: str | None) -> str:
    if not pathname:
        return "/"
    path = "/" + pathname.strip("/")
    return path if path in PATHS else "/"


def normalise_range(value: str | None) -> str:
    return value if value in RANGES else DEFAULT_RANGE


def parse(pathname: str | None, search: str | None) -> UrlState:
    """State from a location's pathname and search ('?a=b' or 'a=b')."""
    query = (search or "").lstrip("?")
    params = parse_qs(query, keep_blank_values=False)

    def one(key: str) -> str | None:
        values = params.get(key)
        return values[0] if values else None

    page = one("page")  # "?page=groups" is accepted too (the path wins when both are given)
    if page and normalise_page(pathname) == "/" and normalise_page(page) != "/":
        pathname = page
    return UrlState(
        page=normalise_page(pathname),
        cluster=one("cluster"),
        group=one("group"),
        topic=one("topic"),
        app=one("app"),
        range=normalise_range(one("range")),
    )


def from_params(page: str, params: dict) -> UrlState:
    """State from the query parameters Dash pages passes to a layout function (str or list)."""

    def one(key: str) -> str | None:
        value = params.get(key)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        return value if isinstance(value, str) and value != "" else None

    return UrlState(
        page=normalise_page(page), cluster=one("cluster"), group=one("group"), topic=one("topic"),
        app=one("app"), range=normalise_range(one("range")),
    )


def serialise(state: UrlState) -> str:
    """'?cluster=demo&group=g%3Cscript%3E&range=1h' (empty values left out; range always kept)."""
    pairs = []
    for key in _KEYS:
        value = getattr(state, key)
        if value is not None and value != "":
            pairs.append((key, value))
    return "?" + urlencode(pairs)


def href(state: UrlState) -> str:
    return state.page + serialise(state)


def page_href(state: UrlState, page: str) -> str:
    """Link to another page keeping the cluster and range (page-specific selections dropped)."""
    return href(UrlState(page=normalise_page(page), cluster=state.cluster, range=state.range))
