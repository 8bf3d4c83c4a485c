"""A TCP connection a serving worker cannot hand over is closed, counted and logged with why.

The worker (`node/serving/worker.py`) runs on a real TCP socket and a real channel. When the
channel to the control process is gone, a connection carrying a NOTIFY cannot move: the
worker closes it (the client sees the close at once, not after an idle timeout), counts it in
`dnscluster_dns_tcp_handoff_failures_total` and emits `SERVING_TCP_NOT_HANDED` (1851) with
the reason, so an operator can tell such closes from clients that went away.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import dns.message
import dns.opcode
import pytest

from node.events import Event
from node.serving.channel import pair
from node.serving.worker import Worker
from tests.support.wait import async_wait_until


def _closed(s: socket.socket) -> bool:
    s.settimeout(20)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


async def test_a_connection_that_cannot_be_handed_over_is_counted_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    control, theirs = pair()
    w = Worker({"listen": [["127.0.0.1", 0]], "max_udp_payload": 1232,
                "tcp_idle_timeout": 30.0, "max_tcp_connections": 10}, theirs.detach())
    w.channel.start()
    (host, port), = await w.dns.start()
    w.channel.close()  # the control process is gone
    control.close()
    notify = dns.message.make_query("example.com.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    wire = notify.to_wire()
    caplog.set_level(logging.INFO, logger="node.events")
    try:
        with socket.create_connection((host, port), timeout=20) as s:
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            assert await asyncio.to_thread(_closed, s)
        await async_wait_until(lambda: w.dns.stats.tcp_handoff_failed == 1, 20)
        events = [r.getMessage() for r in caplog.records
                  if f'"event": {int(Event.SERVING_TCP_NOT_HANDED)}' in r.getMessage()]
        assert len(events) == 1, events
        assert "channel to the control process is closed" in events[0], events[0]
        assert f'"octets": {len(wire) + 2}' in events[0], events[0]
        metrics = {m.name for m in w.dns.stats.collector().collect()}
        assert "dnscluster_dns_tcp_handoff_failures" in metrics
    finally:
        await w.dns.stop()
