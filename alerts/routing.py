"""Routing tree, aggregation-group keys, inhibition and dashboard links (pure functions)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from .config import InhibitRule, RouteConfig
from .matchers import Matcher, parse_matchers

ROOT_DEFAULTS = {
    "group_by": ("alertname", "cluster"),
    "group_wait": 30.0,
    "group_interval": 300.0,
    "repeat_interval": 4 * 3600.0,
}


@dataclass(frozen=True)
class Route:
    id: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    group_by: tuple[str, ...] | None  # None = every label ("...")
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool
    children: tuple["Route", ...]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by is None:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if labels.get(k)}


def build_route(cfg: RouteConfig, parent: Route | None = None, route_id: str = "root") -> Route:
    def pick(name: str):
        value = getattr(cfg, name)
        if value is not None:
            return value
        return getattr(parent, name) if parent is not None else ROOT_DEFAULTS[name]

    group_by = cfg.group_by if cfg.group_by is not None else (parent.group_by if parent is not None else ROOT_DEFAULTS["group_by"])
    if group_by is not None and "..." in group_by:
        group_by = None
    receivers = cfg.receivers if cfg.receivers or parent is None else parent.receivers
    node = Route(
        id=route_id, matchers=parse_matchers(cfg.matchers), receivers=tuple(receivers), group_by=group_by,
        group_wait=float(pick("group_wait")), group_interval=float(pick("group_interval")),
        repeat_interval=float(pick("repeat_interval")), continue_=cfg.continue_, children=(),
    )
    children = tuple(build_route(child, node, f"{route_id}.{i}") for i, child in enumerate(cfg.routes))
    return Route(**{**node.__dict__, "children": children})


def match_routes(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """Alertmanager semantics: depth-first; first matching child wins unless it has `continue`;
    a node with no matching child takes the alert itself. The root always matches."""
    return _matching(root, labels, True)


# A module function, not a closure of match_routes: a nested function that calls itself refers
# to itself through its cell, a reference cycle left to the cyclic collector for every alert routed.
def _matching(node: Route, labels: Mapping[str, str], is_root: bool) -> list[Route]:
    if not is_root and not all(m.matches(labels) for m in node.matchers):
        return []
    found: list[Route] = []
    for child in node.children:
        hit = _matching(child, labels, False)
        if hit:
            found.extend(hit)
            if not child.continue_:
                break
    return found or [node]


def all_routes(root: Route) -> dict[str, Route]:
    out = {root.id: root}
    for child in root.children:
        out.update(all_routes(child))
    return out


def group_key(route: Route, group_labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return f"{route.id}:{{{inner}}}"


# ------------------------------------------------------------------------------------ inhibition


@dataclass(frozen=True)
class CompiledInhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    source_kinds: frozenset[str]
    target_kinds: frozenset[str]
    equal: tuple[str, ...]

    @classmethod
    def of(cls, rule: InhibitRule) -> "CompiledInhibitRule":
        return cls(parse_matchers(rule.source_matchers), parse_matchers(rule.target_matchers),
                   frozenset(k.value for k in rule.source_kinds), frozenset(k.value for k in rule.target_kinds),
                   tuple(rule.equal))

    def is_source(self, kind: str, labels: Mapping[str, str]) -> bool:
        return (not self.source_kinds or kind in self.source_kinds) and all(m.matches(labels) for m in self.source_matchers)

    def is_target(self, kind: str, labels: Mapping[str, str]) -> bool:
        return (not self.target_kinds or kind in self.target_kinds) and all(m.matches(labels) for m in self.target_matchers)


@dataclass(frozen=True)
class InhibitCandidate:
    fingerprint: str
    kind: str
    labels: Mapping[str, str]


def inhibited(rules: Sequence[CompiledInhibitRule], firing: Iterable[InhibitCandidate]) -> dict[str, list[str]]:
    """fingerprint -> fingerprints of the firing alerts that inhibit it."""
    firing = list(firing)
    out: dict[str, list[str]] = {}
    for rule in rules:
        sources = [a for a in firing if rule.is_source(a.kind, a.labels)]
        if not sources:
            continue
        index: dict[tuple, list[str]] = {}
        for s in sources:
            index.setdefault(tuple(s.labels.get(l, "") for l in rule.equal), []).append(s.fingerprint)
        for t in firing:
            if not rule.is_target(t.kind, t.labels):
                continue
            by = [fp for fp in index.get(tuple(t.labels.get(l, "") for l in rule.equal), ()) if fp != t.fingerprint]
            if by:
                out.setdefault(t.fingerprint, []).extend(by)
    return out


# ------------------------------------------------------------------------------------ links

# Dashboard pages per alert shape, most specific first: (required labels, path). Query parameters
# carry the label values, so renaming pages only touches this table.
DASHBOARD_PAGES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("cluster", "group"), "/groups"),
    (("cluster", "topic"), "/topics"),
    (("app", "query"), "/spark"),
    (("app",), "/spark"),
    (("cluster",), "/clusters"),
    (("collector",), "/health"),
)


# Characters `quote` never escapes: most label values are made of them only, and the link is
# built for every alert at each evaluation.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _query_value(value: str) -> str:
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


def dashboard_link(base: str, labels: Mapping[str, str]) -> str:
    """The dashboard page of an alert's labels (`DASHBOARD_PAGES`), its label values as the query,
    percent-encoded as `urlencode(..., quote_via=quote)` does."""
    base = (base or "").rstrip("/")
    for required, path in DASHBOARD_PAGES:
        if all(labels.get(k) for k in required):
            return f"{base}{path}?" + "&".join(f"{_query_value(k)}={_query_value(str(labels[k]))}" for k in required)
    return base or "/"
