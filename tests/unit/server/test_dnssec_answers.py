"""DO=1 answers of signed zones (NSEC, NSEC3, NSEC3 with salt and opt-out), each validated
with dnspython and its denial proofs checked name by name."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import pytest
from signed_zone import (
    MODES,
    ORIGIN,
    Denial,
    check_nodata,
    check_nxdomain,
    check_wildcard_answer,
    check_wildcard_nodata,
    signed_snapshot,
    validate_sections,
)

from node.dnssec.denial import nsec3_hash
from node.server.responder import Responder
from node.server.table import ZoneTable

T = dns.rdatatype
N = dns.name.from_text


class Zone:
    """A signed example zone served by a table, queried through the listener's handler."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.params = MODES[mode]
        self.snapshot = signed_snapshot(mode)
        self.dnskey = self.snapshot.nodes[ORIGIN][T.DNSKEY]
        self.table = ZoneTable()
        self.table.publish(self.snapshot)
        self.responder = Responder(self.table)

    def ask(self, name: str, rdtype: str, *, do: bool = True, transport: str = "udp",
            payload: int = 1232) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0, payload=payload)
        out = self.responder.handle(q.to_wire(), ("127.0.0.1", 5300), transport)
        assert isinstance(out, bytes)
        return dns.message.from_wire(out)

    def denial(self, resp: dns.message.Message) -> Denial:
        return Denial(resp, self.params)


@pytest.fixture(scope="module", params=sorted(MODES))
def zone(request: pytest.FixtureRequest) -> Zone:
    return Zone(request.param)


def _types(section: list) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return sorted((r.name.to_text(), r.rdtype, r.covers) for r in section)


def _aa(resp: dns.message.Message) -> bool:
    return bool(resp.flags & dns.flags.AA)


def test_positive_answer_has_rrsig(zone: Zone) -> None:
    resp = zone.ask("web.example.", "A")
    assert resp.rcode() == dns.rcode.NOERROR and _aa(resp)
    assert _types(resp.answer) == [("web.example.", T.A, 0), ("web.example.", T.RRSIG, T.A)]
    assert validate_sections(resp, zone.dnskey) == 1
    assert not resp.authority


def test_additional_addresses_signed(zone: Zone) -> None:
    resp = zone.ask("example.", "MX")
    assert validate_sections(resp, zone.dnskey) == 3  # MX, mail A, mail AAAA
    assert {(r.rdtype, r.covers) for r in resp.additional} == {
        (T.A, 0), (T.AAAA, 0), (T.RRSIG, T.A), (T.RRSIG, T.AAAA)}


def test_cname_chain_signed(zone: Zone) -> None:
    resp = zone.ask("chain.example.", "A")
    assert [(r.name.to_text(), r.rdtype) for r in resp.answer if r.rdtype != T.RRSIG] == [
        ("chain.example.", T.CNAME), ("www.example.", T.CNAME), ("web.example.", T.A)]
    assert validate_sections(resp, zone.dnskey) == 3


def test_dnskey_and_truncation(zone: Zone) -> None:
    resp = zone.ask("example.", "DNSKEY")
    assert validate_sections(resp, zone.dnskey) == 1
    assert len(resp.answer[0]) == 2
    small = zone.ask("big.example.", "TXT", payload=512)
    assert small.flags & dns.flags.TC and not small.answer
    full = zone.ask("big.example.", "TXT", payload=512, transport="tcp")
    assert not full.flags & dns.flags.TC and validate_sections(full, zone.dnskey) == 1
    # without DO the same answer fits in 1232 octets and carries no RRSIG
    plain = zone.ask("big.example.", "TXT", do=False)
    assert [r.rdtype for r in plain.answer] == [T.TXT]


@pytest.mark.parametrize("qname", ["nope.example.", "x.nope.web.example.", "zz.c.ent.example.",
                                   "a.b.c.d.e.example.", "zzzz.example.", "0.example."])
