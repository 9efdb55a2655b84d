"""Prometheus text exposition written directly: the bytes `prometheus_client.generate_latest` would
write for the same families, at a fraction of the cost for large ones.

generate_latest builds a Sample per series, sorts each sample's labels and escapes every label
value on every scrape. Here a family is a list of (label values, value) rows whose label names are
fixed, so the label order is worked out once per family, label values are escaped only in a
family that has one to escape, and each series' `labels} ` text is made once per render for the
families that share its label names (a group's dozen gauges). Nothing is kept between renders
(`TextWriter`, `go_floats`).
`TextFamily.to_metric()` gives the prometheus_client family for anything that needs one (and for
the test that holds the two outputs byte for byte equal).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import chain
from operator import itemgetter

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_KINDS = ("gauge", "counter", "info", "histogram")


class TextFamily:
    """One metric family: `kind` gauge, counter (name without `_total`), info (name without
    `_info`; each row's value is a dict of extra labels, written with value 1) or histogram (each
    row's value is (buckets, sum): buckets as (upper bound, cumulative count) pairs, ascending,
    the last one +Inf).

    Its rows are kept in two columns, each series' label values (`keys`, a tuple each) and its
    value (`values`): a (labels, value) pair per series was ~1 MB of a render's peak at 1,000
    groups (docs/performance.md, the thirty-fifth pass). `rows` gives them as pairs."""

    __slots__ = ("name", "kind", "doc", "labels", "keys", "values")

    def __init__(self, name: str, kind: str, doc: str, labels: tuple[str, ...],
                 rows: Iterable[tuple[tuple[str, ...], object]] = ()) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown family kind {kind!r}")
        self.name, self.kind, self.doc, self.labels = name, kind, doc, labels
        self.keys: list[tuple[str, ...]] = []
        self.values: list = []
        for values, value in rows:
            self.add(values, value)

    @property
    def rows(self) -> list[tuple[tuple[str, ...], object]]:
        return list(zip(self.keys, self.values))

    def add(self, values: tuple[str, ...] | list[str], value) -> None:
        self.keys.append(tuple(values))
        self.values.append(value)

    def __eq__(self, other) -> bool:
        if not isinstance(other, TextFamily):
            return NotImplemented
        return ((self.name, self.kind, self.doc, self.labels, self.keys, self.values)
                == (other.name, other.kind, other.doc, other.labels, other.keys, other.values))

    __hash__ = None  # mutable, as the dataclass it was

    def __repr__(self) -> str:
        return f"TextFamily({self.name!r}, {self.kind!r}, {self.doc!r}, {self.labels!r}, {self.rows!r})"

    def to_metric(self) -> Metric:
        labels = list(self.labels)
        if self.kind == "gauge":
            metric = GaugeMetricFamily(self.name, self.doc, labels=labels)
        elif self.kind == "counter":
            metric = CounterMetricFamily(self.name, self.doc, labels=labels)
        elif self.kind == "histogram":
            metric = HistogramMetricFamily(self.name, self.doc, labels=labels)
            for values, (buckets, total) in self.rows:
                metric.add_metric(list(values), [(floatToGoString(le), n) for le, n in buckets], total)
            return metric
        else:
            metric = InfoMetricFamily(self.name, self.doc, labels=labels)
        for values, value in self.rows:
            metric.add_metric(list(values), value)
        return metric


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


_float_repr = float.__repr__
_EXACT_INTS = 2 ** 53  # ints up to this size convert to float exactly


def go_float(value) -> str:
    """`floatToGoString(value)`, without its conversions for the values /metrics is made of.

    floatToGoString returns `repr(float(d))` for every finite float below 1e6 (it rewrites only
    positive ones of 7+ integer digits, Go style), and an int that converts exactly has the repr
    `"<int>.0"`. Anything else (bool, numpy, inf, nan, large values) takes floatToGoString itself.
    """
    kind = type(value)
    if kind is float:
        if -math.inf < value < 1e6:
            return _float_repr(value)
    elif kind is int and -_EXACT_INTS <= value < 1_000_000:
        return f"{value}.0"
    return floatToGoString(value)


def go_floats(values: list) -> Iterator[str]:
    """`go_float` of each value; in one C-level map when every value takes go_float's fast path.

    All floats: a finite sum means no inf or nan among them (either makes the sum inf or nan),
    and then `max` is the largest value. All ints (bools are not): bounded by `min` and `max`."""
    if values:
        kinds = set(map(type, values))
        if kinds == {float} and math.isfinite(sum(values)) and max(values) < 1e6:
            return map(_float_repr, values)
        if kinds == {int} and min(values) >= -_EXACT_INTS and max(values) < 1_000_000:
            return map("{}.0".format, values)
    return map(go_float, values)


class TextWriter:
    """Renders families. Within a render, families with the same label names (a group's gauges:
    lag, lag in seconds, members...) share one label text per series, made once.

    Nothing is kept from one render to the next. Kept, the label texts were ~3 MB of small strings
    and tuples at 1,000 groups, held through the next cycle's peak, which sets the parent's memory
    (~25 MB of RSS at 10,000 groups); made again, they cost ~8 ms a render at 1,000 groups and
    ~55 ms at 10,000 (docs/performance.md, the thirty-third pass)."""

    def render(self, families: Iterable[TextFamily]) -> str:
        # Each family is joined on its own (`family_text`): its value texts, one small string
        # per series, are freed before the next family makes its own. Joined once for all
        # families, they were all alive together, ~2 MB of small strings at 1,000 groups: the
        # parent's peak (docs/performance.md, the thirty-fourth pass).
        texts_by_labels: dict[tuple[str, ...], dict] = {}  # this render's label texts, by labels
        return "".join([family_text(f, texts_by_labels) for f in families])


def family_text(f: TextFamily, texts_by_labels: dict[tuple[str, ...], dict]) -> str:
    """One family's exposition text. Label texts made here are added to `texts_by_labels` for the
    render's next families with the same label names (a group's dozen gauges)."""
    # Lines are written newline first ("\n" + line): a series' label text and its value then go
    # into one join as they are, without a string built per line. The header leaves its last
    # newline to the first line, and the family ends with one.
    name = f.name + ("_total" if f.kind == "counter" else "_info" if f.kind == "info" else "")
    kind = f.kind if f.kind in ("counter", "histogram") else "gauge"
    doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
    parts = [f"# HELP {name} {doc}\n# TYPE {name} {kind}"]
    n = len(f.values)
    if f.kind == "histogram":
        _histogram(f, parts.append)
    elif f.kind == "info":
        parts += _info_lines(name, f.labels, f.rows)  # value always 1
    elif not f.labels:
        lines: list = [None] * (2 * n)
        lines[::2] = [f"\n{name} "] * n
        lines[1::2] = go_floats(f.values)
        parts += lines
    else:
        known = texts_by_labels.get(f.labels)
        if known is None:
            known = texts_by_labels[f.labels] = {}
        lines = [None] * (3 * n)
        lines[::3] = [f"\n{name}{{"] * n
        lines[1::3] = _label_texts(f.keys, known, f.labels)
        lines[2::3] = go_floats(f.values)
        parts += lines
    parts.append("\n")
    return "".join(parts)


def _escaped(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """`rows` of label values, escaped where a value has a character the exposition escapes (the
    usual names have none: then `rows` itself, checked in one pass)."""
    text = "".join(chain.from_iterable(rows))
    if "\\" not in text and "\n" not in text and '"' not in text:
        return rows
    escaped = {value: _escape(value) for value in set(chain.from_iterable(rows))}
    return [tuple(map(escaped.__getitem__, row)) for row in rows]


def _in_order(order: list[int]):
    """A function taking a row of values to those values in `order`, as a tuple; None when
    `order` is ascending already (the row itself will do)."""
    return None if order == sorted(order) else itemgetter(*order)  # 2+ indices: gives a tuple


def _label_texts(keys: list, known: dict, labels: tuple[str, ...]) -> list[str]:
    """Each key's label text `k="v",...} `, labels in sorted order (as generate_latest writes):
    taken from `known` (made for a family with the same labels), else made and added to it."""
    texts = list(map(known.get, keys))
    if None not in texts:
        return texts
    missing = list(dict.fromkeys(key for key, text in zip(keys, texts) if text is None))  # once each
    order = sorted(range(len(labels)), key=labels.__getitem__)
    fill = (",".join(labels[i] + '="{}"' for i in order) + "}} ").format  # a format: } doubled
    in_order = _in_order(order)
    values = _escaped(missing if in_order is None else list(map(in_order, missing)))
    known.update(zip(missing, [fill(*v) for v in values]))
    return list(map(known.__getitem__, keys))


def _info_lines(name: str, labels: tuple[str, ...], rows: list) -> list[str]:
    """`\\nname{k="v",...} 1.0` per (values, extra labels) row, all labels sorted; the layout made
    once per set of extra label names."""
    layouts: dict[tuple[str, ...], tuple] = {}
    ordered = []
    for values, extra in rows:
        names = tuple(extra)
        layout = layouts.get(names)
        if layout is None:
            every = labels + names
            order = sorted(range(len(every)), key=every.__getitem__)
            layout = layouts[names] = (
                _in_order(order),
                ("\n" + name + "{{" + ",".join(every[i] + '="{}"' for i in order) + "}} 1.0").format)
        in_order, fill = layout
        every_value = (*values, *extra.values())
        ordered.append((fill, every_value if in_order is None else in_order(every_value)))
    escaped = _escaped([values for _fill, values in ordered])
    return [fill(*values) for (fill, _values), values in zip(ordered, escaped)]


def _histogram(f: TextFamily, add) -> None:
    """`_bucket` series with `le` among the sorted labels, then `_count` and `_sum` (few series)."""
    for values, (buckets, total) in f.rows:
        pairs = sorted(zip(f.labels, values))
        plain = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
        for le, n in buckets:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted([*pairs, ("le", floatToGoString(le))]))
            add(f"\n{f.name}_bucket{{{body}}} {go_float(n)}")
        count = buckets[-1][1] if buckets else 0
        add(f"\n{f.name}_count{{{plain}}} {go_float(count)}" if plain else f"\n{f.name}_count {go_float(count)}")
        add(f"\n{f.name}_sum{{{plain}}} {go_float(total)}" if plain else f"\n{f.name}_sum {go_float(total)}")
