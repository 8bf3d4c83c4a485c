"""CPU priority of the control process's threads: heavy work runs niced, the rest does not.

Linux keeps a nice value per thread (`setpriority(PRIO_PROCESS, tid, n)`), so
one process can hold both kinds of thread. Owns:

* `lower_thread_priority(nice)`: the calling thread's own nice value (never
  raises: a system that forbids it runs the thread at normal priority);
* `heavy_executor()`: the thread pool the control process installs as its
  event loop's default executor (`daemon.py`), so everything handed to
  `asyncio.to_thread` / `run_in_executor(None, ...)` (building a zone's
  nodes from etcd, signing, journal steps, key generation, compiling
  without workers) runs at `HEAVY_NICE`.

What stays at normal priority: the event loop thread (watch, gRPC API,
Key Master duties), the lease keep-alive thread, grpc's own threads, and the
serving workers (separate processes, started at normal priority). Zone-sized
work in the signing pool's processes is niced by `node/work/pool.py`, and
the image builder thread by `node/serving/images.py`, with the same value.

A niced thread that holds the interpreter lock delays a normal thread of the
same process that wants it until the kernel runs the niced one again: that
costs the loop milliseconds when the serving workers saturate the cores, and
spares the workers (which answer the queries) the heavy work's CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

HEAVY_NICE = 10  # the signing pool and the image builder use the same value
PR_SET_NAME = 15  # prctl(2): the calling thread's name (15 octets)


def lower_thread_priority(nice: int = HEAVY_NICE, name: bytes = b"heavy") -> None:
    """Set the calling thread's nice value to at least `nice` (Linux: per thread), and its
    name as `top -H` and /proc/<pid>/task/<tid>/comm show it to `name`."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def thread_nice(tid: int | None = None) -> int:
    """The nice value of thread `tid` (default: the calling thread)."""
    return os.getpriority(os.PRIO_PROCESS, tid or threading.get_native_id())


def heavy_executor(max_workers: int | None = None) -> ThreadPoolExecutor:
    """A thread pool whose threads run at `HEAVY_NICE` (the control loop's default executor;
    `None` workers: as asyncio's own default, min(32, cores + 4))."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="heavy",
                              initializer=lower_thread_priority)
