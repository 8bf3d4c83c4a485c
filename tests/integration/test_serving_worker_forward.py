"""A serving worker (`node/serving/worker.py`) on a real UDP socket and a real channel whose
control end never answers: what it forwards (NOTIFY, UPDATE, TSIG-signed) stays bounded.

A flood of such messages (spoofed NOTIFYs, say) must not grow the worker's memory without
bound while the control process is slow: past `MAX_FORWARDED` waiting for an answer, a
forwarded datagram is dropped (counted), as a full socket buffer would drop it.
"""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.opcode

from node.serving import worker as worker_mod
from node.serving.channel import pair
from node.serving.worker import Worker
from tests.support.wait import async_wait_until

FLOOD = 3 * worker_mod.MAX_FORWARDED


async def test_forwarded_messages_waiting_for_the_control_process_are_bounded() -> None:
    control, theirs = pair()
    w = Worker({"listen": [["127.0.0.1", 0]], "max_udp_payload": 1232, "tcp_idle_timeout": 5.0,
                "max_tcp_connections": 10}, theirs.detach())
    w.channel.start()
    (host, port), = await w.dns.start()
    notify = dns.message.make_query("example.com.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    wire = notify.to_wire()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(FLOOD):
            client.sendto(wire, (host, port))
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the worker read: its socket buffer is finite
        await async_wait_until(lambda: w._next + w.dns.stats.dropped >= FLOOD, 20)
        assert len(w._pending) <= worker_mod.MAX_FORWARDED, (
            f"{len(w._pending)} forwarded messages held for a control process that is slow")
    finally:
        client.close()
        await w.dns.stop()
        w.channel.close()
        control.close()
