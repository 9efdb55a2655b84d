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
