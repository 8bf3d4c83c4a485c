"""Review s14-signrev: incremental signing (one map of owners, the refresh schedule, the
NSEC3 chain as lists) against a fresh full sign of the same zone version, after random
changes and time steps: same records, every signature valid and not about to expire,
the schedule holding exactly the served signed owners at their due times."""

from __future__ import annotations

import random
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from dnssec_support import (
    EXAMPLE,
    HAVE_VERIFIERS,
    NOW,
    WALL_NOW,
    example_nodes,
    key_pair,
    run_verifiers,
    write_zone,
)

from node.dnssec import schedule
from node.dnssec.denial import DenialParams
from node.dnssec.sigstore import SignedNode
from node.dnssec.zonesigner import SigningParams, ZoneSigner

T = dns.rdatatype
ORIGIN = dns.name.from_text("example.")


def _records(nodes) -> dict:  # type: ignore[no-untyped-def]
    """Every owner's non-RRSIG RRsets as text, and its RRSIG covered types."""
    out = {}
    for name, types in nodes.items():
        rrsets = {t: sorted(rs.to_text().splitlines()) for t, rs in types.items() if t != T.RRSIG}
        covered = sorted({rd.type_covered for rd in types[T.RRSIG]}) if T.RRSIG in types else []
        out[name.to_text().lower()] = (rrsets, covered)
    return out


def _check_sigs(nodes, now: int, until: int) -> None:  # type: ignore[no-untyped-def]
    keys = {ORIGIN: nodes[ORIGIN][T.DNSKEY]}
    for name, types in nodes.items():
        if T.RRSIG not in types:
            continue
        for rd in types[T.RRSIG]:
            covered = types[rd.type_covered]
            dns.dnssec.validate_rrsig(covered, rd, keys, ORIGIN, now)
            assert rd.expiration > until, f"{name} {T.to_text(rd.type_covered)} expires " \
                f"{rd.expiration - now} s after the pass (not refreshed)"


def _check_schedule(signer: ZoneSigner, nodes, params: SigningParams, res) -> None:  # type: ignore[no-untyped-def]
    sched = signer._schedule
    live = {id(n): n for n in sched if id(n) not in sched._stale}
    signed = {id(n): n for n in nodes.values() if type(n) is SignedNode}
    assert set(live) == set(signed), "schedule != served signed owners"
    dues = [n.refresh_due() for n in signed.values()]
    stored = list(zip(sched._order[sched._pos:], sched._dues[sched._pos:], strict=True))
    stored += [(n, due) for due, _, n in sched._heap]
    for node, due in stored:  # each at its signatures' earliest expiration
        assert id(node) in sched._stale or due == node.refresh_due(), node.owner
    assert sched.earliest() == min(dues)
    assert res.next_refresh == min(dues) - params.refresh


def _change(rng: random.Random, nodes: dict, step: int) -> set:  # type: ignore[type-arg]
    """A random change or two; the owners changed."""
    changed = set()
    for _ in range(rng.randrange(1, 4)):
        op = rng.random()
        if op < 0.35:
            name = dns.name.from_text(f"h{rng.randrange(12)}.{rng.choice(['', 'd.', 'x.y.'])}"
                                      "example.")
            if name in nodes and rng.random() < 0.5:
                del nodes[name]
            else:
                nodes[name] = {T.TXT: dns.rrset.from_text(name, 300, "IN", "TXT", f'"{step}"')}
            changed.add(name)
        elif op < 0.5:  # a delegation comes or goes, with or without DS (opt-out matters)
            name = dns.name.from_text(f"sub{rng.randrange(4)}.example.")
            if name in nodes and rng.random() < 0.5:
                del nodes[name]
            else:
                t = {T.NS: dns.rrset.from_text(name, 300, "IN", "NS", "ns.other.net.")}
                if rng.random() < 0.5:
                    t[T.DS] = dns.rrset.from_text(
                        name, 300, "IN", "DS", f"{1000 + step} 13 2 " + "ab" * 32)
                nodes[name] = t
            changed.add(name)
        elif op < 0.6:  # the apex: a new serial
            apex = dict(nodes[ORIGIN])
            soa = apex[T.SOA]
            apex[T.SOA] = dns.rrset.from_rdata(ORIGIN, soa.ttl,
                                               soa[0].replace(serial=soa[0].serial + 1))
            nodes[ORIGIN] = apex
            changed.add(ORIGIN)
        elif op < 0.7:  # an owner replaced, then restored to what it was
            name = dns.name.from_text("web.example.")
            nodes[name] = dict(nodes[name])
            nodes[name][T.TXT] = dns.rrset.from_text(name, 3600, "IN", "TXT",
                                                     rng.choice(['"web server"', f'"{step}"']))
            changed.add(name)
        else:  # nothing: the pass only refreshes
            pass
    return changed


