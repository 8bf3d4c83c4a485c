"""ZoneSigner: full and incremental signing, chains, refresh, keys; judged by dnspython,
ldns-verify-zone and dnssec-verify."""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from dnssec_support import (
    EXAMPLE,
    HAVE_VERIFIERS,
    NOW,
    ORIGIN,
    WALL_NOW,
    example_nodes,
    key_pair,
    normalized,
    run_verifiers,
    signed_types,
    signing_key,
    validate_all,
    write_zone,
)

from node.dnssec.denial import DenialParams, nsec3_hash
from node.dnssec.keys import dnskey_rrset
from node.dnssec.signer import master_text, sign_rrset
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.errors import ValidationError
from node.zones.model import NodeMap

T = dns.rdatatype
N = dns.name.from_text
verifiers = pytest.mark.skipif(not HAVE_VERIFIERS, reason="ldns-verify-zone/dnssec-verify absent")


def _signer(denial: DenialParams | None = None, alg: int = 13, keys: list | None = None,
            **kw: int) -> ZoneSigner:
    params = SigningParams(denial=denial or DenialParams(), **kw)
    return ZoneSigner(ORIGIN, params, keys or key_pair(alg))


def _hashed(name: str, params: DenialParams | None = None) -> dns.name.Name:
    return N(nsec3_hash(N(name), params or DenialParams()), origin=ORIGIN)


def test_full_sign_nsec3_structure() -> None:
    nodes = example_nodes()
    res = _signer().sign(nodes, None, NOW)
    out = res.nodes
    ksk, zsk = (k.key for k in key_pair())
    apex = out[ORIGIN]
    assert {rd.key_tag for rd in apex[T.RRSIG] if rd.type_covered == T.DNSKEY} == {ksk.tag}
    assert {rd.key_tag for rd in apex[T.RRSIG] if rd.type_covered == T.SOA} == {zsk.tag}
    assert apex[T.DNSKEY].ttl == 3600 and len(apex[T.DNSKEY]) == 2
    assert apex[T.NSEC3PARAM][0].to_text() == "1 0 0 -"
    assert signed_types(out, ORIGIN) == {T.SOA, T.NS, T.MX, T.DNSKEY, T.NSEC3PARAM}
    # delegations: only DS signed; glue never signed
    assert signed_types(out, N("secure.example.")) == {T.DS}
    assert T.RRSIG not in out[N("insecure.example.")]
    assert T.RRSIG not in out[N("ns.secure.example.")]
    # unchanged input objects are reused
    assert out[N("web.example.")][T.A] is nodes[N("web.example.")][T.A]
    # NSEC3 records: every authoritative name and ENT, none for glue; TTL = SOA minimum
    for name, bitmap in [("example.", "A NS SOA MX RRSIG DNSKEY NSEC3PARAM"[2:]),
                         ("c.ent.example.", ""), ("b.c.ent.example.", ""),
                         ("x.y.example.", ""), ("y.example.", ""),
                         ("secure.example.", "NS DS RRSIG"), ("insecure.example.", "NS"),
                         ("*.wild.example.", "TXT RRSIG"), ("upper.example.", "A RRSIG")]:
        rrset = out[_hashed(name)][T.NSEC3]
        assert rrset.ttl == 300
        text = rrset[0].to_text()
        assert text.endswith(bitmap) if bitmap else len(text.split()) == 5, (name, text)
        assert signed_types(out, _hashed(name)) == {T.NSEC3}
    assert _hashed("ns.secure.example.") not in out
    assert res.signatures_made == validate_all(out)
    assert res.changed is None
    assert NOW + 9 * 86400 <= res.earliest_expiration <= NOW + 21 * 86400
    assert res.next_refresh == res.earliest_expiration - 9 * 86400
    for types in out.values():
        for rd in types.get(T.RRSIG, ()):
            assert rd.inception == rd.expiration - 21 * 86400 - 3600 <= NOW - 3600
            assert rd.signer == ORIGIN


def test_nsec_chain_bitmaps_and_no_ent_records() -> None:
    out = _signer(DenialParams(nsec3=False)).sign(example_nodes(), None, NOW).nodes
    assert T.NSEC3PARAM not in out[ORIGIN]
    assert out[N("secure.example.")][T.NSEC][0].to_text().endswith("NS DS RRSIG NSEC")
    assert out[N("insecure.example.")][T.NSEC][0].to_text().endswith("NS RRSIG NSEC")
    assert T.NSEC not in out.get(N("ns.secure.example."), {})
    assert N("c.ent.example.") not in out
    assert out[ORIGIN][T.NSEC].ttl == 300
    validate_all(out)


