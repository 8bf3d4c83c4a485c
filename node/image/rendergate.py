"""The host's gate for large forked renders: one at a time, and only with the memory for it.

Owns `RenderGate`. A forked image child (`node.image.forked`) shares its
parent's heap copy-on-write, but its walk writes the reference counts of the
objects it reads, so its pages are copied one by one: a zone of 1M names
rendered by a child costs the host up to another copy of the control
process's heap (~3 GiB) while it runs. Several nodes on one host (the local
cluster, compose, tests) would all do it at about the same time after a
change every node sees (issue 10: "1M imported and signed on all nodes
within 24 GiB"): four children beside four parents do not fit.

So a render whose process holds at least `min_bytes` of private memory
(`RssAnon`: what copy-on-write could duplicate) first takes the host's lock
file (`flock`, `path`; the lock goes with the process, even on `kill -9`),
then waits until the memory available to this process (MemAvailable, and
each cgroup's limit less its use, inactive page cache excluded, where one
is set) covers that size and a
reserve. It waits at most `memory_wait` seconds for the memory and
`lock_wait` for each holder of the lock (longer than any holder's turn: its
memory wait and its child's time limit), then renders anyway: a version is never left
unserved for good, even when the holder never lets go (a node stopped with
SIGSTOP, or any local process's `flock` on the shared file).
`busy()` tells an optional merge to come back later instead of waiting.
Smaller renders never wait (tests' zones, most operators' zones).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from node.events import Event, emit
from node.image.forked import LIMIT

MIN_BYTES = 1 << 30  # private memory from which a render takes the host's gate (~300k names)
RESERVE = 512 << 20  # octets left available beyond the render's worst case
MEMORY_WAIT = 300.0  # seconds a render waits for memory at most (then renders anyway)
LOCK_WAIT = LIMIT + MEMORY_WAIT + 60.0  # seconds it waits for one holder at most (then the same)
POLL = 0.5  # seconds between tries
DEFAULT_DIR = "/dev/shm"  # shared by the processes of a host (a container: its own)
LOCK_NAME = "dnscluster-render.lock"


class RenderGate:
    """One large render at a time on this host, with the memory it may need."""

    def __init__(self, path: str = "", min_bytes: int = MIN_BYTES,
                 memory_wait: float = MEMORY_WAIT, lock_wait: float = LOCK_WAIT) -> None:
        self.path = Path(path) if path else default_path()
        self.min_bytes = min_bytes
        self.memory_wait = memory_wait
        self.lock_wait = lock_wait
        self.reserve = RESERVE
        self.private = private_bytes  # replaced in tests
        self.available = available_bytes
        self.clock = time.monotonic  # of the lock's deadline (replaced in tests)

    def large(self) -> bool:
        """This process's render would be a large one (it takes the gate)."""
        return self.private() >= self.min_bytes

    def busy(self) -> bool:
        """A large render should not start now: another process renders, or memory is short
        (for optional work: a merge that can come back later). Never waits."""
        if not self.large():
            return False
        if self.available() < self.private() + self.reserve:
            return True
        try:
            fd = self._open()
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing it lets go of the lock taken just to look
        return False

    @contextlib.contextmanager
    def hold(self, zone: str, stopped: Callable[[], bool]) -> Iterator[float]:
        """For a render of `zone`: wait for the lock and the memory (a large render only);
        yields the seconds waited. Gives up with `GateStopped` once `stopped()` is true."""
        if not self.large():
            yield 0.0
            return
        start = time.monotonic()
        try:
            fd = self._open()
        except OSError as exc:  # no lock file possible here: renders are not serialised
            emit(Event.SERVING_IMAGE_RENDER_WAIT, logging.WARNING, zone=zone,
                 reason=f"no render lock at {self.path}: {exc}", waited_s=0.0)
            yield 0.0
            return
        try:
            held = self._lock(fd, zone, stopped, start)
            self._memory(zone, stopped, start)
            waited = time.monotonic() - start
            # who holds it, for the others' event 1857 (not without it); best effort: a
            # read-only descriptor (another user's file), /dev/shm full
            with contextlib.suppress(OSError):
                if held:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()} {zone}\n".encode(), 0)
            yield waited
        finally:
            os.close(fd)  # the lock goes with the last descriptor (a child's has ended)

    def _open(self) -> int:
        """The lock file, never through a link: its default directory is world-writable, and
        a link planted there would have the holder line truncate and write another file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        except PermissionError:  # another user's (fs.protected_regular): flock needs no write
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise OSError(f"not a plain file with one link ({st.st_nlink})")
        return fd

    def _lock(self, fd: int, zone: str, stopped: Callable[[], bool], start: float) -> bool:
        """Take the lock (True), or give up on it once one holder has had it for `lock_wait`
        seconds (False): each new holder (its line in the file) starts a turn of its own."""
        told = False
        seen: str | None = None
        deadline = self.clock() + self.lock_wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if stopped():
                raise GateStopped(f"zone {zone}: stopped while waiting for the render lock")
            holder = _holder(fd)
            if holder != seen:  # another holder's turn (or the first look)
                seen, deadline = holder, self.clock() + self.lock_wait
            if self.clock() >= deadline:
                emit(Event.SERVING_IMAGE_RENDER_WAIT, logging.WARNING, zone=zone,
                     waited_s=round(time.monotonic() - start, 1),
                     reason=f"rendering without the render lock: held by {holder or 'unknown'}"
                            f" for {self.lock_wait:.0f} s")
                return False
            if not told:
                told = True
                emit(Event.SERVING_IMAGE_RENDER_WAIT, zone=zone, waited_s=0.0,
                     reason=f"another render on this host ({holder or 'unknown'})")
            time.sleep(POLL)

    def _memory(self, zone: str, stopped: Callable[[], bool], start: float) -> None:
        told = False
        deadline = time.monotonic() + self.memory_wait
        while True:
            need, free = self.private() + self.reserve, self.available()
            if free >= need:
                return
            if stopped():
                raise GateStopped(f"zone {zone}: stopped while waiting for memory")
            if time.monotonic() >= deadline:
                emit(Event.SERVING_IMAGE_RENDER_WAIT, logging.WARNING, zone=zone,
                     waited_s=round(time.monotonic() - start, 1),
                     reason=f"rendering without the memory for it: {free >> 20} MiB available,"
                            f" up to {need >> 20} MiB needed")
                return
            if not told:
                told = True
                emit(Event.SERVING_IMAGE_RENDER_WAIT, zone=zone,
                     waited_s=round(time.monotonic() - start, 1),
                     reason=f"memory: {free >> 20} MiB available, up to {need >> 20} MiB needed")
            time.sleep(POLL)


class GateStopped(Exception):
    """The builder was stopped while its render waited at the gate."""


def default_path() -> Path:
    """The lock file shared by the node processes of this host (or of this container)."""
    base = Path(DEFAULT_DIR)
    if not base.is_dir() or not os.access(base, os.W_OK):
        import tempfile
        base = Path(tempfile.gettempdir())
    return base / LOCK_NAME


def private_bytes() -> int:
    """This process's anonymous resident memory (what a forked child may copy)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


