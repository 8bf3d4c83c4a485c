"""Signature refresh: when a signed zone's RRSIGs are due for re-signing, the zone's serial
is bumped once per refresh window, so every node re-signs what is due at the same
new serial (`SigningManager` arms the timer; this module owns the bump and the spacing).
"""

from __future__ import annotations

import asyncio
import logging

import dns.name

from node.clock import Clock
from node.dnssec.params import SigningParams
from node.errors import NodeError
from node.events import Event, emit
from node.signing.backoff import Backoff
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.model import ZoneHead

log = logging.getLogger(__name__)


async def bump_for_refresh(etcd: EtcdClient, keys: KeyLayout, clock: Clock,
                           origin: dns.name.Name, serial: int) -> None:
    """Bump the head of `origin` past `serial` (compare-and-swap), unless someone already
    moved the zone on; retried until done."""
    backoff = Backoff()
    while True:
        try:
            head = await etcd.get(keys.head_key(origin))
            if head is None:
                return
            current = ZoneHead.from_json(head.value)
            if current.serial != serial:
                return  # someone already moved the zone on
            bumped = current.bumped(clock.time())
            res = await etcd.txn(
                when=[Compare.mod_revision(keys.head_key(origin)) == head.mod_revision],
                then=[Op.put(keys.head_key(origin), bumped.to_json())],
            )
            if res.succeeded:
                emit(Event.SIGNATURE_REFRESH, zone=origin, serial=bumped.serial)
                return
        except (NodeError, ValueError, KeyError) as exc:
            log.warning("signature refresh of %s: %s; retrying", origin, exc)
        await asyncio.sleep(backoff.next())


def refresh_spacing(params: SigningParams) -> int:
    """The least time between two refresh bumps of a zone: an hour by default, so that
    epoch boundaries pass a few RRsets at a time; at most an eighth of the period
    between an RRset's boundaries (tests run with seconds)."""
    return max(1, min(3600, (params.validity - params.refresh) // 8))
