"""DNAME (RFC 6672) is not implemented: every way records enter refuses it, and says why.

A DNAME served as a plain record synthesises nothing below it, an answer no
resolver expects; until synthesis exists, `record add`, `zone import` and
`zone create --file` refuse it against a real etcd and change nothing.
"""

from __future__ import annotations

import dns.name
import dns.rrset
import pytest

from node.errors import NotFound, ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

Z = dns.name.from_text("dname.test.")
REASON = "DNAME records are not supported yet (RFC 6672 synthesis is not implemented)"
TEXT = """$ORIGIN dname.test.
@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
{extra}
"""


@pytest.fixture
def repo(etcd_client: EtcdClient, key_prefix: str) -> ZoneRepository:
    return ZoneRepository(etcd_client, KeyLayout(key_prefix))


async def test_record_add_refuses_a_dname(repo: ZoneRepository) -> None:
    await repo.create_zone(Z, text=TEXT.format(extra=""))
    before = (await repo.get_zone(Z)).serial
    with pytest.raises(ValidationError, match=REASON.replace("(", r"\(").replace(")", r"\)")):
        await repo.add_records(Z, dns.rrset.from_text("old.dname.test.", 300, "IN", "DNAME",
                                                      "new.example."))
    assert (await repo.get_zone(Z)).serial == before


@pytest.mark.parametrize("line", [
    "old 300 IN DNAME new.example.",  # dnspython's reader
    "old.dname.test. 300 IN DNAME new.example.",  # the fast reader's shape
])
async def test_import_and_create_refuse_a_dname(repo: ZoneRepository, line: str) -> None:
    await repo.create_zone(Z, text=TEXT.format(extra=""))
    before = (await repo.get_zone(Z)).serial
    with pytest.raises(ValidationError, match="DNAME records are not supported yet"):
        await repo.import_zone(Z, TEXT.format(extra=line))
    assert (await repo.get_zone(Z)).serial == before
    other = dns.name.from_text("dname2.test.")
    with pytest.raises(ValidationError, match="DNAME records are not supported yet"):
        await repo.create_zone(other, text=TEXT.format(extra=line).replace("dname.test.",
                                                                           "dname2.test."))
    with pytest.raises(NotFound):
        await repo.get_zone(other)