def available_bytes() -> int:
    """Memory this process may still take: MemAvailable, and its cgroups' limits less their
    use when a limit is set (cgroup v2)."""
    free = _meminfo_available()
    limit = _cgroup_headroom()
    return free if limit is None else min(free, limit)


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 1 << 62  # unknown: do not hold renders back


def _cgroup_headroom(proc: Path = Path("/proc/self/cgroup"),
                     root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The least headroom of this process's cgroup and of its ancestors that have a memory
    limit (cgroup v2: a limit on a slice or a pod above holds too): the limit less the use,
    less the inactive page cache the kernel reclaims first (memory.current counts the
    cache: image files written, journals, logs). None: no limit."""
    try:
        with open(proc, encoding="ascii") as f:
            lines = f.read().splitlines()
        rel = next(line[3:] for line in lines if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    least: int | None = None
    base = root / rel.lstrip("/")
    while True:
        room = _headroom(base)
        if room is not None:
            least = room if least is None else min(least, room)
        if base == root or root not in base.parents:
            return least
        base = base.parent


def _headroom(base: Path) -> int | None:
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        room = int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (base / "memory.stat").read_text().splitlines():
            if line.startswith("inactive_file "):
                room += int(line.split()[1])
    return max(0, room)


def _holder(fd: int) -> str:
    """Who holds the lock, from the file this process opened (its path may have been
    replaced meanwhile: opening a FIFO there to read would block)."""
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    pid, _, zone = text.partition(" ")
    return f"pid {pid}, zone {zone}" if pid else ""
