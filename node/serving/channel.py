"""`Channel`: one control process <-> serving worker link, a unix SOCK_SEQPACKET pair.

Owns the framing and the non-blocking I/O of that link, and nothing of what
the messages mean (`protocol.py` names them). Each message is one record: a
kind octet, then its payload; a TCP connection handed to the control process
travels as a file descriptor attached to its record (SCM_RIGHTS). Records
the kernel will not take right now wait in a queue and go out, in order,
when the socket is writable again. End of file (the peer died or closed)
calls `on_close` once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

MAX_RECORD = 200_000  # below the default unix socket buffer (net.core.wmem_max, 208 KiB)
MAX_FDS = 4

Handler = Callable[[bytes, list[int]], None]


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair; the second end is inheritable (it goes to a child process)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b.set_inheritable(True)
    return a, b


class Channel:
    """Records in and out of one end of a `pair()`, driven by the running loop."""

    def __init__(self, sock: socket.socket, on_message: Handler, on_close: Callable[[], None]
                 ) -> None:
        self.sock = sock
        sock.setblocking(False)
        self._on_message = on_message
        self._on_close = on_close
        self._queue: collections.deque[tuple[bytes, tuple[int, ...]]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, record: bytes, fds: Sequence[int] = ()) -> bool:
        """Queue one record (with `fds`, which the caller may close once this returns:
        they are sent at once or duplicated). False if the channel is closed."""
        if self.closed:
            return False
        if len(record) > MAX_RECORD:
            raise ValueError(f"channel record of {len(record)} octets is over {MAX_RECORD}")
        if self._queue or not self._try(record, fds):
            self._queue.append((record, tuple(os.dup(fd) for fd in fds)))
            if len(self._queue) == 1 and self._loop is not None:
                self._loop.add_writer(self.sock.fileno(), self._writable)
        return True

    def _try(self, record: bytes, fds: Sequence[int]) -> bool:
        try:
            if fds:
                socket.send_fds(self.sock, [record], list(fds))
            else:
                self.sock.send(record)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            log.debug("channel send failed: %s", exc)
            self.close()
        return True

    def _writable(self) -> None:
        while self._queue and not self.closed:
            record, fds = self._queue[0]
            if not self._try(record, fds):
                return
            self._queue.popleft()
            for fd in fds:
                os.close(fd)
        if self._loop is not None and not self.closed:
            self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(64):  # then give the loop back
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_RECORD, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("channel receive failed: %s", exc)
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self.close()
                return
            try:
                self._on_message(data, fds)
            except Exception:  # one bad record must not end the link (R9: logged here)
                log.exception("channel message of kind %r failed", data[:1])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
                self._loop.remove_writer(self.sock.fileno())
        for _, fds in self._queue:
            for fd in fds:
                os.close(fd)
        self._queue.clear()
        self.sock.close()
        self._on_close()
