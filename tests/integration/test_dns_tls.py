"""`DnsServer`'s DNS-over-TLS listener (XoT, RFC 9103) on real loopback sockets.

It is the TCP protocol behind TLS 1.3 with ALPN "dot": the same framing and
pipelining, the same connection cap and idle timeout. A zone with
`require_tls_transfer` transfers over TLS only: plain TCP and UDP get REFUSED
and an `XFR_TLS_REQUIRED` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import pytest

from node.server import DnsServer, ZoneTable, tls
from node.signing import pull
from node.zones.model import snapshot_from_text
from tests.support.certs import Pki, make_pki
from tests.support.wait import async_wait_until

ZONE = """
$TTL 300
@      SOA  ns1 hostmaster 42 7200 3600 1209600 60
@      NS   ns1
ns1    A    192.0.2.1
www    A    192.0.2.3
""" + "".join(f'big{i} TXT "{i:04d}{"x" * 200}"\n' for i in range(400))


XFR_KEY = dns.tsig.Key("xfr-key.", b"t" * 32, dns.tsig.HMAC_SHA256)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "xot.test")


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[DnsServer]:
    table = ZoneTable()
    open_zone = snapshot_from_text(ZONE, "open.test.", allow_transfer=["127.0.0.1/32"])
    table.publish(open_zone)
    tls_zone = snapshot_from_text(ZONE, "tls.test.", allow_transfer=["127.0.0.1/32"])
    table.publish(replace(tls_zone, config=replace(tls_zone.config, require_tls_transfer=True)))
    key_zone = snapshot_from_text(ZONE, "key.test.")  # no address: TSIG key only, over TLS
    table.publish(replace(key_zone, config=replace(key_zone.config, require_tls_transfer=True,
                                                   allow_transfer_keys=("xfr-key.",))))
    srv = DnsServer(table, [("127.0.0.1", 0)], tcp_idle_timeout=1.0, max_tcp_connections=3,
                    tls_listen=[("127.0.0.1", 0)],
                    tls=tls.server_context(str(pki.cert), str(pki.key)),
                    keyring={XFR_KEY.name: XFR_KEY}.get)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _client(pki: Pki) -> ssl.SSLContext:
    return tls.client_context(str(pki.ca))


def _tls_port(srv: DnsServer) -> int:
    return srv.tls_addresses[0][1]


def _frame(q: dns.message.Message) -> bytes:
    wire = q.to_wire()
    return len(wire).to_bytes(2, "big") + wire


async def _read_msg(reader: asyncio.StreamReader) -> dns.message.Message:
    size = int.from_bytes(await reader.readexactly(2), "big")
    return dns.message.from_wire(await reader.readexactly(size))


async def test_pipelined_queries_over_tls_are_answered_in_order(server: DnsServer,
                                                                pki: Pki) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", _tls_port(server), ssl=_client(pki), server_hostname=pki.name)
    try:
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "dot"
        names = ["www.open.test.", "ns1.open.test.", "www.tls.test.", "nope.open.test."]
        queries = [dns.message.make_query(n, "A") for n in names]
        writer.write(b"".join(_frame(q) for q in queries))  # all at once: pipelined
        for q in queries:
            resp = await asyncio.wait_for(_read_msg(reader), 5)
            assert resp.id == q.id and resp.question[0].name == q.question[0].name
        assert resp.rcode() == dns.rcode.NXDOMAIN
    finally:
        writer.close()


async def test_padded_query_over_tls_gets_a_padded_answer(server: DnsServer, pki: Pki) -> None:
    """RFC 7830 §4 on a real DoT connection (the rule itself: test_tls_padding.py)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", _tls_port(server), ssl=_client(pki), server_hostname=pki.name)
    try:
        q = dns.message.make_query("www.open.test.", "A", use_edns=0,
                                   options=[dns.edns.GenericOption(12, b"")])
        writer.write(_frame(q))
        size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
        resp = dns.message.from_wire(await reader.readexactly(size))
        assert resp.answer and size % 468 == 0
        assert [o.otype for o in resp.options] == [12]
    finally:
        writer.close()


