"""A serving worker process: answers DNS from zone images, hands the rest to the control process.

Started by the control process (`supervisor.py`) as `python -m node.serving`
with its settings as JSON and one end of a `Channel`. It owns an
`ImageTable`, a `DnsServer` bound with SO_REUSEPORT to the node's UDP/TCP
addresses (after it has applied the current zone set, so a restarted worker
never answers REFUSED for a zone it has not opened yet), and nothing else:
no etcd, no journals, no keys.

What it does not answer itself (`needs_control`: AXFR/IXFR, UPDATE, NOTIFY
and other opcodes, TSIG-signed messages) goes to the control process:
a UDP message is forwarded with its client address and the answer comes
back to be sent from this worker's socket; a TCP connection is handed over
whole (its fd, SCM_RIGHTS) with the frames read and not yet answered, once
what was already answered on it has been written out. The worker exits when
the channel closes (the control process is gone) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import dns.message
import dns.rrset

from node import gcwatch, looplag
from node.clock import SYSTEM_CLOCK
from node.events import Event, emit, set_context
from node.image import ImageTable, ZoneImage
from node.priority import request_short_slice
from node.server.listener import HANDOFF, DnsServer
from node.server.responder import Answer, Responder
from node.server.wire import OPCODE_QUERY, TYPE_AXFR, TYPE_IXFR, Query, parse_query
from node.serving import protocol
from node.serving.channel import MAX_RECORD, Channel
from node.serving.realtime import Realtime
from node.serving.tcpcount import TcpCounts

log = logging.getLogger(__name__)

STATS_INTERVAL = 1.0  # seconds between counter reports to the control process
FORWARD_TIMEOUT = 30.0  # a forwarded UDP message the control process never answers is dropped
# forwarded UDP messages waiting for an answer at most; more are dropped, as a full socket
# buffer drops them (a NOTIFY flood must not grow the worker, nor delay its zone acks)
MAX_FORWARDED = 1000
SLOW_OP = 0.02  # seconds: a zone operation that held the loop this long is reported (1869)
IDENTITY_QNAME = b"\x02id\x06server\x00"  # id.server. CH TXT (test-only: testing.worker_identity)


def needs_control(query: Query) -> bool:
    """True for messages only the control process can answer (journals, hooks, keys)."""
    return (query.opcode != OPCODE_QUERY or query.qtype in (TYPE_AXFR, TYPE_IXFR)
            or query.tsig)


class WorkerResponder(Responder):
    """The `Responder` of a worker: its slow path sends control-process work away."""

    __slots__ = ("forward",)

    def __init__(self, table: Any, *, forward: Any, **kwargs: Any) -> None:
        super().__init__(table, **kwargs)
        self.forward = forward

    def _slow(self, data: bytes, addr: tuple[str, int], tcp: bool, tls: bool = False) -> Answer:
        try:
            query = parse_query(data)
        except Exception:  # the parent's _slow answers FORMERR & co.
            query = None
        if query is not None and needs_control(query):
            return HANDOFF if tcp else self.forward(data, addr)
        return super()._slow(data, addr, tcp, tls)


class IdentityResponder(WorkerResponder):
    """Test-only (`testing.worker_identity`): `id.server. CH TXT` answers "pid N"."""

    __slots__ = ()

    def fast_udp(self, data: bytes) -> bytes | None:
        if data[12:12 + len(IDENTITY_QNAME)].lower() == IDENTITY_QNAME:
            return _identity(data)
        return super().fast_udp(data)

    def tcp(self, data: bytes, addr: tuple[str, int], tls: bool = False) -> Answer:
        if data[12:12 + len(IDENTITY_QNAME)].lower() == IDENTITY_QNAME:
            return _identity(data)
        return super().tcp(data, addr, tls)


def _identity(data: bytes) -> bytes:
    """`id.server. CH TXT` -> "pid N" of this worker (test-only)."""
    query = dns.message.from_wire(data)
    resp = dns.message.make_response(query)
    resp.answer.append(dns.rrset.from_text("id.server.", 0, "CH", "TXT", f'"pid {os.getpid()}"'))
    return resp.to_wire()


class Worker:
    """One serving process's state: table, listener, channel, forwarded requests."""

    def __init__(self, settings: dict[str, Any], channel_fd: int) -> None:
        self.settings = settings
        self.table = ImageTable()
        self.dns = DnsServer(
            self.table, [tuple(a) for a in settings["listen"]],  # type: ignore[misc]
            max_udp_payload=settings["max_udp_payload"],
            tcp_idle_timeout=settings["tcp_idle_timeout"],
            max_tcp_connections=settings["max_tcp_connections"], reuse_port=True)
        responder = IdentityResponder if settings.get("identity") else WorkerResponder
        self.dns.responder = responder(
            self.table, forward=self.forward, max_udp_payload=settings["max_udp_payload"],
            stats=self.dns.stats)
        self.dns.handoff = self.hand_off
        if "tcp_counts_fd" in settings:  # the node's TCP cap, counted with the other workers
            self.dns.tcp_total = TcpCounts(settings["tcp_counts_fd"], settings["workers"]
                                           ).counter(settings["index"])
        self.channel = Channel(socket.socket(fileno=channel_fd), self.on_message, self.on_close)
        self.stop = asyncio.Event()
        self._next = 0
        self._pending: dict[int, asyncio.Future[bytes | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._bases: dict[bytes, ZoneImage] = {}  # per zone: the full image overlays apply to
        self.realtime: Realtime | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        self.channel.start()
        reporter = loop.create_task(self._report())
        lag = loop.create_task(looplag.watch(f"worker {os.getpid()}"))  # EVENT_LOOP_STALLED
        # SCHED_FIFO while it answers little: it never waits behind the node's heavy work
        self.realtime = Realtime() if self.settings.get("realtime", True) else None
        rt = loop.create_task(self.realtime.run()) if self.realtime is not None else None
        try:
            await self.stop.wait()
        finally:
            reporter.cancel()
            lag.cancel()
            if rt is not None:
                rt.cancel()
            await self.dns.stop()
            self.channel.close()

    # --- from the control process ----------------------------------------------------------

    def on_message(self, record: bytes, fds: list[int]) -> None:
        for fd in fds:  # nothing sent this way carries descriptors
            os.close(fd)
        kind = record[:1]
        if kind == protocol.ANSWER:
            rid, message = protocol.split_answer(record)
            fut = self._pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(message)
            return
        if kind == protocol.BIND:
            self._spawn(self._bind())
            return
        seq, payload = protocol.split_op(record)
        started = SYSTEM_CLOCK.monotonic()
        try:
            if kind == protocol.INSTALL:
                self._install(payload.decode())
            elif kind == protocol.REMOVE:
                self.table.remove(payload)
                self._bases.pop(payload, None)
            elif kind == protocol.HOLD:
                self.table.hold(payload)
        except Exception:  # a zone that cannot be opened must not end the worker (R9)
            log.exception("zone operation %r %d failed", kind, seq)
        self.channel.send(protocol.ack(seq))
        held = SYSTEM_CLOCK.monotonic() - started
        if held >= SLOW_OP:  # no query was answered meanwhile: line it up with slow answers
            emit(Event.SERVING_WORKER_OP_SLOW, logging.WARNING, kind=kind.decode(),
                 ms=round(held * 1000, 1))

    def _install(self, payload: str) -> None:
        """`path` (a full image) or `overlay\\nbase` (`images.py`)."""
        path, _, base_path = payload.partition("\n")
        if not base_path:
            image = ZoneImage.open(path)
            self._bases[image.origin] = image
            gcwatch.settle()  # the collector never visits what lives on (node/gcwatch.py)
        else:
            base = next((b for b in self._bases.values() if str(b.path) == base_path), None)
            if base is None:
                base = ZoneImage.open(base_path)
                self._bases[base.origin] = base
            image = ZoneImage.open(path, base=base)
        if not self.table.install(image):  # older than served (and released): keep the base
            served = self.table.get(image.origin)
            if served is not None:
                self._bases[image.origin] = served.full

    def on_close(self) -> None:
        self.stop.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()

    async def _bind(self) -> None:
        gcwatch.settle()  # modules and zones loaded: later collections visit only new objects
        try:
            bound = await self.dns.start()
        except OSError as exc:
            log.error("serving worker cannot bind: %s", exc)
            self.stop.set()
            os._exit(3)  # the supervisor restarts it
        emit(Event.SERVING_WORKER_LISTENING, pid=os.getpid(),
             addresses=[f"{h}:{p}" for h, p in bound])
        self.channel.send(protocol.as_json(protocol.LISTENING,
                                           {"pid": os.getpid(), "addresses": bound}))

    # --- to the control process ------------------------------------------------------------

    def forward(self, data: bytes, addr: tuple[str, int]) -> asyncio.Future[bytes | None]:
        """A UDP message for the control process; the future is its answer."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes | None] = loop.create_future()
        if len(self._pending) >= MAX_FORWARDED:
            self.dns.stats.dropped += 1
            fut.set_result(None)
            return fut
        self._next = (self._next + 1) & 0xFFFFFFFF
        rid = self._next
        if not self.channel.send(protocol.udp(rid, addr, data)):
            fut.set_result(None)
            return fut
        self._pending[rid] = fut
        loop.call_later(FORWARD_TIMEOUT, self._expire, rid)
        return fut

    def _expire(self, rid: int) -> None:
        fut = self._pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)  # dropped: the client retries

    async def hand_off(self, proto: Any, first: bytes) -> None:
        """Give a TCP connection (listener protocol `proto`) to the control process. One that
        cannot be handed over is closed, counted and logged with why (`handoff_failed`)."""
        transport = proto.transport
        if transport is None or transport.is_closing():  # the client closed or reset it
            log.debug("TCP connection from %s closed before its handover", proto.peer)
            return
        if transport.get_write_buffer_size():  # answers already given go out first
            transport.set_write_buffer_limits(high=0, low=0)
            await proto.writable.wait()
            if transport.is_closing():
                log.debug("TCP connection from %s closed before its handover", proto.peer)
                return
        transport.pause_reading()  # nothing more is read here: the rest is the socket's
        pending = first + bytes(proto.buf)
        proto.buf.clear()
        try:
            reason = self._send_connection(transport.get_extra_info("socket"), pending)
        except Exception as exc:  # never leave the connection open and unserved (R9)
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            self.dns.handoff_failed(Event.SERVING_TCP_NOT_HANDED, reason=reason,
                                    peer=f"{proto.peer[0]}:{proto.peer[1]}",
                                    octets=len(pending))
        transport.abort()  # our descriptor only: the control process holds its own

    def _send_connection(self, sock: Any, pending: bytes) -> str | None:
        """Send the connection's fd and `pending` (its unanswered octets); why not, or None."""
        if sock is None:
            return "the transport has no socket"
        if len(pending) < MAX_RECORD - 1:
            sent = self.channel.send(protocol.TCP + pending, [sock.fileno()])
        else:  # more than a record holds (pipelined large frames): the octets in a memfd
            spill = protocol.spill(pending)
            try:
                sent = self.channel.send(protocol.TCP, [sock.fileno(), spill])
            finally:
                os.close(spill)
        return None if sent else "the channel to the control process is closed"

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            value = protocol.stats_value(self.dns.stats)
            if self.realtime is not None:
                value["realtime"] = self.realtime.state()
            self.channel.send(protocol.as_json(protocol.STATS, value))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.serving")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--settings", required=True, help="JSON from the control process")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)
    # the daemon's log format (node/daemon.py setup_logging), without importing the daemon
    logging.basicConfig(level=getattr(logging, settings.get("log_level", "INFO").upper()),
                        stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.Formatter.converter = time.gmtime
    set_context(node=settings.get("node_id", ""), worker=settings.get("index", 0))
    gcwatch.install()
    request_short_slice()  # a waking worker goes before the node's heavy work (node/priority.py)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def serve() -> None:
        await Worker(settings, args.channel_fd).run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