def test_opt_out_leaves_insecure_delegations_out() -> None:
    params = DenialParams(opt_out=True)
    out = _signer(params).sign(example_nodes(), None, NOW).nodes
    assert _hashed("insecure.example.", params) not in out
    assert _hashed("deep.x.y.example.", params) not in out
    assert _hashed("secure.example.", params) in out
    assert all(rr[0].flags == 1 for types in out.values() if (rr := types.get(T.NSEC3)))
    assert out[ORIGIN][T.NSEC3PARAM][0].flags == 0


def test_csk_signs_everything() -> None:
    csk = signing_key(13, "csk")
    out = ZoneSigner(ORIGIN, SigningParams(), [csk]).sign(example_nodes(), None, NOW).nodes
    assert [rd.flags for rd in out[ORIGIN][T.DNSKEY]] == [257]
    assert {rd.key_tag for types in out.values() for rd in types.get(T.RRSIG, ())} == {
        csk.key.tag}
    validate_all(out)


@pytest.mark.parametrize("alg", [8, 10, 13, 14, 15, 16])
def test_every_algorithm_validates(alg: int) -> None:
    res = _signer(alg=alg).sign(example_nodes(), None, NOW)
    assert validate_all(res.nodes) == res.signatures_made > 20


def test_key_states_in_dnskey_and_signing() -> None:
    ksk, zsk = key_pair()
    retired = signing_key(15, "zsk")
    retired = type(retired)(retired.key.with_state("retired"), retired.private)
    foreign = signing_key(16, "ksk").key.with_state("published")
    signer = ZoneSigner(ORIGIN, SigningParams(), [ksk, zsk, retired], [foreign])
    out = signer.sign(example_nodes(), None, NOW).nodes
    assert len(out[ORIGIN][T.DNSKEY]) == 4
    tags = {rd.key_tag for types in out.values() for rd in types.get(T.RRSIG, ())}
    assert tags == {ksk.key.tag, zsk.key.tag}
    with pytest.raises(ValidationError, match="no active key"):
        ZoneSigner(ORIGIN, SigningParams(), [retired])


def test_set_keys_resigns_everything() -> None:
    signer = _signer()
    nodes = example_nodes()
    first = signer.sign(nodes, None, NOW)
    signer.set_keys(key_pair(15))
    second = signer.sign(nodes, frozenset({ORIGIN}), NOW + 60)
    assert second.signatures_made == first.signatures_made
    assert {rd.algorithm for types in second.nodes.values()
            for rd in types.get(T.RRSIG, ())} == {15}
    validate_all(second.nodes)


def test_refresh_spreads_over_the_period_by_epoch() -> None:
    signer = _signer()
    nodes = example_nodes()
    first = signer.sign(nodes, None, NOW)
    # nothing due until the earliest boundary
    quiet = signer.sign(nodes, frozenset(), first.next_refresh - 1)
    assert quiet.signatures_made == 0 and quiet.changed == frozenset()
    exps = {rd.expiration for types in first.nodes.values() for rd in types.get(T.RRSIG, ())}
    assert len(exps) > 5  # per-RRset offsets spread expirations
    some = signer.sign(nodes, frozenset(), first.next_refresh)
    assert 0 < some.signatures_made < first.signatures_made
    assert some.changed and len(some.changed) < len(first.nodes)
    later = NOW + 21 * 86400 - 9 * 86400
    rest = signer.sign(nodes, frozenset(), later)
    assert rest.earliest_expiration > first.earliest_expiration + 86400
    validate_all(rest.nodes, now=later)


def _rrsigs(nodes: NodeMap) -> dict[tuple[dns.name.Name, int], set[bytes]]:
    return {(owner, rd.type_covered): {r.to_wire() for r in types[T.RRSIG]
                                       if r.type_covered == rd.type_covered}
            for owner, types in nodes.items() for rd in types.get(T.RRSIG, ())}


