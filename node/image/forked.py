"""Full images written by a forked child of the caller: the rendering's heap and CPU leave with it.

Owns `ImageChild(render, path)`: `os.fork` gives the child the snapshot
copy-on-write (nothing pickled), the child compiles and renders the image
straight into the file (`render(f) -> size`: `node.image.fullimage`, the
same bytes as in-process, tested) and exits with
`os._exit`; meanwhile the caller makes only the lean compile it keeps for the
next overlays (`node.image.basepieces.compile_base`), then `wait`s.
Issue 10: in the control process a full image's rendering is most of a full
build's CPU (under its interpreter lock) and a zone-sized burst of small
objects that leaves its heap fragmented; a child takes both away.

What the child may touch: the compiled zone, the image writer, the file. The
control process has grpc (etcd client) and event-loop threads; the child
never uses them, logs nothing (the parent emits the events), runs no atexit
handler or finaliser (`os._exit`), and grpc's fork handlers are off
(`dns-node` sets `GRPC_ENABLE_FORK_SUPPORT=false`: grpcio enables them by
default, and they pause grpc's threads around each fork; the child must not
use grpc). A lock another thread held at the fork (a C
library's) could still leave the child stuck: so a child that uses no CPU for
`STALL_AFTER` seconds, or runs past `LIMIT`, is killed, and a child that
crashed, failed or was killed raises `ForkFailed`; the caller then builds
in-process (`ImageBuilder`), so a zone never goes without its image.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from node.errors import NodeError
from node.priority import HEAVY_NICE

STALL_AFTER = 30.0  # seconds of no CPU used by the child: hung (a lock held at the fork)
LIMIT = 1800.0  # seconds in all (a niced child on a loaded machine is slow, not stuck)
POLL = 0.5  # seconds between looks at the child's CPU time
WRITE_BUFFER = 1 << 20  # octets the child's render gathers per write(2)
PR_SET_PDEATHSIG = 1  # prctl(2): the signal the child gets when the parent (thread) ends
# Test-only fault injection: "crash" (SIGKILL itself), "error" (raise), "hang" (sleep).
FAULT_ENV = "DNSCLUSTER_TEST_IMAGE_FORK"
try:  # looked up here: a child must not dlopen (the loader's lock may be held at the fork)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


class ForkFailed(NodeError):
    """The forked child wrote no image (crashed, failed, hung); the reason is the message."""

    code = "image-fork-failed"


class ImageStopped(NodeError):
    """The child was stopped (`ImageChild.stop`: the node shuts down): no image, no fallback."""

    code = "image-stopped"


class ImageChild:
    """A forked child rendering one full image (`render(f)`, which writes it to the open
    file `f` and returns its size) to `path`; `wait` for it."""

    def __init__(self, render: Callable[[BinaryIO], int], path: Path) -> None:
        """Fork (the caller's heap shared copy-on-write); the child renders and exits."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tmp = path.with_name(f".tmp-fork-{os.getpid()}-{path.name}")
        r, w = os.pipe()
        parent = os.getpid()
        forking = time.perf_counter()
        try:
            pid = os.fork()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:  # the child: no logging, no return into the caller's frames
            os.close(r)
            _child(render, path, self.tmp, w, parent)
        self.fork_s = time.perf_counter() - forking  # page tables copied, under the GIL
        os.close(w)
        self.pid, self._r = pid, r
        self.stopped = False
        self._reaped = False
        self._lock = threading.Lock()  # `stop` (another thread) never signals a reaped pid

    def stop(self) -> None:
        """From any thread: kill the child; `wait` then raises `ImageStopped`."""
        with self._lock:
            self.stopped = True
            if not self._reaped:
                os.kill(self.pid, signal.SIGKILL)

    def _reap(self) -> tuple[int, float]:
        """Wait for the child to end: (exit status, its CPU seconds)."""
        with self._lock:
            _, status, usage = os.wait4(self.pid, 0)
            self._reaped = True
        return status, usage.ru_utime + usage.ru_stime

    def kill(self) -> None:
        """Stop the child (its image is not wanted any more) and reap it."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()
        finally:
            os.close(self._r)
            self.tmp.unlink(missing_ok=True)

    def wait(self) -> tuple[int, float]:
        """(image size, the child's CPU seconds) once the child wrote the image; raises
        `ForkFailed` (then no file is left) if it crashed, failed or hung (killed)."""
        try:
            message, status, cpu = _wait(self.pid, self._r, self._reap)
        finally:
            os.close(self._r)
        if self.stopped:
            self.tmp.unlink(missing_ok=True)
            raise ImageStopped(f"image child {self.pid}: stopped")
        if status == 0 and message.startswith(b"ok "):
            return int(message[3:]), cpu
        self.tmp.unlink(missing_ok=True)
        if os.WIFSIGNALED(status):
            reason = f"signal {os.WTERMSIG(status)}"
        else:
            reason = f"exit {os.WEXITSTATUS(status)}"
        detail = message.decode(errors="replace")
        raise ForkFailed(f"image child {self.pid}: {reason}" + (f": {detail}" if detail else ""))


def _child(render: Callable[[BinaryIO], int], path: Path, tmp: Path, w: int, parent: int
           ) -> None:
    code = 1
    try:
        # a signal must not reach the parent's event loop through the inherited wakeup fd;
        # the node's SIGTERM/SIGINT/SIGHUP reach its process group (systemd, a terminal):
        # the parent stops the child (`stop`), which must not die of them first (the
        # parent would then build the image in-process while it shuts down)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        _let_go_of_the_parent(parent, w)
        with contextlib.suppress(OSError):  # its own process, sharing no lock: niced (a plain
            # syscall: lower_thread_priority would dlopen to name the thread)
            os.setpriority(os.PRIO_PROCESS, 0, max(HEAVY_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
        fault = os.environ.get(FAULT_ENV)
        if fault == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "error":
            raise RuntimeError("test fault")
        if fault == "hang":
            time.sleep(3600)
        with open(tmp, "wb", buffering=WRITE_BUFFER) as f:  # written as it is rendered
            size = render(f)
        os.replace(tmp, path)
        os.write(w, b"ok %d" % size)
        code = 0
    except BaseException as exc:  # reported to the parent, which builds in-process
        try:
            os.write(w, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:2000])
        except BaseException:  # nothing else can be done here
            pass
    finally:
        os._exit(code)


def _let_go_of_the_parent(parent: int, keep: int) -> None:
    """In the child: die with the parent (kill -9, OOM: nobody would read the image), and
    close every descriptor it inherited but `keep` (the result pipe) and stdio. Held here,
    the parent's listening sockets (gRPC, DNS over TLS) would stay bound after it died
    (with SO_REUSEPORT a restarted node would share its connections with a socket nobody
    accepts on), and a connection the parent closes would send no FIN until the child ends."""
    if _prctl is not None:  # not Linux: the parent's `stop` still reaches us
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))


def _wait(pid: int, r: int, reap: Callable[[], tuple[int, float]]
          ) -> tuple[bytes, int, float]:
    """The child's message, exit status and CPU seconds; kills it if it hangs."""
    started = last_progress = time.monotonic()
    last_cpu = -1
    chunks: list[bytes] = []
    poller = select.poll()  # not select(): the control process's descriptors go past 1,024
    poller.register(r, select.POLLIN)
    while True:
        if poller.poll(POLL * 1000):
            chunk = os.read(r, 4096)
            if not chunk:
                break
            chunks.append(chunk)
            continue
        now = time.monotonic()
        cpu = _cpu_ticks(pid)
        if cpu != last_cpu:
            last_cpu, last_progress = cpu, now
        if now - last_progress > STALL_AFTER or now - started > LIMIT:
            os.kill(pid, signal.SIGKILL)
            status, cpu_s = reap()
            why = f"hung: no CPU for {now - last_progress:.0f} s, {now - started:.0f} s in all"
            return why.encode(), status or 1, cpu_s
    status, cpu_s = reap()
    return b"".join(chunks), status, cpu_s


def _cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` in clock ticks (-1: unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return -1
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])
