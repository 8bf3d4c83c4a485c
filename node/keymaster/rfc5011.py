"""Key Master side of RFC 5011 rollovers: perform a stand-by, promote or revoke step.

The pure plan (`node.dnssec.rfc5011`) says which step is due; each is one
fenced transaction with a serial bump (`Fence.bump`), guarded on the mod
revisions of the key records it read, as every rollover step is
(`node.keymaster.rollover`): a step planned from a stale copy does nothing
and is planned again. Every state and time is in the key records, so a Key
Master that takes the role over resumes the roll where it stopped. Removal of
the revoked key is the common `Remove` step.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.keys import DnssecKey, new_key
from node.dnssec.lifecycle import KeyPolicy
from node.dnssec.rfc5011 import Promote, Revoke, Rfc5011Policy, Standby
from node.dnssec.rollover import Plan
from node.events import Event
from node.keymaster.duties import Fence
from node.keymaster.keystore import KeyStore
from node.keymaster.keywrite import bump_and_emit, key_guard, secret_ops
from node.store.keys import KeyLayout
from node.store.txn import Op
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.repository import ZoneRepository


def policy_of(config: DnssecConfig) -> Rfc5011Policy | None:
    """The zone's RFC 5011 policy, or None when its KSKs roll by double-KSK."""
    if not config.rfc5011:
        return None
    return Rfc5011Policy(add_holddown=config.add_holddown,
                         remove_holddown=config.remove_holddown, parent_ds=config.parent_ds)


async def _standby(*, layout: KeyLayout, zone: dns.name.Name, state: DnssecState,
                   pred: DnssecKey, kek: bytes, key_store: KeyStore | None, clock: Clock
                   ) -> tuple[DnssecKey, list[Op]]:
    """A successor of `pred`, published (not signing), and the ops that store it."""
    cfg = state.config
    replicate = cfg.replicate_ksk
    key, pem = await asyncio.to_thread(
        new_key, zone, cfg.algorithm, pred.role, bits=cfg.ksk_bits or None, now=clock.now(),
        replicate=replicate, state="published",
        policy=KeyPolicy(auto=pred.policy.auto, every=pred.policy.every),
        predecessor=pred.key_id)
    ops = [Op.put(layout.key_key(zone, key.key_id), key.to_json())]
    ops += secret_ops(layout, zone, key, pem, kek, key_store)
    # re-put the predecessor: a second stand-by planned from a stale copy fails its guard
    ops.append(Op.put(layout.key_key(zone, pred.key_id), pred.to_json()))
    return key, ops


async def perform(*, repository: ZoneRepository, layout: KeyLayout, zone: dns.name.Name,
                  state: DnssecState, step: Plan, fence: Fence, kek: bytes,
                  key_store: KeyStore | None, clock: Clock = SYSTEM_CLOCK) -> int:
    """Carry out a due RFC 5011 step: the new serial, or 0 if the keys changed meanwhile."""
    now = clock.time()
    keys = {k.key_id: k for k in state.keys}
    s = step.step
    if isinstance(s, Standby):
        pred = keys[s.predecessor]
        key, ops = await _standby(layout=layout, zone=zone, state=state, pred=pred, kek=kek,
                                  key_store=key_store, clock=clock)
        guards = key_guard(layout, zone, state, pred)
        what, event, fields = "rfc5011-standby", Event.KEY_STANDBY, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id,
            "replaces": f"{pred.role}:{pred.tag}"}
    elif isinstance(s, Promote):
        old = keys[s.key_id]
        key = replace(old.with_state("active"), times=old.times.at(ready=now, active=now))
        ops = [Op.put(layout.key_key(zone, key.key_id), key.to_json())]
        guards = key_guard(layout, zone, state, old)
        what, event, fields = "rfc5011-promote", Event.KEY_PROMOTED, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id}
    elif isinstance(s, Revoke):
        old = keys[s.key_id]
        key = replace(old.with_state("revoked"),
                      times=old.times.at(retired=old.times.retired or now, revoked=now))
        ops = [Op.put(layout.key_key(zone, key.key_id), key.to_json())]
        guards = key_guard(layout, zone, state, old)
        what, event, fields = "rfc5011-revoke", Event.KEY_REVOKED, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id,
            "was": f"{old.role}:{old.tag}"}
    else:
        return 0
    return await bump_and_emit(fence, repository, layout, zone, ops, what, guards, event,
                               **fields)
