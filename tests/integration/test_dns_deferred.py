"""Answers computed by a task (UPDATE): `DnsServer` sends them when done, over each UDP back
end and TCP, and a pipelined query on the same TCP connection is answered after it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest

from node.server import DnsServer, ZoneTable, mmsg
from node.server.render import error_response
from node.server.wire import OPCODE_UPDATE, Query
from node.zones.model import snapshot_from_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"


def slow_hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str
              ) -> asyncio.Task[bytes | None]:
    async def work() -> bytes:
        await asyncio.sleep(0.05)  # stands in for the etcd round trips of an UPDATE
        return error_response(query.id, query.flags, dns.rcode.YXDOMAIN, query.question, None)

    return asyncio.get_running_loop().create_task(work())


@pytest.fixture(params=["batched", "transport"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[DnsServer]:
    if request.param == "batched" and not mmsg.available():
        pytest.skip("no recvmmsg/sendmmsg here")
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], udp_batch=request.param == "batched",
                    hooks={OPCODE_UPDATE: slow_hook})
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_a_deferred_answer_arrives_over_udp_and_tcp(server: DnsServer) -> None:
    port = server.addresses[0][1]
    u = dns.update.UpdateMessage("example.com.")
    u.add("x", 300, "A", "192.0.2.9")
    for fn in (dns.query.udp, dns.query.tcp):
        resp = await asyncio.to_thread(fn, u, "127.0.0.1", timeout=5, port=port)
        assert resp.rcode() == dns.rcode.YXDOMAIN and resp.id == u.id


async def test_pipelined_tcp_answers_stay_in_order(server: DnsServer) -> None:
    port = server.addresses[0][1]
    u = dns.update.UpdateMessage("example.com.")
    u.add("x", 300, "A", "192.0.2.9")
    q = dns.message.make_query("ns1.example.com.", "A")
    frames = b"".join(len(w).to_bytes(2, "big") + w for w in (u.to_wire(), q.to_wire()))

    def exchange() -> list[dns.message.Message]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(frames)
            out = []
            for _ in range(2):
                size = int.from_bytes(s.recv(2, socket.MSG_WAITALL), "big")
                out.append(dns.message.from_wire(s.recv(size, socket.MSG_WAITALL)))
            return out

    first, second = await asyncio.to_thread(exchange)
    assert (first.id, first.rcode()) == (u.id, dns.rcode.YXDOMAIN)
    assert second.id == q.id and second.answer
