"""Fixtures for the DNS server unit tests: an example zone, a table and a query helper."""

from __future__ import annotations

from collections.abc import Callable

import dns.message
import dns.rdataclass
import dns.rdatatype
import pytest

from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE

Ask = Callable[..., dns.message.Message]


@pytest.fixture
def snapshot() -> ZoneSnapshot:
    return snapshot_from_text(EXAMPLE, "example.com.", allow_transfer=["127.0.0.0/8", "::1/128"])


@pytest.fixture
def table(snapshot: ZoneSnapshot) -> ZoneTable:
    t = ZoneTable()
    t.publish(snapshot)
    return t


@pytest.fixture
def responder(table: ZoneTable) -> Responder:
    return Responder(table)


@pytest.fixture
def ask(responder: Responder) -> Ask:
    """ask(name, type, transport="udp", **make_query kwargs) -> parsed response."""

    def _ask(
        name: str, rdtype: str | int = "A", transport: str = "udp", **kwargs: object
    ) -> dns.message.Message:
        rdclass = kwargs.pop("rdclass", dns.rdataclass.IN)
        query = dns.message.make_query(name, rdtype, rdclass, **kwargs)  # type: ignore[arg-type]
        out = responder.handle(query.to_wire(), ("127.0.0.1", 5300), transport)
        assert isinstance(out, bytes)
        resp = dns.message.from_wire(out)
        assert resp.id == query.id
        return resp

    return _ask
