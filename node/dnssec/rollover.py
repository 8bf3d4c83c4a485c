"""The rollover policy as one pure function (STYLE R4/R6): `plan(obs, now) -> Plan`.

Which key step is next, and when it is due, from the keys' states and
timestamps (`node.dnssec.lifecycle`) and the zone's timing. No I/O: the Key
Master (`node.keymaster.rollover`) observes, calls `plan`, and performs a due
step as one fenced write that bumps the serial; every state lives in etcd, so
a new Key Master resumes a rollover where the last one stopped.

The timings follow RFC 7583 (docs/rollover.md has the formulas and a real run):

* ZSK pre-publication (RFC 6781 4.1.1.1, RFC 7583 3.2): the successor is
  published `Ipub = Dprp + TTLkey` before it becomes active, when its
  predecessor is retired (stops signing; its DNSKEY stays); the predecessor is
  removed `Iret = Dsgn + Dprp + TTLsig` after that. Every writable node
  re-signs the whole zone at the serial of each step (the key set is part of
  the signing identity), so Dsgn is the time until every node has signed, and
  a step that needs it waits for that (`signed_everywhere`); TTLsig is the
  largest TTL of a signed RRset, the SOA negative TTL included.
* KSK double-KSK (RFC 7583 3.3.1): the successor is published and signs the
  DNSKEY RRset with the predecessor at once; after `Ipub` it is ready and
  CDS/CDNSKEY name it; once its DS is seen at the parent (`ds_seen`), the
  predecessor goes after `Iret = DprpP + TTLds`, the old DS's life in caches.
* A key is due to be rolled at `Tact + lifetime + offset` (its policy), or at
  once when an operator asked (`roll_at`); the successor is introduced `Ipub`
  earlier so that it is ready on time. One rollover per role at a time.
* A CSK rolls as a KSK does, by double signature: its successor signs
  everything with it from the start; the old CSK goes once the new DS is seen
  (`Iret` of a KSK) and its own zone signatures have left caches (`Iret` of a
  ZSK after the successor became active). RFC 5011 rolls (stand-by key,
  revocation) are planned in `node.dnssec.rfc5011`, which calls `role_plans`.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.dnssec.keys import DnssecKey


@dataclass(frozen=True, slots=True)
class Timing:
    """The zone's timing inputs (seconds)."""

    dnskey_ttl: int
    max_ttl: int  # largest TTL of a signed RRset in the zone
    negative_ttl: int  # SOA negative TTL: min(SOA TTL, SOA minimum)
    propagation: int  # Dprp: until every server of the zone serves a new version
    ds_ttl: int = 86400  # the parent's DS TTL
    parent_propagation: int = 3600  # DprpP

    @property
    def ipub(self) -> int:
        return self.propagation + self.dnskey_ttl

    @property
    def iret_zsk(self) -> int:
        return self.propagation + max(self.max_ttl, self.negative_ttl)

    @property
    def iret_ksk(self) -> int:
        return self.parent_propagation + self.ds_ttl


@dataclass(frozen=True, slots=True)
class RollObservation:
    keys: tuple[DnssecKey, ...]
    timing: Timing
    signed_everywhere: bool  # every live writable node has signed the current key set


@dataclass(frozen=True, slots=True)
class Introduce:
    """Generate a successor of `predecessor` (published; a KSK also signs the DNSKEY set)."""

    role: str
    predecessor: str


@dataclass(frozen=True, slots=True)
class Activate:
    """ZSK: `key_id` becomes active and `retire` (if any) retired, in one write."""

    key_id: str
    retire: str


@dataclass(frozen=True, slots=True)
class Ready:
    """KSK: the successor is in every cache; CDS/CDNSKEY now name it."""

    key_id: str


@dataclass(frozen=True, slots=True)
class Remove:
    """The key leaves the DNSKEY RRset (its record and private key are deleted)."""

    key_id: str


@dataclass(frozen=True, slots=True)
class Idle:
    """No rollover is planned."""


Step = Introduce | Activate | Ready | Remove | Idle


@dataclass(frozen=True, slots=True)
class Plan:
    step: Step
    at: float | None = None  # when the step is due (None: nothing planned)
    waiting_for: str = ""  # what the step waits for, in words
    blocked: bool = False  # due only when an event happens (`waiting_for` names it)

    def due(self, now: float) -> bool:
        return self.at is not None and not self.blocked and self.at <= now

    @property
    def name(self) -> str:
        return step_name(self.step)


def step_name(step: Step) -> str:
    names = {Introduce: "introduce", Activate: "activate", Ready: "ready", Remove: "remove",
             Idle: ""}
    if type(step) not in names:  # a step of another planner (node.dnssec.algroll)
        return str(getattr(step, "step_name", ""))
    return names[type(step)]


def _tag(key: DnssecKey) -> str:
    return f"{key.role.upper()} {key.tag}"


def scheduled_roll(key: DnssecKey) -> float | None:
    """When `key` is due to be replaced: asked for, or by its automatic policy."""
    if key.roll_at is not None:
        return key.roll_at
    if not key.policy.auto:
        return None
    start = key.times.active if key.times.active is not None else key.times.published
    if start is None:  # a key from before lifecycles were recorded: no schedule
        return None
    return start + key.policy.lifetime(key.role) + key.policy.offset


