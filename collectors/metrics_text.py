"""Prometheus text exposition written directly: the bytes `prometheus_client.generate_latest` would
write for the same families, at a fraction of the cost for large ones.

generate_latest builds a Sample per series, sorts each sample's labels and escapes every label
value on every scrape. Here a family is a list of (label values, value) rows whose label names are
fixed, so the label order is worked out once per family, and an escaped label value is reused
wherever the same value appears again (a group or topic name appears in dozens of series).
Between renders (one per collection cycle) each series' `labels}` text is kept, one string for
the families that share a label set (a group's dozen gauges), so a cycle with the same series
formats only the values (`TextWriter`, `go_floats`).
`TextFamily.to_metric()` gives the prometheus_client family for anything that needs one (and for
the test that holds the two outputs byte for byte equal).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter

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


@dataclass
class _Rendered:
    """A family's series as last rendered: each row's key (its label values; for info series with
    the extra labels too) and the text that depends on the key alone, in row order: an info
    series' whole line, another series' label text (`k="v",...} `, shared by the families with
    the same label names)."""

    keys: list
    texts: list[str]


_first, _second = itemgetter(0), itemgetter(1)


def _info_keys(rows: list) -> list[tuple]:
    """An info family's keys: each series' label values and its extra labels' items, one tuple of
    items for the series that have the same (most groups share a state, most topics their
    settings): kept a cycle, a tuple of pairs each was ~0.6 MB at 1,000 groups and topics."""
    shared: dict[tuple, tuple] = {}
    keys = []
    for values, extra in rows:
        items = tuple(extra.items())
        keys.append((values, shared.setdefault(items, items)))
    return keys


class _SharedTexts:
    """Per render: for each set of label names, the label texts by values that the last render and
    this one keep, so that families with the same labels share one string per series. Made only
    for the label names of a family whose series changed since the last render."""

    def __init__(self, previous: dict[tuple, _Rendered], current: dict[tuple, _Rendered]) -> None:
        self._previous, self._current = previous, current
        self._by_labels: dict[tuple[str, ...], dict] = {}

    def made(self, labels: tuple[str, ...]) -> dict:
        known = self._by_labels.get(labels)
        if known is None:
            known = self._by_labels[labels] = {}
            for renders in (self._previous, self._current):
                for (_name, kind, names), rendered in renders.items():
                    if names == labels and kind != "info":
                        known.update(zip(rendered.keys, rendered.texts))
        return known


class TextWriter:
    """Renders families; keeps, between renders, escaped label values and each series' rendered
    label text (a series' labels rarely change, its value does every cycle). The families with the
    same label names (a group's gauges: lag, lag in seconds, members...) share one text per series.

    The texts kept are those of the last render's rows only: a removed series is forgotten,
    and nothing is written that is not in this render's rows. When a family has the same series
    in the same order as last time (the usual cycle) its texts are reused without a lookup.
    At most `cache_limit` series are kept; past that, families are rendered uncached (same
    bytes)."""

    def __init__(self, cache_limit: int = 500_000) -> None:
        self._escaped: dict[str, str] = {}
        self._cache_limit = cache_limit
        self._rendered: dict[tuple, _Rendered] = {}  # by (name, kind, label names)

    @property
    def cached_series(self) -> int:
        """Series texts kept from the last render."""
        return sum(len(r.keys) for r in self._rendered.values())

    @property
    def cached_texts(self) -> int:
        """Distinct strings behind `cached_series` (families with the same labels share them)."""
        return len({id(text) for r in self._rendered.values() for text in r.texts})

    def _esc(self, value: str) -> str:
        out = self._escaped.get(value)
        if out is None:
            if len(self._escaped) >= self._cache_limit:
                self._escaped.clear()
            out = self._escaped[value] = _escape(value)
        return out

    def render(self, families: Iterable[TextFamily]) -> str:
        # Lines are written newline first ("\n" + line): a series' cached text and its value then
        # go into one join as they are, without a string built per line. A family's header leaves
        # its last newline to its first line, and the family ends with one.
        parts: list[str] = []
        previous, self._rendered = self._rendered, {}
        shared = _SharedTexts(previous, self._rendered)
        room = self._cache_limit
        for f in families:
            name = f.name + ("_total" if f.kind == "counter" else "_info" if f.kind == "info" else "")
            kind = f.kind if f.kind in ("counter", "histogram") else "gauge"
            doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}")
            n = len(f.rows)
            if f.kind == "histogram":
                self._histogram(f, parts.append)
                parts.append("\n")
                continue
            if f.kind != "info" and not f.labels:
                lines: list = [None] * (2 * n)
                lines[::2] = [f"\n{name} "] * n
                lines[1::2] = go_floats(list(map(_second, f.rows)))
                parts += lines
                parts.append("\n")
                continue
            key = (f.name, f.kind, f.labels)  # what a text was built from, besides the values
            if f.kind == "info":
                rendered = self._series(previous.get(key), _info_keys(f.rows), self._info_line_builder(name, f.labels))
                parts += rendered.texts  # whole lines: an info series' value is always 1
            else:
                rendered = self._series(previous.get(key), list(map(_first, f.rows)),
                                        self._label_text_builder(f.labels), partial(shared.made, f.labels))
                lines = [None] * (3 * n)
                lines[::3] = [f"\n{name}{{"] * n
                lines[1::3] = rendered.texts
                lines[2::3] = go_floats(list(map(_second, f.rows)))
                parts += lines
            parts.append("\n")
            if len(rendered.keys) <= room:
                self._rendered[key] = rendered
                room -= len(rendered.keys)
        return "".join(parts)

    @staticmethod
    def _series(previous: _Rendered | None, keys: list, build, known_texts=None) -> _Rendered:
        """The texts for `keys`: the previous ones when the series are unchanged, else looked up in
        `known_texts()` (key -> text kept or made for a family with the same labels; without it,
        the previous render's of this family), built (`build(key)`) only for a series new to both."""
        if previous is not None and previous.keys == keys:
            return previous
        if known_texts is not None:
            known = known_texts()
        else:
            known = dict(zip(previous.keys, previous.texts)) if previous is not None else {}
        texts = []
        for k in keys:
            text = known.get(k)
            if text is None:
                text = known[k] = build(k)
            texts.append(text)
        return _Rendered(keys, texts)

    def _label_text_builder(self, labels: tuple[str, ...]):
        """`values -> 'k="v",...} '`, labels in sorted order (as generate_latest writes)."""
        esc = self._esc
        order = sorted(range(len(labels)), key=labels.__getitem__)
        keys = [f'{labels[i]}="' for i in order]
        return lambda values: '",'.join([k + esc(values[i]) for k, i in zip(keys, order)]) + '"} '

    def _info_line_builder(self, name: str, labels: tuple[str, ...]):
        """`(values, extra label items) -> '\\nname{k="v",...} 1.0'`, all labels sorted."""
        esc = self._esc

        def line(key) -> str:
            values, extra = key
            body = ",".join(f'{k}="{esc(v)}"' for k, v in sorted([*zip(labels, values), *extra]))
            return f"\n{name}{{{body}}} 1.0"
        return line

    def _histogram(self, f: TextFamily, add) -> None:
        """`_bucket` series with `le` among the sorted labels, then `_count` and `_sum` (few series:
        not cached)."""
        esc = self._esc
        for values, (buckets, total) in f.rows:
            pairs = sorted(zip(f.labels, values))
            plain = ",".join(f'{k}="{esc(v)}"' for k, v in pairs)
            for le, n in buckets:
                body = ",".join(f'{k}="{esc(v)}"' for k, v in sorted([*pairs, ("le", floatToGoString(le))]))
                add(f"\n{f.name}_bucket{{{body}}} {go_float(n)}")
            count = buckets[-1][1] if buckets else 0
            add(f"\n{f.name}_count{{{plain}}} {go_float(count)}" if plain else f"\n{f.name}_count {go_float(count)}")
            add(f"\n{f.name}_sum{{{plain}}} {go_float(total)}" if plain else f"\n{f.name}_sum {go_float(total)}")
