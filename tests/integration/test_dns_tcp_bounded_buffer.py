"""A client that keeps sending while its connection waits (an UPDATE on etcd, a transfer
being streamed) cannot grow the connection's buffer without bound.

Frames that come while an answer is pending wait in the connection's buffer, answered in
order once it is sent; reading went on meanwhile, so a client streaming megabytes behind
one slow UPDATE made the node hold them all. Reading now pauses once the buffer holds
`HOLD_OCTETS`, and resumes when the pending answer is sent. Run on both loops the node uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

import dns.message
import dns.rcode
import dns.update
import pytest

from node.server import DnsServer, ZoneTable
from node.server.render import error_response
from node.server.tcp import HOLD_OCTETS
from node.server.wire import OPCODE_UPDATE, Query
from node.zones.model import snapshot_from_text
from tests.support.loops import event_loops
from tests.support.wait import async_wait_until

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"
FLOOD = 32 << 20  # what the client tries to send behind its UPDATE


async def _run() -> tuple[int, int]:
    release = asyncio.Event()

    def slow_hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str
                  ) -> asyncio.Task[bytes | None]:
        async def work() -> bytes:
            await release.wait()  # stands in for etcd round trips
            return error_response(query.id, query.flags, dns.rcode.REFUSED, query.question,
                                  None)

        return asyncio.get_running_loop().create_task(work())

    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=60.0,
                    hooks={OPCODE_UPDATE: slow_hook})
    await srv.start()
    u = dns.update.UpdateMessage("example.com.", id=1).to_wire()
    q = dns.message.make_query("ns1.example.com.", "A", id=2).to_wire()
    frame = len(q).to_bytes(2, "big") + q
    sent = [0]
    stop = threading.Event()

    def client() -> None:
        with socket.create_connection(("127.0.0.1", srv.addresses[0][1]), timeout=60) as s:
            s.sendall(len(u).to_bytes(2, "big") + u)
            s.setblocking(False)
            chunk = frame * 2000
            while sent[0] < FLOOD and not stop.is_set():
                with contextlib.suppress(BlockingIOError):
                    sent[0] += s.send(chunk)
                stop.wait(0.001)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    largest = 0
    loop = asyncio.get_running_loop()
    quiet_since, last = loop.time(), -1

    def stuck_or_done() -> bool:
        """The client is stuck (its socket buffers full) or sent everything; the largest
        buffer the server held is sampled meanwhile."""
        nonlocal largest, quiet_since, last
        for proto in srv.tcp_connections:
            largest = max(largest, len(proto.buf))
        if sent[0] != last:
            quiet_since, last = loop.time(), sent[0]
        return sent[0] >= FLOOD or loop.time() - quiet_since > 1.0

    try:
        await async_wait_until(stuck_or_done, 20, interval=0.01,
                               message="the client neither stalled nor finished")
    finally:
        stop.set()
        release.set()
        await asyncio.to_thread(thread.join, 30)
        await srv.stop()
    return largest, sent[0]


@pytest.mark.parametrize("loop", event_loops(), ids=lambda p: p[0])
def test_frames_behind_a_pending_answer_are_bounded(
        loop: tuple[str, Callable[[], asyncio.AbstractEventLoop]]) -> None:
    with asyncio.Runner(loop_factory=loop[1]) as runner:
        largest, sent = runner.run(_run())
    assert sent < FLOOD, f"the client sent all {sent} octets: nothing held it back"
    assert largest <= HOLD_OCTETS + (256 << 10), f"{largest} octets buffered"
