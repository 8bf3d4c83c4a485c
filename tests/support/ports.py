"""Loopback ports for test servers: never handed out twice in one test process, and never
from the kernel's ephemeral range.

Binding port 0 and closing the socket (the old way) gave a port the kernel may
hand out again at once: to the next call, so two processes of one cluster were
given the same port, or to an outgoing connection (every node's connections to
etcd take ephemeral ports). Here a port comes from below the ephemeral range
(`/proc/sys/net/ipv4/ip_local_port_range`), where the kernel never picks one
by itself, in random order, is probed free for TCP and UDP on the host, and is
remembered so this process never hands it out again. Parallel test workers
(pytest-xdist) draw from disjoint slices of the pool. Another process may still
take it before our server binds it (other test runs share the machine), so the
fixtures also retry a start that failed on a bind with fresh ports
(`tests/support/nodes.py`, `tests/support/etcd.py`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
from pathlib import Path

_LOW = 10000  # below this are well-known services' habits (etcd 2379, 5301, 8953, ...)
_handed: set[int] = set()
_lock = threading.Lock()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ports it picks itself (bind to 0, connect)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _whole_pool() -> range:
    low, high = ephemeral_range()
    if low - _LOW >= 2000:
        return range(_LOW, low)
    if 65535 - high >= 2000:
        return range(high + 1, 65536)
    return range(1024, 65536)  # every port is ephemeral: the memory of handed ports still holds


def _pool() -> range:
    """This test process's ports: with pytest-xdist, each worker its own slice of the pool.

    A worker remembers only what it handed out itself; without slices, a port one
    worker's node released for a restart on the same ports (kill -9, start) could be
    probed free and handed to a new server by the other worker.
    """
    whole = _whole_pool()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        index = int(worker.removeprefix("gw"))
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        return whole
    if count <= 1 or not 0 <= index < count:
        return whole
    size = len(whole) // count
    start = whole.start + index * size
    return range(start, start + size)


def _free(host: str, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, port))
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP on `host`, never returned before by this process."""
    pool = _pool()
    with _lock:
        for _ in range(2000):
            port = random.randrange(pool.start, pool.stop)
            if port in _handed:
                continue
            if _free(host, port):
                _handed.add(port)
                return port
    raise RuntimeError(f"no free port in {pool.start}-{pool.stop - 1} on {host}")


def bind_clash(log_text: str) -> bool:
    """True if a server's log says it could not bind an address someone else holds."""
    return "Address already in use" in log_text or "address already in use" in log_text \
        or "cannot bind" in log_text
