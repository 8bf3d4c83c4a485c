"""A TCP connection adopted from another process is served in stream order.

A serving worker hands a connection to the control process with the octets it
has read and not answered (`DnsServer.adopt`); the octets the client sent after
those are still in the socket. The handed octets come first: a transport that
starts reading the socket before they are injected parses the stream from the
middle (seen as `test_handoff_large` failing one run in two: the frames after
the hand-over were misparsed, and the idle timeout then closed the connection).
Run on both loops the node uses (asyncio's, and uvloop's in production).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

import dns.message
import pytest

from node.server import DnsServer, ZoneTable
from node.zones.model import snapshot_from_text
from tests.support.loops import event_loops

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n"


def _frame(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


def _answers(s: socket.socket, count: int) -> list[int]:
    """The ids of the next `count` answers (fewer if the server closes first)."""
    buf, ids = b"", []
    while len(ids) < count:
        while len(buf) >= 2 and len(buf) >= 2 + (n := struct.unpack(">H", buf[:2])[0]):
            ids.append(int.from_bytes(buf[2:4], "big"))
            buf = buf[2 + n:]
        if len(ids) >= count:
            break
        data = s.recv(65536)
        if not data:
            break
        buf += data
    return ids


async def _adopt_with_octets_left_in_the_socket(halves: int) -> list[int]:
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com."))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=30.0)
    ids = list(range(100, 110))
    stream = b"".join(_frame(dns.message.make_query("ns1.example.com.", "A", id=i).to_wire())
                      for i in ids)
    split = len(stream) // len(ids) * halves // 2  # whole frames, or half a frame more
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=30)
        accepted, _ = listener.accept()
    try:
        client.sendall(stream)
        # what "another process" read before handing over; the rest stays in the socket
        handed = accepted.recv(split, socket.MSG_WAITALL)
        assert len(handed) == split
        accepted.setblocking(False)
        await srv.adopt(accepted, handed)
        return await asyncio.to_thread(_answers, client, len(ids))
    finally:
        client.close()
        await srv.stop()


@pytest.mark.parametrize("halves", [2, 3], ids=["whole-frame", "split-frame"])
@pytest.mark.parametrize("loop", event_loops(), ids=lambda p: p[0])
def test_handed_octets_are_answered_before_the_socket_s(
        loop: tuple[str, Callable[[], asyncio.AbstractEventLoop]], halves: int) -> None:
    with asyncio.Runner(loop_factory=loop[1]) as runner:
        got = runner.run(_adopt_with_octets_left_in_the_socket(halves))
    assert got == list(range(100, 110)), f"answers out of stream order or missing: {got}"
