"""A TCP connection handed from a serving worker to the control process with more unanswered
octets than one channel record holds (200,000): pipelined large frames after a NOTIFY.

Found by the fuzz test (`test_hostile_input`, about one run in five): the worker
logged "not handed over" and closed the connection, and the client's later
queries on it were never answered. Then, with the memfd handover, it still failed
about one run in two: the control process (uvloop) read the octets left in the
socket before it injected the handed ones, parsed the stream from the middle of
a frame, and closed the connection at the idle timeout
(`tests/integration/test_dns_adopt_order.py` shows that order on its own).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import dns.message
import dns.opcode
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api
from tests.support.wait import wait_until

ZONE = "handoff.test."
ZONE_TEXT = f"$ORIGIN {ZONE}\n@ 300 IN SOA ns1 host 1 3600 600 86400 300\n@ 300 IN NS ns1\n" \
            "ns1 300 IN A 192.0.2.1\nwww 300 IN A 192.0.2.2\n"


@pytest.fixture(scope="module")
def node_with_workers() -> Iterator[Cluster]:
    c = make_cluster(count=1, env={"DNSNODE_SERVER__WORKERS": "2"})
    try:
        with Api(c.nodes[0].api, timeout=60) as api:
            api.create_zone(ZONE, ZONE_TEXT)
        wait_until(lambda: c.nodes[0].serial(ZONE) is not None, 30)
        yield c
    finally:
        c.close()


def frame(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


def read_answer(s: socket.socket, qid: int) -> dns.message.Message:
    buf = b""
    while True:
        while len(buf) >= 2 and len(buf) >= 2 + (n := struct.unpack(">H", buf[:2])[0]):
            msg, buf = buf[2 : 2 + n], buf[2 + n :]
            if msg[:2] == qid.to_bytes(2, "big"):
                return dns.message.from_wire(msg)
        data = s.recv(65536)
        assert data, "the node closed the connection before the last query's answer"
        buf += data


def test_a_large_pipeline_after_a_handed_over_message_is_answered(
        node_with_workers: Cluster) -> None:
    node = node_with_workers.nodes[0]
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    big = []  # queries that fill 60,000 octets each (junk after the question: FORMERR)
    for i in range(5):
        q = dns.message.make_query(f"www.{ZONE}", "A", id=1000 + i).to_wire()
        big.append(q + bytes(60_000 - len(q)))
    last = dns.message.make_query(f"www.{ZONE}", "A", id=4242)
    payload = frame(notify.to_wire()) + b"".join(frame(b) for b in big) + frame(last.to_wire())
    assert len(payload) > 200_000
    for _ in range(4):  # the worker the kernel picks varies with the source port
        with socket.create_connection((node.host, node.dns_port), timeout=20) as s:
            s.sendall(payload)
            answer = read_answer(s, 4242)
        assert answer.answer, answer


def test_a_half_closed_connection_is_handed_over_and_answered(
        node_with_workers: Cluster) -> None:
    """A client that sends a NOTIFY and a query, then half-closes (shutdown SHUT_WR), gets
    both answers: the worker used to close such a connection at EOF instead of handing it
    over (and the control process closed one with an answer pending)."""
    node = node_with_workers.nodes[0]
    notify = dns.message.make_query(ZONE, "SOA", id=77)
    notify.set_opcode(dns.opcode.NOTIFY)
    last = dns.message.make_query(f"www.{ZONE}", "A", id=4343)
    for _ in range(4):  # the worker the kernel picks varies with the source port
        with socket.create_connection((node.host, node.dns_port), timeout=20) as s:
            s.sendall(frame(notify.to_wire()) + frame(last.to_wire()))
            s.shutdown(socket.SHUT_WR)
            answer = read_answer(s, 4343)
        assert answer.answer, answer
