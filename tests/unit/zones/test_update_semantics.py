"""RFC 2136 semantics (node/zones/update.py): tables of messages and zone data -> verdicts."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.update
import pytest

from node.zones.update import (
    UpdateError,
    apply,
    evaluate,
    parse_update,
    refused_types,
)

Z = "example.test."
N = dns.name.from_text


def rr(owner: str, rdtype: str, *rdata: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(N(owner), ttl, "IN", rdtype, list(rdata))


def data_of(*rrsets: dns.rrset.RRset) -> dict:  # type: ignore[type-arg]
    out: dict = {}  # type: ignore[type-arg]
    for r in rrsets:
        out.setdefault(r.name, {})[r.rdtype] = r
    return out


DATA = data_of(
    rr(Z, "SOA", "ns1 hostmaster 5 3600 600 604800 300"),
    rr(Z, "NS", "ns1.example.test.", "ns2.example.test."),
    rr("www." + Z, "A", "192.0.2.1", "192.0.2.2"),
    rr("alias." + Z, "CNAME", "www.example.test."),
    rr("one." + Z, "NS", "ns.one.example.test."),
)


def upd(build: str) -> dns.update.UpdateMessage:
    u = dns.update.UpdateMessage(Z)
    exec(build, {"u": u, "dns": dns})  # the table's dnspython calls, kept short
    return u


def parsed(build: str):  # type: ignore[no-untyped-def]
    msg = dns.message.from_wire(upd(build).to_wire(), one_rr_per_rrset=True)
    return parse_update(msg)


@pytest.mark.parametrize(("build", "expected"), [
    ("u.present('www')", dns.rcode.NOERROR),  # name in use
    ("u.present('nowhere')", dns.rcode.NXDOMAIN),
    ("u.absent('nowhere')", dns.rcode.NOERROR),  # name not in use
    ("u.absent('www')", dns.rcode.YXDOMAIN),
    ("u.present('www', 'A')", dns.rcode.NOERROR),  # RRset exists (value independent)
    ("u.present('www', 'TXT')", dns.rcode.NXRRSET),
    ("u.absent('www', 'TXT')", dns.rcode.NOERROR),  # RRset does not exist
    ("u.absent('www', 'A')", dns.rcode.YXRRSET),
    ("u.present('www', 'A', '192.0.2.1', '192.0.2.2')", dns.rcode.NOERROR),  # value dependent
    ("u.present('www', 'A', '192.0.2.2', '192.0.2.1')", dns.rcode.NOERROR),  # order-free
    ("u.present('www', 'A', '192.0.2.1')", dns.rcode.NXRRSET),  # a subset is not the RRset
    ("u.present('www', 'A', '192.0.2.1', '192.0.2.2', '192.0.2.3')", dns.rcode.NXRRSET),
    # in order: the first failing prerequisite decides
    ("u.absent('www'); u.present('nowhere')", dns.rcode.YXDOMAIN),
    ("u.present('nowhere'); u.absent('www')", dns.rcode.NXDOMAIN),
])
def test_prerequisites(build: str, expected: int) -> None:
    assert evaluate(parsed(build), DATA) == expected


@pytest.mark.parametrize(("build", "rcode"), [
    ("u.add('www.other.test.', 300, 'A', '192.0.2.9')", dns.rcode.NOTZONE),
    ("u.present('www.other.test.')", dns.rcode.NOTZONE),
    ("u.update.append(dns.rrset.from_text('www.example.test.', 300, 'CH', 'TXT', 'x'))",
     dns.rcode.FORMERR),
])
def test_prescan_errors(build: str, rcode: int) -> None:
    with pytest.raises(UpdateError) as err:
        parsed(build)
    assert err.value.rcode == rcode


def outcome(build: str, serial: int = 5) -> dict:  # type: ignore[type-arg]
    req = parsed(build)
    data = {n: dict(t) for n, t in DATA.items()}
    for name in req.owners:
        data.setdefault(name, {})
    return {(str(k[0]), dns.rdatatype.to_text(k[1])): (None if v is None else sorted(
        rd.to_text() for rd in v)) for k, v in apply(req, data, serial).writes.items()}


@pytest.mark.parametrize(("build", "writes"), [
    # add to an RRset, add a new one, duplicates change nothing
    ("u.add('www', 300, 'A', '192.0.2.3')",
     {("www." + Z, "A"): ["192.0.2.1", "192.0.2.2", "192.0.2.3"]}),
    ("u.add('new', 300, 'TXT', 'x')", {("new." + Z, "TXT"): ['"x"']}),
    ("u.add('www', 300, 'A', '192.0.2.1')", {}),
    # delete an RRset, all RRsets at a name, one RR
    ("u.delete('www', 'A')", {("www." + Z, "A"): None}),
    ("u.delete('www')", {("www." + Z, "A"): None}),
    ("u.delete('www', 'A', '192.0.2.1')", {("www." + Z, "A"): ["192.0.2.2"]}),
    ("u.delete('www', 'A', '192.0.2.9')", {}),
    # in order: delete then add is a replace
    ("u.delete('www', 'A'); u.add('www', 60, 'A', '192.0.2.7')",
     {("www." + Z, "A"): ["192.0.2.7"]}),
    # CNAME exclusivity (RFC 2136 3.4.2.2, BIND): ignored either way, a CNAME replaces a CNAME
    ("u.add('www', 300, 'CNAME', 'x.example.test.')", {}),
    ("u.add('alias', 300, 'A', '192.0.2.5')", {}),
    ("u.add('alias', 300, 'CNAME', 'other.example.test.')",
     {("alias." + Z, "CNAME"): ["other.example.test."]}),
    ("u.add('@', 300, 'CNAME', 'x.example.test.')", {}),
    # the apex: SOA and NS are never deleted as RRsets, the last NS stays, no SOA delete
    ("u.delete('@', 'NS')", {}),
    ("u.delete('@', 'SOA')", {}),
    ("u.delete('@')", {}),
    ("u.delete('@', 'NS', 'ns1.example.test.')", {(Z, "NS"): ["ns2.example.test."]}),
    ("u.delete('@', 'NS', 'ns1.example.test.'); u.delete('@', 'NS', 'ns2.example.test.')",
     {(Z, "NS"): ["ns2.example.test."]}),
    ("u.delete('@', 'SOA', 'ns1 hostmaster 5 3600 600 604800 300')", {}),
    # SOA: only with a greater serial, only at the apex
    ("u.add('@', 300, 'SOA', 'ns1 hostmaster 5 7200 600 604800 300')", {}),
    ("u.add('@', 300, 'SOA', 'ns1 hostmaster 6 7200 600 604800 300')",
     {(Z, "SOA"): ["ns1.example.test. hostmaster.example.test. 6 7200 600 604800 300"]}),
    ("u.add('www', 300, 'SOA', 'ns1 hostmaster 9 7200 600 604800 300')", {}),
    # NS below the apex (a delegation) may be deleted
    ("u.delete('one', 'NS')", {("one." + Z, "NS"): None}),
])
def test_update_section(build: str, writes: dict) -> None:  # type: ignore[type-arg]
    assert outcome(build) == writes


def test_the_rrset_takes_the_ttl_of_the_last_rr_added() -> None:
    req = parsed("u.add('www', 60, 'A', '192.0.2.3')")
    out = apply(req, DATA, 5).writes
    assert out[(N("www." + Z), dns.rdatatype.A)].ttl == 60  # type: ignore[union-attr]
    assert apply(parsed("u.add('www', 300, 'A', '192.0.2.1')"), DATA, 5).writes == {}


@pytest.mark.parametrize(("build", "signed", "refused"), [
    ("u.add('@', 300, 'DNSKEY', '256 3 13 ' + 'A' * 88)", True, {"DNSKEY"}),
    ("u.add('@', 300, 'DNSKEY', '256 3 13 ' + 'A' * 88)", False, set()),
    ("u.add('@', 300, 'CDS', '0 0 0 00')", True, {"CDS"}),
    ("u.add('@', 300, 'NSEC3PARAM', '1 0 0 -')", False, {"NSEC3PARAM"}),
    ("u.delete('www', 'RRSIG')", False, {"RRSIG"}),
    ("u.add('www', 300, 'A', '192.0.2.3')", True, set()),
])
def test_dnssec_types(build: str, signed: bool, refused: set[str]) -> None:
    got = refused_types(parsed(build), signed)
    assert {dns.rdatatype.to_text(t) for t in got} == refused
