"""Where Spark applications are: targets (what the user configured) and their discovery.

Targets:
- `UiTarget("http://host:4040")`: a driver UI (or any URL that serves `/api/v1/applications`
  for one driver, e.g. a reverse-proxy path `http://master:8080/proxy/<app-id>`).
- `PortRangeTarget("host", 4040, 4050)`: driver UIs probed cheaply on a port range (Spark takes
  4040, then 4041, ... when several drivers share a host). A refused port is just "no driver"
  for the target's health (an app found there before is then shown down by the collector).
- `MasterTarget("http://master:8080")`: a standalone master; its active apps, with driver UI URLs
  from the master's index page or from its reverse proxy (`spark.ui.reverseProxy=true`).
- `HistoryTarget("http://shs:18080")`: a History Server; running apps by default.

`parse_target` accepts these objects or strings: `http://host:4040`, `host:4040-4050`,
`ui=URL`, `ports=host:4040-4050`, `master=URL`, `master+proxy=URL`, `history=URL`.

Each discovery task does its I/O through `SparkHttpClient` and its parsing through
`collectors.spark.parse`; it returns `Discovered` (locations of apps + the target's status).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping
from urllib.parse import quote, urlsplit

from collectors.spark.client import FetchResult, SparkHttpClient
from collectors.spark.models import SRC_APPLICATIONS, SourceStatus, SparkApp
from collectors.spark.parse.common import SparkParseError, decode_json
from collectors.spark.parse.master import parse_master_index_html, parse_master_json
from collectors.spark.parse.rest import parse_applications
from collectors.urls import http_url_problem, redact_url

PROBE_CONNECT_TIMEOUT = 1.0  # seconds, for port-range probes

# Lower wins when the same app id is found by several targets.
PRIORITY = {"ui": 0, "port-scan": 1, "master": 2, "history": 3, "progress-feed": 9}
DRIVER_VIAS = ("ui", "port-scan")  # found at the driver's own UI


@dataclass(frozen=True, slots=True)
class UiTarget:
    url: str

    @property
    def name(self) -> str:
        return f"spark:ui:{redact_url(self.url)}"


MAX_SCAN_PORTS = 257


def check_port_range(first: int, last: int) -> None:
    """ValueError unless first-last is a range of 1 to MAX_SCAN_PORTS ports within 1-65535."""
    if not (0 < first <= last < 65536):
        raise ValueError(f"bad port range {first}-{last} (ports 1-65535, first <= last)")
    if last - first >= MAX_SCAN_PORTS:
        raise ValueError(f"port range {first}-{last} too wide (max {MAX_SCAN_PORTS} ports)")


@dataclass(frozen=True, slots=True)
class PortRangeTarget:
    host: str
    first: int
    last: int
    scheme: str = "http"

    def __post_init__(self):
        check_port_range(self.first, self.last)

    @property
    def name(self) -> str:
        return f"spark:ports:{self.host}:{self.first}-{self.last}"

    def urls(self) -> tuple[str, ...]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return tuple(f"{self.scheme}://{host}:{p}" for p in range(self.first, self.last + 1))


@dataclass(frozen=True, slots=True)
class MasterTarget:
    url: str
    reverse_proxy: bool | None = None  # None: take driver links from the master's index page

    @property
    def name(self) -> str:
        return f"spark:master:{redact_url(self.url)}"


@dataclass(frozen=True, slots=True)
class HistoryTarget:
    url: str
    running_only: bool = True  # False: also completed apps (the `limit` most recent)
    limit: int = 20

    @property
    def name(self) -> str:
        return f"spark:history:{redact_url(self.url)}"


Target = UiTarget | PortRangeTarget | MasterTarget | HistoryTarget

_RANGE_RE = re.compile(r"^(?:(?P<scheme>https?)://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<a>\d+)-(?P<b>\d+)/?$")


def _clean_url(url: str) -> str:
    url = url.strip()
    if not re.match(r"^https?://", url):
        raise ValueError(f"expected an http(s) URL, got {redact_url(url)!r}")
    problem = http_url_problem(url)
    if problem:
        raise ValueError(f"{redact_url(url)!r}: {problem}")
    return url.rstrip("/")


def parse_target(spec: str | Target) -> Target:
    """A target from its config string (or pass a target object through)."""
    if isinstance(spec, (UiTarget, PortRangeTarget, MasterTarget, HistoryTarget)):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty Spark target {spec!r}")
    s = spec.strip()
    kind = None
    m = re.match(r"^(ui|ports|master|master\+proxy|history)=(.+)$", s)
    if m:
        kind, s = m.group(1), m.group(2).strip()
    rm = _RANGE_RE.match(s)
    if kind in (None, "ports") and rm:
        host = rm.group("host").strip("[]")
        return PortRangeTarget(host, int(rm.group("a")), int(rm.group("b")),
                               rm.group("scheme") or "http")
    if kind == "ports":
        raise ValueError(f"expected host:first-last for a port range, got {s!r}")
    if kind == "master":
        return MasterTarget(_clean_url(s))
    if kind == "master+proxy":
        return MasterTarget(_clean_url(s), reverse_proxy=True)
    if kind == "history":
        return HistoryTarget(_clean_url(s))
    return UiTarget(_clean_url(s))


@dataclass(frozen=True, slots=True)
class AppLocation:
    """Where to fetch one app's sources, and what discovery already knows about it."""

    app: SparkApp
    target: str  # name of the target that found it
    api_root: str | None  # .../api/v1/applications/<id>[/<attempt>]; None: no UI known
    ui_root: str | None  # root for UI pages (/StreamingQuery/); History Server: /history/<id>
    metrics_root: str | None  # driver UI root serving /metrics/json/ (None for History Server)
    applications_status: SourceStatus | None = None  # the fetch that found it, when it did
    needs_app_info: bool = False  # True: fetch the driver's /api/v1/applications (master apps)
    found_at: str = ""  # the URL discovery read (UI, probed port, master, History Server)
    split_from: str | None = None  # Spark's id, when other drivers report it too (place_apps)

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.app.discovered_via, 5)


