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


def _fresh(families: list[TextFamily]) -> str:
    return generate_latest(_Registry(families)).decode()


def _lag(rows: list[tuple[tuple[str, ...], object]]) -> list[TextFamily]:
    family = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", "Lag.", ("cluster", "group", "topic"))
    info = TextFamily("streamscope_kafka_consumergroup", "info", "Group state.", ("cluster", "group"))
    for values, value in rows:
        family.add(values, value)
        info.add(values[:2], {"state": "Stable" if value else "Empty"})
    return [family, info]


def _texts_reachable(root) -> list[str]:
    """Every string reachable from `root` through containers and attributes."""
    seen, found, stack = set(), [], [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj)
        elif isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
    return found


def test_renders_follow_the_rows_and_keep_no_series_text():
    """Between renders series are added, removed and relabelled, values change: each render equals
    generate_latest of the same rows, and only this render's series are written. No label text of
    a render is kept for the next one: kept, they were ~3 MB at 1,000 groups, held through the
    next cycle's peak (docs/performance.md, the thirty-third pass)."""
    writer = TextWriter()
    renders = [
        [(("prod", "a", "t"), 1), (("prod", "b", "t"), 2.5), (("prod", "c", "t"), 0)],
        [(("prod", "a", "t"), 7), (("prod", "c", "t"), 1e9), (("prod", "d", 't"x'), -3)],   # b gone, d new
        [(("prod", "c", "t"), 1e9), (("prod", "a", "t2"), 7), (("prod", "d", 't"x'), -3)],   # a's topic changed
        [(("stage", "c", "t"), 1e9)],                                                         # cluster changed
        [(("prod", "a", "t"), 1), (("prod", "b", "t"), 2.5), (("prod", "c", "t"), 0)],    # back to the first
    ]
    for rows in renders:
        families = _lag(rows)
        assert writer.render(families) == _fresh(families)
        assert not [text for text in _texts_reachable(writer) if '="' in text or "\n" in text]


def test_families_with_the_same_labels_share_one_text_per_series():
    """A group's gauges share its label text; series come and go in one family and not the other,
    and every render still equals generate_latest of the same rows."""
    writer = TextWriter()
    renders = [
        (["a", "b", "c"], ["a", "b", "c"]),
        (["a", "b", "c", "d"], ["a", "c"]),  # d new to the first family, b gone from the second
        (["b", "e"], ["a", "b", "c", "d", "e"]),  # the second finds d and e made for the first
        (["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e"]),
    ]
    for lag_groups, member_groups in renders:
        lag = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", "Lag.", ("cluster", "group"))
        members = TextFamily("streamscope_kafka_consumergroup_members", "gauge", "Members.", ("cluster", "group"))
        other = TextFamily("streamscope_kafka_consumergroup_x", "gauge", "Other order.", ("group", "cluster"))
        for i, g in enumerate(lag_groups):
            lag.add(("prod", g), i)
        for i, g in enumerate(member_groups):
            members.add(("prod", g), i + 0.5)
            other.add((g, "prod"), 1)
        families = [lag, members, other]
        assert writer.render(families) == _fresh(families)


def test_a_render_holds_one_familys_value_texts_at_a_time(monkeypatch):
    """Each family's value texts (a small string per series) are freed before the next family
    makes its own: a render of many families never holds them all at once. Held, they were ~2 MB
    of small strings at 1,000 groups, the parent's peak (docs/performance.md, the thirty-fourth
    pass). Counted in memory blocks, as each family's values are about to be made."""
    import sys

    from collectors import metrics_text

    rows, blocks = 2000, []
    make_values = metrics_text.go_floats

    def counting(values):
        blocks.append(sys.getallocatedblocks())
        return make_values(values)

    monkeypatch.setattr(metrics_text, "go_floats", counting)
    families = []
    for k in range(8):
        family = TextFamily(f"streamscope_kafka_consumergroup_x{k}", "gauge", "Doc.", ("cluster", "group"))
        for i in range(rows):
            family.add(("prod", f"group-{i}"), i * 1.5 + k)
        families.append(family)
    text = TextWriter().render(families)
    assert len(blocks) == 8
    # the label texts are made with the first family's values, and shared: count from the second
    assert blocks[-1] - blocks[1] < rows // 2, blocks
    monkeypatch.setattr(metrics_text, "go_floats", make_values)
    assert text == _fresh(families)


