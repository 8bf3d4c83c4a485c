"""A zone deleted through one node and created again at once through another, on real nodes.

Deletion removes the zone's config and head in one revision (every node stops
serving it: REFUSED), then its data in parts; the nodes see those parts' data
events for a zone that is gone, or that exists again with a new generation,
and must ignore them. The zone created again right after the delete call
returns is served by every node with exactly its new content: no old name
answers, and etcd holds only the new generation's data.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.name
import dns.rcode

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from tests.cluster.conftest import Cluster
from tests.cluster.test_clusterctl import ok
from tests.support.wait import wait_until

ZONE = "again.test."


def zone_file(serial: int, tag: str, names: int) -> str:
    lines = ["$ORIGIN again.test.", "$TTL 300",
             f"@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 604800 300",
             "@ 3600 IN NS ns1", "ns1 IN A 192.0.2.1"]
    lines += [f"{tag}{i} IN A 192.0.2.{i % 250 + 1}" for i in range(names)]
    return "\n".join(lines) + "\n"


def _data_keys(c: Cluster) -> list[bytes]:
    async def read() -> list[bytes]:
        client = EtcdClient([c.etcd.endpoint], timeout=10.0)
        await client.connect()
        try:
            root = KeyLayout(c.prefix).data_root(dns.name.from_text(ZONE))
            return [kv.key for kv in (await client.range(root, prefix=True,
                                                         keys_only=True)).kvs]
        finally:
            await client.close()
    return asyncio.run(read())


def test_deleted_then_created_again_serves_only_the_new_zone(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    n1, n2, n3 = cluster.nodes
    old, new = tmp_path / "old.zone", tmp_path / "new.zone"
    old.write_text(zone_file(10, "old", 400))
    new.write_text(zone_file(3, "new", 20))
    ok(n1.ctl("--json", "zone", "create", ZONE, "--file", str(old)))
    for n in cluster.nodes:
        wait_until(lambda n=n: n.query(f"old399.{ZONE}").answer, 30,
                   message=f"{n.node_id} serves the old zone")
    ok(n2.ctl("--json", "zone", "delete", ZONE))
    created = ok(n3.ctl("--json", "zone", "create", ZONE, "--file", str(new)))
    assert created["serial"] == 3
    for n in cluster.nodes:
        wait_until(lambda n=n: n.query(f"new19.{ZONE}").answer, 30,
                   message=f"{n.node_id} serves the new zone")
        assert n.query(f"old0.{ZONE}").rcode() == dns.rcode.NXDOMAIN, n.node_id
        assert n.serial(ZONE) == 3
    shown = ok(n1.ctl("--json", "zone", "show", ZONE))
    keys = _data_keys(cluster)
    assert len(keys) == shown["rrset_count"] == 20 + 3, "only the new zone's data is left"
    assert all(f"/data/{shown['generation']}/".encode() in k for k in keys)
    for n in cluster.nodes:
        log = n.log_tail(400)
        assert "ZONE_LOAD_FAILED" not in log and "ZONE_UPDATE_FAILED" not in log, log
    ok(n1.ctl("--json", "zone", "delete", ZONE))
    for n in cluster.nodes:
        wait_until(lambda n=n: n.query(f"new19.{ZONE}").rcode() == dns.rcode.REFUSED, 30)
    assert _data_keys(cluster) == []