@dataclass(frozen=True, slots=True)
class Discovered:
    target: str
    locations: tuple[AppLocation, ...]
    ok: bool  # False: the target could not be read (apps it had may be stale)
    error: str | None
    attempted_at: float
    duration_seconds: float
    requests: int
    refused: bool = False  # the target refused connections (its drivers are gone)
    notes: tuple[str, ...] = field(default=())  # non-errors worth logging (e.g. "not Spark")
    # URLs that gave no HTTP answer (refused, timed out, ...), each with the reason: apps last
    # found there stopped answering, and are kept, marked stale, rather than dropped at once
    unanswered: tuple[tuple[str, str], ...] = field(default=())


def api_root(base: str, app_id: str, attempt: str | None) -> str:
    root = f"{base.rstrip('/')}/api/v1/applications/{quote(app_id, safe='')}"
    return f"{root}/{quote(attempt, safe='')}" if attempt else root


def _status(source: str, res: FetchResult, ok: bool, error: str | None = None) -> SourceStatus:
    return SourceStatus(source=source, url=res.url, fetched_at=res.fetched_at, ok=ok,
                        error=error, http_status=res.status,
                        duration_seconds=res.duration_seconds)


def _read_apps(client: SparkHttpClient, base: str, via: str, target: str, params=None,
               timeout: tuple[float, float] | None = None,
               ) -> tuple[FetchResult, tuple[AppLocation, ...] | None, str | None]:
    """GET <base>/api/v1/applications -> locations (None + reason when it is not usable)."""
    res = client.get(f"{base}/api/v1/applications", params, timeout=timeout)
    if not res.ok:
        return res, None, res.describe()
    try:
        apps = parse_applications(decode_json(res.text or "", res.url), source=res.url,
                                  fetched_at=res.fetched_at, via=via)
    except SparkParseError as e:
        return res, None, str(e)
    status = _status(SRC_APPLICATIONS, res, True)
    locs = []
    for app in apps:
        if via == "history":
            ui = f"{base}/history/{quote(app.id, safe='')}" + (
                f"/{quote(app.attempt, safe='')}" if app.attempt else "")
            locs.append(AppLocation(
                app=replace(app, ui_url=ui), target=target,
                api_root=api_root(base, app.id, app.attempt), ui_root=ui, metrics_root=None,
                applications_status=status, found_at=base))
        else:
            locs.append(AppLocation(
                app=replace(app, ui_url=base), target=target,
                api_root=api_root(base, app.id, app.attempt), ui_root=base, metrics_root=base,
                applications_status=status, found_at=base))
    return res, tuple(locs), None