def test_untouched_signatures_never_change_between_boundaries() -> None:
    signer = _signer()
    nodes = example_nodes()
    base = _rrsigs(signer.sign(nodes, None, NOW).nodes)
    period = 21 * 86400 - 9 * 86400
    for t in range(NOW, NOW + 2 * period, 3 * 3600 + 17):
        res = signer.sign(nodes, frozenset(), t)
        for (owner, rdtype), sigs in _rrsigs(res.nodes).items():
            rd = next(r for r in res.nodes[owner][T.RRSIG] if r.type_covered == rdtype)
            # the invariant: every expiration is at least the version time + the refresh margin
            assert rd.expiration >= t + 9 * 86400
            assert rd.inception <= t
            if rd.expiration - 21 * 86400 + period > t and rd.expiration - 21 * 86400 <= NOW:
                assert sigs == base[(owner, rdtype)]  # same epoch as at NOW: same bytes


def test_incremental_history_equals_a_fresh_signer_at_every_version() -> None:
    """A node that signed every version and one that starts at version v (a restart,
    a join, a stagger) produce the same bytes: signing depends only on the version."""
    keys = key_pair(13)
    online = _signer(keys=keys)
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    t = NOW
    online.sign(nodes, None, t)
    rng = random.Random(5)
    for step in range(12):
        t += rng.choice([1, 3600, 5 * 86400])
        changed = {N(f"h{step}.example.")}
        nodes[N(f"h{step}.example.")] = {T.A: dns.rrset.from_text(
            f"h{step}.example.", 300, "IN", "A", f"192.0.2.{step}")}
        res = online.sign({k: dict(v) for k, v in nodes.items()}, frozenset(changed), t)
        fresh = _signer(keys=keys).sign({k: dict(v) for k, v in nodes.items()}, None, t)
        assert master_text(res.nodes) == master_text(fresh.nodes), f"differs at step {step}"


def test_soa_ttl_change_updates_chain_ttl() -> None:
    signer = _signer()
    signer.sign(example_nodes(), None, NOW)
    text = EXAMPLE.replace("604800 300", "604800 120")
    res = signer.sign(example_nodes(text), frozenset({ORIGIN}), NOW)
    assert {types[T.NSEC3].ttl for types in res.nodes.values() if T.NSEC3 in types} == {120}
    validate_all(res.nodes)


@verifiers
@pytest.mark.parametrize(("denial", "alg"), [
    (DenialParams(nsec3=False), 13),
    (DenialParams(), 13),
    (DenialParams(), 15),
    (DenialParams(), 8),
    (DenialParams(salt=random.Random(3).randbytes(8)), 13),
    (DenialParams(salt=bytes.fromhex("aabbccdd"), iterations=10), 14),
    (DenialParams(opt_out=True), 13),
], ids=["nsec", "nsec3", "nsec3-ed25519", "nsec3-rsa", "random-salt", "user-salt", "opt-out"])
def test_third_party_verifiers_accept(denial: DenialParams, alg: int, tmp_path: Path) -> None:
    res = _signer(denial, alg=alg).sign(example_nodes(), None, WALL_NOW)
    run_verifiers(write_zone(res.nodes, tmp_path / "example.zone"))


def _mutate(rng: random.Random, data: dict[dns.name.Name, dict[int, dns.rrset.RRset]],
            step: int) -> set[dns.name.Name]:
    """One random change: add/remove a host, a deep name, a delegation, a DS; bump the SOA."""
    choice = rng.randrange(6)
    names = sorted(n for n in data if n != ORIGIN)
    changed: set[dns.name.Name] = set()
    if choice == 0 or not names:
        name = N(f"h{rng.randrange(200)}.{rng.choice(['', 'sub.', 'a.b.'])}example.")
        data.setdefault(name, {})[T.A] = dns.rrset.from_text(name, 300, "IN", "A",
                                                            f"10.0.0.{step % 250}")
        changed.add(name)
    elif choice == 1:
        name = rng.choice(names)
        del data[name]
        changed.add(name)
    elif choice == 2:
        name = rng.choice(names)
        data[name][T.TXT] = dns.rrset.from_text(name, 60, "IN", "TXT", f'"s{step}"')
        changed.add(name)
    elif choice == 3:  # a delegation appears or disappears, possibly over existing names
        name = N(rng.choice(["sub.example.", "b.example.", "d.example."]))
        node = data.setdefault(name, {})
        if T.NS in node:
            node.pop(T.NS)
            node.pop(T.DS, None)
            if not node:
                del data[name]
        else:
            node[T.NS] = dns.rrset.from_text(name, 300, "IN", "NS", f"ns.{name}")
            glue = N(f"ns.{name}")
            data.setdefault(glue, {})[T.A] = dns.rrset.from_text(glue, 300, "IN", "A",
                                                                "10.9.9.9")
            changed.add(glue)
        changed.add(name)
    elif choice == 4:
        cuts = [n for n in names if T.NS in data[n]]
        if cuts:
            name = rng.choice(cuts)
            if T.DS in data[name]:
                del data[name][T.DS]
            else:
                data[name][T.DS] = dns.rrset.from_text(
                    name, 300, "IN", "DS", f"{step} 13 2 " + "ab" * 32)
            changed.add(name)
    else:
        name = N(f"w{rng.randrange(5)}.*.example.".replace("*.", "") if step % 2 else
                 "*.wc.example.")
        data.setdefault(name, {})[T.MX] = dns.rrset.from_text(name, 300, "IN", "MX",
                                                             "10 mail.example.")
        changed.add(name)
    soa = data[ORIGIN][T.SOA]
    data[ORIGIN][T.SOA] = dns.rrset.from_rdata(ORIGIN, soa.ttl, soa[0].replace(serial=step + 2))
    changed.add(ORIGIN)
    return changed


