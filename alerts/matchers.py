"""Alertmanager-style label matchers: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.

Regexes are fully anchored (as in Alertmanager and Prometheus). A label that is absent matches
as the empty string, so `topic!~".+"` selects alerts without a topic.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^"'\s]*)\s*$"""
)
_OPS = ("=", "!=", "=~", "!~")


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise MatcherError(f"unknown matcher operator {self.op!r} (use =, !=, =~, !~)")
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                rx = re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"invalid regex {self.value!r} in matcher for {self.name!r}: {exc}") from None
            object.__setattr__(self, "_regex", rx)

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        if not isinstance(text, str):
            raise MatcherError(f"matcher must be a string like 'group=~\"orders-.*\"', got {type(text).__name__}")
        m = _MATCHER_RE.match(text)
        if not m:
            raise MatcherError(f"invalid matcher {text!r} (expected e.g. group=~\"orders-.*\" or cluster=\"prod\")")
        raw = m.group("value")
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        return cls(m.group("name"), m.group("op"), raw)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.name, "") or "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex.fullmatch(actual) is not None  # type: ignore[union-attr]
        return hit if self.op == "=~" else not hit

    def to_dict(self) -> dict:
        """Alertmanager API v2 matcher shape."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in ("=~", "!~"),
            "isEqual": self.op in ("=", "=~"),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "Matcher":
        if "op" in data:
            return cls(str(data["name"]), str(data["op"]), str(data["value"]))
        is_regex = bool(data.get("isRegex", False))
        is_equal = bool(data.get("isEqual", True))
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(is_regex, is_equal)]
        return cls(str(data["name"]), op, str(data["value"]))

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matchers(items: Iterable[str] | None) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(item) for item in (items or ()))


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
