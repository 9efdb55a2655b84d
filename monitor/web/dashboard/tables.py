"""Server-side filtering, sorting and paging for `dash_table.DataTable` in "custom" mode.

Tables with one row per group or partition can hold tens of thousands of rows; the browser only
ever receives the visible page, so an interval update stays a few kilobytes whatever the size.

Rows are dicts. Display columns hold formatted text ("1.2k"); `sort_keys` maps a display column
to the raw key sorted and filtered on ("lag" -> "_lag"), so "{lag} > 1000" compares numbers.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PART = re.compile(r"^\s*\{(?P<col>[^}]*)\}\s*(?P<op>s[<>!=]=?|[a-z]+|[<>!=]=?)?\s*(?P<value>.*?)\s*$",
                   re.IGNORECASE | re.DOTALL)
_OPS = {
    "=": "eq", "eq": "eq", "s=": "eq", "seq": "eq", "ieq": "ieq",
    "!=": "ne", "ne": "ne", "s!=": "ne", "sne": "ne", "ine": "ine",
    "<": "lt", "lt": "lt", "s<": "lt", "slt": "lt", "ilt": "lt",
    "<=": "le", "le": "le", "s<=": "le", "sle": "le", "ile": "le",
    ">": "gt", "gt": "gt", "s>": "gt", "sgt": "gt", "igt": "gt",
    ">=": "ge", "ge": "ge", "s>=": "ge", "sge": "ge", "ige": "ge",
    "contains": "contains", "scontains": "contains", "icontains": "icontains",
    "datestartswith": "startswith",
}


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # eq ne lt le gt ge contains icontains startswith blank notblank
    value: object


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        inner = text[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return text


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def parse_filter(query: str | None) -> list[Condition]:
    """Conditions of a DataTable filter_query ('{lag} > 100 && {group} contains "web"').

    Parts that cannot be parsed are ignored (a half-typed filter shows everything)."""
    if not query:
        return []
    out = []
    for part in re.split(r"\s+&&\s+", query.strip()):
        m = _PART.match(part)
        if not m:
            continue
        col, op, raw = m.group("col"), (m.group("op") or "").lower(), m.group("value")
        if op == "is":
            low = raw.lower().strip()
            out.append(Condition(col, "blank" if low in ("blank", "nil") else "notblank", None))
            continue
        if not op:  # "{col} value" (typed without operator)
            op = "contains"
        name = _OPS.get(op)
        if name is None:
            continue
        out.append(Condition(col, name, _unquote(raw)))
    return out


def _matches(row: dict, cond: Condition, sort_keys: dict[str, str]) -> bool:
    value = row.get(sort_keys.get(cond.column, cond.column))
    if cond.op == "blank":
        return value is None or value == ""
    if cond.op == "notblank":
        return not (value is None or value == "")
    text = "" if value is None else str(value)
    needle = "" if cond.value is None else str(cond.value)
    if cond.op == "contains":
        return needle in text
    if cond.op == "icontains":
        return needle.lower() in text.lower()
    if cond.op == "startswith":
        return text.startswith(needle)
    if cond.op == "ieq":
        return text.lower() == needle.lower()
    if cond.op == "ine":
        return text.lower() != needle.lower()
    a, b = _number(value), _number(cond.value)
    if a is None or b is None:  # compare as text
        if cond.op == "eq":
            return text == needle
        if cond.op == "ne":
            return text != needle
        if value is None:
            return False
        a, b = text, needle  # type: ignore[assignment]
    if cond.op == "eq":
        return a == b
    if cond.op == "ne":
        return a != b
    if cond.op == "lt":
        return a < b
    if cond.op == "le":
        return a <= b
    if cond.op == "gt":
        return a > b
    if cond.op == "ge":
        return a >= b
    return True


def _sort_key(value):
    """None last in ascending order; numbers before text."""
    if value is None or value == "":
        return (2, 0, "")
    if isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, (int, float)):
        return (0, float(value) if math.isfinite(value) else math.inf, "")
    return (1, 0, str(value).lower())


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    page_count: int
    total: int  # rows after filtering
    page_current: int


def query(rows: list[dict], *, filter_query: str | None = None, sort_by: list | None = None,
          page_current: int | None = 0, page_size: int = 25,
          sort_keys: dict[str, str] | None = None,
          default_sort: list[tuple[str, bool]] | None = None) -> Page:
    """Filter, sort and cut one page. default_sort: [(key, descending)] when sort_by is empty."""
    sort_keys = sort_keys or {}
    conds = parse_filter(filter_query)
    if conds:
        rows = [r for r in rows if all(_matches(r, c, sort_keys) for c in conds)]
    else:
        rows = list(rows)
    order: list[tuple[str, bool]] = []
    for s in sort_by or []:
        col = s.get("column_id") if isinstance(s, dict) else None
        if col:
            order.append((sort_keys.get(col, col), s.get("direction") == "desc"))
    if not order:
        order = list(default_sort or [])
    for key, desc in reversed(order):  # stable sorts, least significant first
        if desc:
            # keep None last when descending too
            present = [r for r in rows if r.get(key) is not None and r.get(key) != ""]
            missing = [r for r in rows if r.get(key) is None or r.get(key) == ""]
            present.sort(key=lambda r: _sort_key(r.get(key)), reverse=True)
            rows = present + missing
        else:
            rows.sort(key=lambda r: _sort_key(r.get(key)))
    total = len(rows)
    page_size = max(1, int(page_size))
    page_count = max(1, math.ceil(total / page_size))
    current = min(max(0, int(page_current or 0)), page_count - 1)
    start = current * page_size
    return Page(rows[start:start + page_size], page_count, total, current)


def visible(rows: list[dict], columns: list[str], extra: tuple[str, ...] = ("id",)) -> list[dict]:
    """Only the keys the table shows (drops the raw sort keys from the payload)."""
    keep = (*columns, *extra)
    return [{k: r.get(k) for k in keep if k in r} for r in rows]
