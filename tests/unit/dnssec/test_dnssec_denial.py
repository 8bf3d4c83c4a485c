"""Denial parameters, salt parsing, NSEC3 hashing and incremental chains."""

from __future__ import annotations

import random

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from node.dnssec.denial import (
    DenialParams,
    Nsec3Chain,
    NsecChain,
    canonical_key,
    make_nsec,
    make_nsec3,
    nsec3_hash,
    nsec3param_rdata,
    parse_salt,
)
from node.errors import ValidationError

T = dns.rdatatype
ORIGIN = dns.name.from_text("example.")


def test_defaults_follow_rfc9276() -> None:
    p = DenialParams()
    assert (p.nsec3, p.iterations, p.salt, p.opt_out) == (True, 0, b"", False)
    rd = nsec3param_rdata(p)
    assert (rd.algorithm, rd.flags, rd.iterations, rd.salt) == (1, 0, 0, b"")


def test_iterations_above_50_refused() -> None:
    assert DenialParams(iterations=50).iterations == 50
    with pytest.raises(ValidationError, match="at most 50"):
        DenialParams(iterations=51)
    with pytest.raises(ValidationError, match="NSEC3 only"):
        DenialParams(nsec3=False, opt_out=True)


def test_parse_salt() -> None:
    assert parse_salt("-") == b""
    assert parse_salt("AbCd") == b"\xab\xcd"
    assert len(parse_salt("random:8")) == 8
    assert parse_salt("random:4", random.Random(1)) == parse_salt("random:4", random.Random(1))
    for bad in ("random:0", "random:x", "random:256", "abc", "zz"):
        with pytest.raises(ValidationError):
            parse_salt(bad)


@pytest.mark.parametrize(("salt", "iterations"), [(b"", 0), (b"\xaa\xbb\xcc\xdd", 12)])
def test_nsec3_hash_matches_dnspython(salt: bytes, iterations: int) -> None:
    name = dns.name.from_text("WWW.Example.")
    ours = nsec3_hash(name, DenialParams(salt=salt, iterations=iterations))
    assert ours == dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower()


def test_rfc5155_appendix_a_vector() -> None:
    p = DenialParams(salt=bytes.fromhex("aabbccdd"), iterations=12)
    assert nsec3_hash(dns.name.from_text("example."), p) == "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
    assert nsec3_hash(dns.name.from_text("a.example."), p) == "35mthgpgcu1qg68fab165klnsnk3dpvl"


def test_canonical_order() -> None:
    names = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
             "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.",
             "\\200.z.example."]
    parsed = [dns.name.from_text(n) for n in names]
    assert sorted(parsed, key=canonical_key) == parsed  # RFC 4034 §6.1 example


def _names(chain: NsecChain) -> list[str]:
    return [n.to_text() for _, n in chain.owners()]


def _entry(name: dns.name.Name, types: frozenset[int]) -> tuple:
    return canonical_key(name), (name, types)


def test_nsec_chain_incremental() -> None:
    a, b, c = (dns.name.from_text(f"{x}.example.") for x in "abc")
    ka, kb, kc = (canonical_key(n) for n in (a, b, c))
    chain = NsecChain(ORIGIN, 300)
    types = frozenset({T.A, T.RRSIG, T.NSEC})
    chain.rebuild(dict([_entry(ORIGIN, frozenset({T.SOA})), _entry(a, types), _entry(c, types)]))
    assert chain.rrset(ka)[0].next == c
    assert chain.rrset(kc)[0].next == ORIGIN  # wraps to the apex
    assert {n for _, n in chain.update(dict([_entry(b, types)]))} == {a, b}
    assert chain.rrset(ka)[0].next == b and chain.rrset(kb)[0].next == c
    assert chain.update(dict([_entry(b, types)])) == []  # no change
    assert {n for _, n in chain.update({kc: None})} == {b, c}
    assert chain.rrset(kc) is None and chain.rrset(kb)[0].next == ORIGIN
    assert [n for _, n in chain.update(dict([_entry(b, frozenset({T.TXT, T.RRSIG}))]))] == [b]
    assert chain.rrset(kb)[0].to_text() == "example. TXT RRSIG" and chain.rrset(kb).ttl == 300
    assert _names(chain) == ["example.", "a.example.", "b.example."]


def test_nsec3_chain_incremental_and_opt_out_flag() -> None:
    params = DenialParams(opt_out=True)
    chain = Nsec3Chain(ORIGIN, 300, params)
    names = [dns.name.from_text(f"n{i}.example.") for i in range(20)]
    chain.rebuild(dict(_entry(n, frozenset({T.A, T.RRSIG})) for n in names))
    owners = [n for _, n in chain.owners()]
    assert [o.labels[0] for o in owners] == sorted(o.labels[0] for o in owners)
    assert owners[0].labels[0].decode() == min(nsec3_hash(n, params) for n in names)
    new = dns.name.from_text("new.example.")
    affected = {n for _, n in chain.update(dict([_entry(new, frozenset({T.TXT, T.RRSIG}))]))}
    new_owner = chain.owner_of(new)
    assert len(affected) == 2 and new_owner in affected
    rr = chain.rrset(canonical_key(new_owner))[0]
    assert rr.flags == 1 and rr.iterations == 0 and rr.salt == b""
    # each record's next hash is the following owner's hash
    pairs = list(chain.owners())
    for i, (okey, _) in enumerate(pairs):
        assert chain.rrset(okey)[0].next_name(ORIGIN) == pairs[(i + 1) % len(pairs)][1]
    assert {n for _, n in chain.update({canonical_key(new): None})} == affected
    assert len(chain) == 20


def test_fast_chain_rdata_equal_plain_rdata() -> None:
    params = DenialParams(salt=b"\xab", iterations=3, opt_out=True)
    rr = make_nsec3(ORIGIN, 60, params, b"\x01" * 20, frozenset({T.A, T.RRSIG, T.CAA}))
    plain = dns.rdata.from_text("IN", "NSEC3", rr[0].to_text())
    assert rr[0] == plain and hash(rr[0]) == hash(plain)
    assert rr[0].to_digestable() == plain.to_digestable() == rr[0].to_wire()
    rr = make_nsec(ORIGIN, 60, dns.name.from_text("A.example."), frozenset({T.NS, T.TYPE0 + 65534}))
    plain = dns.rdata.from_text("IN", "NSEC", rr[0].to_text())
    assert rr[0] == plain and hash(rr[0]) == hash(plain) and rr[0].to_wire() == plain.to_wire()
