"""A TCP client that pipelines thousands of queries cannot hold the loop that answers UDP.

Each `data_received` used to answer every complete frame it had read (asyncio reads up
to 256 KiB at a time: ~7,000 small queries) before the loop could run anything else, and
the kernel's socket buffers on loopback take megabytes of answers before the transport's
back-pressure starts. Fifty connections doing that held a node's loop for 13-15 s on a
loaded machine: its UDP answers stopped and its etcd lease keep-alive was late
(`tests/cluster/test_hostile_input.py::test_slow_tcp_writers_do_not_stop_udp_answers`
failed under load). A connection now answers at most `FRAMES_PER_TURN` frames per loop
turn, reading paused until its backlog is answered, every frame still answered in order.
Run on both loops the node uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import dns.message
import pytest

from node.server import DnsServer, ZoneTable
from node.server.tcp import FRAMES_PER_TURN
from node.zones.model import snapshot_from_text
from tests.support.loops import event_loops
from tests.support.serving import send_and_half_close

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"
QUERIES = 20_000



async def _run() -> tuple[list[int], int]:
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=60.0)
    await srv.start()
    answered = [0]
    real = srv.responder.tcp

    def counting(*args: object) -> object:
        answered[0] += 1
        return real(*args)  # type: ignore[arg-type]

    class Counting:  # the responder has slots: wrap it (TCP reads only `tcp` from it)
        tcp = staticmethod(counting)

        def __getattr__(self, name: str) -> object:
            return getattr(real.__self__, name)  # type: ignore[attr-defined]

    srv.responder = Counting()  # type: ignore[assignment]
    frames = b"".join(
        len(w).to_bytes(2, "big") + w
        for w in (dns.message.make_query("ns1.example.com.", "A", id=i % 65536).to_wire()
                  for i in range(QUERIES)))
    longest = 0  # answers made within one loop turn, at most
    done = False

    async def turns() -> None:
        nonlocal longest
        seen = answered[0]
        while not done:
            await asyncio.sleep(0)  # one loop turn: whatever else is ready runs meanwhile
            longest = max(longest, answered[0] - seen)
            seen = answered[0]

    ticker = asyncio.get_running_loop().create_task(turns())
    try:
        ids = await asyncio.wait_for(
            asyncio.to_thread(send_and_half_close, srv.addresses[0][1], frames), 120)
    finally:
        done = True
        await ticker
        await srv.stop()
    return ids, longest


@pytest.mark.parametrize("loop", event_loops(), ids=lambda p: p[0])
def test_a_long_pipeline_is_answered_a_turn_at_a_time(
        loop: tuple[str, Callable[[], asyncio.AbstractEventLoop]]) -> None:
    with asyncio.Runner(loop_factory=loop[1]) as runner:
        ids, longest = runner.run(_run())
    assert ids == [i % 65536 for i in range(QUERIES)], "every frame answered, in order"
    # one connection: one turn answers at most its budget (twice: a read and a resumption
    # may both come due in the same turn)
    assert longest <= 2 * FRAMES_PER_TURN, f"{longest} answers in one loop turn"
