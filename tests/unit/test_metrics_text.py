"""collectors.metrics_text writes what prometheus_client's generate_latest writes, byte for byte."""
from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest

from collectors.metrics_text import TextFamily, TextWriter

HOSTILE = ['plain', 'quote"d', "new\nline", "back\\slash", "ünï cødé", "", "a=b,c", "tab\there", "{braces}"]


def _families() -> list[TextFamily]:
    lag = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", 'Doc with "quotes", a \\ and\na newline.',
                     ("cluster", "group", "topic"))
    for i, g in enumerate(HOSTILE):
        lag.add(("prod", g, f"t{i}"), float(i * 1000))
    lag.add(("prod", "big", "t"), 1.5e300)
    lag.add(("prod", "inf", "t"), math.inf)
    lag.add(("prod", "neg", "t"), -0.25)
    lag.add(("prod", "nan", "t"), math.nan)
    # label names not in sorted order: the exposition sorts them
    status = TextFamily("streamscope_kafka_consumergroup_status", "gauge", "Status.", ("cluster", "group", "status"))
    status.add(("prod", "g", "OK"), 1)
    counter = TextFamily("streamscope_collector_cycles", "counter", "Cycles.", ("collector", "kind"))
    counter.add(("kafka:prod", "kafka"), 12)
    info = TextFamily("streamscope_kafka_consumergroup", "info", "Group state.", ("cluster", "group"))
    info.add(("prod", 'g"1'), {"state": "Stable"})
    empty = TextFamily("streamscope_kafka_brokers", "gauge", "Brokers.", ("cluster",))
    bare = TextFamily("streamscope_history_up", "gauge", "History writes work.", ())
    bare.add((), 1)
    # histogram: `le` sorts between the other labels ("cluster" < "le" < "zone")
    histogram = TextFamily("streamscope_kafka_probe_roundtrip_seconds", "histogram", "Round trips.", ("zone", "cluster"))
    histogram.add(("z", 'pro"d'), (((0.005, 2), (1.0, 3), (math.inf, 4)), 0.5))
    histogram.add(("", "empty"), (((0.005, 0), (math.inf, 0)), 0.0))
    bare_histogram = TextFamily("streamscope_bare_seconds", "histogram", "No labels.", ())
    bare_histogram.add((), (((2.5, 1), (math.inf, 1)), 1.25))
    return [lag, status, counter, info, empty, bare, histogram, bare_histogram]


class _Registry:
    def __init__(self, families):
        self._families = families

    def collect(self):
        return [f.to_metric() for f in self._families]


def test_same_bytes_as_generate_latest():
    families = _families()
    expected = generate_latest(_Registry(families)).decode()
    writer = TextWriter()
    assert writer.render(families) == expected
    assert writer.render(families) == expected  # from the escape cache too


def test_registry_round_trip_still_works():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Registry(_families()))
    assert b'group="new\\nline"' in generate_latest(registry)