async def test_tls_only_zone_transfers_over_tls_and_is_refused_over_tcp(
        server: DnsServer, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    zone = dns.name.from_text("tls.test.")
    got = await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                  _client(pki), pki.name)
    assert got.get_rdataset("www", "A")[0].to_text() == "192.0.2.3"  # type: ignore[index]
    assert len(got.nodes) == 403  # apex, ns1, www, 400 TXT owners (84 kB): several messages
    port = server.addresses[0][1]
    with caplog.at_level(logging.INFO, logger="node.events"):
        for rdtype in ("AXFR", "IXFR"):
            with pytest.raises(dns.xfr.TransferError) as exc:
                await asyncio.to_thread(lambda t=rdtype: list(dns.query.xfr(
                    "127.0.0.1", zone, rdtype=t, serial=1, port=port, timeout=3)))
            assert exc.value.rcode == dns.rcode.REFUSED
        ixfr = dns.message.make_query(zone, "IXFR")
        resp = await asyncio.to_thread(dns.query.udp, ixfr, "127.0.0.1", port=port, timeout=3)
        assert resp.rcode() == dns.rcode.REFUSED
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "node.events"]
    refusals = [e for e in events if e["name"] == "XFR_TLS_REQUIRED"]
    assert [(e["kind"], e["transport"]) for e in refusals] == [
        ("AXFR", "tcp"), ("IXFR", "tcp"), ("IXFR", "udp")]
    assert all(e["event"] == 1390 and e["zone"] == "tls.test." for e in refusals)
    # a zone without the setting still transfers over plain TCP, and over TLS too
    open_zone = await asyncio.to_thread(lambda: list(dns.query.xfr(
        "127.0.0.1", "open.test.", port=port, timeout=3)))
    assert open_zone
    await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server),
                            dns.name.from_text("open.test."), 5, _client(pki), pki.name)


async def test_certificate_is_verified_and_tls_below_1_3_is_refused(
        server: DnsServer, pki: Pki, tmp_path: Path) -> None:
    zone = dns.name.from_text("open.test.")
    other = make_pki(tmp_path / "other", pki.name)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                _client(other), pki.name)
    with pytest.raises(ssl.SSLCertVerificationError):  # the name is checked too
        await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                _client(pki), "elsewhere.test")
    # no name configured: the address itself is checked (the certificate has 127.0.0.1)
    got = await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                  _client(pki), "")
    assert got.get_rdataset("www", "A") is not None
    old = ssl.create_default_context(cafile=str(pki.ca))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", _tls_port(server), ssl=old,
                                      server_hostname=pki.name)


async def test_tls_connections_share_the_tcp_cap_and_idle_timeout(server: DnsServer,
                                                                  pki: Pki) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", _tls_port(server), ssl=_client(pki),
                                           server_hostname=pki.name) for _ in range(2)]
    conns.append(await asyncio.open_connection("127.0.0.1", server.addresses[0][1]))
    await async_wait_until(lambda: len(server.tcp_connections) == 3, 3)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", _tls_port(server), ssl=_client(pki), server_hostname=pki.name)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError, ssl.SSLError)):
        await asyncio.wait_for(reader.readexactly(1), 3)
    writer.close()
    assert server.stats.tcp_refused == 1
    # idle TLS connections are closed by the server after tcp_idle_timeout (1 s)
    for r, _ in conns:
        assert await asyncio.wait_for(r.read(), 10) == b""
    for _, w in conns:
        w.close()
    await async_wait_until(lambda: not server.tcp_connections, 3)


def test_a_plain_client_on_the_tls_port_gets_no_answer(server: DnsServer) -> None:
    q = dns.message.make_query("www.open.test.", "A")
    with pytest.raises((EOFError, OSError, dns.exception.Timeout)):
        dns.query.tcp(q, "127.0.0.1", port=_tls_port(server), timeout=2)
    with socket.create_connection(("127.0.0.1", _tls_port(server)), timeout=2):
        pass


async def test_tsig_signed_transfer_over_tls(server: DnsServer, pki: Pki) -> None:
    """A read-only node's transfer over TLS signed with its transfer key: every message
    verified (pull.axfr chains the TSIG contexts); unsigned or with a wrong key, refused."""
    zone = dns.name.from_text("key.test.")
    got = await asyncio.to_thread(pull.transfer, "127.0.0.1", _tls_port(server), zone, 5,
                                  _client(pki), pki.name, XFR_KEY)
    assert len(got) == 403  # several signed messages, each verified
    with pytest.raises(dns.xfr.TransferError) as exc:
        await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                _client(pki), pki.name)
    assert exc.value.rcode == dns.rcode.REFUSED
    wrong = dns.tsig.Key("xfr-key.", b"w" * 32, dns.tsig.HMAC_SHA256)
    with pytest.raises(dns.tsig.PeerBadSignature):
        await asyncio.to_thread(pull.axfr, "127.0.0.1", _tls_port(server), zone, 5,
                                _client(pki), pki.name, wrong)
