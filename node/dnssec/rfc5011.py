"""RFC 5011 KSK (and CSK) rollover by stand-by key and revocation, as a pure plan.

For a zone whose KSK is a trust anchor that resolvers update by themselves
(Unbound `auto-trust-anchor-file`, BIND `initial-key`), a KSK roll must let
every resolver learn the new key before it is needed, and tell them that the
old one is gone (RFC 5011, RFC 7583 3.3.4). The steps, each one fenced write
of the Key Master (`node.keymaster.rfc5011`):

1. **standby**: a successor SEP key is published (in the DNSKEY RRset, signed
   by the trusted old key; it signs nothing). Resolvers start its add hold-down.
2. **promote**, at `Tpub + Iadd` with `Iadd = Dprp + TTLkey + add_holddown`
   (the cached DNSKEY set without it has expired, then a whole hold-down):
   the successor becomes active and ready (both keys sign the DNSKEY RRset, a
   CSK signs everything; CDS/CDNSKEY name the new key only).
3. **revoke** the old key: it is published with the REVOKE bit (flag 0x0080,
   so its key tag changes) and signs the DNSKEY RRset (self-signed, RFC 5011
   2.1), and nothing else. At once after the promotion for a KSK; a CSK first
   waits `Iret` of a ZSK (its zone signatures leave caches); where the parent
   holds a DS (`parent_ds`), after the new DS is seen there plus `Iret` of a
   KSK (`DprpP + TTLds`), as in the double-KSK roll.
4. **remove** the revoked key at `Trev + Irev`, `Irev = Dprp + TTLkey +
   remove_holddown`: every resolver has seen the revocation.

Steps that change what the nodes serve wait until every writable node has
signed the current key set (`signed_everywhere`, Dsgn). `plan` hands the
ZSK plans to `node.dnssec.rollover` and plans the SEP keys itself when the
zone's policy asks for RFC 5011; without it the double-KSK roll applies.
No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.dnssec.keys import DnssecKey
from node.dnssec.lifecycle import DAY
from node.dnssec.rollover import (
    Plan,
    Remove,
    RollObservation,
    Timing,
    earliest,
    role_plans,
    scheduled_roll,
)

ADD_HOLDDOWN = 30 * DAY  # RFC 5011 2.4.1
REMOVE_HOLDDOWN = 30 * DAY  # RFC 5011 2.4.2


@dataclass(frozen=True, slots=True)
class Rfc5011Policy:
    """A zone's RFC 5011 settings (seconds); `parent_ds`: a parent holds a DS to follow."""

    add_holddown: int = ADD_HOLDDOWN
    remove_holddown: int = REMOVE_HOLDDOWN
    parent_ds: bool = True

    def iadd(self, t: Timing) -> int:
        """Stand-by published -> it may sign: the old set leaves caches, then a hold-down."""
        return t.propagation + t.dnskey_ttl + self.add_holddown

    def irev(self, t: Timing) -> int:
        """Revoked -> it may go: every resolver has seen the revoked key."""
        return t.propagation + t.dnskey_ttl + self.remove_holddown


@dataclass(frozen=True, slots=True)
class Standby:
    """Generate a successor of `predecessor` (same role), published, signing nothing."""

    predecessor: str
    step_name = "standby"


@dataclass(frozen=True, slots=True)
class Promote:
    """The stand-by key `key_id` becomes active and ready (it signs; CDS names it)."""

    key_id: str
    step_name = "promote"


@dataclass(frozen=True, slots=True)
class Revoke:
    """`key_id` gets the REVOKE bit; it signs only the DNSKEY RRset from now on."""

    key_id: str
    step_name = "revoke"


STEPS = (Standby, Promote, Revoke)
SEP_ROLES = ("ksk", "csk")


def plan(obs: RollObservation, policy: Rfc5011Policy | None, now: float) -> Plan:
    """The earliest step of any rollover; SEP keys by RFC 5011 when `policy` is set."""
    if policy is None:
        return earliest([role_plans(obs, "zsk"), role_plans(obs, "ksk")], now)
    return earliest([role_plans(obs, "zsk"), sep_plans(obs, policy)], now)


def _tag(key: DnssecKey) -> str:
    return f"{key.role.upper()} {key.tag}"


def sep_plans(obs: RollObservation, policy: Rfc5011Policy) -> list[Plan]:
    """The RFC 5011 steps due for the zone's KSKs/CSKs."""
    keys = [k for k in obs.keys if k.role in SEP_ROLES]
    by_id = {k.key_id: k for k in keys}
    t = obs.timing
    successors = {k.predecessor: k for k in keys if k.predecessor}
    rolling = any(k.state in ("published", "revoked", "retired") for k in keys) or any(
        p in by_id for p in successors)
    out: list[Plan] = []
    for k in keys:
        pred = by_id.get(k.predecessor)
        if k.state == "revoked":
            at = (k.times.revoked or 0.0) + policy.irev(t)
            out.append(_gated(Plan(Remove(k.key_id), at,
                                   f"Irev: the revoked {_tag(k)} to be seen by every "
                                   "resolver (propagation delay + DNSKEY TTL + remove "
                                   "hold-down)"), obs))
        elif k.state == "published" and k.times.published is not None:
            at = k.times.published + policy.iadd(t)
            due = scheduled_roll(pred) if pred is not None else None
            out.append(_gated(Plan(Promote(k.key_id), max(at, due or at),
                                   f"Iadd: the stand-by {_tag(k)} to pass resolvers' add "
                                   "hold-down (propagation delay + DNSKEY TTL + add "
                                   "hold-down)"), obs))
        elif k.state == "active" and pred is not None and pred.state == "active":
            out.append(_revoke_plan(obs, policy, pred, k))
        elif k.state == "active" and k.key_id not in successors and not rolling:
            due = scheduled_roll(k)
            if due is not None:
                at = due if k.roll_at is not None else due - policy.iadd(t)
                out.append(Plan(Standby(k.key_id), at,
                                f"the scheduled rollover of {_tag(k)}"))
    return out


def _revoke_plan(obs: RollObservation, policy: Rfc5011Policy, old: DnssecKey,
                 new: DnssecKey) -> Plan:
    t = obs.timing
    at = new.times.active or new.times.published or 0.0
    why = f"every writable node to sign with {_tag(new)}"
    if old.role == "csk":
        at += t.iret_zsk
        why = f"Iret: {_tag(old)}'s zone signatures to leave caches"
    if policy.parent_ds:
        if new.ds_seen is None:
            return Plan(Revoke(old.key_id), at,
                        f"the DS of {_tag(new)} at the parent: confirm with clusterctl "
                        f"zone ds-seen ZONE {new.key_id}", blocked=True)
        at = max(at, new.ds_seen + t.iret_ksk)
        why = f"Iret: the old DS of {_tag(old)} to leave caches"
    return _gated(Plan(Revoke(old.key_id), at, why), obs)


def _gated(p: Plan, obs: RollObservation) -> Plan:
    if obs.signed_everywhere:
        return p
    return Plan(p.step, p.at, "every writable node to sign the current key set (Dsgn)",
                blocked=True)


def anchor_keys(keys: tuple[DnssecKey, ...] | list[DnssecKey]) -> list[DnssecKey]:
    """The keys a resolver should trust: active KSKs/CSKs and stand-by successors (published
    SEP keys), never a revoked one; by tag."""
    return sorted((k for k in keys if k.role in SEP_ROLES and k.is_sep
                   and k.state in ("active", "published")),
                  key=lambda k: (k.tag, k.key_id))
