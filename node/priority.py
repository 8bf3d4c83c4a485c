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

* `request_short_slice()`: the serving workers' threads ask for the
  shortest time slice Linux grants (0.1 ms, `sched_setattr`, Linux 6.12 or
  later). The scheduler (EEVDF) runs first the thread with the earliest
  virtual deadline, and a thread's deadline is its slice away: a worker
  that wakes for a query among a dozen runnable processes of the same
  weight then goes before them instead of in the middle of the queue (it
  still gets no more than its fair share). Where the kernel refuses, the
  thread keeps the default slice.

Zone-sized work never runs SCHED_IDLE (nor in a session of its own niced to
19, where the kernel groups CPU time by session): it would then run only on
otherwise idle cores. Measured (bench.availability, 2026-12-06, machine at
load 20-28): the signing pool's processes got 3 s of CPU in 900 s and the
zone was never signed; on a node whose workers answer a flood, signatures
would expire. In the control process, a SCHED_IDLE thread holding the
interpreter lock would also keep the loop and the lease keep-alive thread
waiting. Nice values keep a small guaranteed share.

A niced thread that holds the interpreter lock delays a normal thread of the
same process that wants it until the kernel runs the niced one again: that
costs the loop milliseconds when the serving workers saturate the cores, and
spares the workers (which answer the queries) the heavy work's CPU.

* `CONTROL_SWITCH_INTERVAL`: how long a heavy thread may keep the interpreter
  lock once the loop (or the keep-alive thread) asks for it (`sys.setswitchinterval`,
  set by `daemon.run`; CPython's default is 5 ms). The loop gives the lock up at
  every socket call and takes it back after; with three heavy threads running,
  each taking back could cost the default's 5 ms, so an iteration of forty calls
  waited 50 ms at the median (`EVENT_LOOP_STALLED` on the nodes during an
  import and a sign). Measured in a model (an event loop making 40 socket round
  trips per tick beside three heavy threads, 2 loaded cores): 5 ms gave p50
  30-50 ms, 1 ms gave p50 6-24 ms a tick.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

CONTROL_SWITCH_INTERVAL = 0.001  # seconds; see above
HEAVY_NICE = 10  # the signing pool and the image builder use the same value
PR_SET_NAME = 15  # prctl(2): the calling thread's name (15 octets)
SERVING_SLICE_NS = 100_000  # the shortest slice Linux accepts for a normal thread (0.1 ms)
SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}  # sched_setattr(2) by machine
SCHED_ATTR = struct.Struct("IIQiIQQQ")  # struct sched_attr, version 0 (48 octets)


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


def request_short_slice(ns: int = SERVING_SLICE_NS) -> bool:
    """Ask for a time slice of `ns` for the calling thread (SCHED_OTHER, its nice value kept;
    threads it starts afterwards inherit the slice). False where the kernel refuses it."""
    number = SYS_SCHED_SETATTR.get(platform.machine())
    if number is None:
        return False
    try:
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        attr = ctypes.create_string_buffer(
            SCHED_ATTR.pack(SCHED_ATTR.size, os.SCHED_OTHER, 0, nice, 0, ns, 0, 0))
        return ctypes.CDLL(None, use_errno=True).syscall(number, 0, attr, 0) == 0
    except (OSError, AttributeError):
        return False
