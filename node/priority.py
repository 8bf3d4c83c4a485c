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
serving workers (separate processes, started at normal priority). The image
builder thread is niced by `node/serving/images.py`, with the same value.

* `idle_process()`: the worker pool's processes (`node/work/pool.py`: zone
  parsing, signing) go further. They share no interpreter lock with anyone,
  so they run SCHED_IDLE (a waking normal thread always preempts them; an
  unprivileged process may choose it). Where the kernel shares CPU time among
  sessions first (autogroup: processes outside a cgroup, as in the local
  cluster and the benchmarks), a thread's nice value or policy only counts
  inside its session's group, and that group weighs as much as any other: a
  pool process in its node's session would take a full share against each
  serving worker whatever its policy. So each pool process starts its own
  session and nices that group to `AUTOGROUP_NICE` (19: weight 15 against
  1024).

* `request_short_slice()`: the serving workers' threads ask for the
  shortest time slice Linux grants (0.1 ms, `sched_setattr`, Linux 6.12 or
  later). The scheduler (EEVDF) runs first the thread with the earliest
  virtual deadline, and a thread's deadline is its slice away: a worker
  that wakes for a query among a dozen runnable processes of the same
  weight then goes before them instead of in the middle of the queue (it
  still gets no more than its fair share). Where the kernel refuses, the
  thread keeps the default slice.

Threads of the control process stay at nice 10, never SCHED_IDLE: a
SCHED_IDLE thread holding the interpreter lock would keep the loop and the
lease keep-alive thread waiting until the cores are otherwise idle (about a
second per hand-over of the lock while the workers are saturated).

A niced thread that holds the interpreter lock delays a normal thread of the
same process that wants it until the kernel runs the niced one again: that
costs the loop milliseconds when the serving workers saturate the cores, and
spares the workers (which answer the queries) the heavy work's CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

HEAVY_NICE = 10  # the image builder uses the same value
AUTOGROUP_NICE = 19  # the session group of each worker pool process (idle_process)
PR_SET_NAME = 15  # prctl(2): the calling thread's name (15 octets)
AUTOGROUP = "/proc/self/autogroup"
SERVING_SLICE_NS = 100_000  # the shortest slice Linux accepts for a normal thread (0.1 ms)
SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}  # sched_setattr(2) by machine
SCHED_ATTR = struct.Struct("IIQiIQQQ")  # struct sched_attr, version 0 (48 octets)
AUTOGROUP_TRIES = 20  # an unprivileged write is refused (EAGAIN) within 100 ms of another one


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


def autogroup_nice() -> int | None:
    """The nice value of the calling process's session group (autogroup); None without one."""
    try:
        with open(AUTOGROUP) as fh:  # "/autogroup-123 nice 0"
            return int(fh.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def idle_process(group_nice: int = AUTOGROUP_NICE) -> list[str]:
    """Make the calling process yield the CPU to every other process: its own session, that
    session's group (autogroup) at `group_nice`, and SCHED_IDLE for the calling thread (the
    threads it starts afterwards inherit it). For processes that share no lock with the
    answer path only. Returns what the system refused (the process then runs as before)."""
    refused: list[str] = []
    try:
        if os.getsid(0) != os.getpid():
            os.setsid()
    except OSError as exc:
        refused.append(f"setsid: {exc}")
    if autogroup_nice() is not None:
        for _ in range(AUTOGROUP_TRIES):
            try:
                with open(AUTOGROUP, "w") as fh:
                    fh.write(str(group_nice))
                break
            except BlockingIOError:  # EAGAIN: the kernel's rate limit for unprivileged writes
                threading.Event().wait(0.02)
            except OSError as exc:
                refused.append(f"autogroup nice: {exc}")
                break
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError) as exc:
        refused.append(f"SCHED_IDLE: {exc}")
    return refused


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
