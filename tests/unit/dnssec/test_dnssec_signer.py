"""The fast RRset signer: every algorithm validates with dnspython, wildcards, pools."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from dnssec_support import ORIGIN, signing_key

from node.dnssec.keys import DnssecKey, load_private_key
from node.dnssec.signer import (
    SigningKey,
    make_rrsig,
    rrsig_rrset,
    rrsigs,
    sign_blobs,
    sign_rrset,
    signature_header,
    split_rrsigs,
)

INCEPTION, EXPIRATION, NOW = 1_700_000_000, 1_900_000_000, 1_800_000_000


def _keys(alg: int) -> dict[dns.name.Name, dns.rrset.RRset]:
    return {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, signing_key(alg, "zsk").key.dnskey())}


@pytest.mark.parametrize("alg", [8, 10, 13, 14, 15, 16])
def test_every_algorithm_validates(alg: int) -> None:
    sk = signing_key(alg, "zsk")
    rrset = dns.rrset.from_text("WWW.example.", 300, "IN", "A", "192.0.2.2", "192.0.2.1")
    sigs = sign_rrset(rrset, [sk], ORIGIN, INCEPTION, EXPIRATION)
    assert len(sigs) == 1 and sigs.ttl == 300
    rd = sigs[0]
    assert (rd.type_covered, rd.algorithm, rd.labels, rd.original_ttl) == (1, alg, 2, 300)
    assert (rd.inception, rd.expiration, rd.key_tag) == (INCEPTION, EXPIRATION, sk.key.tag)
    dns.dnssec.validate(rrset, sigs, _keys(alg), now=NOW)
    tampered = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.9")
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(tampered, sigs, _keys(alg), now=NOW)


def test_wildcard_labels_and_validation() -> None:
    rrset = dns.rrset.from_text("*.wild.example.", 60, "IN", "TXT", '"x"')
    sigs = sign_rrset(rrset, [signing_key(13, "zsk")], ORIGIN, INCEPTION, EXPIRATION)
    assert sigs[0].labels == 2
    dns.dnssec.validate(rrset, sigs, _keys(13), now=NOW)


def test_names_inside_rdata_are_canonicalised() -> None:
    rrset = dns.rrset.from_text("example.", 60, "IN", "MX", "10 MAIL.Example.", "20 b.example.")
    sigs = sign_rrset(rrset, [signing_key(15, "zsk")], ORIGIN, INCEPTION, EXPIRATION)
    dns.dnssec.validate(rrset, sigs, _keys(15), now=NOW)


def test_fast_rrsig_equals_dnspython_rrsig() -> None:
    sk = signing_key(13, "zsk")
    rrset = dns.rrset.from_text("a.example.", 300, "IN", "A", "192.0.2.1")
    header = signature_header(rrset, sk.key, ORIGIN.to_digestable(), INCEPTION, EXPIRATION)
    fast = make_rrsig(rrset, sk.key, ORIGIN, INCEPTION, EXPIRATION, b"\x01" * 64, header)
    plain = dns.rdata.from_text("IN", "RRSIG", fast.to_text())
    assert fast == plain and plain == fast and hash(fast) == hash(plain)
    assert fast.to_wire() == plain.to_wire()
    assert fast.to_digestable() == plain.to_digestable()


def test_batch_signs_with_each_key() -> None:
    ksk, zsk = signing_key(13, "ksk"), signing_key(13, "zsk")
    rrsets = [dns.rrset.from_text(f"h{i}.example.", 300, "IN", "A", "192.0.2.1")
              for i in range(5)]
    exps = [EXPIRATION + i for i in range(5)]
    out = rrsigs(sign_blobs(rrsets, [[ksk, zsk]] * 5, ORIGIN, INCEPTION, exps), ORIGIN)
    keys = {ORIGIN: dns.rrset.from_rdata_list(ORIGIN, 3600, [ksk.key.dnskey(), zsk.key.dnskey()])}
    for i, (rrset, sigs) in enumerate(zip(rrsets, out, strict=True)):
        assert {rd.key_tag for rd in sigs} == {ksk.key.tag, zsk.key.tag}
        assert {rd.expiration for rd in sigs} == {EXPIRATION + i}
        for rd in sigs:
            dns.dnssec.validate_rrsig(rrset, rd, keys, now=NOW)


def test_pool_signatures_validate() -> None:
    sk = signing_key(15, "zsk")
    rrsets = [dns.rrset.from_text(f"h{i}.example.", 300, "IN", "A", f"192.0.2.{i % 250}")
              for i in range(300)]
    with ProcessPoolExecutor(2) as pool:
        out = rrsigs(sign_blobs(rrsets, [[sk]] * 300, ORIGIN, INCEPTION, [EXPIRATION] * 300,
                                pool=pool, chunk=64), ORIGIN)
        # more chunks than are ever in flight, RRsets with one and two signatures
        keysets = [[sk] if i % 3 else [sk, sk] for i in range(300)]
        many = rrsigs(sign_blobs(rrsets, keysets, ORIGIN, INCEPTION, [EXPIRATION] * 300,
                                 pool=pool, chunk=8), ORIGIN)
    for rrset, sigs in zip(rrsets, out, strict=True):
        dns.dnssec.validate_rrsig(rrset, sigs[0], _keys(15), now=NOW)
    assert [len(sigs) for sigs in many] == [len(ks) for ks in keysets]
    for rrset, sigs in zip(rrsets, many, strict=True):
        for sig in sigs:
            dns.dnssec.validate_rrsig(rrset, sig, _keys(15), now=NOW)


def test_rrsig_rrset_mixes_types_and_split_restores_ttls() -> None:
    sk = signing_key(13, "zsk")
    a = dns.rrset.from_text("x.example.", 300, "IN", "A", "192.0.2.1")
    txt = dns.rrset.from_text("x.example.", 60, "IN", "TXT", '"t"')
    sigs = rrsigs(sign_blobs([a, txt], [[sk], [sk]], ORIGIN, INCEPTION, [EXPIRATION] * 2), ORIGIN)
    mixed = rrsig_rrset(a.name, sigs[0] + sigs[1])
    assert len(mixed) == 2 and mixed.ttl == 60
    parts = split_rrsigs(mixed)
    assert [(p.covers, p.ttl) for p in parts] == [(1, 300), (16, 60)]


def _sign_in_process(key: DnssecKey, pem: bytes) -> bytes:
    """Pool task: load the key from PEM in a fresh process, sign one RRset, return its wire."""
    fresh = SigningKey(key, load_private_key(pem))
    rrset = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    sigs = sign_rrset(rrset, [fresh], ORIGIN, INCEPTION, EXPIRATION)
    return sigs[0].to_wire()


@pytest.mark.parametrize("alg", [8, 10, 13, 14, 15, 16])
def test_signatures_are_identical_across_processes(alg: int) -> None:
    """DESIGN 'one serial is one zone': two processes sign an RRset to the same bytes
    (RFC 6979 ECDSA; Ed25519/Ed448 and RSA PKCS#1 v1.5 are deterministic by definition)."""
    sk = signing_key(alg, "zsk")
    with ProcessPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_sign_in_process, sk.key, sk.pem).result(timeout=60)
    with ProcessPoolExecutor(max_workers=1) as pool:
        second = pool.submit(_sign_in_process, sk.key, sk.pem).result(timeout=60)
    assert first == second