def test_nxdomain_proof(zone: Zone, qname: str) -> None:
    resp = zone.ask(qname, "A")
    assert resp.rcode() == dns.rcode.NXDOMAIN and _aa(resp)
    assert not resp.answer
    validate_sections(resp, zone.dnskey)
    assert any(r.rdtype == T.SOA for r in resp.authority)
    assert any(r.rdtype == T.RRSIG and r.covers == T.SOA for r in resp.authority)
    check_nxdomain(zone.denial(resp), N(qname))
    denial = resp.authority[1:]  # after SOA (+ RRSIG): no duplicates
    assert len({(r.name, r.rdtype, r.covers) for r in denial}) == len(denial)


@pytest.mark.parametrize(("qname", "qtype"), [
    ("web.example.", "MX"), ("example.", "AAAA"), ("c.ent.example.", "A"),
    ("ent.example.", "TXT"), ("b.c.ent.example.", "A"), ("x.y.example.", "A"),
    ("web.example.", "DS"), ("ns1.example.", "NSEC3"),
])
def test_nodata_proof(zone: Zone, qname: str, qtype: str) -> None:
    resp = zone.ask(qname, qtype)
    assert resp.rcode() == dns.rcode.NOERROR and _aa(resp) and not resp.answer
    validate_sections(resp, zone.dnskey)
    assert resp.authority[0].rdtype == T.SOA
    check_nodata(zone.denial(resp), N(qname), T.from_text(qtype))


@pytest.mark.parametrize(("qname", "qtype"), [
    ("foo.wild.example.", "TXT"), ("foo.bar.wild.example.", "A"), ("a.b.c.wild.example.", "A")])
def test_wildcard_answer(zone: Zone, qname: str, qtype: str) -> None:
    resp = zone.ask(qname, qtype)
    assert resp.rcode() == dns.rcode.NOERROR and _aa(resp)
    assert resp.answer[0].name == N(qname)
    validate_sections(resp, zone.dnskey)
    sig = next(r for r in resp.answer if r.rdtype == T.RRSIG)
    assert sig[0].labels == 2  # wild.example.
    check_wildcard_answer(zone.denial(resp), N(qname), sig[0].labels)


def test_wildcard_nodata(zone: Zone) -> None:
    resp = zone.ask("foo.bar.wild.example.", "MX")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
    validate_sections(resp, zone.dnskey)
    check_wildcard_nodata(zone.denial(resp), N("foo.bar.wild.example."), N("wild.example."),
                          T.MX)


def test_wildcard_cname(zone: Zone) -> None:
    resp = zone.ask("x.cw.example.", "A")
    assert [(r.name.to_text(), r.rdtype) for r in resp.answer if r.rdtype != T.RRSIG] == [
        ("x.cw.example.", T.CNAME), ("web.example.", T.A)]
    assert validate_sections(resp, zone.dnskey) >= 2
    check_wildcard_answer(zone.denial(resp), N("x.cw.example."), 2)


def test_secure_referral(zone: Zone) -> None:
    resp = zone.ask("host.secure.example.", "A")
    assert resp.rcode() == dns.rcode.NOERROR and not _aa(resp) and not resp.answer
    assert _types(resp.authority) == [("secure.example.", T.NS, 0), ("secure.example.", T.DS, 0),
                                      ("secure.example.", T.RRSIG, T.DS)]
    assert validate_sections(resp, zone.dnskey, frozenset({T.NS, T.A})) == 1
    assert [r.rdtype for r in resp.additional] == [T.A]  # glue, unsigned


@pytest.mark.parametrize("qname", ["host.insecure.example.", "a.deep.x.y.example."])
def test_insecure_referral(zone: Zone, qname: str) -> None:
    resp = zone.ask(qname, "A")
    assert not _aa(resp) and not resp.answer
    cut = N(qname).parent()
    assert resp.authority[0].rdtype == T.NS and resp.authority[0].name == cut
    assert not any(r.rdtype in (T.DS, T.SOA) for r in resp.authority)
    validate_sections(resp, zone.dnskey, frozenset({T.NS, T.A}))
    check_nodata(zone.denial(resp), cut, T.DS)
    assert not any(r.rdtype == T.RRSIG and r.covers == T.A for r in resp.additional)


