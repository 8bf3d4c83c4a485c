"""RFC 5011 steps as the Key Master performs them, against a real etcd: each is one fenced
write with a serial bump, guarded on the key records it read. A step planned from a stale
copy of the keys does nothing (planned again); a holder whose role was seized cannot
write at all (FencedOut). The zone state is loaded the way a node loads it (`Replica`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.name
import pytest

from node.dnssec import kek as kekmod
from node.dnssec.keys import DnssecKey, new_key
from node.dnssec.rfc5011 import Promote, Revoke, Standby
from node.dnssec.rollover import Plan
from node.errors import FencedOut
from node.keymaster import rfc5011
from node.keymaster.duties import Fence
from node.keymaster.record import RoleRecord
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository

ZONE = dns.name.from_text("fence5011.test.")
KEK = bytes(range(32))
ME = "n1"


@dataclass
class Setup:
    etcd: EtcdClient
    layout: KeyLayout
    repo: ZoneRepository
    fence: Fence

    async def state(self) -> DnssecState:
        seen: list[ZoneSnapshot] = []
        await Replica(self.etcd, self.layout, on_update=seen.append).load()
        state = [s for s in seen if s.origin == ZONE][-1].dnssec
        assert state is not None
        return state

    async def perform(self, state: DnssecState, step: object) -> int:
        return await rfc5011.perform(repository=self.repo, layout=self.layout, zone=ZONE,
                                     state=state, step=Plan(step, 0.0),  # type: ignore[arg-type]
                                     fence=self.fence, kek=KEK, key_store=None)

    async def key(self, key_id: str) -> DnssecKey | None:
        kv = await self.etcd.get(self.layout.key_key(ZONE, key_id))
        return DnssecKey.from_json(kv.value) if kv else None


@pytest.fixture
async def setup(etcd_client: EtcdClient, key_prefix: str) -> AsyncIterator[Setup]:
    layout = KeyLayout(key_prefix)
    session = Session(etcd_client, ttl=10)
    task = asyncio.create_task(session.run())
    repo = ZoneRepository(etcd_client, layout)
    await repo.create_zone(ZONE)
    await etcd_client.put(layout.dnssec_key(ZONE), json.dumps(
        {"status": "signed", "rfc5011": True, "kek": kekmod.kek_fingerprint(KEK)}))
    now = datetime.now(UTC)
    for role in ("ksk", "zsk"):
        key, pem = new_key(ZONE, 13, role, now=now)  # type: ignore[arg-type]
        await etcd_client.put(layout.key_key(ZONE, key.key_id), key.to_json())
        await etcd_client.put(layout.secret_key(ZONE, key.key_id),
                              kekmod.wrap(KEK, ZONE.to_text(), key.key_id, pem))
    lease = await session.wait_ready(5)
    await etcd_client.put(layout.alive_key(ME), "{}", lease=lease)
    await etcd_client.put(layout.keymaster_key(ZONE), RoleRecord(ME, lease=lease).to_json())
    role = await etcd_client.get(layout.keymaster_key(ZONE))
    assert role is not None
    fence = Fence.for_role(layout, ZONE, role.mod_revision, ME, lease)
    try:
        yield Setup(etcd_client, layout, repo, fence)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_steps_are_fenced_guarded_writes(setup: Setup) -> None:
    before = await setup.state()
    (old,) = [k for k in before.keys if k.role == "ksk"]

    # stand-by: a published successor with its wrapped private key; the serial moves
    assert await setup.perform(before, Standby(old.key_id)) > 0
    state = await setup.state()
    (new,) = [k for k in state.keys if k.predecessor == old.key_id]
    assert new.state == "published" and new.role == "ksk" and new.times.published
    assert await setup.etcd.get(setup.layout.secret_key(ZONE, new.key_id)) is not None
    # a second stand-by planned from the copy taken before fails its guard: nothing written
    assert await setup.perform(before, Standby(old.key_id)) == 0
    assert len([k for k in (await setup.state()).keys if k.role == "ksk"]) == 2

    # promote: the stand-by key signs from now on, and is ready (CDS names it)
    assert await setup.perform(state, Promote(new.key_id)) > 0
    promoted = await setup.key(new.key_id)
    assert promoted is not None and promoted.state == "active" and promoted.times.ready

    # revoke: the REVOKE bit (flags 385, a new tag), the same key id, Trev recorded
    state = await setup.state()
    assert await setup.perform(state, Revoke(old.key_id)) > 0
    revoked = await setup.key(old.key_id)
    assert revoked is not None and revoked.state == "revoked" and revoked.flags == 385
    assert revoked.tag != old.tag and revoked.times.revoked
    # the same step again from the copy taken before the revocation does nothing
    assert await setup.perform(state, Revoke(old.key_id)) == 0


async def test_a_seized_holder_cannot_write(setup: Setup) -> None:
    state = await setup.state()
    (old,) = [k for k in state.keys if k.role == "ksk"]
    await setup.etcd.put(setup.layout.keymaster_key(ZONE),
                         RoleRecord("n2", lease=0).to_json())  # a seize: the token moves
    with pytest.raises(FencedOut):
        await setup.perform(state, Revoke(old.key_id))
    key = await setup.key(old.key_id)
    assert key is not None and key.state == "active"
