"""Key Master rollover duty: observe the keys, call the pure `plan`, perform a due step.

Each step (`node.dnssec.rollover`) is one fenced transaction that also bumps
the zone serial, so every writable node re-signs with the new key states at
one serial (docs/signing.md). The step is guarded on the mod revisions of the
key records it read: a step planned from a stale replica, or raced by an
operator's policy change, does nothing and is planned again. All state is in
the key records, so a Key Master that takes over (transfer, seize, election)
resumes a rollover where the previous one stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import dns.name
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.algroll import AlgStep, plan_algorithm
from node.dnssec.keys import new_key
from node.dnssec.lifecycle import KeyPolicy
from node.dnssec.rfc5011 import STEPS as RFC5011_STEPS
from node.dnssec.rfc5011 import Promote, Revoke
from node.dnssec.rfc5011 import plan as plan_keys
from node.dnssec.rollover import (
    Activate,
    Introduce,
    Plan,
    Ready,
    Remove,
    RollObservation,
    Timing,
)
from node.events import Event
from node.keymaster import rfc5011
from node.keymaster.algroll import perform_algorithm_step
from node.keymaster.duties import Fence
from node.keymaster.keystore import KeyStore
from node.keymaster.keywrite import bump_and_emit, key_guard, secret_ops
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Op
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.repository import ZoneRepository

log = logging.getLogger(__name__)
GATED = (Activate, Ready)
RFC5011_GATED = (Promote, Revoke)


def timing_for(config: DnssecConfig, snap: ZoneSnapshot) -> Timing:
    """The zone's RFC 7583 inputs: DNSKEY TTL, largest TTL, SOA negative TTL, delays."""
    return timing_from(config, snap.soa(), max((r.ttl for r in snap.rrsets()), default=0))


async def timing_off_loop(config: DnssecConfig, snap: ZoneSnapshot) -> Timing:
    """`timing_for` in a thread: it visits every RRset of the zone, which must not hold
    the control event loop (the watch, the lease and the API wait on it)."""
    return await asyncio.to_thread(timing_for, config, snap)


def timing_from(config: DnssecConfig, soa: dns.rrset.RRset, max_ttl: int) -> Timing:
    """`timing_for` from the apex SOA and the largest TTL alone."""
    negative = min(soa.ttl, soa[0].minimum)  # type: ignore[attr-defined]
    return Timing(dnskey_ttl=config.dnskey_ttl, max_ttl=max_ttl, negative_ttl=negative,
                  propagation=config.propagation_delay, ds_ttl=config.parent_ds_ttl,
                  parent_propagation=config.parent_propagation_delay)


async def signed_everywhere(etcd: EtcdClient, layout: KeyLayout, directory: NodeDirectory,
                            zone: dns.name.Name, state: DnssecState) -> bool:
    """Every live writable node holding the zone's KEK has signed the current key set."""
    nodes = [n for n in await directory.list_nodes() if n.role == "writable" and n.alive
             and (not state.config.kek or n.kek == state.config.kek)]
    records, _ = await etcd.range_all(layout.signing_prefix(zone))
    done = set()
    for kv in records:
        parsed = layout.parse_signing_key(kv.key)
        if parsed is not None and json.loads(kv.value).get("keyset") == state.keyset_id:
            done.add(parsed[1])
    return bool(nodes) and all(n.id in done for n in nodes)


async def observe(*, etcd: EtcdClient, layout: KeyLayout, directory: NodeDirectory,
                  zone: dns.name.Name, state: DnssecState, timing: Timing,
                  now: float) -> Plan:
    """The next step; whether every node has signed is asked only when a gated step is due.
    An algorithm rollover under way (`node.dnssec.algroll`) comes before any other; RFC 5011
    zones roll SEP keys by stand-by key (`node.dnssec.rfc5011`)."""
    policy = rfc5011.policy_of(state.config)

    def planned(signed: bool) -> Plan:
        o = RollObservation(state.keys, timing, signed_everywhere=signed)
        return plan_algorithm(o, state.config.algorithm, now) or plan_keys(o, policy, now)

    p = planned(True)
    if p.due(now) and isinstance(p.step, (*GATED, Remove, *RFC5011_GATED, AlgStep)):
        if not await signed_everywhere(etcd, layout, directory, zone, state):
            p = planned(False)
    return p


