"""`BatchedUdp._batch` on real loopback sockets, driven by hand (no event loop): every
datagram is queued before the batch reads (loopback delivers within `sendto`), and every
answer is queued before the batch returns (within `sendmmsg`), so nothing here races.

A send slot answers its own receive slot's peer unless an earlier datagram of the batch
got no answer; the batches after such a one must answer their own peers again. The
answers are the `Responder`'s, byte for byte, whatever path (placed question, general
shape, slow path, truncation) gave them."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.edns
import dns.flags
import dns.message
import pytest

from node.server import mmsg
from node.server.responder import Responder
from node.server.stats import DnsStats
from node.server.table import ZoneTable

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="no recvmmsg/sendmmsg here")


@pytest.fixture
def served(table: ZoneTable) -> Iterator[tuple[mmsg.BatchedUdp, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    errors: list[str] = []
    loop = mmsg.BatchedUdp(sock, Responder(table, stats=DnsStats()), DnsStats(), errors.append,
                           1232)
    try:
        yield loop, sock.getsockname()[1]
    finally:
        sock.close()
        assert not errors


@pytest.fixture
def peers() -> Iterator[list[socket.socket]]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


def _query(qid: int, name: str = "web.example.com.", rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, id=qid, **kw).to_wire()  # type: ignore[arg-type]


def _received(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(65535))
        except BlockingIOError:
            return out


def _ids(s: socket.socket) -> list[int]:
    return [int.from_bytes(d[:2], "big") for d in _received(s)]


def test_answers_go_to_their_own_peers_after_a_batch_that_moved_send_slots(
        served: tuple[mmsg.BatchedUdp, int], peers: list[socket.socket]) -> None:
    loop, port = served
    to = ("127.0.0.1", port)
    response = dns.message.make_response(dns.message.make_query("web.example.com.", "A"))
    peers[0].sendto(response.to_wire(), to)  # QR=1: dropped, so the batch's answers move up
    for k in (1, 2, 3):
        peers[k].sendto(_query(10 + k), to)
    assert loop._batch() == 4
    assert [_ids(p) for p in peers[:4]] == [[], [11], [12], [13]]
    # the next batch: every datagram answered, each send slot answers its own slot's peer
    for k in (3, 2, 1, 4, 5):
        peers[k].sendto(_query(20 + k), to)
    assert loop._batch() == 5
    assert [_ids(p) for p in peers] == [[], [21], [22], [23], [24], [25]]


def test_a_batch_answers_as_the_responder(served: tuple[mmsg.BatchedUdp, int],
                                          peers: list[socket.socket], table: ZoneTable) -> None:
    loop, port = served
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    queries = [
        _query(1),
        _query(2, "WeB.ExAmPlE.CoM."),
        _query(3, use_edns=0, want_dnssec=True),
        _query(4, "big.example.com.", "TXT"),  # over 512 octets without EDNS: TC=1
        _query(5, "big.example.com.", "TXT", use_edns=0, payload=4096),
        _query(6, options=[cookie], use_edns=0),  # an OPT with options: the general shape
        _query(7, use_edns=1),  # BADVERS, from the slow path
        _query(8, "nope.example.com."),
        b"\x00\x09garbage",  # too short: no answer
        _query(10, "example.org."),  # REFUSED
    ]
    want = Responder(table)
    for rnd in range(2):  # the second round answers from the caches
        for i, q in enumerate(queries):
            peers[i % len(peers)].sendto(q, ("127.0.0.1", port))
        assert loop._batch() == len(queries)
        got: dict[int, bytes] = {}
        for p in peers:
            for d in _received(p):
                got[int.from_bytes(d[:2], "big")] = d
        expected = {}
        for q in queries:
            out = want.udp(q, ("127.0.0.1", 1))
            if out is not None:
                expected[int.from_bytes(q[:2], "big")] = out
        assert got == expected, rnd
    assert dns.message.from_wire(got[4]).flags & dns.flags.TC


def test_messages_for_one_datagram_go_to_its_peer_among_single_answers(
        served: tuple[mmsg.BatchedUdp, int], peers: list[socket.socket]) -> None:
    """The slow path may answer one datagram with several messages (a list): each goes to
    that datagram's peer, and the single answers before and after it to their own."""
    loop, port = served
    to = ("127.0.0.1", port)
    many = [b"\x00\x63" + b"one" * 10, b"\x00\x64" + b"two" * 10, b"\x00\x65" + b"x" * 2000]
    slow = loop._slow

    def several(data: bytes, i: int) -> bytes | list[bytes] | None:
        return many if data[2] & 0x80 else slow(data, i)  # QR=1: the fast path declines

    loop._slow = several  # type: ignore[method-assign]
    response = dns.message.make_response(dns.message.make_query("web.example.com.", "A"))
    peers[0].sendto(_query(30), to)
    peers[1].sendto(response.to_wire(), to)
    peers[2].sendto(_query(32), to)
    assert loop._batch() == 3
    assert _ids(peers[0]) == [30]
    assert sorted(_ids(peers[1])) == [0x63, 0x64, 0x65]  # the last one larger than a slot
    assert _ids(peers[2]) == [32]
    for k in (0, 1, 2):  # the next batch: each send slot answers its own slot's peer again
        peers[k].sendto(_query(40 + k), to)
    assert loop._batch() == 3
    assert [_ids(p) for p in peers[:3]] == [[40], [41], [42]]
