"""Giving freed heap back to the kernel: the control process's allocator (jemalloc when the
C library has it, `use_jemalloc`) and, after zone-sized work, glibc's `malloc_trim`.

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
import os
import sys
from collections.abc import Callable, Mapping

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


# -- the control process's allocator (issue 10, memory) -----------------------------------
# pymalloc gives an arena (1 MiB) back only once every object in it is freed: after the
# zone-sized passes (decode, full sign, journal step, lean base) the control process of a
# signed 100k-name zone kept ~65 MB of empty pools and ~14 MB of free blocks among the
# objects that stay. jemalloc (`PYTHONMALLOC=malloc`, preloaded) purges freed pages
# (`dirty_decay_ms`) whatever is around them: the same objects, ~70 MiB less RSS.
# One arena (`narenas:1`; jemalloc's default is 4 per CPU, the threads spread over them): a
# pass's temporaries freed on one thread's arena left its slabs part used beside the zone's
# objects allocated on another's. With one, a 100k-name NSEC3 node's control process kept
# 38 MiB between allocated and active instead of 58 (issue 10, session 15). The interpreter
# lock already serialises the Python threads' allocations; each thread keeps its tcache.
JEMALLOC_CONF = "narenas:1,background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0"
ALLOCATOR_ENV = "DNSCLUSTER_ALLOCATOR"  # "pymalloc": keep CPython's own allocator
_MARK = "DNSCLUSTER_JEMALLOC_EXEC"  # set across the exec; its children do not inherit it
_ADDED = ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF")


def jemalloc_env(environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to exec this process again with jemalloc, or None: not found
    (`library` None), opted out (`DNSCLUSTER_ALLOCATOR=pymalloc`), done already, or an
    allocator or preload chosen by whoever started the node (left as it is)."""
    if library is None or environ.get(ALLOCATOR_ENV, "jemalloc") == "pymalloc" \
            or _MARK in environ or any(environ.get(k) for k in _ADDED):
        return None
    return {**environ, "LD_PRELOAD": library, "PYTHONMALLOC": "malloc",
            "MALLOC_CONF": JEMALLOC_CONF, _MARK: "1"}


def use_jemalloc() -> None:
    """At the very start of the control process: exec it again (same pid, same command
    line) with jemalloc when the C library has it (`jemalloc_env`); in the process so
    started, take the variables out again, so that the processes it starts (serving
    workers, the worker pool) keep pymalloc, which is faster for their small objects."""
    mark = os.environ.pop(_MARK, None)
    if mark is not None:
        for name in _ADDED:
            os.environ.pop(name, None)
        if mark == "1" and not _jemalloc_loaded():
            # the preload was ignored (secure-execution mode: file capabilities on the
            # interpreter; a library ld.so does not find) but PYTHONMALLOC=malloc holds:
            # glibc's malloc, slower and no smaller. Start once more on pymalloc.
            log.warning("jemalloc was not preloaded: starting again on pymalloc")
            _exec({**os.environ, _MARK: "0"})
        return
    env = jemalloc_env(os.environ, ctypes.util.find_library("jemalloc"))
    if env is None:
        return
    _exec(env)


def _jemalloc_loaded() -> bool:
    """Whether jemalloc is in the process (its `mallctl` in the global namespace)."""
    return hasattr(ctypes.CDLL(None), "mallctl")


def _exec(env: Mapping[str, str]) -> None:
    for stream in (sys.stdout, sys.stderr):  # None when started with the fd closed
        if stream is not None:
            stream.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as exc:  # pragma: no cover - the interpreter was there a moment ago
        log.warning("could not start again (%s): the allocator stays as it is", exc)
