"""The Key Master policy as one pure function (STYLE R4): `decide(obs, me, now) -> Decision`.

The controller observes (role record and its token, liveness of the holder
and of this node's lease, the zone's DNSSEC settings, a pending intent),
calls `decide`, and performs the decision with fenced etcd transactions.
No I/O here; unit tests are tables of observations.

Rules (DESIGN.md, STYLE "lessons from Patroni"):
- The holder acts only while the record names it *with its current lease*
  and its local lease deadline has not passed; otherwise it does nothing
  (and steps down if someone else holds the role).
- A record naming this node with another (older) lease is re-acquired by a
  fenced put: a restart, or an etcd outage, keeps the previous holder, but
  only while the node may hold the role (writable, with the zone's KEK: the
  KEK fingerprint recorded in the zone's settings).
- A transfer intent addressed to the holder is carried out by the holder; one
  addressed to a previous holder (left over from before an election) is ignored.
- Election: only with `keymaster_failover = auto` (which requires every
  private key replicated), only after the holder has been offline for
  `failover_after`, and candidates (live writable nodes with the zone's KEK)
  are ranked by node id so that one tries first and the others back off.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.keymaster.record import Intent, RoleRecord


@dataclass(frozen=True, slots=True)
class Observation:
    zone: str
    role: RoleRecord | None
    token: int  # the role record's mod revision (0: no record)
    holder_alive: bool  # the holder's liveness key exists
    my_lease: int  # 0: no lease now
    lease_valid: bool  # local deadline not passed
    eligible: bool  # writable, holds the zone's KEK, can reach the zone's private keys
    failover_auto: bool
    failover_after: float
    holder_offline_since: float | None  # monotonic time first seen offline
    candidates: tuple[str, ...]  # live eligible nodes, sorted
    intent: Intent | None
    acting: bool  # this node is currently running the zone's duties
    may_hold: bool = True  # writable, with a KEK and (if recorded) the zone's KEK


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep acting as Key Master (or keep not acting)."""


@dataclass(frozen=True, slots=True)
class Acquire:
    """Fenced put of the role record with this node's current lease."""

    reason: str


@dataclass(frozen=True, slots=True)
class StepDown:
    reason: str


@dataclass(frozen=True, slots=True)
class Handover:
    """Carry out a transfer intent: fenced put naming `to`."""

    to: str


@dataclass(frozen=True, slots=True)
class Seize:
    """Election: fenced put naming this node (compared on the observed token)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    until: float


Decision = Hold | Acquire | StepDown | Handover | Seize | Wait

ELECTION_BACKOFF = 1.0  # seconds between candidates' turns


def decide(obs: Observation, me: str, now: float) -> Decision:
    role = obs.role
    if role is None or not role.node:
        return StepDown("no Key Master recorded") if obs.acting else Hold()
    if role.node != me:
        if obs.acting:
            return StepDown(f"the role is now held by {role.node}")
        return _maybe_elect(obs, me, now)
    # the record names this node
    if not obs.may_hold:  # restarted read-only, without the KEK or with another one
        return StepDown("this node lacks the zone's KEK or is not writable") if obs.acting \
            else Hold()
    if not obs.my_lease or not obs.lease_valid:
        return StepDown("this node's lease is not valid") if obs.acting else Hold()
    if role.lease != obs.my_lease:
        return Acquire("restart" if not obs.acting else "new lease")
    intent = obs.intent
    if (intent is not None and intent.mode == "transfer" and intent.from_node == me
            and intent.to_node != me):  # an intent addressed to a previous holder is stale
        return Handover(intent.to_node)
    return Hold()


def _maybe_elect(obs: Observation, me: str, now: float) -> Decision:
    if obs.holder_alive or not obs.failover_auto or not obs.eligible:
        return Hold()
    if not obs.my_lease or not obs.lease_valid or obs.holder_offline_since is None:
        return Hold()
    if me not in obs.candidates:
        return Hold()
    rank = obs.candidates.index(me)
    due = obs.holder_offline_since + obs.failover_after + rank * ELECTION_BACKOFF
    if now < due:
        return Wait(due)
    return Seize("election")
