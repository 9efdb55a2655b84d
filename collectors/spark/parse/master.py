"""A standalone master: `/json/` and the index page (links to the drivers' UIs)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from collectors.spark.parse.common import (
    SparkParseError, optional_int, optional_str, optional_time, require_list, require_obj, required_str,
)


@dataclass(frozen=True, slots=True)
class MasterApp:
    id: str
    name: str
    state: str  # RUNNING, WAITING, FINISHED, KILLED, FAILED, UNKNOWN
    start_time: float | None
    cores: int | None
    user: str | None
    duration_ms: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class MasterState:
    url: str | None  # spark://host:7077
    status: str | None  # ALIVE / STANDBY / ...
    alive_workers: int | None
    cores: int | None
    cores_used: int | None
    apps: tuple[MasterApp, ...]
    fetched_at: float


def parse_master_json(data: Any, *, source: str, fetched_at: float) -> MasterState:
    """Standalone master `/json/` -> its state and applications (active and completed).

    The master does not report driver UI URLs in JSON: see `parse_master_index_html`, or use
    the reverse proxy (`<master>/proxy/<app-id>/`).
    """
    m = require_obj(data, source, "master state")
    if "activeapps" not in m and "workers" not in m:
        raise SparkParseError(source, "not a standalone master /json/ response (no 'activeapps')")
    apps = []
    for key, active in (("activeapps", True), ("completedapps", False)):
        for i, raw in enumerate(require_list(m.get(key) or [], source, key)):
            ctx = f"{key}[{i}]"
            a = require_obj(raw, source, ctx)
            apps.append(MasterApp(
                id=required_str(a, "id", source, ctx),
                name=optional_str(a, "name", source, ctx) or "",
                state=(optional_str(a, "state", source, ctx) or "UNKNOWN").upper(),
                start_time=optional_time(a, "starttime", source, ctx),
                cores=optional_int(a, "cores", source, ctx),
                user=optional_str(a, "user", source, ctx),
                duration_ms=optional_int(a, "duration", source, ctx),
                active=active,
            ))
    return MasterState(
        url=optional_str(m, "url", source, "master"),
        status=optional_str(m, "status", source, "master"),
        alive_workers=optional_int(m, "aliveworkers", source, "master"),
        cores=optional_int(m, "cores", source, "master"),
        cores_used=optional_int(m, "coresused", source, "master"),
        apps=tuple(apps),
        fetched_at=fetched_at,
    )


class _RowLinks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag == "a" and self._row is not None:
            href = dict(attrs).get("href")
            if href:
                self._row.append(href)

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


_APP_ID_IN_HREF = re.compile(r"[?&]appId=([^&#]+)")


def parse_master_index_html(html: str, *, base_url: str, source: str) -> dict[str, str]:
    """The master's index page -> {app id: driver UI URL} for apps whose name is a link.

    Each application row links `app/?appId=<id>` and, when the driver UI is up, the app name to
    the driver UI (`http://driver:4040`, or `/proxy/<id>/` under `spark.ui.reverseProxy`);
    relative links are resolved against `base_url`.
    """
    if not isinstance(html, str):
        raise SparkParseError(source, f"expected HTML text, got {type(html).__name__}")
    p = _RowLinks()
    p.feed(html)
    p.close()
    out: dict[str, str] = {}
    for hrefs in p.rows:
        app_id = None
        for h in hrefs:
            m = _APP_ID_IN_HREF.search(h)
            if m and "app/" in h and "logPage" not in h:
                app_id = m.group(1)
                break
        if not app_id:
            continue
        for h in hrefs:
            if h.startswith("#") or h.lower().startswith("javascript") or "appId=" in h \
                    or "/kill" in h:
                continue
            out.setdefault(app_id, urljoin(base_url if base_url.endswith("/") else base_url + "/", h))
            break
    return out