def _unanswered(res: FetchResult, url: str) -> tuple[tuple[str, str], ...]:
    return ((url, res.describe()),) if res.error_kind else ()


def discover_ui(client: SparkHttpClient, target: UiTarget, now: float) -> Discovered:
    res, locs, err = _read_apps(client, target.url, "ui", target.name)
    return Discovered(target=target.name, locations=locs or (), ok=err is None, error=err,
                      attempted_at=now, duration_seconds=res.duration_seconds, requests=1,
                      refused=res.error_kind == "refused",
                      unanswered=_unanswered(res, target.url))


def probe_port(client: SparkHttpClient, target: PortRangeTarget, url: str, now: float) -> Discovered:
    """One port of a range. Refused = nobody there (fine); a non-Spark answer is a note.
    Probes connect with at most PROBE_CONNECT_TIMEOUT (a firewalled port must not cost 2 s)."""
    timeout = (min(client.timeout[0], PROBE_CONNECT_TIMEOUT), client.timeout[1])
    res, locs, err = _read_apps(client, url, "port-scan", target.name, timeout=timeout)
    if err is None:
        return Discovered(target=target.name, locations=locs or (), ok=True, error=None,
                          attempted_at=now, duration_seconds=res.duration_seconds, requests=1)
    if res.error_kind == "refused":
        return Discovered(target=target.name, locations=(), ok=True, error=None, attempted_at=now,
                          duration_seconds=res.duration_seconds, requests=1, refused=True,
                          unanswered=_unanswered(res, url))
    if res.unreachable or res.error_kind:
        return Discovered(target=target.name, locations=(), ok=False, error=err, attempted_at=now,
                          duration_seconds=res.duration_seconds, requests=1,
                          unanswered=_unanswered(res, url))
    # An HTTP answer that is not a Spark driver (another service on the port): not an error.
    return Discovered(target=target.name, locations=(), ok=True, error=None, attempted_at=now,
                      duration_seconds=res.duration_seconds, requests=1,
                      notes=(f"{url}: not a Spark UI ({err})",))


def combine_port_probes(target: PortRangeTarget, probes: list[Discovered], now: float) -> Discovered:
    """A range is down only when no port gave an HTTP answer or a clean refusal."""
    locs = tuple(loc for p in probes for loc in p.locations)
    failed = [p for p in probes if not p.ok]
    answered = len(probes) - len(failed)
    error = None
    if failed:
        error = f"{len(failed)}/{len(probes)} ports did not answer; first: {failed[0].error}"
    return Discovered(
        target=target.name, locations=locs, ok=answered > 0, error=error, attempted_at=now,
        duration_seconds=max((p.duration_seconds for p in probes), default=0.0),
        requests=sum(p.requests for p in probes),
        refused=all(p.refused for p in probes),
        notes=tuple(n for p in probes for n in p.notes),
        unanswered=tuple(u for p in probes for u in p.unanswered),
    )


def discover_master(client: SparkHttpClient, target: MasterTarget, now: float) -> Discovered:
    base = target.url
    res = client.get(f"{base}/json/")
    n = 1
    if not res.ok:
        return Discovered(target=target.name, locations=(), ok=False, error=res.describe(),
                          attempted_at=now, duration_seconds=res.duration_seconds, requests=n,
                          refused=res.error_kind == "refused", unanswered=_unanswered(res, base))
    try:
        state = parse_master_json(decode_json(res.text or "", res.url), source=res.url,
                                  fetched_at=res.fetched_at)
    except SparkParseError as e:
        return Discovered(target=target.name, locations=(), ok=False, error=str(e),
                          attempted_at=now, duration_seconds=res.duration_seconds, requests=n)
    active = [a for a in state.apps if a.active]
    links: dict[str, str] = {}
    notes: list[str] = []
    duration = res.duration_seconds
    if active and target.reverse_proxy is not True:
        page = client.get(f"{base}/")
        n += 1
        duration += page.duration_seconds
        if page.ok:
            try:
                links = parse_master_index_html(page.text or "", base_url=base, source=page.url)
            except SparkParseError as e:
                notes.append(str(e))
        else:
            notes.append(f"master index page: {page.describe()}")
    locs = []
    for a in active:
        if target.reverse_proxy:
            ui = f"{base}/proxy/{quote(a.id, safe='')}"
        else:
            ui = links.get(a.id)
            ui = ui.rstrip("/") if ui else None
        app = SparkApp(id=a.id, name=a.name, ui_url=ui, attempt=None, start_time=a.start_time,
                       end_time=None, spark_version=None, completed=False,
                       fetched_at=res.fetched_at, user=a.user, discovered_via="master",
                       master_state=a.state)
        locs.append(AppLocation(
            app=app, target=target.name,
            api_root=api_root(ui, a.id, None) if ui else None,
            ui_root=ui, metrics_root=ui, needs_app_info=ui is not None, found_at=base))
    return Discovered(target=target.name, locations=tuple(locs), ok=True, error=None,
                      attempted_at=now, duration_seconds=duration, requests=n, notes=tuple(notes))


