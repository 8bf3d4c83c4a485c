"""RRSIGSet: an owner's RRSIGs kept as wire octets read exactly like ordinary RRSIG RRsets."""

from __future__ import annotations

import copy
import io

import dns.rdatatype
import dns.rrset
from dnssec_support import NOW, ORIGIN, example_nodes, key_pair

from node.dnssec.denial import DenialParams
from node.dnssec.digest import owner_digest
from node.dnssec.rrsigset import RRSIGSet
from node.dnssec.signer import rrsig_rrset
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.signing.expiry import earliest_expiration

T = dns.rdatatype


def _signed() -> dict:
    return dict(ZoneSigner(ORIGIN, SigningParams(), key_pair()).sign(example_nodes(), None, NOW)
                .nodes)


def test_reads_as_an_ordinary_rrsig_rrset() -> None:
    nodes = _signed()
    apex = nodes[ORIGIN]
    lazy = apex[T.RRSIG]
    assert isinstance(lazy, RRSIGSet)
    plain = rrsig_rrset(ORIGIN, list(lazy), lazy.ttl)
    assert len(lazy) == len(plain) == len(list(lazy.wires())) >= 3
    assert lazy == plain and plain == lazy and not lazy != plain
    a, b = io.BytesIO(), io.BytesIO()
    assert lazy.to_wire(a, want_shuffle=False) == plain.to_wire(b, want_shuffle=False)
    assert a.getvalue() == b.getvalue()
    assert lazy.to_text() == plain.to_text()
    assert [rd.to_digestable() for rd in lazy] == list(lazy.wires())
    assert lazy[0] == plain[0]
    assert sorted(lazy.expirations()) == sorted(rd.expiration for rd in plain)
    assert owner_digest(ORIGIN, apex) == owner_digest(ORIGIN, {**apex, T.RRSIG: plain})
    assert earliest_expiration(nodes) == earliest_expiration(
        {o: {**t, T.RRSIG: rrsig_rrset(o, list(t[T.RRSIG]), t[T.RRSIG].ttl)}
         for o, t in nodes.items() if T.RRSIG in t})


def test_a_copy_is_an_ordinary_mutable_rrset() -> None:
    lazy = _signed()[ORIGIN][T.RRSIG]
    twin = copy.copy(lazy)
    assert type(twin) is dns.rrset.RRset and twin == lazy
    twin.items = {}
    assert len(twin) == 0 and len(lazy) > 0


def test_rendered_pieces_are_the_same_as_from_ordinary_rrsets() -> None:
    """The image compiler's fast paths (`proofs.sig_tails`, `fast_tails`) read the wire of
    the signer's sets directly; what they render must equal what the rdatas render."""
    from node.server.proofs import fast_tails, sig_tails

    for nsec3 in (False, True):
        signer = ZoneSigner(ORIGIN, SigningParams(denial=DenialParams(nsec3=nsec3)), key_pair())
        for owner, types in signer.sign(example_nodes(), None, NOW).nodes.items():
            for rdtype, rrset in types.items():
                plain = dns.rrset.RRset(owner, rrset.rdclass, rdtype)
                plain.items = dict.fromkeys(rrset)
                plain.ttl = rrset.ttl
                assert fast_tails(rrset) == fast_tails(plain)
                if rdtype == T.RRSIG:
                    assert sig_tails(rrset) == sig_tails(plain)
                    assert sig_tails(rrset, 77) == sig_tails(plain, 77)


def test_owner_digests_are_the_same_as_from_ordinary_rrsets() -> None:
    for nsec3 in (False, True):
        signer = ZoneSigner(ORIGIN, SigningParams(denial=DenialParams(nsec3=nsec3)), key_pair())
        for owner, types in signer.sign(example_nodes(), None, NOW).nodes.items():
            plain = {}
            for rdtype, rrset in types.items():
                copy_ = plain[rdtype] = dns.rrset.RRset(owner, rrset.rdclass, rdtype)
                copy_.items = dict.fromkeys(rrset)
                copy_.ttl = rrset.ttl
            assert owner_digest(owner, types) == owner_digest(owner, plain)