@pytest.mark.parametrize("denial", [DenialParams(nsec3=False), DenialParams(),
                                    DenialParams(opt_out=True, salt=b"\x01\x02")],
                         ids=["nsec", "nsec3", "nsec3-optout"])
def test_incremental_equals_full(denial: DenialParams, tmp_path: Path) -> None:
    rng = random.Random(42)
    data = {k: dict(v) for k, v in example_nodes().items()}
    online = _signer(denial)
    now = WALL_NOW
    prev = online.sign(data, None, now).nodes
    for step in range(60):
        changed = _mutate(rng, data, step)
        res = online.sign({k: dict(v) for k, v in data.items()}, frozenset(changed), now)
        before, after = normalized(prev), normalized(res.nodes)
        differs = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert res.changed is not None
        reported = {n.to_text().lower() for n in res.changed}
        assert differs <= reported, (step, differs - reported)
        prev = res.nodes
        if step % 10 == 9:
            full = _signer(denial).sign(data, None, now).nodes
            assert normalized(full) == after, step
            validate_all(res.nodes, now=now)
    if HAVE_VERIFIERS:
        run_verifiers(write_zone(prev, tmp_path / "example.zone"))


def test_revoked_ksk_signs_the_dnskey_set() -> None:
    ksk, zsk = key_pair()
    old = signing_key(13, "ksk", "old.example.")
    revoked = type(old)(old.key.with_state("revoked"), old.private)
    out = ZoneSigner(ORIGIN, SigningParams(), [ksk, zsk, revoked]).sign(
        example_nodes(), None, NOW).nodes
    dnskey_sigs = {rd.key_tag for rd in out[ORIGIN][T.RRSIG] if rd.type_covered == T.DNSKEY}
    assert dnskey_sigs == {ksk.key.tag, revoked.key.tag}
    assert any(rd.flags == 385 for rd in out[ORIGIN][T.DNSKEY])
    validate_all(out)


def test_full_sign_in_process_pool_validates() -> None:
    lines = [EXAMPLE] + [f"h{i} A 10.0.{i // 250}.{i % 250}" for i in range(700)]
    nodes = example_nodes("\n".join(lines))
    with ProcessPoolExecutor(2) as pool:
        signer = ZoneSigner(ORIGIN, SigningParams(), key_pair(15), pool=pool)
        res = signer.sign(nodes, None, NOW)
        assert res.signatures_made > 1400  # more than one pool chunk
        assert validate_all(res.nodes) == res.signatures_made
        # an incremental change after a pooled full sign still chains correctly
        name = N("h5.example.")
        data = {k: dict(v) for k, v in nodes.items()}
        del data[name]
        res2 = signer.sign(data, frozenset({name}), NOW)
    assert name not in res2.nodes and res2.changed is not None
    assert _hashed("h5.example.") in res2.changed
    validate_all(res2.nodes)


