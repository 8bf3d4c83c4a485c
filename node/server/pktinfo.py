"""UDP on a wildcard address (`0.0.0.0`, `::`): each answer leaves from the address asked.

A socket bound to a wildcard sends from whatever source address the kernel picks for
the route back (on loopback, 127.0.0.1 for any 127.0.0.0/8 destination), and clients
reject an answer from an address they did not ask ("got a response from 127.0.0.1
instead of 127.0.0.2"). This module owns the UDP loop of such sockets: it asks the
kernel for each datagram's destination (IP_PKTINFO / IPV6_RECVPKTINFO), receives with
`recvmsg`, and sends the answer with `sendmsg` carrying that address as IP_PKTINFO /
IPV6_PKTINFO ancillary data, so the answer's source is the address the client asked.

Wildcard binds use this non-batched path (one `recvmsg` and one `sendmsg` per query)
even where recvmmsg/sendmmsg (`mmsg.py`) are available: carrying a control buffer per
slot through the batched path would cost the hot path of specific-address binds, which
are the usual deployment and need none of it. Specific-address binds never come here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from time import perf_counter_ns

from node.server.responder import Responder, send_later
from node.server.stats import DnsStats

log = logging.getLogger(__name__)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; Python < 3.13 lacks the name
RECV_SIZE = 65535
ANCILLARY_SPACE = socket.CMSG_SPACE(20)  # room for an in_pktinfo (12) or in6_pktinfo (20)
MAX_PER_WAKEUP = 256  # then return to the loop so TCP and etcd get their turn
LATENCY_SAMPLE_MASK = 15  # as listener.py: one datagram in 16 is timed


def is_wildcard(host: str) -> bool:
    """True for an unspecified address (`0.0.0.0`, `::`), which needs this module."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def enable(sock: socket.socket) -> None:
    """Ask the kernel for each datagram's destination address (before `bind` or after)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)


def reply_ancillary(ancdata: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    """The ancillary data that makes an answer leave from the received datagram's destination.

    IPv4: `struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}`: the answer
    goes with ifindex 0 (the route decides) and spec_dst = the destination received.
    IPv6: `struct in6_pktinfo {in6_addr addr; unsigned ifindex}` is sent back as received.
    """
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            return [(socket.IPPROTO_IP, IP_PKTINFO, bytes(4) + data[8:12] + bytes(4))]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 20:
            return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, data[:20])]
    return []


class WildcardUdp:
    """Serves one non-blocking UDP socket bound to a wildcard (see `enable`)."""

    def __init__(self, sock: socket.socket, responder: Responder, stats: DnsStats,
                 on_error: Callable[[str], None]) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.responder = responder
        self.stats = stats
        self.on_error = on_error
        self.dropped_sends = 0
        self.n = 0

    def on_readable(self) -> None:
        """Loop reader callback: answer up to MAX_PER_WAKEUP datagrams."""
        recvmsg, answer = self.sock.recvmsg, self.responder.udp
        for _ in range(MAX_PER_WAKEUP):
            try:
                data, ancdata, _, addr = recvmsg(RECV_SIZE, ANCILLARY_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                log.debug("UDP receive error: %s", exc)
                continue
            self.n += 1
            t0 = 0 if self.n & LATENCY_SAMPLE_MASK else perf_counter_ns()
            try:
                resp = answer(data, addr[:2])
                if resp is None:
                    continue
                anc = reply_ancillary(ancdata)
                if isinstance(resp, asyncio.Future):  # UPDATE: answered when done
                    send_later(resp, lambda msg, to, anc=anc: self._send(msg, anc, to), addr)
                    continue
                for msg in (resp,) if type(resp) is bytes else resp:  # type: ignore[union-attr]
                    self._send(msg, anc, addr)
            except Exception:
                self.on_error("udp")
                continue
            if t0:
                self.stats.observe(perf_counter_ns() - t0)

    def _send(self, msg: bytes, anc: list[tuple[int, int, bytes]], addr: tuple) -> None:
        try:
            self.sock.sendmsg([msg], anc, 0, addr)
        except BlockingIOError:  # full buffer: dropped, UDP clients retry
            self.dropped_sends += 1
        except OSError as exc:  # unreachable, or a destination that is no source (broadcast)
            if anc:
                self._send(msg, [], addr)  # the kernel's choice of source, as without pktinfo
                return
            self.dropped_sends += 1
            log.debug("UDP send to %s failed: %s", addr, exc)
