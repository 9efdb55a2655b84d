"""The gzip copy of /metrics made one family at a time, a family whose series and values did not
change since the last refresh reusing what it was compressed to then.

Most of /metrics is the same from one cycle to the next: a group's members, state and status, a
topic's settings and partition health, and on a quiet cluster its lags too (at 1,000 groups, 48 of
the 51 Kafka families and 32,000 of their 34,000 series in the benchmark's cycles). At 1,000
groups the Kafka families written and compressed at once take ~41 ms of CPU; family by family,
~2.5 ms when none changed, ~9 ms when every lag, rate and offset family did, ~25 ms when all
did (docs/performance.md, the thirty-sixth pass).

How: each family is compressed on its own as raw deflate ending in a full flush, so it refers to
nothing before it and its bytes can follow any other family's: one deflate stream, closed by an
empty final block, in one gzip member (header, then the CRC-32 and length of the whole text, the
CRC combined from each family's). Any gzip reader reads it as it reads a stream compressed at
once (Python's gzip and zlib and a real Prometheus in the tests; curl and gunzip by hand). At 1,000 groups it is 132 KiB where
the payload compressed at once was 150 KiB.

A family is the same when its name, kind, help, label names, series (their label values) and
values are: the label values are compared by the hash of their tuples (str hashes are keyed
SipHash, so unequal series collide only by chance, ~2^-64), the values by a 128-bit BLAKE2 digest of
their pickle, which differs where Python's hash of numbers does not (-1 and -2, x and x + 2^61 - 1,
0.0 and -0.0 hash alike; their pickles differ).
"""
from __future__ import annotations

import hashlib
import pickle
import struct
from collections.abc import Iterable
from typing import NamedTuple

from collectors.metrics_text import TextFamily, family_text

try:  # ISA-L: compression ~6x faster than zlib's at level 1, and the CRC combination
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - a platform without its wheel: no segments (`available`)
    _deflate = None

available = _deflate is not None and hasattr(_deflate, "crc32_combine")

LEVEL = 1  # /metrics' gzip level (monitor.web.metrics.GZIP_LEVEL is this one)
# gzip header: deflate, no flags, modification time 0, no extra flags, OS unknown (RFC 1952)
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL = b"\x03\x00"  # an empty final block (fixed Huffman): what a compressor writes on finish


class Segment(NamedTuple):
    """A text compressed as raw deflate that ends in a full flush; its CRC-32 and length."""

    data: bytes
    crc: int
    size: int


def segment(text: bytes) -> Segment:
    compressor = _deflate.compressobj(LEVEL, _deflate.DEFLATED, -15)
    return Segment(compressor.compress(text) + compressor.flush(_deflate.Z_FULL_FLUSH), _deflate.crc32(text), len(text))


def fingerprint(family: TextFamily) -> tuple:
    """What decides a family's text besides its name, kind, help and label names (see the module)."""
    return (len(family.keys), hash(tuple(family.keys)),
            hashlib.blake2b(pickle.dumps(family.values, 5), digest_size=16).digest())


class GzipSegments:
    """Assembles gzip copies from parts (bytes, or families written here), keeping each family's
    segment of the last copy for the next one. Not thread-safe: one refreshing thread."""

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[tuple, Segment]] = {}  # family's identity -> (fingerprint, segment)
        self.families_reused = 0  # of the last copy
        self.families_written = 0

    def gzip(self, parts: Iterable[bytes | TextFamily]) -> bytes:
        """The gzip stream of the parts' text, in order. Families of the last copy that are not in
        this one are forgotten."""
        kept, now = self._kept, {}
        texts_by_labels: dict = {}  # label texts shared by the families written in this copy
        out, crc, size = [_HEADER], 0, 0
        reused = written = 0
        for part in parts:
            if isinstance(part, TextFamily):
                identity = (part.name, part.kind, part.doc, part.labels)
                mark = fingerprint(part)
                last = kept.get(identity)
                if last is not None and last[0] == mark:
                    seg = last[1]
                    reused += 1
                else:
                    seg = segment(family_text(part, texts_by_labels).encode())
                    written += 1
                now[identity] = (mark, seg)
            elif part:
                seg = segment(part)
            else:
                continue
            out.append(seg.data)
            crc = _deflate.crc32_combine(crc, seg.crc, seg.size)
            size += seg.size
        self._kept = now
        self.families_reused, self.families_written = reused, written
        out += [_FINAL, struct.pack("<II", crc, size & 0xFFFFFFFF)]
        return b"".join(out)
