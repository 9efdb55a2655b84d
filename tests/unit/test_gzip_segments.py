"""The gzip copy of /metrics made family by family (monitor/web/gzip_segments.py).

Rule 1 - the copy decompresses, by any gzip reader, to exactly the text written at once
         (`TextWriter.render`), whatever changed since the copy before.
Rule 2 - a family whose series and values are the same as in the copy before is not written or
         compressed again; any change to them is (the values compared exactly, not by Python's
         hash, under which -1 and -2, 1 and 2**61, are equal).
Rule 3 - a family missing from a copy is forgotten: it is written again when it comes back.
Rule 4 - `MetricsCache.refresh` after a gzip scrape makes the copy this way, and a plain scrape of
         it decompresses to the text.
"""
from __future__ import annotations

import gzip
import math
import random
import zlib

import pytest

from collectors.metrics_text import TextFamily, TextWriter
from monitor.web import gzip_segments

pytestmark = pytest.mark.skipif(not gzip_segments.available, reason="needs ISA-L's crc32_combine")


def _families(rng: random.Random, values: dict[str, list]) -> list[TextFamily]:
    """Gauges sharing label names (as a group's do), an info family and an unlabelled one."""
    groups = [("c1", f"group-{i}") for i in range(len(values["lag"]))]
    lag = TextFamily("t_lag", "gauge", "Lag.", ("cluster", "group"), zip(groups, values["lag"]))
    members = TextFamily("t_members", "gauge", "Members.", ("cluster", "group"), zip(groups, values["members"]))
    info = TextFamily("t_group", "info", "State.", ("cluster", "group"), zip(groups, values["state"]))
    up = TextFamily("t_up", "gauge", "Up.", (), [((), values["up"])])
    return [lag, members, info, up]


def _values(rng: random.Random, n: int) -> dict[str, list]:
    return {"lag": [rng.choice([0, 5, 12.5, rng.random() * 1e5, -1, math.inf]) for _ in range(n)],
            "members": [rng.randint(0, 3) for _ in range(n)],
            "state": [{"state": rng.choice(["Stable", "Empty"])} for _ in range(n)],
            "up": rng.choice([0.0, 1.0])}


def _text(parts) -> bytes:
    return b"".join(p if isinstance(p, bytes) else TextWriter().render([p]).encode() for p in parts)


def test_rule_1_the_copy_is_the_text_whatever_changed():
    rng = random.Random(36)
    segments = gzip_segments.GzipSegments()
    values = _values(rng, 300)
    for cycle in range(40):
        for name in rng.sample(sorted(values), rng.randint(0, 2)):  # some families change
            values[name] = _values(rng, 300)[name]
        parts = [b"# from the registry\nstreamscope_build_info 1.0\n", *_families(rng, values),
                 b"" if cycle % 3 else b"a_line 2.0\n"]
        copy = segments.gzip(parts)
        expected = b"".join([parts[0], TextWriter().render(parts[1:-1]).encode(), parts[-1]])
        assert gzip.decompress(copy) == expected
        assert zlib.decompress(copy, wbits=31) == expected  # one member: a reader of one stream
        assert copy[:4] == b"\x1f\x8b\x08\x00"


def test_rule_2_unchanged_families_are_reused_and_any_change_is_written():
    rng = random.Random(2)
    segments = gzip_segments.GzipSegments()
    values = _values(rng, 50)
    segments.gzip(_families(rng, values))
    assert (segments.families_reused, segments.families_written) == (0, 4)
    segments.gzip(_families(rng, {k: list(v) if isinstance(v, list) else v for k, v in values.items()}))
    assert (segments.families_reused, segments.families_written) == (4, 0)  # equal, not the same objects
    # changes Python's hash does not see, and ones it does
    for before, after in ((-1, -2), (1, 2 ** 61), (0.0, -0.0), (1, 1.5), (math.inf, -math.inf), (5, None)):
        values["lag"][7] = before
        segments.gzip(_families(rng, values))
        values["lag"][7] = after
        if after is None:  # a series gone
            del values["lag"][7]
            values["lag"].append(0)
        copy = segments.gzip(_families(rng, values))
        assert segments.families_written == 1, (before, after)
        assert gzip.decompress(copy) == TextWriter().render(_families(rng, values)).encode()
    values["state"][3] = {"state": "PreparingRebalance"}
    segments.gzip(_families(rng, values))
    assert segments.families_written == 1


def test_rule_3_a_family_missing_from_a_copy_is_written_when_it_comes_back():
    rng = random.Random(3)
    segments = gzip_segments.GzipSegments()
    values = _values(rng, 20)
    lag, members, info, up = _families(rng, values)
    segments.gzip([lag, members, info, up])
    segments.gzip([lag, info, up])
    copy = segments.gzip([lag, members, info, up])
    assert (segments.families_reused, segments.families_written) == (3, 1)
    assert gzip.decompress(copy) == TextWriter().render([lag, members, info, up]).encode()


def test_rule_4_metrics_cache_refreshes_the_copy_family_by_family():
    from prometheus_client import CollectorRegistry

    from monitor.web import metrics as web_metrics

    rng = random.Random(4)
    values = _values(rng, 100)
    cache = web_metrics.MetricsCache(CollectorRegistry(auto_describe=False),
                                     text_sources=[lambda: _families(rng, values)])
    plain = cache.refresh()  # nobody asked for gzip yet: written at once
    assert plain == TextWriter().render(_families(rng, values)).encode()
    cache.latest_gzip()
    assert cache.refresh() is None  # a gzip scraper only: the copy alone, family by family
    assert cache._segments.families_written == 4
    values["up"] = 1.0 - values["up"]
    assert cache.refresh() == TextWriter().render(_families(rng, values)).encode()  # nobody asked since: plain
    cache.latest_gzip()
    cache.refresh()
    assert (cache._segments.families_reused, cache._segments.families_written) == (3, 1)
    expected = TextWriter().render(_families(rng, values)).encode()
    assert gzip.decompress(cache.latest_gzip()) == expected and cache.latest() == expected
