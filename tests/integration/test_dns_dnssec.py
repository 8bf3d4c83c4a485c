"""Signed zones on real loopback sockets: DO=1 answers over UDP/TCP, checked by dnspython,
`delv` (BIND's validator) and `ldns-verify-zone` on a `dig AXFR` of the served zone."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from node.dnssec.denial import DenialParams
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.server import DnsServer, ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text

T = dns.rdatatype
ORIGIN = dns.name.from_text("example.")
NOW = int(time.time())  # third-party validators check against the real clock

ZONE = """
$TTL 300
@        SOA   ns1 hostmaster 7 7200 3600 604800 60
@        NS    ns1
ns1      A     192.0.2.1
web      A     192.0.2.3
www      CNAME web
*.wild   TXT   "wildcard"
a.b.ent  A     192.0.2.4
insecure NS    ns.other.net.
"""


def _signed(denial: DenialParams) -> ZoneSnapshot:
    now = datetime.fromtimestamp(NOW, UTC)
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(ORIGIN, 13, role, now=now)  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    signer = ZoneSigner(ORIGIN, SigningParams(denial=denial), keys)
    plain = snapshot_from_text(ZONE, ORIGIN, allow_transfer=["127.0.0.1/32"])
    res = signer.sign(plain.nodes, None, NOW)
    return dataclasses.replace(plain, nodes=res.nodes, signed=True)


DENIAL = {
    "nsec3": DenialParams(),
    "nsec": DenialParams(nsec3=False),
    "nsec3-salt-optout": DenialParams(iterations=1, salt=b"\xab\xcd", opt_out=True),
}


@pytest.fixture(params=sorted(DENIAL))
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[DnsServer, ZoneSnapshot]]:
    snap = _signed(DENIAL[request.param])
    table = ZoneTable()
    table.publish(snap)
    srv = DnsServer(table, [("127.0.0.1", 0)])
    await srv.start()
    try:
        yield srv, snap
    finally:
        await srv.stop()


def _port(srv: DnsServer) -> int:
    return srv.addresses[0][1]


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_do_answers_over_udp_and_tcp(served: tuple[DnsServer, ZoneSnapshot]) -> None:
    srv, snap = served
    keys = {ORIGIN: snap.nodes[ORIGIN][T.DNSKEY]}
    for query in (dns.query.udp, dns.query.tcp):
        q = dns.message.make_query("web.example.", "A", want_dnssec=True)
        resp = await asyncio.to_thread(query, q, "127.0.0.1", timeout=2, port=_port(srv))
        assert resp.flags & dns.flags.AA and resp.ednsflags & dns.flags.DO
        rrset = resp.find_rrset(resp.answer, dns.name.from_text("web.example."), 1, T.A)
        sigs = resp.find_rrset(resp.answer, rrset.name, 1, T.RRSIG, T.A)
        dns.dnssec.validate(rrset, sigs, keys)
        q = dns.message.make_query("nope.example.", "A", want_dnssec=True)
        resp = await asyncio.to_thread(query, q, "127.0.0.1", timeout=2, port=_port(srv))
        assert resp.rcode() == dns.rcode.NXDOMAIN
        assert any(r.rdtype in (T.NSEC, T.NSEC3) for r in resp.authority)


@pytest.mark.skipif(shutil.which("delv") is None, reason="delv not installed")
async def test_delv_validates_answers(served: tuple[DnsServer, ZoneSnapshot],
                                      tmp_path: Path) -> None:
    srv, snap = served
    optout = any(rd.flags & 1 for types in snap.nodes.values()
                 for rd in types.get(T.NSEC3, ()))
    anchors = tmp_path / "anchors.conf"
    ksk = next(rd for rd in snap.nodes[ORIGIN][T.DNSKEY] if rd.flags & 1)
    key_b64 = dns.rdata._base64ify(ksk.key, 0)  # type: ignore[attr-defined]
    anchors.write_text(
        f'trust-anchors {{ example. static-key {ksk.flags} {ksk.protocol} {ksk.algorithm} '
        f'"{key_b64}"; }};\n'
    )
    base = ["delv", "@127.0.0.1", "-p", str(_port(srv)), "-a", str(anchors), "+root=example.",
            "+nocrypto"]
    cases = [
        ("web.example.", "A", "; fully validated"),
        ("www.example.", "A", "; fully validated"),
        ("x.wild.example.", "TXT", "; fully validated"),
        ("nope.example.", "A", "; negative response, fully validated"),
        ("web.example.", "MX", "; negative response, fully validated"),
        ("b.ent.example.", "A", "; negative response, fully validated"),
        ("x.wild.example.", "MX", "; negative response, fully validated"),
        ("insecure.example.", "DS", "; negative response, fully validated"),
    ]
    for name, rdtype, expect in cases:
        _, out = await _run(*base, name, rdtype)
        if optout and name == "x.wild.example." and rdtype == "TXT":
            # the next closer name is covered by an opt-out NSEC3, which cannot deny an
            # unsigned delegation there: validators call the wildcard answer insecure
            expect = "; unsigned answer"
        assert expect in out, f"{name} {rdtype}:\n{out}"
    # a tampered trust anchor must fail: the check above is not vacuous
    anchors.write_text(anchors.read_text().replace(key_b64[:8], "AAAAAAAA"))
    _, out = await _run(*base, "web.example.", "A")
    assert "fully validated" not in out, out


@pytest.mark.skipif(
    shutil.which("ldns-verify-zone") is None or shutil.which("dig") is None,
    reason="ldns-verify-zone or dig not installed",
)
async def test_dig_axfr_verifies(served: tuple[DnsServer, ZoneSnapshot], tmp_path: Path) -> None:
    srv, _ = served
    code, out = await _run("dig", "@127.0.0.1", "-p", str(_port(srv)), "+time=2", "+tries=1",
                           "+nocmd", "+nostats", "AXFR", "example.")
    assert code == 0 and "RRSIG" in out and "DNSKEY" in out, out
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith(";")]
    path = tmp_path / "axfr.zone"
    path.write_text("\n".join(lines[:-1]) + "\n")  # the closing SOA is a repeat
    code, out = await _run("ldns-verify-zone", "-V", "2", str(path))
    assert code == 0, out
