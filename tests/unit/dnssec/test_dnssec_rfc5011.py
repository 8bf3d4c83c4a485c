"""`rfc5011.plan`: the stand-by / promote / revoke / remove steps of an RFC 5011 KSK or CSK
roll and when each is due, as tables of key states (RFC 5011, RFC 7583 3.3.4)."""

from __future__ import annotations

from dataclasses import replace

import dns.name
import pytest

from node.dnssec.keys import FLAG_REVOKE, DnssecKey, new_key
from node.dnssec.lifecycle import KSK_EVERY, KeyPolicy, KeyTimes
from node.dnssec.rfc5011 import (
    Promote,
    Revoke,
    Rfc5011Policy,
    Standby,
    anchor_keys,
    plan,
)
from node.dnssec.rollover import Introduce, Remove, RollObservation, Timing, cds_keys

ZONE = dns.name.from_text("anchor.test.")
T0 = 1_700_000_000.0
# Dprp 3600, DNSKEY TTL 300: Iadd = 3600 + 300 + 1000, Irev = 3600 + 300 + 2000
TIMING = Timing(dnskey_ttl=300, max_ttl=600, negative_ttl=900, propagation=3600,
                ds_ttl=7200, parent_propagation=1800)
NO_PARENT = Rfc5011Policy(add_holddown=1000, remove_holddown=2000, parent_ds=False)
WITH_PARENT = replace(NO_PARENT, parent_ds=True)
IADD, IREV = 4900, 5900


def key(key_id: str, role: str, state: str, *, pub: float | None = T0,
        act: float | None = T0, ready: float | None = None, rev: float | None = None,
        pred: str = "", roll_at: float | None = None, ds_seen: float | None = None
        ) -> DnssecKey:
    return DnssecKey(
        key_id=key_id, zone=ZONE, algorithm=13, role=role,  # type: ignore[arg-type]
        flags=257 if role in ("ksk", "csk") else 256, tag=sum(map(ord, key_id)), public=b"",
        state=state, created="2023-11-14T22:13:20Z",
        times=KeyTimes(published=pub, ready=ready if ready is not None else act, active=act,
                       revoked=rev),
        predecessor=pred, roll_at=roll_at, ds_seen=ds_seen)


KSK = key("k1", "ksk", "active")
ZSK = replace(key("z1", "zsk", "active"), policy=KeyPolicy(auto=False))  # no ZSK roll due
ASKED = replace(KSK, roll_at=T0 + 10)
STANDBY = key("k2", "ksk", "published", pub=T0 + 10, act=None, pred="k1")
PROMOTED = key("k2", "ksk", "active", pub=T0 + 10, act=T0 + 10 + IADD, pred="k1")
REVOKED = key("k1", "ksk", "revoked", rev=T0 + 6000)


def obs(*keys: DnssecKey, signed: bool = True) -> RollObservation:
    return RollObservation(tuple(keys), TIMING, signed_everywhere=signed)


def test_intervals_follow_rfc_5011_and_7583() -> None:
    assert NO_PARENT.iadd(TIMING) == 3600 + 300 + 1000 == IADD  # Dprp + TTLkey + add hold-down
    assert NO_PARENT.irev(TIMING) == 3600 + 300 + 2000 == IREV  # Dprp + TTLkey + remove h-d
    assert Rfc5011Policy().add_holddown == Rfc5011Policy().remove_holddown == 30 * 86400


