"""The denial chains (NSEC3's as parallel sorted lists, NSEC's a dict) against a plain model,
and the NSEC3 record's next hash kept as the next owner's label (issue 10, session 14)."""

from __future__ import annotations

import base64
import os
import random

import dns.name
import dns.rdatatype
import pytest

from node.dnssec.denial import DenialParams, Nsec3Chain, NsecChain, canonical_key, nsec3_hash
from node.dnssec.denialsets import hash_label, raw_hash

T = dns.rdatatype
ORIGIN = dns.name.from_text("example.")
TYPESETS = [frozenset({T.A, T.RRSIG}), frozenset({T.TXT, T.RRSIG}), frozenset()]


def test_hash_label_round_trip() -> None:
    for _ in range(200):
        digest = os.urandom(20)
        label = hash_label(digest)
        assert label == base64.b32hexencode(digest).lower() and len(label) == 32
        assert raw_hash(label) == digest
    assert raw_hash(b"0" * 32) == bytes(20) and raw_hash(b"v" * 32) == b"\xff" * 20


@pytest.mark.parametrize("nsec3", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_chain_equals_a_sorted_model(nsec3: bool, seed: int) -> None:
    rng = random.Random(seed)
    params = DenialParams()
    chain = Nsec3Chain(ORIGIN, 300, params) if nsec3 else NsecChain(ORIGIN, 300)
    pool = [dns.name.from_text(f"n{i}.example.") for i in range(120)]
    model = {n: rng.choice(TYPESETS) for n in rng.sample(pool, 60)}
    chain.rebuild({canonical_key(n): (n, t) for n, t in model.items()})

    def owner_key(name: dns.name.Name) -> object:
        return nsec3_hash(name, params).encode() if nsec3 else canonical_key(name)

    for _ in range(300):
        name = rng.choice(pool)
        if rng.random() < 0.3:
            model.pop(name, None)
            chain.update({canonical_key(name): None})
        else:
            model[name] = rng.choice(TYPESETS)
            chain.update({canonical_key(name): (name, model[name])})
        if rng.random() < 0.2:
            assert len(chain) == len(model)
            ordered = sorted(model, key=owner_key)
            owners = list(chain.owners())
            assert [k[-1] if nsec3 else k for k, _ in owners] == [owner_key(n) for n in ordered]
            for i, (okey, oname) in enumerate(owners):
                rr = chain.rrset(okey)
                following = owners[(i + 1) % len(owners)][1]
                if nsec3:
                    assert rr[0].next_name(ORIGIN) == following
                else:
                    assert oname == ordered[i] and rr[0].next == following
                assert chain.types(canonical_key(ordered[i])) == model[ordered[i]]
            missing = [n for n in pool if n not in model]
            if missing:
                assert chain.types(canonical_key(missing[0])) is None


def test_nsec3_record_shares_the_next_owners_label() -> None:
    """The record keeps the chain's own label object (no bytes of its own per owner)."""
    chain = Nsec3Chain(ORIGIN, 300, DenialParams())
    names = [dns.name.from_text(f"n{i}.example.") for i in range(10)]
    chain.rebuild({canonical_key(n): (n, TYPESETS[0]) for n in names})
    keys = chain._keys
    for i, (okey, _) in enumerate(chain.owners()):
        rr = chain.rrset(okey)
        assert rr._data[1] is keys[(i + 1) % len(keys)]
        assert rr[0].next == raw_hash(keys[(i + 1) % len(keys)])
        assert rr.name.labels[0] is keys[i]
