"""When an import deletes the generation it replaced: once every live node serves the new one.

Issue 10, load time: deleting the replaced generation of the 100k-name bench zone
(127k keys, in parts: `BulkWriter.delete`) costs etcd seconds of CPU and every
watching node the events' decoding; started right after the flip, it ran while
every node was decoding the new generation and building its image on the same
cores, and held up their answering the new serial. `until_served` holds the
deletion until every live node's status record (`alive/<id>`, its `served`
serials, `node.nodes.membership`) reports the new serial or a later one, for at
most `WAIT_MAX` seconds: a node that is down, lagging or stuck never holds an
import longer. The import returns at its flip; the deletion runs in the background
(a node that stops or an etcd that fails meanwhile leaves it to the generation sweep).
A zone with DNSSEC state is not waited for: its nodes report a serial once they
have signed it, which takes longer than the deletion would disturb them.
Nothing here changes what is served: the old generation is referenced by no
head from the flip on; it only costs etcd space while it waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

import dns.name

from node.errors import NodeError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout

if TYPE_CHECKING:
    from node.zones.bulk import BulkWriter

log = logging.getLogger(__name__)

WAIT_MAX = 15.0  # seconds an import waits at most for every node to serve its version
POLL = 0.1  # seconds between reads of the nodes' status records


def _at_least(served: object, serial: int) -> bool:
    """`served` is `serial` or later (RFC 1982 serial arithmetic)."""
    return isinstance(served, int) and (served - serial) % 2**32 < 2**31


async def until_served(etcd: EtcdClient, keys: KeyLayout, zone: dns.name.Name, serial: int,
                       wait_max: float | None = None) -> bool:
    """Wait until every live node reports `zone` served at `serial` or later (True), or
    `wait_max` (`WAIT_MAX`) seconds passed, the zone has DNSSEC state, or etcd failed
    (False)."""
    wait_max = WAIT_MAX if wait_max is None else wait_max
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_max
    text = zone.to_text()
    try:
        if await etcd.get(keys.dnssec_key(zone)) is not None:
            return False
        while True:
            alive, _ = await etcd.range_all(keys.alive_prefix())
            if all(_at_least(_served(kv.value).get(text), serial) for kv in alive):
                return True
            if loop.time() >= deadline:
                log.info("zone %s: not every node serves serial %d after %.0f s; deleting "
                         "the replaced generation anyway", zone, serial, wait_max)
                return False
            await asyncio.sleep(POLL)
    except NodeError as exc:  # the deletion that follows reports etcd's state itself
        log.info("zone %s: could not read the nodes' served serials: %s", zone, exc)
        return False


async def retire(etcd: EtcdClient, keys: KeyLayout, bulk: BulkWriter, zone: dns.name.Name,
                 generation: int, serial: int) -> None:
    """In the background, after an import's flip: delete the replaced `generation` once
    the live nodes serve `serial` (at most `WAIT_MAX`). The import is applied and answered
    already; a failure (etcd unavailable, the node stopping) leaves the generation to the
    sweep (its zone stays marked `unswept/` until it is gone)."""
    try:
        await until_served(etcd, keys, zone, serial)
        await bulk.delete(zone, generation)  # in parts: see bulk.py
    except NodeError as exc:
        log.warning("zone %s: the replaced generation %d is left to the sweep: %s",
                    zone, generation, exc)


def _served(value: bytes) -> dict[str, object]:
    try:
        served = json.loads(value).get("served", {})
    except (ValueError, AttributeError):
        return {}
    return served if isinstance(served, dict) else {}