def test_dnskey_rrsigs_from_the_key_master() -> None:
    """A KSK whose private key is not replicated: the Key Master signs the DNSKEY RRset,
    other nodes serve those RRSIGs and sign the rest with the ZSK."""
    ksk, zsk = key_pair()
    dnskey = dnskey_rrset(ORIGIN, [ksk.key, zsk.key], 3600)
    made = sign_rrset(dnskey, [ksk], ORIGIN, NOW - 3600, NOW + 30 * 86400)
    signer = ZoneSigner(ORIGIN, SigningParams(), [zsk], [ksk.key], dnskey_rrsigs=list(made))
    nodes = example_nodes()
    first = signer.sign(nodes, None, NOW)
    sigs = [rd for rd in first.nodes[ORIGIN][T.RRSIG] if rd.type_covered == T.DNSKEY]
    assert sigs == list(made)
    validate_all(first.nodes)
    # fresh RRSIGs from the Key Master: only the apex changes, nothing else is re-signed
    again = sign_rrset(dnskey, [ksk], ORIGIN, NOW, NOW + 31 * 86400)
    signer.set_dnskey_rrsigs(list(again))
    second = signer.sign(nodes, frozenset(), NOW)
    assert second.changed == frozenset({ORIGIN}) and second.signatures_made == 0
    assert {rd.expiration for rd in second.nodes[ORIGIN][T.RRSIG]
            if rd.type_covered == T.DNSKEY} == {NOW + 31 * 86400}
    # never re-signed locally, even when due
    late = signer.sign(nodes, frozenset(), NOW + 25 * 86400)
    assert {rd.key_tag for rd in late.nodes[ORIGIN][T.RRSIG]
            if rd.type_covered == T.DNSKEY} == {ksk.key.tag}
    other = signing_key(15, "zsk")
    with pytest.raises(ValidationError, match="differ from the Key Master"):
        ZoneSigner(ORIGIN, SigningParams(), [zsk, other], [ksk.key], dnskey_rrsigs=list(made))


def test_key_master_dnskey_rrsigs_do_not_schedule_a_refresh_here() -> None:
    """Issue #8, finding 8: the Key Master's DNSKEY RRSIGs near expiry (its KSK unreplicated,
    the Key Master gone) cannot be refreshed by a serial bump on this node, so they must not
    make every pass due at once (a serial-bump loop); they still count as served expiry."""
    ksk, zsk = key_pair()
    dnskey = dnskey_rrset(ORIGIN, [ksk.key, zsk.key], 3600)
    soon = NOW + 5 * 86400  # inside the 9-day refresh window
    made = sign_rrset(dnskey, [ksk], ORIGIN, NOW - 3600, soon)
    signer = ZoneSigner(ORIGIN, SigningParams(), [zsk], [ksk.key], dnskey_rrsigs=list(made))
    nodes = example_nodes()
    first = signer.sign(nodes, None, NOW)
    assert first.earliest_expiration == soon
    assert first.next_refresh > NOW, "a refresh is due at once, on every pass"
    bumped = signer.sign(nodes, frozenset({ORIGIN}), NOW + 1)  # the pass after a serial bump
    assert bumped.next_refresh > NOW + 1 and bumped.earliest_expiration == soon


def _live_rdatas() -> int:
    """dnspython RRSIG, NSEC and NSEC3 rdata objects alive now."""
    import gc

    from dns.rdtypes.ANY.NSEC import NSEC
    from dns.rdtypes.ANY.NSEC3 import NSEC3
    from dns.rdtypes.ANY.RRSIG import RRSIG

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RRSIG | NSEC | NSEC3))


@pytest.mark.parametrize("nsec3", [False, True])
def test_signer_holds_no_rrsig_or_chain_rdata_objects_after_a_full_sign(nsec3: bool) -> None:
    """Memory (issue 10): signatures are kept as wire octets, one bytes object per RRset,
    chain records as their fields; the output's RRsets make rdatas only when read."""
    nodes = example_nodes()
    before = _live_rdatas()
    signer = _signer(DenialParams(nsec3=nsec3))
    res = signer.sign(nodes, None, NOW)
    assert res.signatures_made > 20
    assert _live_rdatas() == before
    # read, they are ordinary RRSIGs, and reading keeps none of them alive
    apex = res.nodes[ORIGIN][T.RRSIG]
    assert {rd.type_covered for rd in apex} >= {T.SOA, T.DNSKEY}
    assert _live_rdatas() == before
    assert validate_all(res.nodes) == res.signatures_made
