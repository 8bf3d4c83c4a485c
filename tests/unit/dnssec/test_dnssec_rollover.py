"""`plan`: the next rollover step and when it is due, as tables of key states (RFC 7583)."""

from __future__ import annotations

from dataclasses import replace

import dns.name
import pytest

from node.dnssec.keys import DnssecKey
from node.dnssec.lifecycle import (
    DAY,
    DEFAULT_POLICY,
    KSK_EVERY,
    ZSK_EVERY,
    KeyPolicy,
    KeyTimes,
)
from node.dnssec.rollover import (
    Activate,
    Idle,
    Introduce,
    Ready,
    Remove,
    RollObservation,
    Timing,
    cds_keys,
    plan,
)

ZONE = dns.name.from_text("roll.test.")
T0 = 1_700_000_000.0
# Dprp 3600, DNSKEY TTL 300, max TTL 600, negative 900: Ipub 3900, Iret(ZSK) 4500
TIMING = Timing(dnskey_ttl=300, max_ttl=600, negative_ttl=900, propagation=3600,
                ds_ttl=7200, parent_propagation=1800)


def key(key_id: str, role: str, state: str, *, pub: float | None = T0,
        act: float | None = T0, ready: float | None = None, ret: float | None = None,
        pred: str = "", roll_at: float | None = None, ds_seen: float | None = None,
        policy: KeyPolicy = DEFAULT_POLICY) -> DnssecKey:
    return DnssecKey(
        key_id=key_id, zone=ZONE, algorithm=13, role=role,  # type: ignore[arg-type]
        flags=257 if role == "ksk" else 256, tag=sum(map(ord, key_id)), public=b"",
        state=state, created="2023-11-14T22:13:20Z",
        times=KeyTimes(published=pub, ready=ready if ready is not None else act, active=act,
                       retired=ret),
        policy=policy, predecessor=pred, roll_at=roll_at, ds_seen=ds_seen)


KSK = key("k1", "ksk", "active")
ZSK = key("z1", "zsk", "active")


def obs(*keys: DnssecKey, signed: bool = True) -> RollObservation:
    return RollObservation(tuple(keys), TIMING, signed_everywhere=signed)


def test_timing_follows_rfc_7583() -> None:
    assert TIMING.ipub == 3600 + 300  # Dprp + TTLkey
    assert TIMING.iret_zsk == 3600 + 900  # Dprp + max(TTLsig): the negative TTL is larger
    assert TIMING.iret_ksk == 1800 + 7200  # DprpP + TTLds


@pytest.mark.parametrize(("keys", "now", "step", "at", "blocked"), [
    # nothing asked: the ZSK's scheduled roll is 90 days after activation, introduced Ipub early
    ((KSK, ZSK), T0, Introduce("zsk", "z1"), T0 + ZSK_EVERY - 3900, False),
    # the first roll's offset moves it
    ((KSK, replace(ZSK, policy=KeyPolicy(offset=DAY))), T0, Introduce("zsk", "z1"),
     T0 + ZSK_EVERY + DAY - 3900, False),
    # automatic rollover off for both: nothing planned
    ((replace(KSK, policy=KeyPolicy(auto=False)), replace(ZSK, policy=KeyPolicy(auto=False))),
     T0, Idle(), None, False),
    # an operator asked: introduce now
    ((KSK, replace(ZSK, roll_at=T0 + 10)), T0 + 10, Introduce("zsk", "z1"), T0 + 10, False),
    # a successor published: it becomes active (the old retired) after Ipub
    ((KSK, replace(ZSK, roll_at=T0 + 10), key("z2", "zsk", "published", pub=T0 + 20, act=None,
                                              pred="z1")),
     T0 + 20, Activate("z2", "z1"), T0 + 20 + 3900, False),
    # ... but not before the predecessor's scheduled time when it was not asked for
    ((KSK, ZSK, key("z2", "zsk", "published", pub=T0 + 20, act=None, pred="z1")),
     T0 + 20, Activate("z2", "z1"), T0 + ZSK_EVERY, False),
    # a retired ZSK goes Iret after it was retired
    ((KSK, key("z1", "zsk", "retired", ret=T0 + 5000),
      key("z2", "zsk", "active", act=T0 + 5000, pred="z1")),
     T0 + 5000, Remove("z1"), T0 + 5000 + 4500, False),
    # double-KSK: the successor is ready Ipub after publication (CDS then names it)
    ((key("k1", "ksk", "active", roll_at=T0), ZSK,
      key("k2", "ksk", "active", pub=T0 + 1, act=T0 + 1, ready=None, pred="k1")),
     T0 + 1, Ready("k2"), T0 + 1 + 3900, False),
])
def test_plan_table(keys: tuple[DnssecKey, ...], now: float, step: object, at: float | None,
                    blocked: bool) -> None:
    k2 = next((k for k in keys if k.key_id == "k2"), None)
    if k2 is not None:  # ready must really be unset for the Ready row
        keys = tuple(replace(k, times=replace(k.times, ready=None)) if k.key_id == "k2" else k
                     for k in keys)
    p = plan(obs(*keys), now)
    assert (p.step, p.at, p.blocked) == (step, at, blocked)
    assert p.due(now) == (at is not None and at <= now and not blocked)


