"""The child side of a KSK roll whose parent zone is in the cluster: seeing the new DS there.

A KSK roll waits, after the new KSK is ready, until its DS is at the parent
(`zone ds-seen`, node.dnssec.rollover). When the closest enclosing zone is
itself in the cluster, its DS RRset for this zone is in etcd; once that holds
a DS of the new KSK (put there by the parent's CDS poll, node.keymaster.cds_poll,
or by an operator), the child's Key Master records `ds_seen` itself, as one
fenced write guarded on the key record. Iret (DprpP + TTLds) then counts from
that moment, which is no earlier than the parent's change.
"""

from __future__ import annotations

from dataclasses import replace

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdatatype

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.cds_accept import DIGESTS
from node.dnssec.keys import DnssecKey
from node.dnssec.rollover import Plan, Remove
from node.events import Event, emit
from node.keymaster.duties import Fence
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneHead, rrset_from_json
from node.zones.repository import ZoneRepository

Name = dns.name.Name


async def parent_zone(etcd: EtcdClient, layout: KeyLayout, zone: Name) -> Name | None:
    """The closest enclosing zone that is in the cluster, or None."""
    name = zone
    while name != dns.name.root:
        name = name.parent()
        if await etcd.get(layout.head_key(name)) is not None:
            return name
    return None


async def ds_at_parent(etcd: EtcdClient, layout: KeyLayout, parent: Name, zone: Name
                       ) -> list[dns.rdata.Rdata]:
    """The DS RRset for `zone` stored at its cut in `parent` ([] if none)."""
    head = await etcd.get(layout.head_key(parent))
    if head is None:
        return []
    gen = ZoneHead.from_json(head.value).generation
    kv = await etcd.get(layout.rrset_key(parent, gen, zone, dns.rdatatype.DS))
    return [] if kv is None else list(rrset_from_json(zone, dns.rdatatype.DS, kv.value))


def names_key(ds_set: list[dns.rdata.Rdata], zone: Name, key: DnssecKey) -> bool:
    """A DS of the set points to `key` (same tag, algorithm and digest)."""
    for ds in ds_set:
        digest = DIGESTS.get(ds.digest_type)  # type: ignore[attr-defined]
        if digest and ds.key_tag == key.tag and ds.algorithm == key.algorithm \
                and dns.dnssec.make_ds(zone, key.dnskey(), digest) == ds:  # type: ignore[attr-defined]
            return True
    return False


def awaited(step: Plan, keys: tuple[DnssecKey, ...]) -> DnssecKey | None:
    """The KSK whose DS a blocked step waits for: the ready successor of the KSK to remove."""
    if not step.blocked or not isinstance(step.step, Remove):
        return None
    gone = step.step.key_id
    return next((k for k in keys if k.predecessor == gone and k.role in ("ksk", "csk")
                 and k.state == "active" and k.times.ready is not None and k.ds_seen is None),
                None)


async def mark_if_seen(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                       zone: Name, state: DnssecState, step: Plan, fence: Fence,
                       clock: Clock = SYSTEM_CLOCK) -> bool:
    """If `step` waits for a DS the in-cluster parent now holds, record `ds_seen`. True if
    written."""
    key = awaited(step, state.keys)
    if key is None:
        return False
    parent = await parent_zone(etcd, layout, zone)
    if parent is None:
        return False
    if not names_key(await ds_at_parent(etcd, layout, parent, zone), zone, key):
        return False
    now = clock.time()
    new = replace(key, ds_seen=now)
    guard = Compare.mod_revision(layout.key_key(zone, key.key_id)) == \
        state.key_revision(key.key_id)
    serial = await fence.bump(repository, layout,
                              [Op.put(layout.key_key(zone, key.key_id), new.to_json())],
                              "ds-seen-at-parent", extra=(guard,))
    if serial:
        emit(Event.DS_SEEN_AT_PARENT, zone=zone, serial=serial, parent=parent,
             key=f"{key.role}:{key.tag}", key_id=key.key_id)
    return bool(serial)
