"""Giving freed memory back to the operating system.

glibc's allocator keeps freed heap pages for reuse. A collection cycle allocates a lot for a short
time (decoded responses, the snapshot and its pickled copy on the way to the parent), so without
this a process stays at its peak size between cycles. `malloc_trim(0)` returns what is free; it
costs a few milliseconds and is a no-op where glibc is absent.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = getattr(_libc, "malloc_trim", None)
except OSError:  # no C library to load (not glibc): nothing to trim
    _trim = None


def release_free_memory() -> bool:
    """Return freed heap to the OS; True when something was released."""
    if _trim is None:
        return False
    try:
        return bool(_trim(0))
    except Exception:  # never let housekeeping break a cycle
        log.debug("malloc_trim failed", exc_info=True)
        return False
