"""Giving freed heap back to the kernel after zone-sized work (glibc `malloc_trim`).

A full compile, image build or signing pass allocates and frees hundreds of
MiB of small Python objects. CPython returns its arenas to malloc, but glibc
keeps the freed pages in its heaps (the main heap only shrinks from the top),
so the process's RSS stays at its peak. `trim()` asks glibc to release every
free page it can (`madvise`, no copying): a few milliseconds for a heap of
1 GiB. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_trim: Callable[[int], int] | None = None
_looked = False


def trim() -> bool:
    """Release free heap pages to the kernel; False when not available (not glibc)."""
    global _trim, _looked
    if not _looked:
        _looked = True
        try:
            fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
            fn.argtypes = [ctypes.c_size_t]
            fn.restype = ctypes.c_int
            _trim = fn
        except (OSError, AttributeError):
            log.debug("malloc_trim is not available: freed heap stays with the process")
    if _trim is None:
        return False
    _trim(0)
    return True