def test_ksk_roll_waits_for_the_ds_then_removes_the_old_after_the_ds_ttl() -> None:
    old = key("k1", "ksk", "active", roll_at=T0)
    new = key("k2", "ksk", "active", pub=T0, act=T0, ready=T0 + 3900, pred="k1")
    p = plan(obs(old, ZSK, new), T0 + 10_000)
    assert p.step == Remove("k1") and p.blocked and "ds-seen" in p.waiting_for
    assert not p.due(T0 + 10**9)  # never goes on by itself
    p = plan(obs(old, ZSK, replace(new, ds_seen=T0 + 20_000)), T0 + 20_000)
    assert p.step == Remove("k1") and p.at == T0 + 20_000 + 9000 and not p.blocked


def test_steps_that_need_every_node_signed_wait_for_it() -> None:
    keys = (KSK, key("z1", "zsk", "retired", ret=T0), key("z2", "zsk", "active", pred="z1"))
    p = plan(obs(*keys, signed=False), T0 + 10**6)
    assert p.step == Remove("z1") and p.blocked and "sign" in p.waiting_for
    assert plan(obs(*keys, signed=True), T0 + 10**6).due(T0 + 10**6)


def test_one_zsk_rollover_at_a_time() -> None:
    keys = (KSK, key("z1", "zsk", "retired", ret=T0, roll_at=T0),
            key("z2", "zsk", "active", pred="z1", roll_at=T0))
    assert plan(obs(*keys), T0).step == Remove("z1")  # not a roll of z2 on top


def test_a_due_step_goes_before_one_that_waits_for_an_event() -> None:
    old = key("k1", "ksk", "active", roll_at=T0)
    new = key("k2", "ksk", "active", ready=T0 + 3900, pred="k1")
    keys = (old, new, replace(ZSK, roll_at=T0 + 5000))
    p = plan(obs(*keys), T0 + 5000)
    assert p.step == Introduce("zsk", "z1") and p.due(T0 + 5000)


def test_keys_from_before_lifecycles_have_no_schedule_but_stay_in_cds() -> None:
    legacy = key("k1", "ksk", "active", pub=None, act=None)
    assert plan(obs(legacy, key("z1", "zsk", "active", pub=None, act=None)), T0).step == Idle()
    assert cds_keys([legacy]) == [legacy]


def test_cds_names_the_new_ksk_only_once_it_is_ready() -> None:
    old = key("k1", "ksk", "active")
    new = key("k2", "ksk", "active", pred="k1")
    unready = replace(new, times=replace(new.times, ready=None))
    assert [k.key_id for k in cds_keys([old, unready])] == ["k1"]
    assert [k.key_id for k in cds_keys([old, new])] == ["k2"]


def test_default_lifetimes() -> None:
    assert KeyPolicy().lifetime("zsk") == 90 * DAY == ZSK_EVERY
    assert KeyPolicy().lifetime("ksk") == 755 * DAY == KSK_EVERY
    assert KeyPolicy(every=30).lifetime("zsk") == 30


def test_a_csk_rolls_by_double_signature_and_waits_for_its_ds_and_its_signatures() -> None:
    csk = key("c1", "csk", "active", roll_at=T0)
    assert plan(obs(csk), T0).step == Introduce("csk", "c1")
    new = key("c2", "csk", "active", pub=T0, act=T0, ready=T0 + 3900, pred="c1")
    p = plan(obs(csk, new), T0 + 4000)
    assert p.step == Remove("c1") and p.blocked and "ds-seen" in p.waiting_for
    # the DS is seen early: the old CSK's zone signatures still bound it (Tact + Iret ZSK)
    p = plan(obs(csk, replace(new, ds_seen=T0 + 1)), T0 + 1)
    assert p.step == Remove("c1") and p.at == max(T0 + 1 + 9000, T0 + 4500)
    p = plan(obs(csk, replace(new, ds_seen=T0 - 9000)), T0 + 4500)
    assert p.at == T0 + 4500 and p.due(T0 + 4500)
    assert plan(obs(csk, replace(new, ds_seen=T0), signed=False), T0 + 10**6).blocked
