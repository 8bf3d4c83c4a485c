"""Key Master: perform one step of an algorithm rollover (`node.dnssec.algroll`).

Each step is one fenced transaction with a serial bump, guarded on the mod
revisions of the key records it read, as the ZSK/KSK steps are
(`node.keymaster.rollover`): every writable node re-signs with the new key
states at one serial, and a Key Master that takes over resumes from etcd.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.algorithms import algorithm_name
from node.dnssec.algroll import AlgStep
from node.dnssec.keys import new_key
from node.dnssec.lifecycle import KeyPolicy, KeyTimes
from node.events import Event
from node.keymaster.duties import Fence
from node.keymaster.keystore import KeyStore
from node.keymaster.keywrite import bump_and_emit, key_guard, secret_ops
from node.store.keys import KeyLayout
from node.store.txn import Op
from node.zones.dnssec import DnssecState
from node.zones.repository import ZoneRepository


async def _introduce(zone: dns.name.Name, state: DnssecState, step: AlgStep,
                     layout: KeyLayout, kek: bytes, key_store: KeyStore | None,
                     clock: Clock) -> list[Op]:
    """One presigning key of the new algorithm per old key, same role and policy."""
    cfg = state.config
    now = clock.time()
    ops: list[Op] = []
    for old in (k for k in state.keys if k.key_id in step.key_ids):
        sep = old.role in ("ksk", "csk")
        key, pem = await asyncio.to_thread(
            new_key, zone, step.algorithm, old.role,
            bits=(cfg.ksk_bits if sep else cfg.zsk_bits) or None, now=clock.now(),
            replicate=old.replicate, state="presigning",
            policy=KeyPolicy(auto=old.policy.auto, every=old.policy.every),
            predecessor=old.key_id)
        key = replace(key, times=KeyTimes(active=now))  # signs from now; not yet published
        ops.append(Op.put(layout.key_key(zone, key.key_id), key.to_json()))
        ops += secret_ops(layout, zone, key, pem, kek, key_store)
        # re-put the old key: a second introduce planned from a stale copy fails its guard
        ops.append(Op.put(layout.key_key(zone, old.key_id), old.to_json()))
    return ops


async def perform_algorithm_step(*, repository: ZoneRepository, layout: KeyLayout,
                                 zone: dns.name.Name, state: DnssecState, step: AlgStep,
                                 fence: Fence, kek: bytes, key_store: KeyStore | None,
                                 clock: Clock = SYSTEM_CLOCK) -> int:
    """Carry out a due algorithm-rollover step; the new serial, or 0 if the keys changed."""
    now = clock.time()
    named = [k for k in state.keys if k.key_id in step.key_ids]
    ops: list[Op] = []
    if step.action == "introduce":
        ops = await _introduce(zone, state, step, layout, kek, key_store, clock)
    else:
        for k in named:
            if step.action == "publish":
                k = replace(k.with_state("active"), times=k.times.at(published=now))
            elif step.action == "ready":
                k = replace(k, times=k.times.at(ready=now))
            elif step.action == "withdraw":
                k = replace(k.with_state("withdrawn"), times=k.times.at(retired=now))
            if step.action == "remove":
                ops += [Op.delete(layout.key_key(zone, k.key_id)),
                        Op.delete(layout.secret_key(zone, k.key_id))]
            else:
                ops.append(Op.put(layout.key_key(zone, k.key_id), k.to_json()))
    return await bump_and_emit(
        fence, repository, layout, zone, ops, f"algorithm-{step.action}",
        key_guard(layout, zone, state, *named), Event.ALGORITHM_ROLL_STEP, step=step.action,
        algorithm=algorithm_name(step.algorithm),
        keys=",".join(f"{k.role}:{k.tag}" for k in named), at=now)
