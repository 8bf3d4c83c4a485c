"""`zone sign --new-keys` when the Key Master cannot reach the KSK's private key: a double-DS
rollover (RFC 7583 3.3.2), finished before the old DNSKEY-set signatures expire (issue #11
part 5).

After a seize without the KSK (`seize-keymaster --accept-missing-keys`), nobody can sign the
DNSKEY RRset again: the nodes serve the RRSIGs the old Key Master published
(`zones/<z>/dnskeyset`) until they expire, the `deadline`. Changing the DNSKEY RRset before
the parent holds a DS for a new KSK would break every validator, so:

1. **start**: a new KSK is made in state `created`: not in the DNSKEY RRset (which stays as it
   is), but named by CDS/CDNSKEY and by `zone dnssec`'s DS list next to the old KSK.
2. **DS at the parent**: when the parent zone is in the cluster, its Key Master's CDS poll
   adds the new DS (node.keymaster.cds_poll) and this Key Master sees it there
   (node.keymaster.parent_ds) and records `ds_seen`; otherwise the operator hands the DS
   over and confirms with `zone ds-seen`. `zone dnssec` states the DS and the deadline.
3. **swap**, at `ds_seen + DprpP + TTLds` (the DS set naming both KSKs is in every cache) and
   no later than `deadline - Dprp`: the new KSK becomes active and signs the DNSKEY RRset,
   the unreachable KSK leaves it, and a new ZSK is published as the old ZSK's successor; the
   ordinary ZSK pre-publication roll (node.dnssec.rollover) completes that one. CDS then
   names the new KSK only, and the parent's poll drops the old DS.

Where no valid path exists, `check_path` refuses before anything is written: the parent is
in the cluster and holds no DS (the zone's trust anchor is its own KSK: no validator could
follow a KSK it never signed), or the deadline is too near for the DS to reach caches.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec import kek as kekmod
from node.dnssec.ds import ds_records
from node.dnssec.keys import DnssecKey, new_key
from node.dnssec.lifecycle import KeyPolicy, stamp
from node.dnssec.rollover import Timing
from node.errors import Refused
from node.events import Event, emit
from node.keymaster import parent_ds
from node.keymaster import rollover as roll
from node.keymaster.duties import Fence
from node.keymaster.keystore import KeyStore
from node.keymaster.keywrite import key_guard, secret_ops
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.repository import ZoneRepository

Name = dns.name.Name
SEP = ("ksk", "csk")


def unreachable_ksk(keys: tuple[DnssecKey, ...], missing: tuple[str, ...]) -> DnssecKey | None:
    """The active KSK whose private key the Key Master cannot reach, if any."""
    return next((k for k in keys if k.key_id in missing and k.role == "ksk"
                 and k.state == "active"), None)


def pending(keys: tuple[DnssecKey, ...]) -> DnssecKey | None:
    """The new KSK of a double-DS rollover under way (state `created`)."""
    return next((k for k in keys if k.state == "created" and k.role in SEP), None)


def deadline(dnskeyset: bytes) -> float | None:
    """When the DNSKEY-set RRSIGs the nodes serve expire (None: none published)."""
    if not dnskeyset:
        return None
    return float(json.loads(dnskeyset).get("expiration", 0)) or None


def latest_swap(timing: Timing, until: float) -> float:
    """The swap must be served everywhere before the old signatures expire."""
    return until - timing.propagation


def check_path(zone: Name, *, keys: tuple[DnssecKey, ...], missing: tuple[str, ...],
               dnskeyset: bytes, timing: Timing, parent: Name | None, parent_has_ds: bool,
               now: float) -> list[str]:
    """Refused if a double-DS rollover cannot work; else what the operator must know."""
    if any(k.key_id in missing and k.role == "csk" for k in keys):
        raise Refused(f"--new-keys: the CSK of {zone} is unreachable, so nothing can be signed; "
                      "restore its private key or unsign and sign the zone again")
    if any(k.key_id in missing and k.role == "zsk" for k in keys):
        raise Refused(f"--new-keys: a ZSK of {zone} is unreachable too; a double-DS rollover "
                      "needs the ZSK to keep signing: restore it or transfer the role back")
    if pending(keys) is not None:
        raise Refused(f"--new-keys: a double-DS rollover of {zone} is already under way "
                      f"(clusterctl zone dnssec {zone})")
    if parent is not None and not parent_has_ds:
        raise Refused(f"--new-keys: no valid path: the parent {parent} holds no DS for {zone}, "
                      "so its trust anchor is its own KSK, whose private key is unreachable; "
                      "validators cannot follow a new KSK it never signed. Restore the KSK "
                      "(or the node holding it) first")
    until = deadline(dnskeyset)
    if until is None:
        raise Refused(f"--new-keys: no valid path: no DNSKEY-set signatures of {zone} are "
                      "published, so the DNSKEY RRset cannot be served until a new KSK is "
                      "trusted")
    need = timing.parent_propagation + timing.ds_ttl + timing.propagation
    if now + need > until:
        raise Refused(f"--new-keys: no valid path in time: the DNSKEY-set signatures of {zone} "
                      f"expire at {stamp(until)}, and a double-DS rollover needs {need} s "
                      "(parent propagation + DS TTL + propagation)")
    where = (f"the parent {parent} is in the cluster: its CDS poll adds the DS"
             if parent is not None else "hand the new DS to the parent, then run clusterctl "
             f"zone ds-seen {zone} KEY_ID")
    return [f"the KSK is unreachable: re-keying by a double-DS rollover, which must finish "
            f"before {stamp(latest_swap(timing, until))} (the old DNSKEY-set signatures expire "
            f"at {stamp(until)}); {where}"]


def status(state: DnssecState, timing: Timing) -> tuple[str, float | None, str] | None:
    """(next_step, at, waiting_for) of a double-DS rollover under way, for `zone dnssec`."""
    new = pending(state.keys)
    if new is None:
        return None
    until = deadline(state.dnskeyset)
    by = f"; it must be done before {stamp(latest_swap(timing, until))}" if until else ""
    if new.ds_seen is None:
        ds = ds_records(new).to_text()
        return (f"swap in KSK {new.tag}", None,
                f"the DS of KSK {new.tag} at the parent (an in-cluster parent's CDS poll adds "
                f"it; else hand it over, then clusterctl zone ds-seen ZONE {new.key_id}): "
                f"DS {ds}{by}")
    return (f"swap in KSK {new.tag}", new.ds_seen + timing.iret_ksk,
            f"Iret: the DS set naming both KSKs to reach caches{by}")


async def start(*, repository: ZoneRepository, layout: KeyLayout, zone: Name,
                state: DnssecState, old: DnssecKey, fence: Fence, kek: bytes,
                key_store: KeyStore | None, clock: Clock = SYSTEM_CLOCK) -> int:
    """Step 1: the new KSK, `created`; the request is answered (new_keys cleared)."""
    cfg = state.config
    key, pem = await asyncio.to_thread(
        new_key, zone, cfg.algorithm, "ksk", bits=cfg.ksk_bits or None, now=clock.now(),
        replicate=cfg.replicate_ksk, state="published",
        policy=KeyPolicy(auto=old.policy.auto, every=old.policy.every), predecessor=old.key_id)
    key = replace(key, state="created", times=key.times.at(published=None))
    ops = [Op.put(layout.key_key(zone, key.key_id), key.to_json()),
           Op.put(layout.dnssec_key(zone), cfg.with_(status="signed", new_keys=False).to_json())]
    ops += secret_ops(layout, zone, key, pem, kek, key_store)
    serial = await fence.bump(repository, layout, ops, "double-ds-start", extra=(
        Compare.mod_revision(layout.dnssec_key(zone)) == state.config_revision,))
    if serial:
        emit(Event.DOUBLE_DS_STARTED, zone=zone, serial=serial, key=f"ksk:{key.tag}",
             key_id=key.key_id, replaces=f"ksk:{old.tag}", ds=ds_records(key).to_text(),
             deadline=stamp(deadline(state.dnskeyset)))
    return serial


async def advance(*, etcd: EtcdClient, repository: ZoneRepository, layout: KeyLayout,
                  zone: Name, state: DnssecState, timing: Timing, fence: Fence, kek: bytes,
                  key_store: KeyStore | None, clock: Clock = SYSTEM_CLOCK) -> int:
    """Steps 2 and 3 when due; the serial written, or 0."""
    new = pending(state.keys)
    if new is None:
        return 0
    now = clock.time()
    if new.ds_seen is None:
        parent = await parent_ds.parent_zone(etcd, layout, zone)
        if parent is None or not parent_ds.names_key(
                await parent_ds.ds_at_parent(etcd, layout, parent, zone), zone, new):
            return 0
        seen = replace(new, ds_seen=now)
        serial = await fence.bump(repository, layout, [Op.put(layout.key_key(zone, new.key_id),
                                                              seen.to_json())],
                                  "double-ds-seen", extra=key_guard(layout, zone, state, new))
        if serial:
            emit(Event.DS_SEEN_AT_PARENT, zone=zone, serial=serial, parent=parent,
                 key=f"ksk:{new.tag}", key_id=new.key_id)
        return serial
    if now < new.ds_seen + timing.iret_ksk:
        return 0
    return await _swap(repository=repository, layout=layout, zone=zone, state=state,
                       new=new, fence=fence, kek=kek, key_store=key_store, clock=clock)


async def _swap(*, repository: ZoneRepository, layout: KeyLayout, zone: Name,
                state: DnssecState, new: DnssecKey, fence: Fence, kek: bytes,
                key_store: KeyStore | None, clock: Clock) -> int:
    """Step 3 in one write: new KSK active, unreachable KSK gone, new ZSK published."""
    now = clock.time()
    cfg = state.config
    by_id = {k.key_id: k for k in state.keys}
    old = by_id.get(new.predecessor)
    zsks = [k for k in state.keys if k.role == "zsk" and k.state == "active"]
    active = replace(new, state="active", times=new.times.at(published=now, ready=now,
                                                             active=now))
    ops = [Op.put(layout.key_key(zone, new.key_id), active.to_json()),
           Op.put(layout.dnssec_key(zone), cfg.with_(missing_keys=()).to_json())]
    touched = [new]
    if old is not None:
        ops += [Op.delete(layout.key_key(zone, old.key_id)),
                Op.delete(layout.secret_key(zone, old.key_id))]
        touched.append(old)
    if len(zsks) == 1:  # the ZSK is renewed by the ordinary pre-publication roll
        zsk, pem = await asyncio.to_thread(
            new_key, zone, cfg.algorithm, "zsk", bits=cfg.zsk_bits or None, now=clock.now(),
            replicate=cfg.replicate_zsk, state="published",
            policy=KeyPolicy(auto=zsks[0].policy.auto, every=zsks[0].policy.every),
            predecessor=zsks[0].key_id)
        ops.append(Op.put(layout.key_key(zone, zsk.key_id), zsk.to_json()))
        # the old ZSK is due at once: the successor activates after Ipub, not in 90 days
        ops.append(Op.put(layout.key_key(zone, zsks[0].key_id),
                          replace(zsks[0], roll_at=now).to_json()))
        if zsk.replicate:
            ops.append(Op.put(layout.secret_key(zone, zsk.key_id),
                              kekmod.wrap(kek, zone.to_text(), zsk.key_id, pem)))
        elif key_store is not None:
            key_store.put(zone, zsk.key_id, pem)
        touched.append(zsks[0])
    serial = await fence.bump(repository, layout, ops, "double-ds-swap",
                              extra=(*key_guard(layout, zone, state, *touched),
                                     Compare.mod_revision(layout.dnssec_key(zone))
                                     == state.config_revision))
    if serial:
        emit(Event.KEY_ACTIVATED, zone=zone, serial=serial, key=f"ksk:{new.tag}",
             key_id=new.key_id, retired=old.key_id if old else "", how="double-DS swap")
    return serial


async def precheck(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                   zone: Name, config: DnssecConfig, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Before `--new-keys` acts: [] if every KSK is reachable (an ordinary re-key);
    Refused if a double-DS rollover has no valid path; else what the operator must know.
    The unreachable keys are those a seize recorded (`missing_keys`)."""
    if not config.missing_keys:
        return []
    kvs, _ = await etcd.range_all(layout.keys_prefix(zone))
    keys = tuple(DnssecKey.from_json(kv.value) for kv in kvs)
    if unreachable_ksk(keys, config.missing_keys) is None and not any(
            k.key_id in config.missing_keys and k.role == "csk" for k in keys):
        return []
    raw = await etcd.get(layout.dnskeyset_key(zone))
    soa, max_ttl = await repository.soa_and_max_ttl(zone)  # not the zone: it may be large
    timing = roll.timing_from(config, soa, max_ttl)
    parent = await parent_ds.parent_zone(etcd, layout, zone)
    has_ds = bool(parent and await parent_ds.ds_at_parent(etcd, layout, parent, zone))
    return check_path(zone, keys=keys, missing=config.missing_keys,
                      dnskeyset=raw.value if raw else b"", timing=timing, parent=parent,
                      parent_has_ds=has_ds, now=clock.time())
