"""collectors.memory: freed heap goes back to the OS after a cycle's garbage is gone; large blocks
get pages of their own (`unmap_large_blocks`: even once a larger block was freed, when glibc's own
threshold would have risen above them and put them in the heap)."""
import ctypes
import ctypes.util
import json
import subprocess
import sys
from pathlib import Path

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


def test_the_garbage_collector_is_paused_while_a_snapshot_is_built_and_restored_after():
    import gc

    from collectors.memory import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            raise RuntimeError("a failed cycle")
    assert gc.isenabled()
    gc.disable()  # someone else turned it off: left off
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_collection_cycle_runs_with_the_garbage_collector_paused(monkeypatch):
    """The collector's cycle (in its child process) runs with the garbage collector paused, and
    it is on again after."""
    import gc

    from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings

    seen = []
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    monkeypatch.setattr(collector, "_collect_cycle", lambda scope: seen.append(gc.isenabled()) or "raw")
    assert collector.collect() == "raw" and seen == [False] and gc.isenabled()


ROOT = Path(__file__).resolve().parents[2]

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_GLIBC_233 = pytest.mark.skipif(not hasattr(_LIBC, "mallinfo2"), reason="glibc 2.33+ only (mallinfo2)")

# A fresh interpreter: mmapped blocks (mallinfo2's hblks) holding a 2 MiB bytes object, after an
# 8 MiB one was freed.
_PROBE = """
import ctypes, ctypes.util, json, sys
from collectors.memory import unmap_large_blocks
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.mallinfo2.restype = Info
fixed = unmap_large_blocks() if sys.argv[1] == "fixed" else None
big = bytes(8 << 20)
del big  # glibc raises its threshold to 8 MiB here, unless it is fixed
before = libc.mallinfo2().hblks
block = bytes(2 << 20)
print(json.dumps([fixed, libc.mallinfo2().hblks - before]))
"""


def _mmapped_blocks(mode: str) -> list:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@_GLIBC_233
def test_a_large_block_gets_its_own_pages_after_a_larger_one_was_freed():
    assert _mmapped_blocks("fixed") == [True, 1]


@_GLIBC_233
def test_without_it_glibc_puts_that_block_in_the_heap():
    assert _mmapped_blocks("default") == [None, 0]


def test_startup_objects_are_frozen_after_a_collection_in_a_process_of_their_own():
    """`run` freezes what exists once it is built: those objects leave the cyclic collector's
    scans; garbage of the start is collected first (a frozen cycle would never be freed)."""
    code = (
        "import gc, weakref\n"
        "from collectors.memory import freeze_startup_objects\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a; dead = weakref.ref(a); del a, b\n"
        "kept = [[Node()] for i in range(1000)]\n"
        "freeze_startup_objects()\n"
        "print(dead() is None, gc.get_freeze_count() >= 2000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["True", "True"]


# A fresh interpreter: freezing is process-wide. Prints, as JSON: frozen by a keep block without
# freeze_each_cycle; then with it: the garbage made before the block collected, what the block
# built frozen, the collector on again; a cycle dropped inside the block held back until the
# review is due, and collected by it; what is still kept frozen after the review.
_FREEZING = """
import gc, json, weakref
from collectors.memory import freeze_each_cycle, gc_paused, review_frozen
class Node: pass
def cycle():
    a, b = Node(), Node(); a.other, b.other = b, a
    return weakref.ref(a)
out = {}
before = gc.get_freeze_count()
with gc_paused(keep=True):
    kept = [[Node()] for i in range(1000)]
out["frozen_without"] = gc.get_freeze_count() - before
gc.collect(); gc.unfreeze()
freeze_each_cycle(review_every=60.0, now=1000.0)
old = cycle()
with gc_paused(keep=True):
    assert not gc.isenabled()
    kept = [[Node()] for i in range(1000)]
    young = cycle()
out["older_garbage_collected"] = old() is None
out["built_frozen"] = gc.get_freeze_count() >= 2000
out["enabled_after"] = gc.isenabled()
gc.collect()
out["held_back"] = young() is not None
out["review_early"] = review_frozen(now=1059.0)
out["held_back_still"] = young() is not None
out["review"] = review_frozen(now=1060.0)
out["collected_by_review"] = young() is None
out["kept_frozen_after_review"] = gc.get_freeze_count() >= 2000 and len(kept) == 1000
out["review_again"] = review_frozen(now=1061.0)
print(json.dumps(out))
"""


def test_what_a_cycle_keeps_is_frozen_and_cyclic_garbage_it_held_back_goes_at_the_review():
    """`run` freezes what each cycle builds to keep (`freeze_each_cycle`): the cyclic collector no
    longer scans a cycle's snapshot and view (~20-25 ms of the parent's CPU a cycle at 1,000 groups x
    10,000 partitions). Garbage older than the block is collected first; a cycle that became garbage
    inside it waits for the review, which collects it and freezes what is kept again."""
    out = subprocess.run([sys.executable, "-c", _FREEZING], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "frozen_without": 0, "older_garbage_collected": True, "built_frozen": True, "enabled_after": True,
        "held_back": True, "review_early": False, "held_back_still": True, "review": True,
        "collected_by_review": True, "kept_frozen_after_review": True, "review_again": False,
    }
