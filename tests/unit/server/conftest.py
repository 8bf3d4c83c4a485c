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

EXAMPLE = """
$TTL 3600
@        IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2.other.net.
@        MX    10 mail
@        MX    20 mx.other.net.
ns1      A     192.0.2.1
mail     A     192.0.2.2
mail     AAAA  2001:db8::2
www      CNAME web
web      A     192.0.2.3
web      TXT   "web server"
chain1   CNAME chain2
chain2   CNAME chain3
chain3   A     192.0.2.9
dangling CNAME missing
external CNAME www.other.net.
loop1    CNAME loop2
loop2    CNAME loop1
toref    CNAME host.sub
*.wild   TXT   "wildcard"
*.wild   MX    10 mail
*.cw     CNAME web
a.b.c    A     192.0.2.4
x.*.ent  A     192.0.2.10
_sip._udp SRV  0 5 5060 sipsrv
sipsrv   A     192.0.2.11
sub      NS    ns.sub
sub      NS    ns1
sub      DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   A     192.0.2.5
ns.sub   AAAA  2001:db8::5
nods     NS    ns.nods
ns.nods  A     192.0.2.6
big      TXT   "0123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "1123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "2123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "3123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "4123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "5123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "6123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "7123456789012345678901234567890123456789012345678901234567890123456789"
"""

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
