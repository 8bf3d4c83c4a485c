"""`DnsServer` on real loopback sockets: UDP/TCP, IPv6, dig, pipelining, TC, AXFR, bad input."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from node.server import DnsServer, ZoneTable, mmsg
from node.zones.model import snapshot_from_text
from tests.support.wait import async_wait_until

ZONE = """
$TTL 300
@      SOA  ns1 hostmaster 42 7200 3600 1209600 60
@      NS   ns1
@      MX   10 mail
ns1    A    192.0.2.1
mail   A    192.0.2.2
www    CNAME web
web    A    192.0.2.3
*.wild TXT  "wildcard"
sub    NS   ns.sub
ns.sub A    192.0.2.5
""" + "".join(f'big TXT "{i:02d}{"x" * 70}"\n' for i in range(10))


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(params=["batched", "transport"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[DnsServer]:
    """The server with each UDP back end: recvmmsg/sendmmsg batches, the loop's transport."""
    if request.param == "batched" and not mmsg.available():
        pytest.skip("no recvmmsg/sendmmsg here")
    table = ZoneTable()
    table.publish(snapshot_from_text(ZONE, "example.com.", allow_transfer=["127.0.0.1/32"]))
    listen = [("127.0.0.1", 0)] + ([("::1", 0)] if _has_ipv6() else [])
    srv = DnsServer(
        table,
        listen,
        tcp_idle_timeout=0.5,
        max_tcp_connections=4,
        udp_batch=request.param == "batched",
    )
    assert srv.udp_batch == (request.param == "batched")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _port(srv: DnsServer, host: str = "127.0.0.1") -> int:
    return next(p for h, p in srv.addresses if h == host)


