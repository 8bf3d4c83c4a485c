"""A UDP listener on a wildcard address answers from the address each query was sent to.

Without IP_PKTINFO the kernel picks the answer's source address (127.0.0.1 for any
127.0.0.0/8 destination), and a client such as dnspython rejects it ("got a response from
127.0.0.1 instead of 127.0.0.2"). A wildcard may only be bound where it exposes nothing,
so the real tests run inside a private network namespace (`unshare -rn`: its own loopback
and no other interface); the outer test starts pytest there on the inner tests.
"""

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
from tests.support.netns import inner, outer, run_inner_tests

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"
ASKED = ("127.0.0.2", "127.0.0.3", "127.0.0.1")


@outer
def test_in_a_private_network_namespace() -> None:
    run_inner_tests(__file__, timeout=300)


def update_hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str
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
    srv = DnsServer(table, [("0.0.0.0", 0), ("::", 0)], udp_batch=request.param == "batched",
                    hooks={OPCODE_UPDATE: update_hook})
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _ask(wire: bytes, host: str, port: int) -> tuple[bytes, str]:
    """One datagram to host:port; the answer and the address it came from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(wire, (host, port))
        data, source = s.recvfrom(65535)
        return data, source[0]


@inner
async def test_inner_each_answer_comes_from_the_address_asked(server: DnsServer) -> None:
    port = server.addresses[0][1]
    for host in ASKED:
        q = dns.message.make_query("ns1.example.com.", "A")
        data, source = await asyncio.to_thread(_ask, q.to_wire(), host, port)
        assert source == host, f"asked {host}, answered from {source}"
        assert dns.message.from_wire(data).id == q.id
        # and dnspython, which checks the source, takes it
        resp = await asyncio.to_thread(dns.query.udp, q, host, timeout=10, port=port)
        assert resp.answer


@inner
async def test_inner_a_deferred_update_answer_comes_from_the_address_asked(
        server: DnsServer) -> None:
    port = server.addresses[0][1]
    for host in ASKED[:2]:
        u = dns.update.UpdateMessage("example.com.")
        u.add("x", 300, "A", "192.0.2.9")
        data, source = await asyncio.to_thread(_ask, u.to_wire(), host, port)
        assert source == host, f"asked {host}, answered from {source}"
        assert dns.message.from_wire(data).rcode() == dns.rcode.YXDOMAIN


@inner
async def test_inner_ipv6_wildcard_answers_from_the_address_asked(server: DnsServer) -> None:
    port = next(p for h, p in server.addresses if h == "::")
    q = dns.message.make_query("ns1.example.com.", "A")
    data, source = await asyncio.to_thread(_ask, q.to_wire(), "::1", port)
    assert source == "::1"
    assert dns.message.from_wire(data).answer
