"""`PayloadReader` (monitor/web/status.py) reads, seeks and tells as `io.BytesIO` over the same
bytes does, with views in place of copies: the same random sequences of calls give the same
bytes and positions."""
from __future__ import annotations

import io
import random

import pytest

from monitor.web.status import PayloadReader


def test_reads_and_seeks_as_bytesio_does():
    rng = random.Random(14)
    payload = bytes(rng.randrange(256) for _ in range(5000))
    for _ in range(200):
        ours, theirs = PayloadReader(payload), io.BytesIO(payload)
        for _ in range(30):
            call = rng.choice(("read", "read_all", "seek_set", "seek_cur", "seek_end", "tell"))
            if call == "read":
                size = rng.randrange(-1, 7000)
                got = ours.read(size)
                assert isinstance(got, memoryview) and got.obj is payload
                assert bytes(got) == theirs.read(size)
            elif call == "read_all":
                assert bytes(ours.read()) == theirs.read()
            elif call == "tell":
                assert ours.tell() == theirs.tell()
            else:
                whence = {"seek_set": io.SEEK_SET, "seek_cur": io.SEEK_CUR, "seek_end": io.SEEK_END}[call]
                offset = rng.randrange(0, 6000) if whence == io.SEEK_SET else rng.randrange(-3000, 3000)
                base = {io.SEEK_SET: 0, io.SEEK_CUR: theirs.tell(), io.SEEK_END: len(payload)}[whence]
                if base + offset < 0:
                    with pytest.raises(ValueError):
                        ours.seek(offset, whence)
                    continue
                assert ours.seek(offset, whence) == theirs.seek(offset, whence)
            assert ours.tell() == theirs.tell()


def test_reading_past_the_end_gives_nothing_and_stays_put():
    reader = PayloadReader(b"abc")
    reader.seek(10)
    assert bytes(reader.read(5)) == b"" and reader.tell() == 10
    assert reader.seekable()
    reader.close()
    assert bytes(reader.read()) == b""
