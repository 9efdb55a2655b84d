"""Alertmanager-style label matchers: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.

Regexes are fully anchored (as in Alertmanager and Prometheus). A label that is absent matches
as the empty string, so `topic!~".+"` selects alerts without a topic.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._util import short_repr

_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^"'\s]*)\s*$"""
)
_OPS = ("=", "!=", "=~", "!~")
_LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _LABEL_NAME_RE.fullmatch(self.name):
            raise MatcherError(f"invalid label name {short_repr(self.name)} (letters, digits and _, not starting with a digit)")
        if not isinstance(self.value, str):
            raise MatcherError(f"the value of the matcher for {self.name!r} must be a string")
        if self.op not in _OPS:
            raise MatcherError(f"unknown matcher operator {short_repr(self.op)} (use =, !=, =~, !~)")
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                rx = re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"invalid regex {short_repr(self.value)} in matcher for {self.name!r}: {exc}") from None
            object.__setattr__(self, "_regex", rx)

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        if not isinstance(text, str):
            raise MatcherError(f"matcher must be a string like 'group=~\"orders-.*\"', got {type(text).__name__}")
        m = _MATCHER_RE.match(text)
        if not m:
            raise MatcherError(f"invalid matcher {short_repr(text)} (expected e.g. group=~\"orders-.*\" or cluster=\"prod\")")
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
        """From `{name, op, value}` or Alertmanager's `{name, value, isRegex, isEqual}`. Types are
        checked, not coerced: `"isRegex": "false"` would otherwise turn into a regex matcher."""
        if not isinstance(data, Mapping):
            raise MatcherError(f"a matcher must be a string or an object, got {type(data).__name__}")
        missing = [k for k in ("name", "value") if k not in data]
        if missing:
            raise MatcherError(f"matcher object without {' and '.join(missing)}")
        if "op" in data:
            return cls(data["name"], data["op"], data["value"])
        flags = {k: data.get(k, default) for k, default in (("isRegex", False), ("isEqual", True))}
        for key, flag in flags.items():
            if not isinstance(flag, bool):
                raise MatcherError(f"{key} must be true or false, got {short_repr(flag)}")
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (flags["isRegex"], flags["isEqual"])]
        return cls(data["name"], op, data["value"])

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matchers(items: Iterable[str] | None) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(item) for item in (items or ()))


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
