"""The TCP idle timeout never closes a connection whose answer is still pending.

An UPDATE is answered by a task (it waits on etcd); under load that takes longer than
`dns.tcp_idle_timeout`. The connection is not idle while an answer is pending: the idle
clock starts when the last answer was sent. A connection that is truly idle is still closed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.update
import pytest

from node.server import DnsServer, ZoneTable
from node.server.render import error_response
from node.server.wire import OPCODE_UPDATE, Query
from node.zones.model import snapshot_from_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"
IDLE = 0.5  # the server's idle timeout
SLOW = 1.5  # how long the UPDATE's answer takes: three idle timeouts


def slow_hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str
              ) -> asyncio.Task[bytes | None]:
    async def work() -> bytes:
        await asyncio.sleep(SLOW)  # stands in for slow etcd round trips under load
        return error_response(query.id, query.flags, dns.rcode.YXDOMAIN, query.question, None)

    return asyncio.get_running_loop().create_task(work())


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=IDLE,
                    hooks={OPCODE_UPDATE: slow_hook})
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _read_frame(s: socket.socket) -> bytes:
    """One length-prefixed frame; b"" if the server closed the connection first."""
    head = s.recv(2, socket.MSG_WAITALL)
    if len(head) < 2:
        return b""
    return s.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def test_a_pending_update_answer_outlives_the_idle_timeout(server: DnsServer) -> None:
    port = server.addresses[0][1]
    u = dns.update.UpdateMessage("example.com.")
    u.add("x", 300, "A", "192.0.2.9")
    q = dns.message.make_query("ns1.example.com.", "A")

    def exchange() -> tuple[dns.message.Message, dns.message.Message, bool]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            wire = u.to_wire()
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            answer = _read_frame(s)
            assert answer, "the server closed the connection before the UPDATE's answer"
            # the connection is open for the next query once the answer is sent
            wire = q.to_wire()
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            second = _read_frame(s)
            assert second, "the server closed the connection right after the pending answer"
            # then, with nothing more asked, it is idle and closed
            closed = _closed_by_server(s, 20)
            return dns.message.from_wire(answer), dns.message.from_wire(second), closed

    first, second, closed = await asyncio.to_thread(exchange)
    assert (first.id, first.rcode()) == (u.id, dns.rcode.YXDOMAIN)
    assert second.id == q.id and second.answer
    assert closed, "an idle connection after the answers was never closed"


async def test_a_truly_idle_connection_is_still_closed(server: DnsServer) -> None:
    port = server.addresses[0][1]

    def idle() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            return _closed_by_server(s, 20)

    closed = await asyncio.to_thread(idle)
    assert closed, "a connection that never asked anything stayed open"
