"""A zone version that changes only data (its DNSSEC state is the same object: the replica
keeps it while nothing of it changed) does not wake the Key Master's loop: that woke it on
every record change, on every node, for an etcd read and a step per zone in the middle of
the change's signing and publishing. The next tick (0.5 s) steps with the newest version;
a changed DNSSEC state still wakes it at once."""

from __future__ import annotations

from dataclasses import replace

import dns.name
import pytest

from node.keymaster.controller import KeyMasterController
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.model import snapshot_from_text
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

ZONE = dns.name.from_text("wake.test.")
TEXT = "@ 300 IN SOA ns1 hostmaster {} 7200 3600 604800 300\n@ 300 IN NS ns1\n" \
       "ns1 300 IN A 192.0.2.1\n"


async def test_a_data_only_version_does_not_wake_the_key_master(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    km = KeyMasterController(
        node_id="n1", writable=True, etcd=etcd_client, layout=layout,
        repository=ZoneRepository(etcd_client, layout),
        directory=NodeDirectory(etcd_client, layout), session=Session(etcd_client, ttl=10),
        kek=None, key_store=None)
    state = DnssecState(config=DnssecConfig())
    first, second = (snapshot_from_text(TEXT.format(n), ZONE) for n in (1, 2))
    km.on_state(ZONE, state, first)
    assert km._wake.is_set(), "a new zone did not wake the Key Master"
    km._wake.clear()
    km.on_state(ZONE, state, second)
    assert not km._wake.is_set(), "a data-only version woke the Key Master"
    assert km._zones[ZONE].snap is second, "the next step would not see the newest version"
    km.on_state(ZONE, replace(state, keymaster_revision=7), second)
    assert km._wake.is_set(), "a changed DNSSEC state did not wake the Key Master"
