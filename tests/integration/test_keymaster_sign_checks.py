"""`zone sign` prechecks against a real etcd (issue #8, finding 8): an unreplicated ZSK is
refused while other writable nodes must sign the zone too (it could never be published)."""

from __future__ import annotations

import dns.name
import pytest

from node.errors import Refused
from node.keymaster.admin import DnssecAdmin
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecConfig
from node.zones.repository import ZoneRepository

ZONE = dns.name.from_text("zsk.test.")
LOCAL_ZSK = DnssecConfig(replicate_zsk=False, keymaster_failover="manual")


async def register(etcd: EtcdClient, layout: KeyLayout, node_id: str, lease: int,
                   kek: str = "f00d") -> None:
    info = NodeInfo(id=node_id, role="writable", dns_addresses=(), api_address="",
                    metrics_address="", alive=True, kek=kek)
    await etcd.put(layout.node_key(node_id), info.record_json())
    await etcd.put(layout.alive_key(node_id), "{}", lease=lease)


async def admin(etcd: EtcdClient, key_prefix: str, *nodes: str) -> DnssecAdmin:
    layout = KeyLayout(key_prefix)
    lease, _ = await etcd.lease_grant(30)
    for n in nodes:
        await register(etcd, layout, n, lease)
    repo = ZoneRepository(etcd, layout)
    await repo.create_zone(ZONE)
    return DnssecAdmin(etcd, layout, repo, NodeDirectory(etcd, layout), node_id=nodes[0],
                       stagger_max=1.0)


async def test_unreplicated_zsk_is_refused_with_other_writable_nodes(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    dnssec = await admin(etcd_client, key_prefix, "n1", "n2")
    with pytest.raises(Refused, match="n2"):
        await dnssec.sign_zone(ZONE, LOCAL_ZSK, timeout=0.5)
    kv = await etcd_client.get(KeyLayout(key_prefix).dnssec_key(ZONE))
    assert kv is None, "the refused request was written"


async def test_unreplicated_zsk_is_allowed_on_a_single_writable_node(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    dnssec = await admin(etcd_client, key_prefix, "n1")
    out = await dnssec.sign_zone(ZONE, LOCAL_ZSK, timeout=0.2)
    assert out.state == "pending"  # no Key Master runs here; the request was accepted
