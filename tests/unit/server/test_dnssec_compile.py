"""Signed zones through the compiler: incremental = full build, pieces reused, hold, AXFR."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
from signed_zone import MODES, NOW, ORIGIN, ZONE, signed_snapshot, signer, validate_sections

from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import snapshot_from_text

T = dns.rdatatype
N = dns.name.from_text

QUERIES = [
    ("web.example.", "A"), ("web.example.", "MX"), ("new.example.", "A"), ("nope.example.", "A"),
    ("a.new.example.", "A"), ("foo.wild.example.", "TXT"), ("foo.wild.example.", "MX"),
    ("c.ent.example.", "A"), ("host.insecure.example.", "A"), ("insecure.example.", "DS"),
    ("x.cw.example.", "A"), ("example.", "DNSKEY"), ("example.", "SOA"), ("zz.example.", "A"),
    ("host.secure.example.", "A"), ("q.r.ent.example.", "A"), ("mail.example.", "AAAA"),
]
CHANGE = ZONE.replace('web          TXT   "web server"\n', "new          A     192.0.2.77\n")
CHANGE += "q.r.ent A 192.0.2.6\n"


def _key(name: str, rdtype: str) -> bytes:
    return name_wire(N(name)) + T.from_text(rdtype).to_bytes(2, "big") + b"\x00\x01"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_incremental_equals_full_build(mode: str) -> None:
    zs = signer(mode)
    first = signed_snapshot(mode, zs=zs)
    plain = snapshot_from_text(CHANGE, ORIGIN, revision=2)
    changed = frozenset({N("web.example."), N("new.example."), N("q.r.ent.example.")})
    res = zs.sign(plain.nodes, changed, NOW + 60)
    assert res.changed is not None
    second = dataclasses.replace(plain, nodes=res.nodes, changed=res.changed, signed=True)
    prev = CompiledZone.build(first)
    evolved = CompiledZone.evolve(prev, second)
    full = CompiledZone.build(dataclasses.replace(second, changed=None))
    assert evolved.denial is not None and full.denial is not None
    assert evolved.denial.keys == full.denial.keys
    assert evolved.denial.pieces == full.denial.pieces
    # unchanged chain records are the very same pre-rendered pieces (nothing re-rendered)
    assert prev.denial is not None
    kept = [k for k in prev.denial.keys if prev.denial.pieces[k] == evolved.denial.pieces.get(k)]
    assert any(evolved.denial.pieces[k] is prev.denial.pieces[k] for k in kept)
    assert len(kept) > len(prev.denial.keys) // 2
    for name, rdtype in QUERIES:
        for do in (0, 1):
            key = _key(name, rdtype)
            assert evolved.answer(key, do) == full.answer(key, do), (name, rdtype, do)
    # and the evolved zone answers the new name validly
    table = ZoneTable()
    table.publish(first)
    table.publish(second)
    r = Responder(table)
    q = dns.message.make_query("new.example.", "A", want_dnssec=True)
    resp = dns.message.from_wire(r.handle(q.to_wire(), ("127.0.0.1", 1), "udp"))  # type: ignore[arg-type]
    assert validate_sections(resp, second.nodes[ORIGIN][T.DNSKEY]) == 1


def test_unsigned_zone_do_bit_unchanged() -> None:
    snap = snapshot_from_text(ZONE, ORIGIN)
    zone = CompiledZone.build(snap)
    assert zone.denial is None
    for name, rdtype in QUERIES:
        key = _key(name, rdtype)
        assert zone.answer(key, 1) == zone.answer(key, 0)


def test_hold_servfails_signed_zone_until_publish() -> None:
    snap = signed_snapshot("nsec3")
    table = ZoneTable()
    r = Responder(table)
    table.hold(ORIGIN)  # restart: published signed zone not yet signed here

    def rcode(name: str, rdtype: str, do: bool, transport: str = "udp") -> int:
        q = dns.message.make_query(name, rdtype, want_dnssec=do)
        out = r.handle(q.to_wire(), ("127.0.0.1", 1), transport)
        msg = out[0] if isinstance(out, list) else out
        return dns.message.from_wire(msg).rcode()  # type: ignore[arg-type]

    cases = [("web.example.", "A"), ("nope.example.", "A"), ("example.", "DNSKEY"),
             ("host.secure.example.", "A")]
    for name, rdtype in cases:
        for do in (False, True):
            assert rcode(name, rdtype, do) == dns.rcode.SERVFAIL
            assert rcode(name, rdtype, do, "tcp") == dns.rcode.SERVFAIL
    assert rcode("example.", "AXFR", False, "tcp") != dns.rcode.NOERROR
    table.publish(snap)
    assert rcode("web.example.", "A", True) == dns.rcode.NOERROR
    table.hold(ORIGIN)
    assert rcode("web.example.", "A", True) == dns.rcode.SERVFAIL  # the cache was dropped
    table.publish(dataclasses.replace(snap, revision=2))
    assert rcode("nope.example.", "A", True) == dns.rcode.NXDOMAIN


@pytest.mark.skipif(not shutil.which("ldns-verify-zone"), reason="ldns-verify-zone absent")
@pytest.mark.parametrize("mode", sorted(MODES))
def test_axfr_of_signed_zone_verifies(mode: str, tmp_path: Path) -> None:
    snap = signed_snapshot(mode)
    table = ZoneTable()
    table.publish(snap)
    q = dns.message.make_query("example.", "AXFR")
    msgs = Responder(table).handle(q.to_wire(), ("127.0.0.1", 1), "tcp")
    assert isinstance(msgs, list)
    records = []
    for wire in msgs:
        msg = dns.message.from_wire(wire, one_rr_per_rrset=True)
        records.extend(msg.answer)
    assert records[0].rdtype == T.SOA and records[-1].rdtype == T.SOA
    text = "\n".join(r.to_text() for r in records[:-1]) + "\n"
    assert sum(1 for r in records if r.rdtype == T.RRSIG) > 20
    for r in records:
        if r.rdtype == T.RRSIG:
            assert r.ttl == r[0].original_ttl
    path = tmp_path / "example.zone"
    path.write_text(text)
    # the real clock is past our fixed signing time only if validity covers it: check at NOW
    out = subprocess.run(["ldns-verify-zone", "-V", "2", "-t", _stamp(NOW), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    dns.zone.from_text(text, origin=ORIGIN, relativize=False)  # parses as a master file


def _stamp(ts: int) -> str:
    import time

    return time.strftime("%Y%m%d%H%M%S", time.gmtime(ts))
