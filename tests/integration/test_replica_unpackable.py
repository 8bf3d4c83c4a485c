"""A stored RRset the packed replica cannot hold (an rdata over 65,535 octets: its length
does not fit the blob's 16-bit field) is one bad value, reported and left out: the watch
goes on applying the zone's later changes (`Replica._apply`: a bad value must not stop
the node), as it did before the replica packed its owners."""

from __future__ import annotations

import asyncio

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("unpackable.test.")


async def test_an_oversized_rdata_does_not_stop_the_watch(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    replica = Replica(etcd_client, layout)
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        await repo.create_zone(Z, ns=(dns.name.from_text("ns1.unpackable.test."),))
        big = dns.rrset.RRset(dns.name.from_text("big", Z), dns.rdataclass.IN,
                              dns.rdatatype.TXT)
        text = " ".join(['"' + "x" * 255 + '"'] * 300)  # 76,800 octets of rdata
        big.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, text), 300)
        await repo.replace_rrset(Z, big)
        later = dns.name.from_text("later", Z)
        await repo.add_records(Z, dns.rrset.from_text(later, 300, "IN", "A", "192.0.2.7"))

        def applied() -> bool:
            assert not task.done() or task.cancelled(), f"the watch stopped: {task!r}"
            snap = replica.snapshot(Z)
            return snap is not None and snap.get(later, dns.rdatatype.A) is not None

        await async_wait_until(applied, 30)
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