async def _udp(
    srv: DnsServer, name: str, rdtype: str, host: str = "127.0.0.1", **kw: object
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    return await asyncio.to_thread(dns.query.udp, q, host, timeout=2, port=_port(srv, host))


async def _tcp(
    srv: DnsServer, name: str, rdtype: str, host: str = "127.0.0.1", **kw: object
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    return await asyncio.to_thread(dns.query.tcp, q, host, timeout=2, port=_port(srv, host))


async def test_udp_and_tcp_answers(server: DnsServer) -> None:
    for ask in (_udp, _tcp):
        resp = await ask(server, "WWW.example.com.", "A")
        assert resp.flags & dns.flags.AA
        assert resp.question[0].name.to_text() == "WWW.example.com."
        assert [rd.to_text() for r in resp.answer for rd in r][-1] == "192.0.2.3"
    assert server.stats.queries(rcode=0, qtype=1) == 2


async def test_ipv6(server: DnsServer) -> None:
    if not any(h == "::1" for h, _ in server.addresses):
        pytest.skip("no IPv6 loopback")
    for ask in (_udp, _tcp):
        resp = await ask(server, "web.example.com.", "A", host="::1")
        assert resp.answer[0][0].to_text() == "192.0.2.3"


async def test_dig(server: DnsServer) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig not installed")
    port = str(_port(server))
    for extra in ([], ["+tcp"], ["+noedns"]):
        proc = await asyncio.create_subprocess_exec(
            "dig",
            "@127.0.0.1",
            "-p",
            port,
            "+norec",
            "+time=2",
            "+tries=1",
            *extra,
            "x.wild.example.com.",
            "TXT",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        text = out.decode()
        assert "status: NOERROR" in text and "flags: qr aa" in text, text
        assert '"wildcard"' in text


async def test_tcp_pipelining(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    names = ["web", "mail", "ns1", "nope", "www", "x.wild"]
    queries = [dns.message.make_query(f"{n}.example.com.", "A") for n in names]
    writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
    await writer.drain()
    for q in queries:
        n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 2), "big")
        resp = dns.message.from_wire(await reader.readexactly(n))
        assert resp.id == q.id and resp.question == q.question
    writer.close()


async def test_truncated_over_udp_then_full_over_tcp(server: DnsServer) -> None:
    resp = await _udp(server, "big.example.com.", "TXT")
    assert resp.flags & dns.flags.TC and not resp.answer
    resp = await _tcp(server, "big.example.com.", "TXT")
    assert not resp.flags & dns.flags.TC and len(resp.answer[0]) == 10
    # dnspython's automatic fallback sees the same
    q = dns.message.make_query("big.example.com.", "TXT")
    resp, used_tcp = await asyncio.to_thread(
        dns.query.udp_with_fallback, q, "127.0.0.1", timeout=2, port=_port(server)
    )
    assert used_tcp and len(resp.answer[0]) == 10


async def test_axfr_allowed_and_refused(server: DnsServer) -> None:
    port = _port(server)
    zone = await asyncio.to_thread(
        lambda: dns.zone.from_xfr(dns.query.xfr("127.0.0.1", "example.com.", port=port, timeout=2))
    )
    assert zone.get_rdataset("web", "A")[0].to_text() == "192.0.2.3"  # type: ignore[index]
    assert zone.get_rdataset("@", "SOA")[0].serial == 42  # type: ignore[index]
    with pytest.raises(dns.query.TransferError) as exc:
        await asyncio.to_thread(
            lambda: list(
                dns.query.xfr("127.0.0.1", "example.com.", port=port, timeout=2, source="127.0.0.2")
            )
        )
    assert exc.value.rcode == dns.rcode.REFUSED


async def test_tcp_idle_timeout_closes(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()


async def test_tcp_connection_cap(server: DnsServer) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", _port(server)) for _ in range(4)]
    await async_wait_until(lambda: len(server.tcp_connections) == 4, 2)
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b""
    writer.close()
    assert server.stats.tcp_refused == 1
    for _, w in conns:
        w.close()
    await async_wait_until(lambda: not server.tcp_connections, 2)
    resp = await _tcp(server, "web.example.com.", "A")
    assert resp.answer


async def test_a_client_that_never_reads_gets_no_more_answers_than_fit(
    server: DnsServer,
) -> None:
    """Pipelined queries from a client that reads nothing: the server stops answering at
    its write high-water mark instead of rendering every answer into memory."""
    sock = await _deaf_client(server)
    try:
        (conn,) = server.tcp_connections
        assert conn.transport is not None
        buffered = conn.transport.get_write_buffer_size()
        # asyncio's high-water mark is 64 KiB; answering a whole read (256 KiB of queries)
        # past it held 429 KB here before
        assert buffered < 256 * 1024, f"{buffered} octets of answers held for a deaf client"
    finally:
        sock.close()


async def _deaf_client(server: DnsServer) -> socket.socket:
    """A connection that pipelines 20k queries for ~800-octet answers and reads none,
    once the server has stopped answering it (its write high-water mark)."""
    wire = dns.message.make_query("big.example.com.", "TXT").to_wire()
    frames = (len(wire).to_bytes(2, "big") + wire) * 20_000
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", _port(server)))
    sock.setblocking(False)
    sent = 0
    for _ in range(200):  # what the node takes before it stops reading
        try:
            sent += sock.send(frames[sent:])
        except BlockingIOError:
            break
        if sent == len(frames):
            break
        await asyncio.sleep(0.01)
    try:
        await async_wait_until(lambda: any(not c.writable.is_set()
                                           for c in server.tcp_connections), 10)
    except BaseException:
        sock.close()
        raise
    return sock


def _junk(rng: random.Random, base: bytes) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 1:
        return base[: rng.randrange(12)]  # truncated header
    if kind == 2:
        return base[:4] + b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c\x00\x01\x00\x01"
    if kind == 3:
        return base[:4] + b"\xff\xff\xff\xff\xff\xff\xff\xff" + base[12:]  # absurd counts
    if kind == 4:
        return base + b"\xc0\x0c" * rng.randrange(1, 50)  # trailing garbage / pointers
    data = bytearray(base)
    for _ in range(rng.randrange(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


async def test_bad_input_does_not_stop_the_server(server: DnsServer) -> None:
    rng = random.Random(99)
    port = _port(server)
    base = dns.message.make_query("web.example.com.", "A", use_edns=0).to_wire()
    udp_junk = [_junk(rng, base) for _ in range(3000)]

    def send_udp() -> None:  # from a thread, so the server (on this loop) reads meanwhile
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in udp_junk:
                s.sendto(data, ("127.0.0.1", port))

    await asyncio.to_thread(send_udp)
    for _ in range(20):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):
            data = _junk(rng, base)
            writer.write(len(data).to_bytes(2, "big") + data)
        writer.write(rng.randbytes(rng.randrange(0, 40)))  # a dangling partial frame
        await writer.drain()
        writer.close()
    # a frame announcing more than is sent, then close
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\xff\xff" + b"\x00" * 100)
    await writer.drain()
    writer.close()
    await async_wait_until(lambda: server.stats.queries() + server.stats.dropped > 1000, 10)
    resp = await _udp(server, "web.example.com.", "A")
    assert resp.answer[0][0].to_text() == "192.0.2.3"
    resp = await _tcp(server, "web.example.com.", "A")
    assert resp.answer[0][0].to_text() == "192.0.2.3"
    assert server.errors == 0  # the handler never raised


async def test_large_axfr_is_streamed_and_pipelined_queries_follow() -> None:
    text = "$TTL 60\n@ SOA ns hm 9 1 1 1 1\n@ NS ns\nns A 192.0.2.1\n" + "".join(
        f'h{i} A 10.1.{i // 250}.{i % 250}\nh{i} TXT "{"y" * 80}"\n' for i in range(1500)
    )
    table = ZoneTable()
    table.publish(snapshot_from_text(text, "big.test.", allow_transfer=["127.0.0.0/8"]))
    srv = DnsServer(table, [("127.0.0.1", 0)])
    (_, port), *_ = await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        axfr = dns.message.make_query("big.test.", "AXFR")
        after = dns.message.make_query("ns.big.test.", "A")
        writer.write(
            b"".join(len(w).to_bytes(2, "big") + w for w in (axfr.to_wire(), after.to_wire()))
        )
        await writer.drain()
        soas, records, messages = 0, 0, 0
        while soas < 2:
            n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
            msg = dns.message.from_wire(await reader.readexactly(n), one_rr_per_rrset=True)
            assert msg.id == axfr.id
            messages += 1
            records += sum(len(r) for r in msg.answer)
            soas += sum(1 for r in msg.answer if r.rdtype == dns.rdatatype.SOA)
            if messages == 2:  # the loop still serves UDP in the middle of the transfer
                q = dns.message.make_query("ns.big.test.", "A")
                resp = await asyncio.to_thread(dns.query.udp, q, "127.0.0.1", timeout=2, port=port)
                assert resp.answer
        assert messages > 5 and records == 3000 + 2 + 2
        n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
        resp = dns.message.from_wire(await reader.readexactly(n))
        assert resp.id == after.id and resp.answer[0][0].to_text() == "192.0.2.1"
        writer.close()
    finally:
        await srv.stop()


async def test_udp_ixfr_sees_the_client_address(server: DnsServer) -> None:
    # the transfer ACL needs the real client address on the slow path (both UDP back ends)
    q = dns.message.make_query("example.com.", "IXFR")
    q.authority.append(
        dns.rrset.from_text(
            "example.com.", 0, "IN", "SOA", "ns1.example.com. hm.example.com. 1 1 1 1 1"
        )
    )
    resp = await asyncio.to_thread(dns.query.udp, q, "127.0.0.1", timeout=2, port=_port(server))
    assert resp.rcode() == dns.rcode.NOERROR
    assert [r.rdtype for r in resp.answer] == [dns.rdatatype.SOA]  # SOA only: retry over TCP
    if any(h == "::1" for h, _ in server.addresses):  # ::1 is not in allow_transfer
        resp = await asyncio.to_thread(
            dns.query.udp, q, "::1", timeout=2, port=_port(server, "::1")
        )
        assert resp.rcode() == dns.rcode.REFUSED


async def test_dig_axfr(server: DnsServer) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig not installed")
    proc = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(_port(server)), "+time=2", "+tries=1", "AXFR",
        "example.com.", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    lines = [ln.split() for ln in out.decode().splitlines() if ln and not ln.startswith(";")]
    assert lines[0][3] == "SOA" and lines[-1][3] == "SOA", out.decode()
    assert ["web.example.com.", "300", "IN", "A", "192.0.2.3"] in lines


async def test_a_batch_from_several_peers_answers_each_its_own(server: DnsServer) -> None:
    """Datagrams from three peers, every third one dropped (a response, QR=1), arrive
    before the server reads: each peer gets the answers to its own queries, none other."""
    port = _port(server)
    peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        want: list[set[int]] = [set(), set(), set()]  # per peer, the IDs answered
        for i in range(90):  # sent before the loop runs again: the server reads batches
            q = dns.message.make_query(f"n{i}.wild.example.com.", "TXT", id=1000 + i)
            peer = (i // 2) % 3
            if i % 3 == 2:
                q.flags |= dns.flags.QR  # dropped, so later answers move up a send slot
            else:
                want[peer].add(q.id)
            peers[peer].sendto(q.to_wire(), ("127.0.0.1", port))

        def receive(s: socket.socket, n: int) -> set[int]:
            s.settimeout(5)
            return {dns.message.from_wire(s.recv(4096)).id for _ in range(n)}

        got = await asyncio.gather(*(asyncio.to_thread(receive, peers[k], len(want[k]))
                                     for k in range(3)))
        assert got == want
    finally:
        for s in peers:
            s.close()


async def test_a_client_that_never_reads_is_closed_after_the_idle_timeout(
    server: DnsServer,
) -> None:
    """A connection whose answers the client never reads makes no progress: it is closed
    once a whole idle timeout passes without a single octet taken, as an idle one is (else
    a client could hold every TCP slot by asking and never reading)."""
    sock = await _deaf_client(server)
    try:
        # idle timeout 0.5 s: closed after one timeout without progress (generous margin)
        await async_wait_until(lambda: not server.tcp_connections, 15)
    finally:
        sock.close()


async def test_a_client_that_reads_none_of_a_few_answers_is_closed_after_the_idle_timeout(
    server: DnsServer,
) -> None:
    """Answers that fill the sockets' buffers and wait in the transport below its write
    high-water mark (writing never paused) for a client that reads nothing: no progress
    either, so the connection is closed as well (else it was 'busy' for ever)."""
    wire = dns.message.make_query("big.example.com.", "TXT").to_wire()
    frame = len(wire).to_bytes(2, "big") + wire
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", _port(server)))
    sock.setblocking(False)
    try:
        await async_wait_until(lambda: len(server.tcp_connections) == 1, 5)
        (conn,) = server.tcp_connections
        assert conn.transport is not None
        asked = server.stats.queries()
        for _ in range(1000):  # until answers wait in the transport: 50 (~40 KB) at a time,
            sock.send(frame * 50)  # under asyncio's high-water mark (64 KiB) from none
            asked += 50
            await async_wait_until(lambda n=asked: server.stats.queries() >= n, 5)
            if conn.transport.get_write_buffer_size():
                break
        assert conn.transport.get_write_buffer_size() and conn.writable.is_set()
        # idle timeout 0.5 s: closed after two timeouts without progress (generous margin)
        await async_wait_until(lambda: not server.tcp_connections, 15)
    finally:
        sock.close()