async def perform(*, repository: ZoneRepository, layout: KeyLayout, zone: dns.name.Name,
                  state: DnssecState, step: Plan, fence: Fence, kek: bytes,
                  key_store: KeyStore | None, clock: Clock = SYSTEM_CLOCK) -> int:
    """Carry out a due step as one fenced write with a serial bump; the new serial, or 0 if
    the keys changed meanwhile (planned again from the newer state)."""
    if isinstance(step.step, AlgStep):
        return await perform_algorithm_step(
            repository=repository, layout=layout, zone=zone, state=state, step=step.step,
            fence=fence, kek=kek, key_store=key_store, clock=clock)
    if isinstance(step.step, RFC5011_STEPS):
        return await rfc5011.perform(repository=repository, layout=layout, zone=zone,
                                     state=state, step=step, fence=fence, kek=kek,
                                     key_store=key_store, clock=clock)
    now = clock.time()
    keys = {k.key_id: k for k in state.keys}
    s = step.step
    ops: list[Op] = []
    if isinstance(s, Introduce):
        pred = keys[s.predecessor]
        cfg = state.config
        bits = cfg.ksk_bits if s.role in ("ksk", "csk") else cfg.zsk_bits
        replicate = cfg.replicate_ksk if s.role in ("ksk", "csk") else cfg.replicate_zsk
        key, pem = await asyncio.to_thread(
            new_key, zone, cfg.algorithm, s.role,  # type: ignore[arg-type]
            bits=bits or None, now=clock.now(), replicate=replicate, state="published",
            policy=KeyPolicy(auto=pred.policy.auto, every=pred.policy.every),
            predecessor=pred.key_id)
        if s.role in ("ksk", "csk"):  # double-KSK: it signs the DNSKEY set from the start
            key = replace(key, state="active", times=key.times.at(active=now))
        ops.append(Op.put(layout.key_key(zone, key.key_id), key.to_json()))
        ops += secret_ops(layout, zone, key, pem, kek, key_store)
        # re-put the predecessor: a second introduce planned from a stale copy fails its guard
        ops.append(Op.put(layout.key_key(zone, pred.key_id), pred.to_json()))
        guards = key_guard(layout, zone, state, pred)
        what, event, fields = "rollover-introduce", Event.ROLLOVER_STARTED, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id,
            "replaces": f"{pred.role}:{pred.tag}", "state": key.state}
    elif isinstance(s, Activate):
        new = keys[s.key_id]
        new = replace(new.with_state("active"), times=new.times.at(ready=now, active=now))
        ops.append(Op.put(layout.key_key(zone, new.key_id), new.to_json()))
        touched = [keys[s.key_id]]
        if s.retire:
            old = keys[s.retire]
            old = replace(old.with_state("retired"), times=old.times.at(retired=now))
            ops.append(Op.put(layout.key_key(zone, old.key_id), old.to_json()))
            touched.append(keys[s.retire])
        guards = key_guard(layout, zone, state, *touched)
        what, event, fields = "rollover-activate", Event.KEY_ACTIVATED, {
            "key": f"{new.role}:{new.tag}", "key_id": new.key_id, "retired": s.retire}
    elif isinstance(s, Ready):
        key = keys[s.key_id]
        key = replace(key, times=key.times.at(ready=now))
        ops.append(Op.put(layout.key_key(zone, key.key_id), key.to_json()))
        guards = key_guard(layout, zone, state, keys[s.key_id])
        what, event, fields = "rollover-ready", Event.KEY_READY, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id}
    elif isinstance(s, Remove):
        key = keys[s.key_id]
        ops += [Op.delete(layout.key_key(zone, key.key_id)),
                Op.delete(layout.secret_key(zone, key.key_id))]
        guards = key_guard(layout, zone, state, key)
        # a KSK stops signing when it goes (double-KSK): retired and removed at once
        times = key.times.at(retired=key.times.retired or now, removed=now)
        what, event, fields = "rollover-remove", Event.KEY_REMOVED, {
            "key": f"{key.role}:{key.tag}", "key_id": key.key_id, "times": times.to_dict()}
    else:
        return 0
    return await bump_and_emit(fence, repository, layout, zone, ops, what, guards, event,
                               **fields)
