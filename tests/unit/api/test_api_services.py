"""Zone, Record and Node services end to end: ApiClient -> real grpc.aio server -> repository.

The repository is the in-memory double (apifakes); the wire, the servicers,
the conversion and the error interceptor are the real ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import dns.name
import dns.rdatatype
import pytest
from apifakes import SAMPLE_NODES, InMemoryZoneRepository

from node.api.client import ApiClient
from node.api.convert import rrset_from_fields
from node.api.errors import ApiUnreachable
from node.api.server import ApiServer
from node.errors import Conflict, EtcdUnavailable, NodeError, NotFound, ValidationError
from node.zones.model import RecordChange, ZoneConfig

T = TypeVar("T")
ZONE = dns.name.from_text("example.test")
Api = tuple[ApiServer, str]

ZONE_TEXT = """\
$ORIGIN example.test.
$TTL 300
@    SOA ns1 hostmaster 41 3600 900 604800 300
@    NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.1
"""


async def call(endpoint: str, fn: Callable[[ApiClient], T]) -> T:
    """Run a blocking client call off the loop that serves it."""

    def run() -> T:
        with ApiClient(endpoint, timeout=10) as client:
            return fn(client)

    return await asyncio.to_thread(run)


async def test_create_list_show_delete(api: Api) -> None:
    _, ep = api
    ns = (dns.name.from_text("ns1.example.test"),)
    info = await call(ep, lambda c: c.create_zone(ZONE, ns=ns, allow_transfer=("10.0.0.0/8",)))
    assert info.config.name == ZONE
    assert info.config.allow_transfer == ("10.0.0.0/8",)
    assert info.rrset_count == 2

    zones = await call(ep, lambda c: c.list_zones())
    assert [z.config.name for z in zones] == [ZONE]
    assert zones[0].rrset_count == -1

    shown = await call(ep, lambda c: c.get_zone(ZONE))
    assert shown.serial == info.serial and shown.rrset_count == 2

    with pytest.raises(Conflict, match="already exists"):
        await call(ep, lambda c: c.create_zone(ZONE))

    await call(ep, lambda c: c.delete_zone(ZONE))
    with pytest.raises(NotFound):
        await call(ep, lambda c: c.get_zone(ZONE))
    with pytest.raises(NotFound):
        await call(ep, lambda c: c.delete_zone(ZONE))


async def test_create_from_text_import_export(api: Api) -> None:
    _, ep = api
    info = await call(ep, lambda c: c.create_zone(ZONE, text=ZONE_TEXT))
    assert info.serial == 41 and info.rrset_count == 4

    text = await call(ep, lambda c: c.export_zone(ZONE))
    assert "www.example.test. 300 IN A 192.0.2.1" in text

    new_text = ZONE_TEXT.replace("192.0.2.1", "192.0.2.2")
    imported = await call(ep, lambda c: c.import_zone(ZONE, new_text, create=False))
    assert imported.serial == 42 and imported.generation == 2
    assert "192.0.2.2" in await call(ep, lambda c: c.export_zone(ZONE))

    other = dns.name.from_text("other.test")
    with pytest.raises(NotFound):
        await call(ep, lambda c: c.import_zone(other, ZONE_TEXT, create=False))


async def test_record_changes_return_new_serials(api: Api) -> None:
    _, ep = api
    await call(ep, lambda c: c.create_zone(ZONE, text=ZONE_TEXT))
    mx = rrset_from_fields(ZONE, "mail", 600, "MX", ["10 mx1"])
    s1 = await call(ep, lambda c: c.add_records(ZONE, mx))
    mx2 = rrset_from_fields(ZONE, "mail", 600, "MX", ["20 mx2"])
    s2 = await call(ep, lambda c: c.add_records(ZONE, mx2))
    assert (s1, s2) == (RecordChange(42), RecordChange(43))
    # the same record again: said over the API, and no new serial (fails on main)
    again = await call(ep, lambda c: c.add_records(ZONE, mx2))
    assert again == RecordChange(43, changed=False)

    owner = dns.name.from_text("mail.example.test")
    listed = await call(ep, lambda c: c.list_records(ZONE, owner, dns.rdatatype.MX))
    assert len(listed) == 1
    assert sorted(rd.to_text() for rd in listed[0]) == [
        "10 mx1.example.test.",
        "20 mx2.example.test.",
    ]

    s3 = await call(ep, lambda c: c.delete_records(ZONE, owner, dns.rdatatype.MX, mx))
    assert s3 == 44
    left = await call(ep, lambda c: c.list_records(ZONE, owner))
    assert [rd.to_text() for rd in left[0]] == ["20 mx2.example.test."]

    www = rrset_from_fields(ZONE, "www", 60, "A", ["192.0.2.7", "192.0.2.8"])
    assert await call(ep, lambda c: c.replace_rrset(ZONE, www)) == RecordChange(45)
    assert await call(ep, lambda c: c.replace_rrset(ZONE, www)) == RecordChange(45, False)
    a_sets = await call(ep, lambda c: c.list_records(ZONE, rdtype=dns.rdatatype.A))
    assert {(r.name.to_text(), r.ttl, len(r)) for r in a_sets} == {
        ("ns1.example.test.", 300, 1),
        ("www.example.test.", 60, 2),
    }

    s5 = await call(ep, lambda c: c.delete_records(ZONE, owner, dns.rdatatype.MX))
    assert s5 == 46
    with pytest.raises(NotFound):
        await call(ep, lambda c: c.delete_records(ZONE, owner, dns.rdatatype.MX))

    soa = await call(ep, lambda c: c.list_records(ZONE, ZONE, dns.rdatatype.SOA))
    assert soa[0][0].serial == 46


async def test_server_side_validation(api: Api, repo: InMemoryZoneRepository) -> None:
    """Checks the server makes even when a client skips its own (raw requests)."""
    _, ep = api
    await call(ep, lambda c: c.create_zone(ZONE, text=ZONE_TEXT))
    cname = rrset_from_fields(ZONE, "www", 60, "CNAME", ["elsewhere.test."])
    with pytest.raises(ValidationError, match="CNAME"):
        await call(ep, lambda c: c.add_records(ZONE, cname))
    empty = rrset_from_fields(ZONE, "www", 60, "A", [])
    with pytest.raises(ValidationError, match="no record data"):
        await call(ep, lambda c: c.add_records(ZONE, empty))

    from node.api import convert

    bad = convert.add_records_request(ZONE, rrset_from_fields(ZONE, "www", 60, "A", ["1.2.3.4"]))
    bad.rrset.rdata[0] = "not-an-address"

    def raw(c: ApiClient) -> Any:
        return c._call(c._records.AddRecords, bad)

    with pytest.raises(ValidationError, match=r"bad A record data 'not-an-address' at www"):
        await call(ep, raw)
    assert repo.zones[ZONE].serial == 41  # nothing was written


async def test_update_zone_config(api: Api) -> None:
    _, ep = api
    await call(ep, lambda c: c.create_zone(ZONE, allow_transfer=("10.0.0.0/8",)))
    wanted = ZoneConfig(name=ZONE, allow_transfer=("192.0.2.0/24", "::1/128"))
    info = await call(ep, lambda c: c.update_config(wanted, ("allow_transfer",)))
    assert info.config.allow_transfer == ("192.0.2.0/24", "::1/128")
    assert (await call(ep, lambda c: c.get_zone(ZONE))).config.allow_transfer == (
        "192.0.2.0/24",
        "::1/128",
    )


async def test_list_nodes(api: Api) -> None:
    _, ep = api
    nodes = await call(ep, lambda c: c.list_nodes())
    assert [n.id for n in nodes] == ["dns-0", "dns-1"]  # sorted by id
    assert nodes[0] == SAMPLE_NODES[1]
    assert nodes[1] == SAMPLE_NODES[0]


async def test_etcd_unavailable_is_not_unreachable(
    api: Api, repo: InMemoryZoneRepository
) -> None:
    _, ep = api
    repo.fail_with = EtcdUnavailable("etcd did not answer on 127.0.0.1:2379")
    with pytest.raises(EtcdUnavailable, match="etcd did not answer") as info:
        await call(ep, lambda c: c.list_zones())
    assert not isinstance(info.value, ApiUnreachable)


async def test_unexpected_error_is_internal_and_logged(
    api: Api, repo: InMemoryZoneRepository, caplog: pytest.LogCaptureFixture
) -> None:
    _, ep = api
    repo.fail_with = RuntimeError("secret detail")
    expected = r"internal error in /dnscluster\.v1\.ZoneService/ListZones"
    with caplog.at_level(logging.INFO, logger="node.events"):
        with pytest.raises(NodeError, match=expected) as info:
            await call(ep, lambda c: c.list_zones())
    assert "secret detail" not in str(info.value)
    events = [r.getMessage() for r in caplog.records if r.name == "node.events"]
    assert any('"event": 1402' in e and "secret detail" in e for e in events)


async def test_deadline_is_reported_as_unreachable(
    api: Api, repo: InMemoryZoneRepository
) -> None:
    _, ep = api
    repo.hang = asyncio.Event()

    def run() -> object:
        with ApiClient(ep, timeout=0.3) as client:
            return client.list_zones()

    try:
        with pytest.raises(ApiUnreachable, match=r"did not answer within 0\.3 s"):
            await asyncio.to_thread(run)
    finally:
        repo.hang.set()