@pytest.mark.parametrize(("keys", "policy", "now", "step", "at", "blocked"), [
    # scheduled: the stand-by key is published Iadd before the KSK's lifetime ends
    ((KSK, ZSK), NO_PARENT, T0, Standby("k1"), T0 + KSK_EVERY - IADD, False),
    # asked for: at once
    ((ASKED, ZSK), NO_PARENT, T0 + 10, Standby("k1"), T0 + 10, False),
    # the stand-by key is promoted after Iadd (published, then a whole hold-down)
    ((ASKED, ZSK, STANDBY), NO_PARENT, T0 + 10, Promote("k2"), T0 + 10 + IADD, False),
    # ... not before the old key's scheduled end when nobody asked
    ((KSK, ZSK, STANDBY), NO_PARENT, T0 + 10, Promote("k2"), T0 + KSK_EVERY, False),
    # no parent: the old KSK is revoked as soon as the new one signs everywhere
    ((ASKED, ZSK, PROMOTED), NO_PARENT, T0 + 10 + IADD, Revoke("k1"), T0 + 10 + IADD, False),
    # a parent holds a DS: the revocation waits for the new DS to be seen there
    ((ASKED, ZSK, PROMOTED), WITH_PARENT, T0 + 10 + IADD, Revoke("k1"), T0 + 10 + IADD, True),
    # ... then for the old DS to leave caches (DprpP + TTLds)
    ((ASKED, ZSK, replace(PROMOTED, ds_seen=T0 + 9000)), WITH_PARENT, T0 + 9000,
     Revoke("k1"), T0 + 9000 + 9000, False),
    # the revoked key goes after Irev
    ((REVOKED, ZSK, PROMOTED), NO_PARENT, T0 + 6000, Remove("k1"), T0 + 6000 + IREV, False),
    # policy off: the same keys roll by double-KSK
    ((ASKED, ZSK), None, T0 + 10, Introduce("ksk", "k1"), T0 + 10, False),
])
def test_plan_table(keys: tuple[DnssecKey, ...], policy: Rfc5011Policy | None, now: float,
                    step: object, at: float, blocked: bool) -> None:
    p = plan(obs(*keys), policy, now)
    assert (p.step, p.at, p.blocked) == (step, at, blocked)


@pytest.mark.parametrize("late", [Promote("k2"), Revoke("k1"), Remove("k1")])
def test_steps_that_change_what_is_served_wait_for_every_node(late: object) -> None:
    keys = {Promote("k2"): (ASKED, ZSK, STANDBY), Revoke("k1"): (ASKED, ZSK, PROMOTED),
            Remove("k1"): (REVOKED, ZSK, PROMOTED)}[late]  # type: ignore[index]
    p = plan(obs(*keys, signed=False), NO_PARENT, T0 + 10**6)
    assert p.step == late and p.blocked and "sign" in p.waiting_for
    assert plan(obs(*keys), NO_PARENT, T0 + 10**6).due(T0 + 10**6)


def test_one_sep_roll_at_a_time_and_zsk_rolls_go_on() -> None:
    keys = (REVOKED, PROMOTED, replace(ZSK, roll_at=T0 + 6000))
    p = plan(obs(*keys), NO_PARENT, T0 + 6000)
    assert p.step == Introduce("zsk", "z1")  # the ZSK roll, not a second KSK roll


def test_a_csk_is_revoked_only_after_its_zone_signatures_leave_caches() -> None:
    old = key("c1", "csk", "active", roll_at=T0)
    new = key("c2", "csk", "active", pub=T0, act=T0 + IADD, pred="c1")
    p = plan(obs(old, new), NO_PARENT, T0 + IADD)
    assert p.step == Revoke("c1") and p.at == T0 + IADD + TIMING.iret_zsk


def test_cds_and_anchors_follow_the_roll() -> None:
    # stand-by: CDS names the old key; anchors name both
    assert [k.key_id for k in cds_keys([ASKED, STANDBY])] == ["k1"]
    assert {k.key_id for k in anchor_keys([ASKED, STANDBY, ZSK])} == {"k1", "k2"}
    # promoted: CDS names the new key only; revoked keys are never an anchor
    assert [k.key_id for k in cds_keys([ASKED, PROMOTED])] == ["k2"]
    assert [k.key_id for k in anchor_keys([REVOKED, PROMOTED])] == ["k2"]


def test_revoking_sets_the_flag_and_changes_the_tag() -> None:
    from datetime import UTC, datetime
    k, _ = new_key(ZONE, 13, "ksk", now=datetime.now(UTC))
    r = k.with_state("revoked")
    assert r.flags == 257 | FLAG_REVOKE == 385 and r.dnskey().flags == 385
    assert r.tag != k.tag and r.key_id == k.key_id  # the tag changes; the key id does not
