"""collectors.memory: freed heap goes back to the OS after a cycle's garbage is gone."""
import sys

import pytest

from collectors.memory import release_free_memory


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_freed_heap_is_returned():
    # ~70 MB of 600-byte buffers: above pymalloc's 512 bytes, so they come from malloc, whose
    # freed pages stay with the process until trimmed (smaller objects' arenas go back anyway)
    garbage = [bytes(600) + str(i).encode() for i in range(120_000)]
    peak = _rss_kb()
    del garbage
    release_free_memory()
    assert _rss_kb() < peak - 30_000  # at least 30 MB of the ~70 handed back