def test_ds_at_delegation_answered_by_parent(zone: Zone) -> None:
    resp = zone.ask("secure.example.", "DS")
    assert _aa(resp) and _types(resp.answer) == [("secure.example.", T.DS, 0),
                                                 ("secure.example.", T.RRSIG, T.DS)]
    assert validate_sections(resp, zone.dnskey) == 1
    resp = zone.ask("insecure.example.", "DS")
    assert _aa(resp) and not resp.answer and resp.rcode() == dns.rcode.NOERROR
    validate_sections(resp, zone.dnskey)
    check_nodata(zone.denial(resp), N("insecure.example."), T.DS)


def test_nsec3_owner_names_do_not_exist(zone: Zone) -> None:
    if not zone.params.nsec3:
        pytest.skip("NSEC3 only")
    hashed = nsec3_hash(N("web.example."), zone.params) + ".example."
    assert any(n.to_text() == hashed for n in zone.snapshot.nodes)
    for do in (True, False):
        for qtype in ("A", "NSEC3", "RRSIG"):
            resp = zone.ask(hashed, qtype, do=do)
            assert resp.rcode() == dns.rcode.NXDOMAIN and not resp.answer
    resp = zone.ask(hashed, "A")
    validate_sections(resp, zone.dnskey)
    check_nxdomain(zone.denial(resp), N(hashed))


def test_without_do_no_dnssec_records(zone: Zone) -> None:
    resp = zone.ask("web.example.", "A", do=False)
    assert [r.rdtype for r in resp.answer] == [T.A]
    resp = zone.ask("nope.example.", "A", do=False)
    assert [r.rdtype for r in resp.authority] == [T.SOA]
    resp = zone.ask("host.insecure.example.", "A", do=False)
    assert [r.rdtype for r in resp.authority] == [T.NS]
    resp = zone.ask("foo.wild.example.", "TXT", do=False)
    assert [r.rdtype for r in resp.answer] == [T.TXT] and not resp.authority
    # asked for explicitly, the DNSSEC types are answered as they are
    assert zone.ask("example.", "DNSKEY", do=False).answer[0].rdtype == T.DNSKEY
    rrsig = zone.ask("web.example.", "RRSIG", do=False)
    assert {rd.type_covered for r in rrsig.answer for rd in r} >= {T.A, T.TXT}
    if zone.params.nsec3:
        assert zone.ask("example.", "NSEC3PARAM", do=False).answer[0].rdtype == T.NSEC3PARAM


def test_any_with_do(zone: Zone) -> None:
    resp = zone.ask("web.example.", "ANY", transport="tcp")
    covered = {r.covers for r in resp.answer if r.rdtype == T.RRSIG}
    plain = {r.rdtype for r in resp.answer if r.rdtype != T.RRSIG}
    assert {T.A, T.TXT} <= plain and plain == covered
    validate_sections(resp, zone.dnskey)


def test_random_subdomain_flood_stays_out_of_dnspython(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative DO=1 answers are assembled from pre-rendered pieces: no rendering per query."""
    fresh = Zone(zone.mode)
    fresh.ask("warm.example.", "A")  # the negative SOA + RRSIG is rendered once per version

    def forbidden(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("dnspython rendering on the negative answer path")

    queries = [
        dns.message.make_query(f"r{i}x.sub{i % 7}.example.", "A", want_dnssec=True).to_wire()
        for i in range(200)
    ]
    monkeypatch.setattr(dns.name.Name, "to_wire", forbidden)
    monkeypatch.setattr(dns.rdata.Rdata, "to_wire", forbidden)
    for wire in queries:
        out = fresh.responder.fast_udp(wire)
        assert out is not None and out[3] & 0xF == dns.rcode.NXDOMAIN
    monkeypatch.undo()
    resp = dns.message.from_wire(fresh.responder.fast_udp(queries[0]))  # type: ignore[arg-type]
    check_nxdomain(fresh.denial(resp), resp.question[0].name)
