"""The algorithm rollover as one pure function: `plan_algorithm(obs, algorithm, now)`.

When the zone's configured algorithm (`zone sign --algorithm`) differs from
its keys', the Key Master rolls every key to the new algorithm by RFC 6781
4.1.4's conservative approach (docs/rollover.md has the timeline of a real
run). Old keys are those of another algorithm, new keys those of the
configured one; each new key names the old key of its role as `predecessor`.

1. **introduce**: one new key per active old key (same role), state
   `presigning`: it signs every RRset (the DNSKEY RRset too, if a KSK) but its
   DNSKEY is not published yet. Validators see signatures of an algorithm
   absent from the DNSKEY set, which RFC 4035 5.2 has them ignore.
2. **publish**, at `Tact(new) + Dprp + TTLsig` (every cached RRset now carries
   both algorithms' signatures) and once every writable node has signed: the new
   DNSKEYs join the RRset (`active`, Tpub).
3. **ready**, at `Tpub(new) + Dprp + TTLkey`: every cached DNSKEY set has the
   new keys; CDS/CDNSKEY name the new KSK only (its predecessor is replaced).
4. the new KSK's DS must be seen at the parent (`zone ds-seen`, or a parent in
   the cluster): the rollover waits and never goes on by itself.
5. **withdraw**, at `ds_seen + DprpP + TTLds` (the old DS has left caches): the
   old DNSKEYs leave the RRset (`withdrawn`, Tret) but the old keys still sign.
6. **remove**, at `Tret(old) + Dprp + TTLkey` (no cache holds a DNSKEY set with
   the old keys): the old keys stop signing and are deleted.

Steps 2, 3, 5 and 6 wait until every writable node has signed the current key
set (Dsgn), as the ZSK steps do (`node.dnssec.rollover`). `None` from
`plan_algorithm` means no algorithm rollover is under way or due: the ZSK/KSK
plan applies (a rollover of those already under way finishes first).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.dnssec.algorithms import algorithm_name
from node.dnssec.keys import PUBLISHED_STATES, DnssecKey
from node.dnssec.rollover import Plan, RollObservation

ACTIONS = ("introduce", "publish", "ready", "withdraw", "remove")


@dataclass(frozen=True, slots=True)
class AlgStep:
    """One step of an algorithm rollover on `key_ids` (the old keys for introduce,
    withdraw and remove; the new keys for publish and ready)."""

    action: str
    algorithm: int
    key_ids: tuple[str, ...]

    @property
    def step_name(self) -> str:
        return f"algorithm-{self.action}"


def in_progress(keys: tuple[DnssecKey, ...] | list[DnssecKey], algorithm: int) -> bool:
    """Keys of more than one algorithm, or of another one than configured."""
    return any(k.algorithm != algorithm for k in keys)


def plan_algorithm(obs: RollObservation, algorithm: int, now: float) -> Plan | None:
    """The next step of the algorithm rollover to `algorithm`, or None (none under way)."""
    old = [k for k in obs.keys if k.algorithm != algorithm]
    new = [k for k in obs.keys if k.algorithm == algorithm]
    if not old:
        return None
    t = obs.timing
    name = algorithm_name(algorithm)
    ids = {k.key_id for k in obs.keys}
    if not new:
        if any(k.state != "active" or k.predecessor in ids for k in old):
            return None  # a ZSK/KSK rollover is under way: it finishes first
        return Plan(AlgStep("introduce", algorithm,  # type: ignore[arg-type]
                            tuple(sorted(k.key_id for k in old))), now,
                    f"the algorithm rollover to {name}")
    new_ids = tuple(sorted(k.key_id for k in new))
    presigning = [k for k in new if k.state == "presigning"]
    if presigning:
        at = max(k.times.active or 0.0 for k in presigning) + t.iret_zsk
        return _gated(Plan(AlgStep("publish", algorithm, new_ids), at,  # type: ignore[arg-type]
                           f"{name} signatures to reach every cached RRset (propagation "
                           "delay + max zone TTL)"), obs)
    unready = [k for k in new if k.times.ready is None]
    if unready:
        at = max(k.times.published or 0.0 for k in unready) + t.ipub
        return _gated(Plan(AlgStep("ready", algorithm, new_ids), at,  # type: ignore[arg-type]
                           f"the {name} DNSKEYs to reach caches (propagation delay + "
                           "DNSKEY TTL)"), obs)
    published_old = [k for k in old if k.state in PUBLISHED_STATES]
    old_ids = tuple(sorted(k.key_id for k in old))
    if published_old:
        seps = [k for k in new if k.is_sep]
        unseen = [k for k in seps if k.ds_seen is None]
        if unseen:
            k = unseen[0]
            return Plan(AlgStep("withdraw", algorithm, old_ids),  # type: ignore[arg-type]
                        max(x.times.ready or 0.0 for x in new),
                        f"the DS of {k.role.upper()} {k.tag} ({name}) at the parent: confirm "
                        f"with clusterctl zone ds-seen ZONE {k.key_id}", blocked=True)
        at = max((k.ds_seen or 0.0 for k in seps), default=now) + t.iret_ksk
        return _gated(Plan(AlgStep("withdraw", algorithm, old_ids), at,  # type: ignore[arg-type]
                           "the old DS to leave caches (parent propagation delay + DS TTL)"),
                      obs)
    at = max(k.times.retired or 0.0 for k in old) + t.ipub
    return _gated(Plan(AlgStep("remove", algorithm, old_ids), at,  # type: ignore[arg-type]
                       "the DNSKEY sets with the old keys to leave caches (propagation delay "
                       "+ DNSKEY TTL)"), obs)


def _gated(p: Plan, obs: RollObservation) -> Plan:
    if obs.signed_everywhere:
        return p
    return Plan(p.step, p.at, "every writable node to sign the current key set (Dsgn)",
                blocked=True)