def is_ready(key: DnssecKey) -> bool:
    """In every cache: recorded ready, or a key from before lifecycles were recorded."""
    return key.times.ready is not None or key.times.published is None


def cds_keys(keys: tuple[DnssecKey, ...] | list[DnssecKey]) -> list[DnssecKey]:
    """The KSKs CDS/CDNSKEY name: active and ready, not already replaced by a ready one."""
    ksks = [k for k in keys if k.role in ("ksk", "csk") and k.state == "active" and is_ready(k)]
    replaced = {k.predecessor for k in ksks}
    double_ds = [k for k in keys if k.role in ("ksk", "csk") and k.state == "created"]
    return [k for k in ksks if k.key_id not in replaced] + double_ds


def plan(obs: RollObservation, now: float) -> Plan:
    """The earliest step of any rollover in progress or scheduled."""
    return earliest([_plans(obs, "zsk"), _plans(obs, "ksk")], now)


def role_plans(obs: RollObservation, role: str) -> list[Plan]:
    """Every step due for the keys of one role ("zsk"; "ksk": KSKs and CSKs)."""
    return _plans(obs, role)


def earliest(groups: list[list[Plan]], now: float) -> Plan:
    """The earliest of the plans (one list per role); a due one before a blocked one."""
    candidates: list[tuple[float, int, Plan]] = []
    for plans in groups:
        for rank, p in enumerate(plans):
            if p.at is not None:
                candidates.append((p.at, rank, p))
    if not candidates:
        return Plan(Idle())
    candidates.sort(key=lambda c: (c[0], c[1]))
    first = candidates[0][2]
    if first.blocked:  # a step that can go now goes before one that waits for an event
        due = next((p for _, _, p in candidates if p.due(now)), None)
        return due or first
    return first


def _plans(obs: RollObservation, role: str) -> list[Plan]:
    keys = [k for k in obs.keys if (k.role in ("ksk", "csk")) == (role == "ksk")]
    by_id = {k.key_id: k for k in keys}
    t = obs.timing
    out: list[Plan] = []
    successors = {k.predecessor: k for k in keys if k.predecessor}
    rolling = any(k.state in ("published", "retired", "revoked") for k in keys) or any(
        p in by_id for p in successors)
    unsigned = "every writable node to sign the current key set (Dsgn)"
    for k in keys:
        if role == "zsk" and k.state == "retired" and k.times.retired is not None:
            at = k.times.retired + t.iret_zsk
            out.append(_gated(Plan(Remove(k.key_id), at,
                                   f"Iret: {_tag(k)}'s signatures to leave caches "
                                   "(propagation delay + max zone TTL)"), obs, unsigned))
        elif role == "zsk" and k.state == "published" and k.times.published is not None:
            pred = by_id.get(k.predecessor)
            ready = k.times.published + t.ipub
            due = scheduled_roll(pred) if pred is not None else None
            at = max(ready, due) if due is not None else ready
            out.append(_gated(Plan(Activate(k.key_id, pred.key_id if pred else ""), at,
                                   f"Ipub: {_tag(k)}'s DNSKEY to reach caches (propagation "
                                   "delay + DNSKEY TTL)"), obs, unsigned))
        elif role == "ksk" and k.state == "active" and k.predecessor in by_id:
            pred = by_id[k.predecessor]
            if k.times.ready is None and k.times.published is not None:
                out.append(_gated(Plan(Ready(k.key_id), k.times.published + t.ipub,
                                       f"Ipub: {_tag(k)}'s DNSKEY to reach caches"),
                                  obs, unsigned))
            elif k.ds_seen is None:
                out.append(Plan(Remove(pred.key_id), k.times.ready or 0.0,
                                f"the DS of {_tag(k)} at the parent: confirm with clusterctl "
                                f"zone ds-seen ZONE {k.key_id}", blocked=True))
            elif pred.role == "csk":  # its zone signatures must leave caches too
                at = max(k.ds_seen + t.iret_ksk, (k.times.active or 0.0) + t.iret_zsk)
                out.append(_gated(Plan(Remove(pred.key_id), at,
                                       f"Iret: the old DS of {_tag(pred)} and its zone "
                                       "signatures to leave caches"), obs, unsigned))
            else:
                out.append(Plan(Remove(pred.key_id), k.ds_seen + t.iret_ksk,
                                f"Iret: the old DS of {_tag(pred)} to leave caches (parent "
                                "propagation delay + DS TTL)"))
        elif k.state == "active" and k.key_id not in successors and not rolling:
            due = scheduled_roll(k)
            if due is not None:
                at = due if k.roll_at is not None else due - t.ipub
                out.append(Plan(Introduce(k.role, k.key_id), at,
                                f"the scheduled rollover of {_tag(k)}"))
    return out


def _gated(p: Plan, obs: RollObservation, what: str) -> Plan:
    if obs.signed_everywhere:
        return p
    return Plan(p.step, p.at, what, blocked=True)
