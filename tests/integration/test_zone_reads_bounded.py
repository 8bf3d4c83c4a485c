"""Zone reads that serve a name list or one owner read keys in proportion to what they
return, never every data key of a large zone (real etcd; keys counted at the client)."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.store.client import EtcdClient, KeyValue, RangeResult, TxnResult
from node.store.keys import KeyLayout
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

BIG = dns.name.from_text("big.test.")
RECORDS = 5000  # data keys of the big zone; every bound below is far smaller


class CountingClient(EtcdClient):
    """The real client, counting the key-values etcd returned (ranges and txn reads), and
    the most it handed its caller at once (a Range, or the list `range_all` builds)."""

    kvs_read = 0
    largest = 0

    async def range(self, *args, **kwargs) -> RangeResult:  # type: ignore[no-untyped-def]
        result = await super().range(*args, **kwargs)
        self.kvs_read += len(result.kvs)
        self.largest = max(self.largest, len(result.kvs))
        return result

    async def range_all(self, *args, **kwargs) -> tuple[list[KeyValue], int]:  # type: ignore[no-untyped-def]
        kvs, revision = await super().range_all(*args, **kwargs)
        self.largest = max(self.largest, len(kvs))
        return kvs, revision

    async def txn(self, *args, **kwargs) -> TxnResult:  # type: ignore[no-untyped-def]
        result = await super().txn(*args, **kwargs)
        self.kvs_read += sum(len(r.kvs) for r in result.responses if isinstance(r, RangeResult))
        return result


def big_zone_text(n: int) -> str:
    lines = ["$ORIGIN big.test.", "@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300",
             "@ 3600 IN NS ns1", "ns1 300 IN A 192.0.2.1", "www 300 IN A 192.0.2.80",
             "www 300 IN TXT \"hello\""]
    lines += [f"h{i} 300 IN TXT \"x\"" for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def counted(etcd, key_prefix: str):  # type: ignore[no-untyped-def]
    client = CountingClient([etcd.endpoint], timeout=10.0)
    await client.connect()
    try:
        yield client, ZoneRepository(client, KeyLayout(key_prefix))
    finally:
        await client.close()


async def test_zone_list_reads_no_data_keys(counted) -> None:  # type: ignore[no-untyped-def]
    client, repo = counted
    await repo.create_zone(BIG, text=big_zone_text(RECORDS))
    small = [dns.name.from_text(f"{tag}{i}.test.") for tag in ("a", "c") for i in range(15)]
    for name in small:  # zones sorted before and after the big one, a few data keys each
        await repo.create_zone(name)
    client.kvs_read = 0
    infos = await repo.list_zones()
    assert [i.config.name for i in infos] == sorted([BIG, *small])
    assert all(i.serial >= 1 and i.generation > 0 for i in infos)
    big = next(i for i in infos if i.config.name == BIG)
    assert big.serial == 7
    assert client.kvs_read < 2500, f"zone list read {client.kvs_read} key-values"


async def test_records_of_one_owner_read_that_owner(counted) -> None:  # type: ignore[no-untyped-def]
    client, repo = counted
    await repo.create_zone(BIG, text=big_zone_text(RECORDS))
    www = dns.name.from_text("www.big.test.")
    client.kvs_read = 0
    rrsets = await repo.list_records(BIG, www)
    assert [(r.name, r.rdtype) for r in rrsets] == [(www, dns.rdatatype.A),
                                                    (www, dns.rdatatype.TXT)]
    assert [r.to_text() for r in await repo.list_records(BIG, www, dns.rdatatype.A)] == [
        "www.big.test. 300 IN A 192.0.2.80"]
    assert await repo.list_records(BIG, dns.name.from_text("nope.big.test.")) == []
    assert client.kvs_read < 50, f"listing one owner read {client.kvs_read} key-values"


async def test_zone_show_counts_without_reading_data(counted) -> None:  # type: ignore[no-untyped-def]
    client, repo = counted
    await repo.create_zone(BIG, text=big_zone_text(RECORDS))
    client.kvs_read = 0
    info = await repo.get_zone(BIG)
    assert info.rrset_count == RECORDS + 5 and info.serial == 7
    assert client.kvs_read < 10, f"zone show read {client.kvs_read} key-values"


async def test_largest_ttl_never_holds_the_zone(counted) -> None:  # type: ignore[no-untyped-def]
    """`zone sign` and `roll key` need the apex SOA and the largest TTL: the zone is read
    part by part and reduced, never held whole in the node that keeps the lease."""
    client, repo = counted
    text = big_zone_text(RECORDS).replace("h7 300 IN TXT", "h7 86400 IN TXT")
    await repo.create_zone(BIG, text=text)
    client.largest = 0
    soa, max_ttl = await repo.soa_and_max_ttl(BIG)
    assert max_ttl == 86400 and soa[0].serial == 7 and soa.name == BIG
    assert client.largest <= 1000, f"held {client.largest} key-values at once"


async def test_largest_ttl_scans_each_version_once(counted) -> None:  # type: ignore[no-untyped-def]
    """`zone dnssec` (the status's rollover plan) asks for the SOA and the largest TTL on
    every call: on a 1M-name zone the scan took 20-48 s on a loaded 2-core machine (session
    11), and a call with clusterctl's default 30 s timeout failed. A version already scanned
    is not scanned again; a change (a new head) is scanned and seen."""
    client, repo = counted
    await repo.create_zone(BIG, text=big_zone_text(RECORDS))
    assert (await repo.soa_and_max_ttl(BIG))[1] == 3600
    client.kvs_read = 0
    soa, max_ttl = await repo.soa_and_max_ttl(BIG)
    assert max_ttl == 3600 and soa[0].serial == 7
    assert client.kvs_read < 10, f"the same version scanned again: {client.kvs_read} key-values"
    await repo.add_records(BIG, dns.rrset.from_text("new.big.test.", 86400, "IN", "A",
                                                    "192.0.2.9"))
    soa, max_ttl = await repo.soa_and_max_ttl(BIG)
    assert max_ttl == 86400 and soa[0].serial == 8