@pytest.mark.parametrize("denial", [
    DenialParams(nsec3=False),
    DenialParams(nsec3=True),
    DenialParams(nsec3=True, opt_out=True, salt=b"\xab\xcd", iterations=3),
])
@pytest.mark.parametrize("seed", range(2))
def test_incremental_equals_a_fresh_full_sign(monkeypatch: pytest.MonkeyPatch,
                                              denial: DenialParams, seed: int) -> None:
    monkeypatch.setattr(schedule, "FOLD_MIN", 3)
    monkeypatch.setattr(schedule, "_TRIM_MIN", 2)
    params = SigningParams(denial=denial)
    keys = key_pair(13)
    signer = ZoneSigner(ORIGIN, params, keys)
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    t = NOW
    res = signer.sign(dict(nodes), None, t)
    rng = random.Random(seed)
    for step in range(60):
        # sometimes exactly when the last result asked to be called again
        t = res.next_refresh if rng.random() < 0.3 else t + rng.choice([1, 600, 86400, 5 * 86400])
        changed = _change(rng, nodes, step)
        res = signer.sign({k: dict(v) for k, v in nodes.items()}, frozenset(changed), t)
        fresh = ZoneSigner(ORIGIN, params, keys).sign({k: dict(v) for k, v in nodes.items()},
                                                      None, t)
        assert _records(res.nodes) == _records(fresh.nodes), f"step {step}"
        _check_sigs(res.nodes, t, t + params.refresh)
        _check_schedule(signer, res.nodes, params, res)


class _Broken(RuntimeError):
    pass


