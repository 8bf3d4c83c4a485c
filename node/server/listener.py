"""`DnsServer`: the UDP, TCP and TLS sockets of the DNS service (no DNS logic here).

DNS over TLS (RFC 7858; XoT, RFC 9103) listens on `tls_listen` with the given
`ssl.SSLContext` (`tls.py`) and uses the same TCP protocol (`tcp.py`): the same
framing, pipelining, idle timeout, back-pressure, and the same connection cap
(a TLS connection counts with the TCP ones once its handshake is done; the
handshake itself must finish within the idle timeout). Its queries reach the
`Responder` marked as TLS, which is what a zone's `require_tls_transfer` checks.

Owns binding (IPv4 and IPv6, port 0 allowed: UDP binds first and TCP takes
the same port), the asyncio protocols, TCP framing (2-octet length, several
pipelined queries per connection answered in order), the TCP idle timeout
(a connection with an answer pending or a transfer being sent is not idle: the
clock starts when its last answer was sent), the cap on concurrent
TCP connections (excess connections are closed at once and counted in
`dnscluster_dns_tcp_refused_total`; at start the process's soft open-files
limit is raised to hold the cap plus `FD_RESERVE`, and where the hard limit
does not allow it the cap is lowered to what fits, with an event), write back-pressure
(reading pauses while the send buffer is full; zone transfers are streamed
message by message from a task, so a large AXFR never blocks the loop), `reuse_port` (SO_REUSEPORT,
so several processes may share a port), and latency measurement around each
message (sampled 1 in 16 over UDP). UDP uses batched recvmmsg/sendmmsg
(`mmsg.py`) where the platform has them (`udp_batch=None`, the default), else
the loop's datagram transport; a wildcard bind (`0.0.0.0`, `::`) always uses
`pktinfo.py` (recvmsg/sendmsg with IP_PKTINFO) so each answer leaves from the
address the client asked. All DNS decisions are the `Responder`'s.
Serving workers (`node.serving`) give a TCP connection whose message their
responder answers with `HANDOFF` to `handoff`; the control process `adopt`s it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from node.events import Event, emit
from node.server import mmsg, pktinfo
from node.server.openfiles import fit_open_files
from node.server.responder import OpcodeHook, Responder, Response, send_later
from node.server.stats import DnsStats
from node.server.tcp import HANDOFF, TcpProtocol  # noqa: F401 (HANDOFF re-exported)
from node.server.xfrauth import Keyring

if TYPE_CHECKING:  # not imported at run time: see node/server/__init__.py
    from node.server.table import ZoneTable

log = logging.getLogger(__name__)
_STOP_GRACE = 1.0  # seconds stopping waits for TCP connections to close gracefully

UDP_RCVBUF = 4 << 20
# UDP answer latency is measured for one datagram in 16 (mask of the counter):
# two clock reads per datagram cost about 5% of the hot path's throughput
LATENCY_SAMPLE_MASK = 15
_BIND_ATTEMPTS = 20


class DnsServer:
    """Authoritative DNS over UDP and TCP on the given (host, port) addresses."""

    def __init__(
        self,
        table: ZoneTable,
        listen: Sequence[tuple[str, int]],
        *,
        max_udp_payload: int = 1232,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 1000,
        stats: DnsStats | None = None,
        hooks: Mapping[int, OpcodeHook] | None = None,
        reuse_port: bool = False,
        udp_batch: bool | None = None,
        tls_listen: Sequence[tuple[str, int]] = (),
        tls: ssl.SSLContext | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.reuse_port = reuse_port
        # recvmmsg/sendmmsg (node/server/mmsg.py) where available unless told otherwise
        self.udp_batch = mmsg.available() if udp_batch is None else udp_batch and mmsg.available()
        self.max_udp_payload = max(512, min(max_udp_payload, 65535))
        self.stats = stats if stats is not None else DnsStats()
        self.responder = Responder(
            table, max_udp_payload=max_udp_payload, stats=self.stats, hooks=hooks,
            keyring=keyring)
        self.listen = tuple(listen)
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.tcp_connections: set[TcpProtocol] = set()
        # this process's open TCP connections -> the node's (serving workers share the cap)
        self.tcp_total: Callable[[int], int] = lambda n: n
        self._udp: list[asyncio.DatagramTransport] = []
        self._batched: list[mmsg.BatchedUdp | pktinfo.WildcardUdp] = []
        self._tcp: list[asyncio.Server] = []
        self.addresses: list[tuple[str, int]] = []
        self.tls_listen = tuple(tls_listen) if tls is not None else ()
        self.tls = tls
        self.tls_addresses: list[tuple[str, int]] = []
        self.errors = 0
        # (protocol, the frame answered HANDOFF) -> gives the connection away (node/serving)
        self.handoff: Callable[[Any, bytes], Awaitable[None]] | None = None

    def handle(self, wire: bytes, client_addr: tuple[str, int], transport: str) -> Response:
        """One message's response, as either transport would send it (framing aside)."""
        return self.responder.handle(wire, client_addr, transport)

    async def start(self) -> list[tuple[str, int]]:
        """Bind every listen address; returns the actual (host, port) pairs."""
        loop = asyncio.get_running_loop()
        self.max_tcp_connections = fit_open_files(self.max_tcp_connections)
        try:
            for host, port in self.listen:
                self.addresses.append(await self._bind(loop, host, port))
            for host, port in self.tls_listen:
                self.tls_addresses.append(await self._bind_tls(loop, host, port))
        except BaseException:
            await self.stop()
            raise
        log.info("DNS listening on %s", ", ".join(f"{h}:{p}" for h, p in self.addresses))
        return list(self.addresses)

    async def _bind_tls(self, loop: asyncio.AbstractEventLoop, host: str, port: int
                        ) -> tuple[str, int]:
        """A DNS-over-TLS listener (TCP only); returns the bound (host, port)."""
        server = await loop.create_server(
            lambda: TcpProtocol(self, tls=True), host, port, ssl=self.tls,
            ssl_handshake_timeout=self.tcp_idle_timeout, reuse_address=True,
            reuse_port=self.reuse_port or None, backlog=1024)
        self._tcp.append(server)
        bound = server.sockets[0].getsockname()
        log.info("DNS over TLS listening on %s:%d", host, bound[1])
        return host, bound[1]

    async def _bind(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(_BIND_ATTEMPTS):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                if self.reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:  # like asyncio's TCP sockets: "::" is IPv6 only
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                wildcard = pktinfo.is_wildcard(host)
                if wildcard:  # answers must leave from the address asked (pktinfo.py)
                    pktinfo.enable(sock)
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            bound = sock.getsockname()[1]
            try:
                server = await loop.create_server(
                    lambda: TcpProtocol(self),
                    host,
                    bound,
                    reuse_address=True,
                    reuse_port=self.reuse_port or None,
                    backlog=1024,
                )
            except OSError:
                sock.close()
                if port == 0 and attempt + 1 < _BIND_ATTEMPTS:
                    continue  # the TCP side of a random UDP port was taken: try another
                raise
            self._tcp.append(server)
            if wildcard:
                wild = pktinfo.WildcardUdp(sock, self.responder, self.stats, self.log_error)
                loop.add_reader(sock.fileno(), wild.on_readable)
                self._batched.append(wild)
            elif self.udp_batch:
                batched = mmsg.BatchedUdp(
                    sock, self.responder, self.stats, self.log_error, self.max_udp_payload
                )
                loop.add_reader(sock.fileno(), batched.on_readable)
                self._batched.append(batched)
            else:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), sock=sock
                )
                self._udp.append(transport)
            return host, bound
        raise OSError(f"could not bind {host}:{port}")  # pragma: no cover

    async def adopt(self, sock: socket.socket, data: bytes) -> None:
        """Serve a TCP connection another process accepted, `data` its unanswered octets:
        they come before anything read from `sock` here (`TcpProtocol`'s `handed`). One
        that cannot be adopted is closed, counted and logged (`handoff_failed`)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        try:
            await loop.connect_accepted_socket(lambda: TcpProtocol(self, handed=data), sock=sock)
        except OSError as exc:  # the client reset it meanwhile, or out of descriptors
            sock.close()
            self.handoff_failed(Event.SERVING_TCP_NOT_ADOPTED, reason=f"{type(exc).__name__}: "
                                f"{exc}", octets=len(data))

    async def stop(self) -> None:
        """Close every socket and TCP connection."""
        for transport in self._udp:
            transport.close()
        if self._batched:
            loop = asyncio.get_running_loop()
            for batched in self._batched:
                loop.remove_reader(batched.fd)
                batched.sock.close()
            self._batched.clear()
        for server in self._tcp:
            server.close()
        for conn in list(self.tcp_connections):
            conn.close()
        # A client that stops reading (or a TLS peer that never answers close_notify)
        # would hold a graceful close open; stopping must not wait on clients.
        try:
            async with asyncio.timeout(_STOP_GRACE):
                for server in self._tcp:
                    await server.wait_closed()
        except TimeoutError:
            for conn in list(self.tcp_connections):
                if conn.transport is not None:
                    conn.transport.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_GRACE):
                    for server in self._tcp:
                        await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    async def run(self) -> None:
        """Serve until cancelled (STYLE R11)."""
        if not self.addresses:
            await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    def refuse_tcp(self) -> None:
        """Count a connection closed at the cap (an event for the first and every 1000th)."""
        stats = self.stats
        stats.tcp_refused += 1
        if stats.tcp_refused == 1 or stats.tcp_refused % 1000 == 0:
            emit(Event.DNS_TCP_REFUSED, logging.WARNING, cap=self.max_tcp_connections,
                 refused=stats.tcp_refused)

    def handoff_failed(self, event: Event, **fields: Any) -> None:
        """Count a TCP connection closed unserved in a handover between processes (a serving
        worker's `event` 1851, the control process's 1852); an event for the first ten and
        every 1000th, with why."""
        stats = self.stats
        stats.tcp_handoff_failed += 1
        if stats.tcp_handoff_failed <= 10 or stats.tcp_handoff_failed % 1000 == 0:
            emit(event, logging.WARNING, count=stats.tcp_handoff_failed, **fields)

    def log_error(self, where: str) -> None:
        self.errors += 1
        if self.errors <= 10 or self.errors % 1000 == 0:
            emit(Event.DNS_HANDLER_ERROR, logging.ERROR, where=where, count=self.errors)
            log.exception("DNS handler error (%s), %d so far", where, self.errors)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.answer = server.responder.udp
        self.stats = server.stats
        self.n = 0
        self.sendto: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sendto = transport.sendto  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.n += 1
        if self.n & LATENCY_SAMPLE_MASK:
            try:
                resp = self.answer(data, addr)
                if resp is not None:
                    if type(resp) is list:
                        for msg in resp:
                            self.sendto(msg, addr)
                    elif isinstance(resp, asyncio.Future):  # UPDATE: answered when done
                        send_later(resp, self.sendto, addr)
                    else:
                        self.sendto(resp, addr)
            except Exception:
                self.server.log_error("udp")
            return
        self._timed(data, addr)

    def _timed(self, data: bytes, addr: tuple[str, int]) -> None:
        """`datagram_received` with its latency recorded (one datagram in 16)."""
        t0 = perf_counter_ns()
        try:
            resp = self.answer(data, addr)
            if isinstance(resp, asyncio.Future):
                send_later(resp, self.sendto, addr)
            elif resp is not None:
                for msg in resp if type(resp) is list else (resp,):
                    self.sendto(msg, addr)
        except Exception:
            self.server.log_error("udp")
            return
        self.stats.observe(perf_counter_ns() - t0)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)
