"""Key Master fencing edges against a real etcd (issue #8, finding 9): an election
compares that the holder's liveness key is absent, a dropped transfer intent is
deleted only if it is still the one observed, and an election clears the old
holder's intent so it cannot fire at the next holder. And (finding 8) a holder that lacks
a private key it needs says so: an error event and a metric.

The controller is fed the zone state the way the node feeds it: a real `Replica`
load of what the test wrote to etcd.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.name
import pytest

from node.clock import SYSTEM_CLOCK
from node.dnssec import kek as kekmod
from node.dnssec.keys import new_key
from node.errors import NodeError
from node.keymaster.controller import KeyMasterController
from node.keymaster.keystore import KeyStore
from node.keymaster.record import Intent, RoleRecord
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository

ZONE = dns.name.from_text("fence.test.")
KEK = bytes(range(32))
FP = kekmod.kek_fingerprint(KEK)


@dataclass
class Setup:
    etcd: EtcdClient
    layout: KeyLayout
    session: Session
    repo: ZoneRepository

    def controller(self, me: str, key_store: KeyStore | None = None) -> KeyMasterController:
        return KeyMasterController(
            node_id=me, writable=True, etcd=self.etcd, layout=self.layout,
            repository=self.repo, directory=NodeDirectory(self.etcd, self.layout),
            session=self.session, kek=KEK, key_store=key_store, tick=0.1)

    async def state(self) -> DnssecState:
        """The zone's DNSSEC state as a node's replica loads it."""
        seen: list[ZoneSnapshot] = []
        await Replica(self.etcd, self.layout, on_update=seen.append).load()
        state = [s for s in seen if s.origin == ZONE][-1].dnssec
        assert state is not None
        return state

    async def role(self) -> RoleRecord | None:
        kv = await self.etcd.get(self.layout.keymaster_key(ZONE))
        return RoleRecord.from_json(kv.value) if kv else None


@pytest.fixture
async def setup(etcd_client: EtcdClient, key_prefix: str) -> AsyncIterator[Setup]:
    layout = KeyLayout(key_prefix)
    session = Session(etcd_client, ttl=10)
    task = asyncio.create_task(session.run())
    repo = ZoneRepository(etcd_client, layout)
    await repo.create_zone(ZONE)
    settings = {"status": "signed", "keymaster_failover": "auto", "failover_after": 0.0,
                "kek": FP}
    await etcd_client.put(layout.dnssec_key(ZONE), json.dumps(settings))
    await session.wait_ready(5)
    try:
        yield Setup(etcd_client, layout, session, repo)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def live(*ids: str) -> list[NodeInfo]:
    return [NodeInfo(id=i, role="writable", dns_addresses=(), api_address="",
                     metrics_address="", alive=True, kek=FP) for i in ids]


async def test_election_compares_that_the_holder_is_gone(setup: Setup) -> None:
    # the holder n9 is alive in etcd (its liveness key holds its lease) ...
    lease, _ = await setup.etcd.lease_grant(30)
    await setup.etcd.put(setup.layout.alive_key("n9"), "{}", lease=lease)
    await setup.etcd.put(setup.layout.keymaster_key(ZONE),
                         RoleRecord("n9", lease=lease).to_json())
    km = setup.controller("n2")
    km.on_state(ZONE, await setup.state())
    # ... while n2's view of who is alive is stale: n9 is missing from it
    with pytest.raises(NodeError):
        await km._step(ZONE, live("n2"))
    role = await setup.role()
    assert role is not None and role.node == "n9", f"n2 took the role from a live holder: {role}"
    assert not km.holds(ZONE)


async def test_dropped_intent_delete_spares_a_newer_intent(setup: Setup) -> None:
    me = "n1"
    lease = await setup.session.wait_ready(5)
    await setup.etcd.put(setup.layout.keymaster_key(ZONE), RoleRecord(me, lease=lease).to_json())
    await setup.etcd.put(setup.layout.intent_key(ZONE),
                         Intent("transfer", me, "gone", "op", "t1").to_json())
    km = setup.controller(me)
    km.on_state(ZONE, await setup.state())  # observes the intent to "gone" (not a candidate)
    newer = Intent("transfer", me, "n2", "op", "t2").to_json()
    await setup.etcd.put(setup.layout.intent_key(ZONE), newer)  # the operator asks again
    await km._step(ZONE, live(me, "n2"))
    kv = await setup.etcd.get(setup.layout.intent_key(ZONE))
    assert kv is not None and kv.value == newer, "the newer intent was deleted"


async def test_election_clears_the_old_holders_intent(setup: Setup) -> None:
    await setup.etcd.put(setup.layout.keymaster_key(ZONE), RoleRecord("n9", lease=1).to_json())
    await setup.etcd.put(setup.layout.intent_key(ZONE),
                         Intent("transfer", "n9", "n3", "op", "t").to_json())
    km = setup.controller("n2")
    km.on_state(ZONE, await setup.state())
    await km._step(ZONE, live("n2", "n3"))  # n9 offline, failover_after 0: n2 is elected
    role = await setup.role()
    assert role is not None and role.node == "n2", role
    assert await setup.etcd.get(setup.layout.intent_key(ZONE)) is None, \
        "the old holder's intent survived the election"


async def test_holder_lacking_a_key_raises_an_error_event_and_a_metric(
        setup: Setup, tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    me = "n1"
    lease = await setup.session.wait_ready(5)
    ksk, _pem = new_key(ZONE, 13, "ksk", now=SYSTEM_CLOCK.now(), replicate=False)
    zsk, zsk_pem = new_key(ZONE, 13, "zsk", now=SYSTEM_CLOCK.now())
    await setup.etcd.put(setup.layout.key_key(ZONE, ksk.key_id), ksk.to_json())
    await setup.etcd.put(setup.layout.key_key(ZONE, zsk.key_id), zsk.to_json())
    await setup.etcd.put(setup.layout.secret_key(ZONE, zsk.key_id),
                         kekmod.wrap(KEK, ZONE.to_text(), zsk.key_id, zsk_pem))
    await setup.etcd.put(setup.layout.keymaster_key(ZONE), RoleRecord(me, lease=lease).to_json())
    # the holder's local key store lost the unreplicated KSK (a disk swap, a restore...)
    km = setup.controller(me, KeyStore(f"{tmp_path}/store"))
    km.on_state(ZONE, await setup.state())
    with caplog.at_level(logging.INFO, logger="node.events"):
        await km._step(ZONE, live(me))
        await km._step(ZONE, live(me))
    assert km.holds(ZONE)
    missing = [r for r in caplog.records if "KEYMASTER_KEY_MISSING" in r.getMessage()]
    assert len(missing) == 1 and missing[0].levelno == logging.ERROR, \
        "no error event for the key the Key Master lacks"
    assert ksk.key_id in missing[0].getMessage()
    assert km.missing_keys() == {ZONE.to_text(): 1}


async def _zone_signed_before_fingerprints(setup: Setup, me: str) -> None:
    """A zone signed by an older version: a wrapped key, no KEK fingerprint recorded."""
    lease = await setup.session.wait_ready(5)
    await setup.etcd.put(setup.layout.alive_key(me), "{}", lease=lease)  # as membership does
    key, pem = new_key(ZONE, 13, "csk", now=SYSTEM_CLOCK.now())
    await setup.etcd.put(setup.layout.key_key(ZONE, key.key_id), key.to_json())
    await setup.etcd.put(setup.layout.secret_key(ZONE, key.key_id),
                         kekmod.wrap(KEK, ZONE.to_text(), key.key_id, pem))
    await setup.etcd.put(setup.layout.dnssec_key(ZONE), json.dumps(
        {"status": "signed", "keymaster_failover": "auto"}))
    await setup.etcd.put(setup.layout.keymaster_key(ZONE), RoleRecord(me, lease=lease).to_json())


async def zone_kek(setup: Setup) -> str:
    kv = await setup.etcd.get(setup.layout.dnssec_key(ZONE))
    assert kv is not None
    return str(json.loads(kv.value).get("kek", ""))


async def test_the_holder_records_the_kek_of_an_older_zone(setup: Setup) -> None:
    await _zone_signed_before_fingerprints(setup, "n1")
    km = setup.controller("n1")
    km.on_state(ZONE, await setup.state())
    await km._step(ZONE, live("n1"))
    assert await zone_kek(setup) == FP


async def test_a_holder_with_another_kek_records_nothing(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    await _zone_signed_before_fingerprints(setup, "n1")
    km = KeyMasterController(
        node_id="n1", writable=True, etcd=setup.etcd, layout=setup.layout,
        repository=setup.repo, directory=NodeDirectory(setup.etcd, setup.layout),
        session=setup.session, kek=bytes(32), key_store=None)
    km.on_state(ZONE, await setup.state())
    with caplog.at_level(logging.INFO, logger="node.events"):
        await km._step(ZONE, live("n1"))
    assert await zone_kek(setup) == ""
    assert any("KEYMASTER_KEY_MISSING" in r.getMessage() for r in caplog.records)