@pytest.mark.parametrize("nsec3", [False, True])
@pytest.mark.parametrize("seed", range(2))
def test_failed_passes_rollovers_and_key_master_rrsigs(monkeypatch: pytest.MonkeyPatch,
                                                       nsec3: bool, seed: int) -> None:
    """As above, with passes that fail part way (the signing pool breaking), full passes
    (a new SOA minimum, everything asked for, the same keys set again: a rollover) and
    the Key Master's DNSKEY RRSIGs replaced now and then."""
    from node.dnssec import zonesigner
    from node.dnssec.keys import dnskey_rrset
    from node.dnssec.signer import sign_rrset

    monkeypatch.setattr(schedule, "FOLD_MIN", 3)
    monkeypatch.setattr(schedule, "_TRIM_MIN", 2)
    rng = random.Random(100 + seed)
    real = zonesigner.iter_sign_blobs
    fail = {"at": -1}

    def breaking(*args, **kwargs):  # type: ignore[no-untyped-def]
        blobs = real(*args, **kwargs)
        if fail["at"] < 0:
            return blobs

        def gen():  # type: ignore[no-untyped-def]
            for i, b in enumerate(blobs):
                if i == fail["at"]:
                    raise _Broken("A process in the process pool was terminated")
                yield b
            if fail["at"] >= 0:
                raise _Broken("A process in the process pool was terminated")
        return gen()

    monkeypatch.setattr(zonesigner, "iter_sign_blobs", breaking)
    params = SigningParams(denial=DenialParams(nsec3=nsec3))
    ksk, zsk = key_pair()
    dnskey = dnskey_rrset(ORIGIN, [ksk.key, zsk.key], 3600)
    made = list(sign_rrset(dnskey, [ksk], ORIGIN, NOW - 3600, NOW + 400 * 86400))
    signer = ZoneSigner(ORIGIN, params, [zsk], [ksk.key], dnskey_rrsigs=made)
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    t = NOW
    res = signer.sign(dict(nodes), None, t)
    for step in range(60):
        t = res.next_refresh if rng.random() < 0.3 else t + rng.choice([1, 600, 86400, 5 * 86400])
        changed = _change(rng, nodes, step)
        op = rng.random()
        if op < 0.1:  # a new SOA minimum: the denial TTL changes, a full pass
            apex = dict(nodes[ORIGIN])
            soa = apex[T.SOA]
            apex[T.SOA] = dns.rrset.from_rdata(ORIGIN, soa.ttl, soa[0].replace(
                serial=soa[0].serial + 1, minimum=rng.choice([300, 299, 600])))
            nodes[ORIGIN] = apex
            changed.add(ORIGIN)
        elif op < 0.15:
            signer.set_keys([zsk], [ksk.key], made)
        elif op < 0.25:
            made = list(sign_rrset(dnskey, [ksk], ORIGIN, t - 3600, t + 400 * 86400 + step))
            signer.set_dnskey_rrsigs(made)
        version = {k: dict(v) for k, v in nodes.items()}
        ask = None if rng.random() < 0.1 else frozenset(changed)
        if rng.random() < 0.25:  # this pass fails part way; the next one is asked again
            fail["at"] = rng.randrange(0, 6)
            try:
                signer.sign(version, ask, t)
            except _Broken:
                pass
            fail["at"] = -1
            t += rng.choice([0, 1, 3600])
        res = signer.sign(version, ask, t)
        fresh = ZoneSigner(ORIGIN, params, [zsk], [ksk.key], dnskey_rrsigs=made)
        want = fresh.sign({k: dict(v) for k, v in nodes.items()}, None, t)
        assert _records(res.nodes) == _records(want.nodes), f"step {step}"
        _check_sigs(res.nodes, t, t + params.refresh)
        sched = signer._schedule
        live = {id(n) for n in sched if id(n) not in sched._stale}
        assert live == {id(n) for n in res.nodes.values() if type(n) is SignedNode}
        own = min(n.refresh_due(T.DNSKEY if name == ORIGIN else None)
                  for name, n in res.nodes.items() if type(n) is SignedNode)
        assert res.next_refresh == own - params.refresh, f"step {step}"


@pytest.mark.skipif(not HAVE_VERIFIERS, reason="ldns-verify-zone / dnssec-verify missing")
@pytest.mark.parametrize("denial", [
    DenialParams(nsec3=False),
    DenialParams(nsec3=True, opt_out=True, salt=b"\x01\x02", iterations=2),
])
def test_incrementally_signed_zone_passes_third_party_verifiers(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, denial: DenialParams) -> None:
    """Twenty days of random changes and refreshes, ending at the wall clock (the
    verifiers' time): ldns-verify-zone and dnssec-verify accept the served zone."""
    monkeypatch.setattr(schedule, "FOLD_MIN", 8)
    rng = random.Random(5)
    params = SigningParams(denial=denial)
    keys = key_pair(13)
    text = EXAMPLE + "\n".join(f"n{i} A 10.0.0.{i}" for i in range(150))
    nodes = {k: dict(v) for k, v in example_nodes(text).items()}
    signer = ZoneSigner(ORIGIN, params, keys)
    t = WALL_NOW - 20 * 86400
    res = signer.sign(dict(nodes), None, t)
    step = 0
    while (nt := t + rng.choice([1, 600, 86400, 3 * 86400])) < WALL_NOW - 60:
        t, step = nt, step + 1
        changed = _change(rng, nodes, step)
        for _ in range(rng.randrange(0, 20)):
            name = dns.name.from_text(f"n{rng.randrange(150)}.{rng.choice(['', 'q.r.'])}example.")
            if name in nodes and rng.random() < 0.4:
                del nodes[name]
            else:
                nodes[name] = {T.A: dns.rrset.from_text(name, 300, "IN", "A", f"10.9.0.{step}")}
            changed.add(name)
        res = signer.sign({k: dict(v) for k, v in nodes.items()}, frozenset(changed), t)
    run_verifiers(write_zone(res.nodes, tmp_path / "zone"))
