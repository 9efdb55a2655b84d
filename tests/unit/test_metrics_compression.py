"""/metrics' gzip copy (monitor/web/metrics.py `_gzip`) is made by ISA-L where it is installed,
as it is by the project's dependencies, and by the standard library's zlib where it is not: either
way a gzip stream any client decompresses to the payload, and a plain scrape of a payload kept
only compressed gets it back byte for byte."""
from __future__ import annotations

import gzip
import random

from prometheus_client import CollectorRegistry

from monitor.web import metrics as web_metrics
from tests.helpers import fresh_interpreter_lines


def _payload(lines: int = 20_000) -> bytes:
    rng = random.Random(30)
    return b"".join(b'streamscope_kafka_group_lag{cluster="c",group="g%d"} %d.0\n' % (i, rng.randrange(10**6))
                    for i in range(lines))


def test_the_gzip_copy_is_isal_deflate_and_decompresses_to_the_payload():
    payload = _payload()
    zipped = web_metrics._gzip(payload)
    assert web_metrics._deflate.__name__ == "isal.isal_zlib"
    assert zipped[:4] == b"\x1f\x8b\x08\x00" and zipped[4:8] == b"\x00\x00\x00\x00"  # gzip, no name, time 0
    assert gzip.decompress(zipped) == payload
    assert web_metrics._gzip(payload) == zipped  # the same bytes for the same payload
    assert len(zipped) < len(payload) / 5


def test_a_plain_scrape_of_a_payload_kept_compressed_is_the_payload():
    payload = _payload(5_000)
    cache = web_metrics.MetricsCache(CollectorRegistry(auto_describe=False), text_sources=[lambda: payload])
    cache.refresh()
    cache.latest_gzip()  # a gzip scraper: the next refresh makes the compressed copy alone
    assert cache.refresh() is None
    assert cache._plain is None and cache._gzip is not None
    plain = cache.latest()
    assert plain == gzip.decompress(cache._gzip) and payload in plain


def test_without_isal_the_standard_library_compresses_the_same_stream():
    probe = ("import sys, gzip; sys.modules['isal'] = None\n"
             "from monitor.web import metrics as m\n"
             "payload = b'x 1.0\\n' * 10000\n"
             "z = m._gzip(payload)\n"
             "print(m._deflate.__name__, gzip.decompress(z) == payload, z[:4].hex())\n")
    assert fresh_interpreter_lines(probe) == ["zlib True 1f8b0800"]
