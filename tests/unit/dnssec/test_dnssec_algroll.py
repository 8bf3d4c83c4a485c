"""`plan_algorithm`: the steps of an algorithm rollover (RFC 6781 4.1.4) and when each is due."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import dns.name
import pytest

from node.dnssec.algroll import AlgStep, in_progress, plan_algorithm
from node.dnssec.keys import (
    PUBLISHED_STATES,
    SIGNING_STATES,
    DnssecKey,
    dnskey_rrset,
    new_key,
)
from node.dnssec.lifecycle import KeyTimes
from node.dnssec.rollover import RollObservation, Timing, cds_keys

ZONE = dns.name.from_text("alg.test.")
T0 = 1_700_000_000.0
# Dprp 3600, DNSKEY TTL 300, max TTL 600, negative 900: Ipub 3900, Iret(ZSK) 4500, Iret(KSK) 9000
TIMING = Timing(dnskey_ttl=300, max_ttl=600, negative_ttl=900, propagation=3600,
                ds_ttl=7200, parent_propagation=1800)
OLD, NEW = 13, 15


def key(key_id: str, role: str, state: str, alg: int = OLD, *, pub: float | None = T0,
        act: float | None = T0, ready: float | None = T0, ret: float | None = None,
        pred: str = "", ds_seen: float | None = None) -> DnssecKey:
    return DnssecKey(
        key_id=key_id, zone=ZONE, algorithm=alg, role=role,  # type: ignore[arg-type]
        flags=257 if role == "ksk" else 256, tag=sum(map(ord, key_id)), public=b"",
        state=state, created="2023-11-14T22:13:20Z",
        times=KeyTimes(published=pub, ready=ready, active=act, retired=ret),
        predecessor=pred, ds_seen=ds_seen)


K1, Z1 = key("k1", "ksk", "active"), key("z1", "zsk", "active")
T1 = T0 + 100  # the new keys were introduced
K2 = key("k2", "ksk", "presigning", NEW, pub=None, act=T1, ready=None, pred="k1")
Z2 = key("z2", "zsk", "presigning", NEW, pub=None, act=T1, ready=None, pred="z1")
T2 = T1 + 4500  # published
K2P = replace(K2, state="active", times=K2.times.at(published=T2))
Z2P = replace(Z2, state="active", times=Z2.times.at(published=T2))
T3 = T2 + 3900  # ready
K2R, Z2R = (replace(k, times=k.times.at(ready=T3)) for k in (K2P, Z2P))
T4 = T3 + 50  # DS seen
K2S = replace(K2R, ds_seen=T4)
T5 = T4 + 9000  # withdrawn
K1W = replace(K1, state="withdrawn", times=K1.times.at(retired=T5))
Z1W = replace(Z1, state="withdrawn", times=Z1.times.at(retired=T5))


def obs(*keys: DnssecKey, signed: bool = True) -> RollObservation:
    return RollObservation(tuple(keys), TIMING, signed_everywhere=signed)


@pytest.mark.parametrize(("keys", "action", "ids", "at", "blocked"), [
    # 1. the configured algorithm differs: introduce now, one new key per old key
    ((K1, Z1), "introduce", ("k1", "z1"), T0 + 7, False),
    # 2. publish after Dprp + max(TTL, negative TTL) of the first new signatures
    ((K1, Z1, K2, Z2), "publish", ("k2", "z2"), T1 + 3600 + 900, False),
    # 3. ready after Ipub = Dprp + TTLkey
    ((K1, Z1, K2P, Z2P), "ready", ("k2", "z2"), T2 + 3900, False),
    # 4. waits for the new KSK's DS at the parent, never by itself
    ((K1, Z1, K2R, Z2R), "withdraw", ("k1", "z1"), T3, True),
    # 5. the old DNSKEYs go after the old DS has left caches: DprpP + TTLds
    ((K1, Z1, K2S, Z2R), "withdraw", ("k1", "z1"), T4 + 1800 + 7200, False),
    # 6. the old keys stop signing once no cache holds a DNSKEY set with them
    ((K1W, Z1W, K2S, Z2R), "remove", ("k1", "z1"), T5 + 3900, False),
])
def test_each_step_and_its_time(keys: tuple[DnssecKey, ...], action: str,
                                ids: tuple[str, ...], at: float, blocked: bool) -> None:
    p = plan_algorithm(obs(*keys), NEW, T0 + 7)
    assert p is not None
    assert p.step == AlgStep(action, NEW, ids)
    assert p.name == f"algorithm-{action}"
    assert (p.at, p.blocked) == (at, blocked)
    if blocked:
        assert "ds-seen" in p.waiting_for and "k2" in p.waiting_for


def test_gated_steps_wait_for_every_node_to_sign() -> None:
    for keys in ((K1, Z1, K2, Z2), (K1, Z1, K2P, Z2P), (K1W, Z1W, K2S, Z2R)):
        p = plan_algorithm(obs(*keys, signed=False), NEW, T0)
        assert p is not None and p.blocked and "Dsgn" in p.waiting_for
    p = plan_algorithm(obs(K1, Z1, signed=False), NEW, T0)  # introducing needs no signing
    assert p is not None and not p.blocked


def test_nothing_to_do_when_every_key_has_the_configured_algorithm() -> None:
    assert plan_algorithm(obs(K1, Z1), OLD, T0) is None
    done = (replace(K2S, predecessor="k1"), Z2R)  # predecessors removed
    assert plan_algorithm(obs(*done), NEW, T0) is None
    assert not in_progress(done, NEW) and in_progress((K1, Z1, K2, Z2), NEW)


def test_a_zsk_rollover_under_way_finishes_first() -> None:
    z_new = key("z9", "zsk", "published", pred="z1", act=None, ready=None)
    assert plan_algorithm(obs(K1, Z1, z_new), NEW, T0) is None
    retired = replace(Z1, state="retired", times=Z1.times.at(retired=T0))
    assert plan_algorithm(obs(K1, retired, replace(z_new, state="active")), NEW, T0) is None


def test_a_csk_zone_rolls_its_csk() -> None:
    c1 = key("c1", "csk", "active")
    p = plan_algorithm(obs(c1), NEW, T0)
    assert p is not None and p.step == AlgStep("introduce", NEW, ("c1",))


def test_dnskey_set_and_cds_follow_the_stages() -> None:
    """Presigning and withdrawn keys sign but are not in the DNSKEY RRset; CDS names the
    new KSK once it is ready, and never a withdrawn one."""
    assert "presigning" in SIGNING_STATES and "withdrawn" in SIGNING_STATES
    assert not {"presigning", "withdrawn"} & set(PUBLISHED_STATES)
    assert [k.key_id for k in cds_keys([K1, Z1, K2, Z2])] == ["k1"]
    assert [k.key_id for k in cds_keys([K1, Z1, K2P, Z2P])] == ["k1"]  # not ready yet
    assert [k.key_id for k in cds_keys([K1, Z1, K2R, Z2R])] == ["k2"]
    assert [k.key_id for k in cds_keys([K1W, Z1W, K2S, Z2R])] == ["k2"]


def test_dnskey_rrset_leaves_out_hidden_keys() -> None:
    now = datetime.fromtimestamp(T0, UTC)
    a, _ = new_key(ZONE, OLD, "ksk", now=now)
    b, _ = new_key(ZONE, NEW, "ksk", now=now, state="presigning")
    c = replace(new_key(ZONE, OLD, "zsk", now=now)[0], state="withdrawn")
    rrset = dnskey_rrset(ZONE, [a, b, c], 300)
    assert [rd.algorithm for rd in rrset] == [OLD]
