"""A client that half-closes its TCP connection still gets every answer, then the close.

Sending the queries and then `shutdown(SHUT_WR)` is legal TCP: the client says it sends
nothing more, and reads on. An answer computed by a task (UPDATE: it waits on etcd) used to
be lost: the transport closed at EOF, before the task ended. The same close dropped a
connection a serving worker was handing over (`test_handoff_large`). Run on both loops the
node uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import dns.message
import dns.rcode
import dns.update
import pytest

from node.server import DnsServer, ZoneTable
from node.server.render import error_response
from node.server.wire import OPCODE_UPDATE, Query
from node.zones.model import snapshot_from_text
from tests.support.loops import event_loops
from tests.support.serving import send_and_half_close

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"


def slow_hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str
              ) -> asyncio.Task[bytes | None]:
    async def work() -> bytes:
        await asyncio.sleep(0.3)  # stands in for etcd round trips
        return error_response(query.id, query.flags, dns.rcode.YXDOMAIN, query.question, None)

    return asyncio.get_running_loop().create_task(work())



async def _half_close() -> list[int]:
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=30.0,
                    hooks={OPCODE_UPDATE: slow_hook})
    await srv.start()
    u = dns.update.UpdateMessage("example.com.", id=1)
    u.add("x", 300, "A", "192.0.2.9")
    q = dns.message.make_query("ns1.example.com.", "A", id=2)
    frames = b"".join(len(w).to_bytes(2, "big") + w for w in (u.to_wire(), q.to_wire()))
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(send_and_half_close, srv.addresses[0][1], frames), 25)
    finally:
        await srv.stop()


@pytest.mark.parametrize("loop", event_loops(), ids=lambda p: p[0])
def test_a_half_closed_connection_gets_its_pending_answers(
        loop: tuple[str, Callable[[], asyncio.AbstractEventLoop]]) -> None:
    with asyncio.Runner(loop_factory=loop[1]) as runner:
        got = runner.run(_half_close())
    assert got == [1, 2], f"answers before the server closed: {got}"
