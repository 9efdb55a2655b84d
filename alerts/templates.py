"""A tiny, safe `str.format`-like template language for alert summaries and descriptions.

    "Group {labels.group} on {cluster} is {value_human} messages behind (threshold {threshold:.0f})"

Fields are resolved by this module, never by `str.format` itself, so there is no attribute or
item access into Python objects and no code execution. Allowed fields:

- `value`, `threshold` (numbers; any format spec like `:.1f` applies), `value_human`
  (1.23M style), `value_duration` (seconds as 5m30s), `alertname`, `severity`, `kind`,
  `dashboard_url` (link for this alert), `for` (the rule's `for` as text);
- `labels.NAME` or `labels[NAME]`: a label of the alert ('' when absent);
- any other bare name is looked up as a label (`{group}` == `{labels.group}`).

`{{` and `}}` produce literal braces. Conversions `!s` are allowed; format specs must not contain
nested fields.
"""
from __future__ import annotations

import re
import string
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._util import format_duration, humanize_number

RESERVED = frozenset(
    {"value", "threshold", "value_human", "value_duration", "alertname", "severity", "kind", "dashboard_url", "for"}
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_DOT = re.compile(r"^labels\.([A-Za-z_][A-Za-z0-9_]*)$")
_LABEL_ITEM = re.compile(r"""^labels\[['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\]$""")
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class _Field:
    kind: str  # "ctx" | "label"
    name: str
    spec: str
    conversion: str | None


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple  # str | _Field
    # `parts` as render walks them: (literal, from labels, name, spec, !s), literal None for a
    # field. Rendered thousands of times a cycle (an alert's annotations, when its value moves).
    _steps: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", tuple(
            (part, False, "", "", False) if isinstance(part, str)
            else (None, part.kind == "label", part.name, part.spec, part.conversion == "s")
            for part in self.parts))

    @property
    def context_fields(self) -> frozenset[str]:
        """The context fields (`RESERVED`) the template uses."""
        return frozenset(p.name for p in self.parts if isinstance(p, _Field) and p.kind == "ctx")

    def render(self, context: Mapping[str, Any], labels: Mapping[str, str]) -> str:
        """Each field: its label (`labels`) or context value, '' when absent or None, `str()`ed
        for `!s`, formatted by its spec, or where the spec does not fit the value (or there is
        none) as `_default_str` writes it."""
        out: list[str] = []
        append = out.append
        for literal, from_labels, name, spec, as_str in self._steps:
            if literal is not None:
                append(literal)
                continue
            value: Any = (labels if from_labels else context).get(name, "")
            if value is None:
                value = ""
            if as_str:
                value = str(value)
            if spec:
                try:
                    append(format(value, spec))
                    continue
                except (ValueError, TypeError):
                    pass
            append(value if value.__class__ is str else _default_str(value))
        return "".join(out)


def _default_str(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:  # False for NaN and infinities: "nan", "inf"
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def compile_template(source: str | None) -> Template:
    """Validate and pre-parse a template. Raises TemplateError naming the bad field."""
    if source is None:
        source = ""
    if not isinstance(source, str):
        raise TemplateError(f"template must be a string, got {type(source).__name__}")
    parts: list = []
    try:
        parsed = list(_FORMATTER.parse(source))
    except ValueError as exc:
        raise TemplateError(f"invalid template {source!r}: {exc}") from None
    for literal, field_name, spec, conversion in parsed:
        if literal:
            parts.append(literal)
        if field_name is None:
            continue
        field_name = field_name.strip()
        if conversion not in (None, "s"):
            raise TemplateError(f"template field {{{field_name}!{conversion}}}: only !s is allowed")
        spec = spec or ""
        if "{" in spec or "}" in spec:
            raise TemplateError(f"template field {{{field_name}}}: nested fields in the format spec are not allowed")
        if m := (_LABEL_DOT.match(field_name) or _LABEL_ITEM.match(field_name)):
            parts.append(_Field("label", m.group(1), spec, conversion))
        elif field_name in RESERVED:
            parts.append(_Field("ctx", field_name, spec, conversion))
        elif _NAME.match(field_name):
            parts.append(_Field("label", field_name, spec, conversion))
        else:
            raise TemplateError(
                f"template field {{{field_name}}} is not allowed (use a label name, labels.NAME, or one of "
                f"{', '.join(sorted(RESERVED))})"
            )
        if spec:
            try:  # fail early on specs that fit no type
                format(1.5, spec)
            except ValueError:
                try:
                    format("x", spec)
                except ValueError:
                    raise TemplateError(f"template field {{{field_name}:{spec}}}: invalid format spec") from None
    return Template(source, tuple(parts))


VALUE_FIELDS = frozenset({"value", "value_human", "value_duration"})  # the fields that follow from the value


def value_context(value: float | None, fields: Container[str] = RESERVED) -> dict[str, Any]:
    """What a rule's templates show of an alert's value: the entries of its context that follow
    from the value, of those `fields` (the templates' `context_fields`) asks for. While they stay
    the same the annotations do, though the value moves: a lag of 2h13m reads so for a minute."""
    shown: dict[str, Any] = {}
    if "value" in fields:
        shown["value"] = value
    if "value_human" in fields:
        shown["value_human"] = humanize_number(value) if value is not None else ""
    if "value_duration" in fields:
        shown["value_duration"] = format_duration(value) if value is not None else ""
    return shown


def template_context(*, value: float | None, threshold: float | None, alertname: str, severity: str,
                     kind: str, dashboard_url: str, for_seconds: float,
                     fields: Container[str] = RESERVED) -> dict[str, Any]:
    """The context of a rule's templates. The fields worked out from the others (`value_human`,
    `value_duration`, `for`) only where `fields` (the templates' `context_fields`) asks for them:
    an alert's annotations are rendered again each time what they show of its value changes."""
    ctx = {
        "value": value,
        "threshold": threshold,
        "alertname": alertname,
        "severity": severity,
        "kind": kind,
        "dashboard_url": dashboard_url,
    }
    ctx.update(value_context(value, fields))
    if "for" in fields:
        ctx["for"] = format_duration(for_seconds)
    return ctx