def test_values_to_escape_in_labels_out_of_order():
    """Label names not in sorted order and values the exposition escapes, in one family and in one
    sharing its labels."""
    families = []
    for name in ("streamscope_a", "streamscope_b"):
        family = TextFamily(name, "gauge", "Doc.", ("topic", "group", "cluster"))
        for i, value in enumerate(HOSTILE):
            family.add((f"t{i}", value, "prod"), i)
        families.append(family)
    assert TextWriter().render(families) == _fresh(families)


def test_same_family_name_with_other_labels_does_not_reuse_prefixes():
    writer = TextWriter()
    for labels in (("cluster", "group"), ("group", "cluster"), ("cluster", "group", "instance")):
        family = TextFamily("streamscope_kafka_consumergroup_members", "gauge", "Members.", labels)
        family.add(("x", "y", "z")[:len(labels)], 3)
        assert writer.render([family]) == _fresh([family])


EDGE_VALUES = [0, 1, -1, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-7, 5e-324, 999999, 1_000_000, 999999.9999999999, 1e6,
               123456789, 1.5e300, -1.5e300, 1e16, 1e22, 2 ** 53, 2 ** 53 + 1, -2 ** 53, -2 ** 53 - 1, 10 ** 30,
               -(10 ** 30), math.inf, -math.inf, math.nan, True, False, 1 / 3, 246.95990204811096, 1.7e9 + 0.25,
               float(2 ** 63)]


def test_go_float_is_float_to_go_string():
    import random
    import struct

    from prometheus_client.utils import floatToGoString

    from collectors.metrics_text import go_float

    rng = random.Random(14)
    values = list(EDGE_VALUES)
    values += [rng.uniform(-2e6, 2e6) for _ in range(20_000)]
    values += [rng.randint(-2 ** 60, 2 ** 60) >> rng.randrange(60) for _ in range(20_000)]
    # any bit pattern: every exponent, subnormals, inf and nan
    values += [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000)]
    for value in values:
        assert go_float(value) == floatToGoString(value), value


def test_metrics_cache_compresses_once_per_payload(monkeypatch):
    """gzip copies: one compression per payload however many gzip scrapes; compressed by the
    refresh after a gzip scrape, and not at all while nobody asks for gzip."""
    import gzip

    from monitor.web import metrics as web_metrics

    from monitor.web import gzip_segments

    compressed: list[bytes] = []  # the texts compressed, whole (`_gzip`) or as a segment
    real_gzip, real_segment = web_metrics._gzip, gzip_segments.segment
    monkeypatch.setattr(web_metrics, "_gzip", lambda payload: compressed.append(payload) or real_gzip(payload))
    monkeypatch.setattr(gzip_segments, "segment", lambda text: compressed.append(text) or real_segment(text))
    cycle = iter(range(1, 100))
    cache = web_metrics.MetricsCache(CollectorRegistry(auto_describe=False), text_sources=[lambda: b"cycle %d\n" % next(cycle)])

    cache.refresh()
    cache.refresh()
    assert compressed == []  # no gzip scraper: nothing compressed
    assert gzip.decompress(cache.latest_gzip()) == cache.latest() == b"cycle 2\n"
    assert gzip.decompress(cache.latest_gzip()) == b"cycle 2\n"
    assert compressed == [b"cycle 2\n"]  # once for two scrapes
    cache.refresh()
    assert compressed[-1] == b"cycle 3\n"  # by the refresh, before any scrape of it
    assert gzip.decompress(cache.latest_gzip()) == b"cycle 3\n"
    assert len(compressed) == 2
    cache.refresh()  # a gzip scrape came since the last refresh: compressed
    cache.refresh()  # none since: not compressed
    assert compressed[-1] == b"cycle 4\n" and len(compressed) == 3


