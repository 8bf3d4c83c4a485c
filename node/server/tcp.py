"""One DNS-over-TCP (or TLS) connection of a `DnsServer`: framing, pipelining, idle, back-pressure.

Frames are a 2-octet length and a message; several pipelined queries on one
connection are answered in order. A connection with an answer pending or a
transfer being streamed is not idle: the idle clock starts when its last answer
was sent. A client that half-closes (EOF) still gets the answers to every
frame it sent, then the connection closes. One connection answers at most
`FRAMES_PER_TURN` frames per loop turn (reading paused until its backlog is
answered), so a long pipeline never holds the loop; behind a pending answer it
buffers at most `HOLD_OCTETS` before reading pauses. Answering stops at the transport's
write high-water mark and goes on when it drains, so a client that never reads
holds at most a buffer's worth of answers, and is closed once an idle timeout
passes with nothing taken. Zone transfers are streamed message by message from
a task. A responder's `HANDOFF` gives the connection to `DnsServer.handoff`
(serving workers hand it to the control process). Split from `listener.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.server.listener import DnsServer

# frames one connection answers per loop turn: a client pipelining thousands of queries
# (asyncio reads up to 256 KiB at once, and loopback's socket buffers take megabytes of
# answers before back-pressure starts) would otherwise hold the loop, and every UDP
# client and the etcd lease with it, for as long as it takes to answer them all
FRAMES_PER_TURN = 32
# octets a connection buffers while an answer is pending (UPDATE, a transfer): reading
# pauses there until that answer is sent (two frames of the largest size)
HOLD_OCTETS = 128 << 10
HANDOFF: Any = object()  # a responder's answer: the control process takes this TCP connection


class TcpProtocol(asyncio.Protocol):
    def __init__(self, server: DnsServer, tls: bool = False, handed: bytes = b"") -> None:
        self.server = server
        self.tls = tls  # DNS over TLS: a transfer here may satisfy require_tls_transfer
        # `handed`: octets another process read from an adopted connection and did not
        # answer. They are buffered before the transport exists, because a loop may start
        # reading the socket before its creator resumes (uvloop does): what it reads follows
        self.buf = bytearray(handed)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.last = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.stream: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.eof = False  # the client half-closed: answer what it sent, then close
        self.drained = False  # writing resumed since the last idle check (the client reads)
        self.buffered = -1  # octets waiting to be written at the last idle check
        self.held = False  # reading paused by `_process`: frames left for a later turn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.server.tcp_total(len(self.server.tcp_connections)) >= \
                self.server.max_tcp_connections:
            self.server.refuse_tcp()
            transport.abort()  # type: ignore[attr-defined]
            return
        self.server.tcp_connections.add(self)
        self.server.stats.tcp_open = len(self.server.tcp_connections)
        self.server.tcp_total(self.server.stats.tcp_open)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else ("", 0)
        loop = asyncio.get_running_loop()
        self.last = loop.time()
        self.timer = loop.call_later(self.server.tcp_idle_timeout, self._check_idle)
        if self.buf:  # handed octets (adopted): answered unless data_received came first
            loop.call_soon(self._go_on)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        left = self.last + self.server.tcp_idle_timeout - loop.time()
        transport = self.transport
        if left <= 0 and (self.stream is not None or (
                transport is not None and transport.get_write_buffer_size())):
            # an answer pending (UPDATE), a transfer being streamed or still being sent
            # to a slow reader: not idle, as long as the reader takes something; the clock
            # restarts when the last answer is sent. A client that took nothing for a whole
            # timeout while answers wait (writing paused, or not yet: the sockets' buffers
            # full and less than the high-water mark waiting) is closed as an idle one is
            buffered = transport.get_write_buffer_size() if transport is not None else 0
            stalled = buffered > 0 and not self.drained and buffered == self.buffered
            self.drained, self.buffered = False, buffered
            if stalled:  # `close` would wait for the buffer to be written: never
                if self.stream is not None:
                    self.stream.cancel()
                transport.abort()  # type: ignore[union-attr]
                return
            self.last = loop.time()
            left = self.server.tcp_idle_timeout
        if left <= 0:
            self.close()
        else:
            self.timer = loop.call_later(left, self._check_idle)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        self.buf += data
        if self.stream is None:
            self._process()
        elif len(self.buf) > HOLD_OCTETS and not self.held and self.transport is not None:
            self.held = True  # `_process`, after the pending answer, reads on
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        """The client sent all it will send (a half-close, or a close): its frames are still
        answered, including those that wait for a task or another process (UPDATE, transfers,
        a serving worker's handover); the connection closes after the last answer."""
        if self.tls:  # a TLS transport closes at EOF whatever this returns
            return False
        self.eof = True
        if self.stream is None and self.transport is not None:
            self._process()
        return True  # keep the transport open for the answers

    def _process(self) -> None:
        """Answer every complete frame in the buffer, in order (pipelining)."""
        buf = self.buf
        answer = self.server.responder.tcp
        transport = self.transport
        assert transport is not None
        writable = self.writable
        budget = FRAMES_PER_TURN
        # a client that does not read its answers gets no more of them: stop at the
        # transport's high-water mark (reading is paused too); `resume_writing` goes on
        while len(buf) >= 2 and writable.is_set() and not transport.is_closing():
            n = buf[0] << 8 | buf[1]
            if len(buf) < n + 2:
                break
            if not budget:  # the rest on a later turn: every other client gets one first
                self._hold(transport)
                return
            budget -= 1
            msg = bytes(buf[2 : n + 2])
            del buf[: n + 2]
            t0 = perf_counter_ns()
            try:
                resp = answer(msg, self.peer, self.tls)
            except Exception:
                self.server.log_error("tls" if self.tls else "tcp")
                continue
            if resp is None:
                continue
            if type(resp) is bytes:
                transport.write(len(resp).to_bytes(2, "big") + resp)
            elif type(resp) is list:
                for out in resp:
                    transport.write(len(out).to_bytes(2, "big") + out)
            elif resp is HANDOFF and self.server.handoff is not None:  # node/serving
                self.stream = asyncio.get_running_loop().create_task(
                    self.server.handoff(self, len(msg).to_bytes(2, "big") + msg))
                return
            elif isinstance(resp, asyncio.Future):  # UPDATE: later frames wait for it
                self.stream = asyncio.get_running_loop().create_task(self._later(resp))
                return
            else:  # a zone transfer: stream it, later frames wait for it
                self.stream = asyncio.get_running_loop().create_task(self._stream(resp))  # type: ignore[arg-type]
                return
            self.server.stats.observe(perf_counter_ns() - t0)
        if self.held and writable.is_set() and not transport.is_closing():
            self.held = False  # the backlog is answered: read on
            transport.resume_reading()
        if self.eof and writable.is_set():  # every frame the client sent is answered
            transport.close()  # after the answers still buffered are written

    def _hold(self, transport: asyncio.Transport) -> None:
        """Stop reading (the buffer holds enough to answer) and go on next turn."""
        if not self.held:
            self.held = True
            transport.pause_reading()
        asyncio.get_running_loop().call_soon(self._go_on)

    async def _stream(self, messages: Iterator[bytes] | AsyncIterator[bytes]) -> None:
        """Send a transfer message by message, yielding to the loop and to back-pressure
        (an asynchronous iterator: an IXFR whose steps are read from the journal file)."""
        transport = self.transport
        assert transport is not None
        try:
            async for out in _each(messages):
                if transport.is_closing():
                    return
                transport.write(len(out).to_bytes(2, "big") + out)
                self.last = asyncio.get_running_loop().time()
                await self.writable.wait()
                await asyncio.sleep(0)  # a turn for other clients between messages
        except Exception:
            self.server.log_error("tcp-xfr")
            self.close()
            return
        finally:
            self.stream = None
            self.last = asyncio.get_running_loop().time()  # idle from the last message on
        self._process()

    async def _later(self, answer: asyncio.Future[bytes | None]) -> None:
        """Send an answer computed by a task (UPDATE), then go on with pipelined frames."""
        try:
            resp = await answer
            transport = self.transport
            if resp is not None and transport is not None and not transport.is_closing():
                transport.write(len(resp).to_bytes(2, "big") + resp)
        except Exception:
            self.server.log_error("tcp-later")
        finally:
            self.stream = None
            self.last = asyncio.get_running_loop().time()  # idle from the answer on
        self._process()

    def pause_writing(self) -> None:
        self.writable.clear()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writable.set()
        self.drained = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            if self.stream is None and self.buf:  # frames left when writing paused
                asyncio.get_running_loop().call_soon(self._go_on)

    def _go_on(self) -> None:
        if self.stream is None and self.transport is not None:
            self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.tcp_connections.discard(self)
        self.server.stats.tcp_open = len(self.server.tcp_connections)
        self.server.tcp_total(self.server.stats.tcp_open)
        self.writable.set()  # a stream waiting for room sees the closed transport
        if self.timer is not None:
            self.timer.cancel()


async def _each(messages: Iterator[bytes] | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if isinstance(messages, AsyncIterator):
        try:
            async for out in messages:
                yield out
        finally:
            await messages.aclose()  # type: ignore[attr-defined]
    else:
        for out in messages:
            yield out