def discover_history(client: SparkHttpClient, target: HistoryTarget, now: float) -> Discovered:
    params = {"status": "running"} if target.running_only else {"limit": str(target.limit)}
    res, locs, err = _read_apps(client, target.url, "history", target.name, params)
    return Discovered(target=target.name, locations=locs or (), ok=err is None, error=err,
                      attempted_at=now, duration_seconds=res.duration_seconds, requests=1,
                      refused=res.error_kind == "refused",
                      unanswered=_unanswered(res, target.url))


Fingerprint = tuple  # what tells apart two apps that report one id (see `app_fingerprint`)


def app_fingerprint(app: SparkApp) -> Fingerprint:
    """One driver reached by two URLs reports the same name and start time; two drivers that
    report one id and differ in either are two apps."""
    return (app.name, app.start_time)


def place_apps(locations: Iterable[AppLocation],
               held: Mapping[str, Fingerprint] | None = None) -> dict[str, AppLocation]:
    """One location per app, keyed by the id the app is shown under (its `app.id`).

    `held`: the key -> fingerprint of each app shown in the last cycle.

    Rule 1 - an app found by several targets is kept once, at its best location (`PRIORITY`;
      the first found among equals).
    Rule 2 - Spark names a local-mode app `local-<the millisecond it started>`, so two drivers
      started in the same millisecond report one id. Driver UIs that report one id with
      different fingerprints are different apps: each is kept. The one shown under the bare id
      last cycle keeps it, else the one started first; the others are shown as
      `<id>@<host:port of their UI>`.
    Rule 3 - an app shown as `<id>@<host:port>` keeps that key while it is found, even once it
      is the only driver of its id (the bare id may still be the other app's, shown down).
    Rule 4 - master and History Server locations of a split id are dropped: they cannot say
      which of the drivers they mean.
    """
    held = held or {}
    by_id: dict[str, list[AppLocation]] = {}
    for loc in locations:
        by_id.setdefault(loc.app.id, []).append(loc)
    out: dict[str, AppLocation] = {}
    for app_id, locs in by_id.items():
        drivers: dict[Fingerprint, AppLocation] = {}
        for loc in sorted(locs, key=lambda loc: loc.priority):  # stable: first found among equals
            if loc.app.discovered_via in DRIVER_VIAS:
                drivers.setdefault(app_fingerprint(loc.app), loc)
        split = {fp: key for key, fp in held.items() if key.startswith(f"{app_id}@")}
        if len(drivers) < 2 and not split.keys() & drivers.keys():
            out[app_id] = min(locs, key=lambda loc: loc.priority)  # rule 1
            continue
        keys = {fp: split[fp] for fp in drivers if fp in split}  # rule 3
        rest = sorted((fp for fp in drivers if fp not in keys),
                      key=lambda fp: (held.get(app_id) != fp, drivers[fp].app.start_time is None,
                                      drivers[fp].app.start_time or 0.0, drivers[fp].found_at))
        for fp in rest:  # rule 2
            if app_id not in keys.values():
                keys[fp] = app_id
                continue
            key = base = f"{app_id}@{urlsplit(drivers[fp].found_at).netloc}"
            n = 1
            while key in keys.values():
                n += 1
                key = f"{base}#{n}"
            keys[fp] = key
        for fp, key in keys.items():
            loc = drivers[fp]
            out[key] = loc if key == app_id else replace(loc, app=replace(loc.app, id=key),
                                                         split_from=app_id)
    return out
