"""DNAME (RFC 6672) through the repository against a real etcd: `record add`, `zone import`
and `zone create --file` store it, and refuse what RFC 6672 §2.4 forbids (a name below a
DNAME owner, a DNAME above existing names), naming the owner, and change nothing then."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.errors import ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

Z = dns.name.from_text("dname.test.")
OLD = dns.name.from_text("old.dname.test.")
TEXT = """$ORIGIN dname.test.
@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
{extra}
"""


@pytest.fixture
def repo(etcd_client: EtcdClient, key_prefix: str) -> ZoneRepository:
    return ZoneRepository(etcd_client, KeyLayout(key_prefix))


def _rr(owner: str, rdtype: str, rdata: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", rdtype, rdata)


async def test_record_add_stores_a_dname_and_keeps_its_rules(repo: ZoneRepository) -> None:
    await repo.create_zone(Z, text=TEXT.format(extra=""))
    await repo.add_records(Z, _rr("old.dname.test.", "DNAME", "new.example."))
    rrsets = {(r.name, r.rdtype) for r in (await repo.snapshot(Z)).rrsets()}
    assert (OLD, dns.rdatatype.DNAME) in rrsets
    before = (await repo.get_zone(Z)).serial
    with pytest.raises(ValidationError, match=r"old\.dname\.test\. has a DNAME; nothing may "
                                              r"exist below it \(a\.b\.old\.dname\.test\. A\)"):
        await repo.add_records(Z, _rr("a.b.old.dname.test.", "A", "192.0.2.2"))
    with pytest.raises(ValidationError, match="has other data; a CNAME cannot be added"):
        await repo.add_records(Z, _rr("old.dname.test.", "CNAME", "x.example."))
    with pytest.raises(ValidationError, match=r"ns1\.dname\.test\. has names below it|"
                                              r"dname\.test\. has names below it"):
        await repo.add_records(Z, _rr("dname.test.", "DNAME", "other.example."))
    await repo.add_records(Z, _rr("x.ns1.dname.test.", "TXT", "below ns1"))
    with pytest.raises(ValidationError, match=r"ns1\.dname\.test\. has names below it "
                                              r"\(x\.ns1\.dname\.test\.\)"):
        await repo.add_records(Z, _rr("ns1.dname.test.", "DNAME", "other.example."))
    after = (await repo.get_zone(Z)).serial
    assert after == before + 1  # only the TXT was written
    await repo.delete_records(Z, OLD, dns.rdatatype.DNAME)
    await repo.add_records(Z, _rr("a.b.old.dname.test.", "A", "192.0.2.2"))  # free again


async def test_import_and_create_store_a_dname_and_refuse_names_below(
        repo: ZoneRepository) -> None:
    await repo.create_zone(Z, text=TEXT.format(extra="old 300 IN DNAME new.example."))
    rrsets = {(r.name, r.rdtype) for r in (await repo.snapshot(Z)).rrsets()}
    assert (OLD, dns.rdatatype.DNAME) in rrsets
    before = (await repo.get_zone(Z)).serial
    bad = TEXT.format(extra="old 300 IN DNAME new.example.\nx.old 300 IN A 192.0.2.3")
    with pytest.raises(ValidationError, match=r"old\.dname\.test\. has a DNAME; nothing may "
                                              r"exist below it \(x\.old\.dname\.test\.\)"):
        await repo.import_zone(Z, bad)
    assert (await repo.get_zone(Z)).serial == before