def test_metrics_cache_keeps_only_the_forms_scrapers_asked_for():
    """With gzip scrapers alone, the plain bytes are dropped once compressed; a plain scrape then
    decompresses that payload once; after a refresh that both kinds asked for, both are kept."""
    import gzip

    from monitor.web import metrics as web_metrics

    cycle = iter(range(1, 100))
    cache = web_metrics.MetricsCache(CollectorRegistry(auto_describe=False), text_sources=[lambda: b"cycle %d\n" % next(cycle)])
    cache.refresh()
    assert gzip.decompress(cache.latest_gzip()) == b"cycle 1\n"  # compressed on demand: plain kept too
    assert cache._plain == b"cycle 1\n"
    cache.refresh()  # a gzip scrape came, no plain one: compressed, the plain bytes let go
    assert cache._plain is None and gzip.decompress(cache._gzip) == b"cycle 2\n"
    assert gzip.decompress(cache.latest_gzip()) == b"cycle 2\n"
    first = cache.latest()
    assert first == b"cycle 2\n" and cache.latest() is first  # decompressed once for this payload
    cache.latest_gzip()
    cache.refresh()  # both kinds asked since the last refresh: both kept
    assert cache._plain == b"cycle 3\n" and gzip.decompress(cache._gzip) == b"cycle 3\n"
    cache.refresh()  # nobody asked: plain only, nothing compressed
    assert cache._plain == b"cycle 4\n" and cache._gzip is None
    assert cache.latest() == b"cycle 4\n"


def test_go_floats_of_a_family_is_float_to_go_string_of_each():
    """A family's values are formatted in one map when all take the fast path: a nan or inf hidden
    among small floats, a bool among ints or one value past the range must not slip through."""
    from prometheus_client.utils import floatToGoString

    from collectors.metrics_text import go_floats

    families = [[], [1.0, 0.0, 2.5], [1.0, math.nan, 2.0], [math.nan], [0.5, math.inf], [-math.inf, 1.0],
                [1.0, -0.0, 999999.5], [3.0, 1e6], [-1e300, 5.0], [1, 2, 3], [1, True, 2], [False], [5, 1_000_000],
                [-(2 ** 53), 0], [-(2 ** 53) - 1, 0], [1, 2.0], [2 ** 64, 1], EDGE_VALUES]
    for values in families:
        assert list(go_floats(values)) == [floatToGoString(v) for v in values], values


def test_info_series_with_other_extra_labels_each_get_their_line():
    """Info series of one family with different extra label names (and so another label order),
    and a series whose extra labels change between renders: generate_latest's bytes."""
    writer = TextWriter()
    for extras in ([{"state": "Stable"}, {"assignor": "range", "state": "Stable"}, {}],
                   [{"state": "Empty"}, {"state": "Stable", "assignor": "sticky"}, {"a": 'q"uote'}]):
        info = TextFamily("streamscope_kafka_consumergroup", "info", "Group state.", ("cluster", "group"))
        for i, extra in enumerate(extras):
            info.add(("prod", f"g{i}"), extra)
        assert writer.render([info]) == _fresh([info])


def test_the_kafka_families_keep_no_pair_per_series():
    """A family keeps its series in two columns, label values and values: families with a row
    for every group keep one label tuple per group between them. A (labels, value) pair per
    series was ~1 MB of the render's peak at 1,000 groups, which set the parent's memory
    (docs/performance.md, the thirty-fifth pass). Counted in memory blocks per group: 22.8 with a
    pair per series (20 series a group here), 7.0 now (its label tuples, the status series' and
    the info dict)."""
    import sys

    from collectors.exporter import kafka_text_families
    from tests.snapshot_builders import cluster_state, group_lag

    groups = [group_lag("prod", f"group-{i:04d}", {(f"topic-{i:04d}", p): (5, 2.5) for p in range(3)})
              for i in range(1000)]
    state = cluster_state("prod", groups=groups)
    kafka_text_families([state], partition_metrics=False)  # whatever a first call makes once
    before = sys.getallocatedblocks()
    families = kafka_text_families([state], partition_metrics=False)
    assert (sys.getallocatedblocks() - before) / len(groups) < 12
    # and the text is generate_latest's for the same families
    assert TextWriter().render(families) == _fresh(families)
    lag = next(f for f in families if f.name == "streamscope_kafka_consumergroup_lag")
    assert lag.rows[:2] == [(("prod", "group-0000", "topic-0000"), 15), (("prod", "group-0001", "topic-0001"), 15)]
