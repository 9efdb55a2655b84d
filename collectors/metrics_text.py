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


class TextWriter:
    """Renders families; keeps escaped label values between renders (names rarely change)."""

    def __init__(self, cache_limit: int = 200_000) -> None:
        self._escaped: dict[str, str] = {}
        self._cache_limit = cache_limit

    def _esc(self, value: str) -> str:
        out = self._escaped.get(value)
        if out is None:
            if len(self._escaped) >= self._cache_limit:
                self._escaped.clear()
            out = self._escaped[value] = _escape(value)
        return out

    def render(self, families: Iterable[TextFamily]) -> str:
        parts: list[str] = []
        add = parts.append
        esc = self._esc
        for f in families:
            name = f.name + ("_total" if f.kind == "counter" else "_info" if f.kind == "info" else "")
            kind = f.kind if f.kind in ("counter", "histogram") else "gauge"
            doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
            add(f"# HELP {name} {doc}\n")
            add(f"# TYPE {name} {kind}\n")
            if f.kind == "info":
                for values, extra in f.rows:
                    pairs = sorted([*zip(f.labels, values), *extra.items()])
                    body = ",".join(f'{k}="{esc(v)}"' for k, v in pairs)
                    add(f"{name}{{{body}}} 1.0\n")
                continue
            if f.kind == "histogram":
                self._histogram(f, add)
                continue
            order = sorted(range(len(f.labels)), key=f.labels.__getitem__)
            keys = [f"{f.labels[i]}=\"" for i in order]
            for values, value in f.rows:
                if keys:
                    body = "\",".join(k + esc(values[i]) for k, i in zip(keys, order))
                    add(f"{name}{{{body}\"}} {floatToGoString(value)}\n")
                else:
                    add(f"{name} {floatToGoString(value)}\n")
        return "".join(parts)

    def _histogram(self, f: TextFamily, add) -> None:
        """`_bucket` series with `le` among the sorted labels, then `_count` and `_sum`."""
        esc = self._esc
        for values, (buckets, total) in f.rows:
            pairs = sorted(zip(f.labels, values))
            plain = ",".join(f'{k}="{esc(v)}"' for k, v in pairs)
            for le, n in buckets:
                body = ",".join(f'{k}="{esc(v)}"' for k, v in sorted([*pairs, ("le", floatToGoString(le))]))
                add(f"{f.name}_bucket{{{body}}} {floatToGoString(n)}\n")
            count = buckets[-1][1] if buckets else 0
            add(f"{f.name}_count{{{plain}}} {floatToGoString(count)}\n" if plain else f"{f.name}_count {floatToGoString(count)}\n")
            add(f"{f.name}_sum{{{plain}}} {floatToGoString(total)}\n" if plain else f"{f.name}_sum {floatToGoString(total)}\n")
