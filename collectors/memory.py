"""Giving freed memory back to the operating system, and not scanning what is being built.

glibc's allocator keeps freed heap pages for reuse. A collection cycle allocates a lot for a short
time (decoded responses, the snapshot and its pickled copy on the way to the parent), so without
this a process stays at its peak size between cycles. `malloc_trim(0)` returns what is free; it
costs a few milliseconds and is a no-op where glibc is absent.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_libc = _trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = getattr(_libc, "malloc_trim", None)
except OSError:  # no C library to load (not glibc): nothing to trim
    _libc = _trim = None


def release_free_memory() -> bool:
    """Return freed heap to the OS; True when something was released."""
    if _trim is None:
        return False
    try:
        return bool(_trim(0))
    except Exception:  # never let housekeeping break a cycle
        log.debug("malloc_trim failed", exc_info=True)
        return False


# glibc's M_MMAP_THRESHOLD (mallopt's parameter number) and the threshold kept fixed.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def unmap_large_blocks() -> bool:
    """Blocks of 1 MiB or more (large numpy columns, the /metrics payload, pickled snapshots) get
    pages of their own, unmapped when freed: True when set.

    glibc starts with such a threshold (128 KiB), but raises it to the size of each such block
    freed, up to 32 MiB: after the first cycles, every payload and column comes from the heap, where
    its space, once freed, is taken by smaller longer-lived blocks and stays with the process.
    Fixed (by `mallopt`, which also stops the raising), the derivation of 10,000 groups x 10,000
    partitions kept 331-333 MB instead of 546-590 MB, for 20 ms more serialisation a cycle (the
    payload's pages are new each time); `streamscope run` at 1,000 groups: 5-6 MB less (measured,
    docs/performance.md; 128 KiB saved no more and cost 30 ms of derivation). A process-wide
    setting: called by the processes streamscope starts, not by the library."""
    # glibc only: another C library may have a mallopt taking other parameter numbers
    mallopt = getattr(_libc, "mallopt", None) if _trim is not None else None
    if mallopt is None:
        return False
    try:
        return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except Exception:  # housekeeping: never a reason not to start
        log.debug("mallopt failed", exc_info=True)
        return False


def freeze_startup_objects() -> None:
    """What a process made before its work starts (its imported modules, settings, the objects
    it built) lives as long as the process: the cyclic collector stops scanning it (`gc.freeze`).

    A full collection walks every tracked object, and at start the parent of `run` holds ~61,000
    of them: against 1,000 groups x 10,000 partitions a full collection took ~100 ms, ~40 ms with
    them frozen (measured). Garbage of the start is collected first: what is frozen is never
    freed by the cyclic collector (reference counting still frees it). A process-wide setting:
    called by the processes streamscope starts, not by the library."""
    gc.collect()
    gc.freeze()


class _Freezing:
    """Whether gc_paused(keep=True) freezes what it built, and when frozen objects were last
    reviewed: process-wide, as the cyclic collector is (`freeze_each_cycle`)."""

    on = False
    review_every = 600.0  # seconds
    reviewed_at = 0.0  # time.monotonic()


_freezing = _Freezing()


def freeze_each_cycle(review_every: float = 600.0, now: float | None = None) -> None:
    """From now on, what a cycle builds to keep (`gc_paused(keep=True)`) leaves the cyclic
    collector's scans at once, as the start's objects did (`freeze_startup_objects`), and every
    `review_every` seconds `review_frozen` collects what of it became cyclic garbage.

    A cycle's snapshot and derived view are ~50,000 tracked objects at 1,000 groups x 10,000
    partitions, named tuples the collector never untracks (it does so for exact tuples only). Left
    to it, the first collection after the pause scans all of them, and later ones again as they age:
    ~20-25 ms of the parent's CPU a cycle (measured, docs/performance.md), for objects that hold no
    reference cycle and are freed by reference counting when the next cycle replaces them. What
    the freeze can hold back is cyclic garbage that happened to be young at that moment (a web
    request's, a few hundred small objects a minute): it waits for the next review. A process-wide
    setting: called by the processes streamscope starts, not by the library."""
    _freezing.on = True
    _freezing.review_every = float(review_every)
    _freezing.reviewed_at = time.monotonic() if now is None else now


def review_frozen(now: float | None = None) -> bool:
    """When `freeze_each_cycle` is on and its interval has passed: one full collection of every
    object, frozen ones included, then what is left is frozen again. True when it ran."""
    if not _freezing.on:
        return False
    now = time.monotonic() if now is None else now
    if now - _freezing.reviewed_at < _freezing.review_every:
        return False
    _freezing.reviewed_at = now
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return True


@contextmanager
def gc_paused(*, keep: bool = False) -> Iterator[None]:
    """The cyclic garbage collector off while a cycle builds (or unpickles) its snapshot.

    A snapshot of a large cluster is 100,000s of small objects, and the collector runs
    generation after generation over all of them (and over the previous cycles' still alive) while
    they are being built, though they hold no reference cycles: unpickling the snapshot of 10,000
    groups x 10 partitions took 523 ms with the collector on, 144 ms with it off (measured). What
    cyclic garbage the paused work makes is collected after it, as usual.

    `keep=True`: what the block built is kept for a cycle or more (a snapshot, its derived view,
    the alert state); where `freeze_each_cycle` is on, it is frozen before the collector is back on.
    """
    freeze = keep and _freezing.on
    if freeze:
        # what became garbage since the last freeze goes now, not into the freeze (it is small:
        # all older objects are frozen)
        gc.collect(1)
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
