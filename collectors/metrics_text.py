"""Prometheus text exposition written directly: the bytes `prometheus_client.generate_latest` would
write for the same families, at a fraction of the cost for large ones.

generate_latest builds a Sample per series, sorts each sample's labels and escapes every label
value on every scrape. Here a family is a list of (label values, value) rows whose label names are
fixed, so the label order is worked out once per family, and an escaped label value is reused
wherever the same value appears again (a group or topic name appears in dozens of series).
`TextFamily.to_metric()` gives the prometheus_client family for anything that needs one (and for
the test that holds the two outputs byte for byte equal).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_KINDS = ("gauge", "counter", "info", "histogram")


@dataclass
class TextFamily:
    """One metric family: `kind` gauge, counter (name without `_total`), info (name without
    `_info`; each row's value is a dict of extra labels, written with value 1) or histogram (each
    row's value is (buckets, sum): buckets as (upper bound, cumulative count) pairs, ascending,
    the last one +Inf)."""

    name: str
    kind: str
    doc: str
    labels: tuple[str, ...]
    rows: list[tuple[tuple[str, ...], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown family kind {self.kind!r}")

    def add(self, values: tuple[str, ...] | list[str], value) -> None:
        self.rows.append((tuple(values), value))

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


class TextWriter:
    """Renders families; keeps, between renders, escaped label values and each series' rendered
    `name{labels} ` prefix (a series' labels rarely change, its value does every cycle).

    The prefix cache is rebuilt from the rows of each render, so it holds only the series
    written last time: a removed series is forgotten, and nothing is written that is not in
    this render's rows. At most `cache_limit` prefixes are kept; past that rows are rendered
    uncached (same bytes)."""

    def __init__(self, cache_limit: int = 500_000) -> None:
        self._escaped: dict[str, str] = {}
        self._cache_limit = cache_limit
        self._prefixes: dict[tuple, dict] = {}  # (name, kind, labels) -> row key -> prefix

    @property
    def cached_series(self) -> int:
        """Series prefixes kept from the last render."""
        return sum(map(len, self._prefixes.values()))

    def _esc(self, value: str) -> str:
        out = self._escaped.get(value)
        if out is None:
            if len(self._escaped) >= self._cache_limit:
                self._escaped.clear()
            out = self._escaped[value] = _escape(value)
        return out

    def render(self, families: Iterable[TextFamily]) -> str:
        parts: list[str] = []
        previous, self._prefixes = self._prefixes, {}
        room = self._cache_limit
        for f in families:
            name = f.name + ("_total" if f.kind == "counter" else "_info" if f.kind == "info" else "")
            kind = f.kind if f.kind in ("counter", "histogram") else "gauge"
            doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            if f.kind == "histogram":
                self._histogram(f, parts.append)
                continue
            key = (f.name, f.kind, f.labels)  # what a prefix was built from, besides the values
            cached = previous.get(key, {})
            kept = {} if len(f.rows) <= room else None
            if f.kind == "info":
                self._info_rows(name, f, cached, kept, parts)
            else:
                self._value_rows(name, f, cached, kept, parts)
            if kept is not None:
                self._prefixes[key] = kept
                room -= len(kept)
        return "".join(parts)

    def _value_rows(self, name: str, f: TextFamily, cached: dict, kept: dict | None, parts: list[str]) -> None:
        """`prefix value` lines; a prefix is built only for a series new since the last render."""
        add = parts.append
        new_prefix = self._prefix_builder(name, f.labels)
        for values, value in f.rows:
            prefix = cached.get(values)
            if prefix is None:
                prefix = new_prefix(values)
            if kept is not None:
                kept[values] = prefix
            add(prefix)
            add(go_float(value))
            add("\n")

    def _prefix_builder(self, name: str, labels: tuple[str, ...]):
        """`values -> 'name{k="v",...} '`, labels in sorted order (as generate_latest writes)."""
        if not labels:
            return lambda values: f"{name} "
        esc = self._esc
        order = sorted(range(len(labels)), key=labels.__getitem__)
        keys = [f'{labels[i]}="' for i in order]
        head, tail = name + "{", '"} '
        return lambda values: head + '",'.join([k + esc(values[i]) for k, i in zip(keys, order)]) + tail

    def _info_rows(self, name: str, f: TextFamily, cached: dict, kept: dict | None, parts: list[str]) -> None:
        """Info series: the whole line is fixed by the labels (value 1), so it is what is cached."""
        esc = self._esc
        for values, extra in f.rows:
            row_key = (values, tuple(extra.items()))
            line = cached.get(row_key)
            if line is None:
                pairs = sorted([*zip(f.labels, values), *extra.items()])
                body = ",".join(f'{k}="{esc(v)}"' for k, v in pairs)
                line = f"{name}{{{body}}} 1.0\n"
            if kept is not None:
                kept[row_key] = line
            parts.append(line)

    def _histogram(self, f: TextFamily, add) -> None:
        """`_bucket` series with `le` among the sorted labels, then `_count` and `_sum` (few series:
        not cached)."""
        esc = self._esc
        for values, (buckets, total) in f.rows:
            pairs = sorted(zip(f.labels, values))
            plain = ",".join(f'{k}="{esc(v)}"' for k, v in pairs)
            for le, n in buckets:
                body = ",".join(f'{k}="{esc(v)}"' for k, v in sorted([*pairs, ("le", floatToGoString(le))]))
                add(f"{f.name}_bucket{{{body}}} {go_float(n)}\n")
            count = buckets[-1][1] if buckets else 0
            add(f"{f.name}_count{{{plain}}} {go_float(count)}\n" if plain else f"{f.name}_count {go_float(count)}\n")
            add(f"{f.name}_sum{{{plain}}} {go_float(total)}\n" if plain else f"{f.name}_sum {go_float(total)}\n")
