"""DNAME (RFC 6672) through the repository against a real etcd: `record add`, `zone import`
and `zone create --file` store it, and refuse what RFC 6672 §2.4 forbids (a name below a
DNAME owner, a DNAME above existing names), naming the owner, and change nothing then;
an RFC 2136 UPDATE ignores such an RR (its names below read from etcd)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.update
import pytest

from node.errors import ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.repository import ZoneRepository
from node.zones.update import apply, parse_update

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


async def _update(repo: ZoneRepository, build: str) -> int | None:
    """An RFC 2136 UPDATE through the repository's transaction, as the server runs it."""
    u = dns.update.UpdateMessage("dname.test.")
    exec(build, {"u": u})
    req = parse_update(dns.message.from_wire(u.to_wire(), one_rr_per_rrset=True))
    serial, _ = await repo.update_rrsets(
        Z, req.owners, lambda read: (apply(req, read.data, read.head.serial, read.below).writes,
                                     None), req.dname_owners)
    return serial


async def test_update_keeps_the_dname_rules_against_etcd(repo: ZoneRepository) -> None:
    await repo.create_zone(Z, text=TEXT.format(extra="x.two 300 IN A 192.0.2.4"))
    # a DNAME over a name that exists below it (read from etcd): ignored, nothing written
    assert await _update(repo, "u.add('two', 300, 'DNAME', 'other.example.')") is None
    assert await _update(repo, "u.add('old', 300, 'DNAME', 'new.example.')") is not None
    assert await _update(repo, "u.add('a.old', 300, 'A', '192.0.2.9')") is None  # below it
    rrsets = {(r.name, r.rdtype) for r in (await repo.snapshot(Z)).rrsets()}
    assert (OLD, dns.rdatatype.DNAME) in rrsets
    assert not any(n.is_subdomain(OLD) and n != OLD for n, _ in rrsets)
    assert (dns.name.from_text("two.dname.test."), dns.rdatatype.DNAME) not in rrsets
