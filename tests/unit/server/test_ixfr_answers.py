"""IXFR answered from the journal, applied by dnspython's own IXFR client code (dns.xfr)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.versioned
import dns.xfr
import dns.zone

from node.server import xfr
from node.server.journal import Journals
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import ORIGIN, plain, signed_chain

Canonical = frozenset[tuple[bytes, int, int, bytes]]


def canonical(zone: dns.zone.Zone) -> Canonical:
    return frozenset((n.canonicalize().to_digestable(), rds.rdtype, rds.ttl,
                      rd.to_digestable(ORIGIN))
                     for n, rds in zone.iterate_rdatasets() for rd in rds)


def ask(r: Responder, qtype: str, serial: int | None, transport: str = "tcp"
        ) -> tuple[dns.message.Message, list[dns.message.Message]]:
    q = dns.message.make_query(ORIGIN, qtype)
    if serial is not None:
        q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA",
                                               f"ns1.example. hm.example. {serial} 1 1 1 1"))
    out = r.handle(q.to_wire(), ("127.0.0.1", 4000), transport)
    msgs = out if isinstance(out, list) else list(out)  # type: ignore[arg-type]
    return q, [dns.message.from_wire(m, one_rr_per_rrset=True) for m in msgs]  # type: ignore[arg-type]


def copy_of(snap: ZoneSnapshot) -> dns.versioned.Zone:
    """A secondary's copy of `snap`, taken by AXFR from a responder serving it."""
    t = ZoneTable()
    t.publish(snap)
    _, msgs = ask(Responder(t), "AXFR", None)
    zone = dns.versioned.Zone(ORIGIN, relativize=False)
    with dns.xfr.Inbound(zone, dns.rdatatype.AXFR) as inbound:
        for m in msgs:
            inbound.process_message(m)
    return zone


def apply_ixfr(zone: dns.versioned.Zone, serial: int,
               msgs: list[dns.message.Message]) -> None:
    with dns.xfr.Inbound(zone, dns.rdatatype.IXFR, serial=serial) as inbound:
        for m in msgs:
            inbound.process_message(m)


async def served(chain: list[ZoneSnapshot]) -> Responder:
    t = ZoneTable(Journals())
    for snap in chain:
        await t.publish_async(snap)
    assert t.journals is not None
    await t.journals.caught_up(ORIGIN)  # the first version is recorded in the background
    return Responder(t)


async def test_incremental_from_every_older_serial_gives_the_current_zone() -> None:
    chain = signed_chain("nsec3")
    r = await served(chain)
    want = canonical(copy_of(chain[-1]))
    before = xfr.answers["incremental"]
    for old in chain[:-1]:
        _, msgs = ask(r, "IXFR", old.serial)
        second = msgs[0].answer[1]
        assert second.rdtype == dns.rdatatype.SOA and second[0].serial == old.serial, \
            "an incremental answer (old SOA second), not the whole zone"
        zone = copy_of(old)
        apply_ixfr(zone, old.serial, msgs)
        assert canonical(zone) == want, f"from serial {old.serial}"
    assert xfr.answers["incremental"] == before + len(chain) - 1


async def test_up_to_date_unknown_serial_and_udp() -> None:
    chain = [plain(1), plain(2, "x A 192.0.2.1\n"), plain(3, "x A 192.0.2.3\n")]
    r = await served(chain)
    _, msgs = ask(r, "IXFR", 3)
    assert sum(len(m.answer) for m in msgs) == 1  # our SOA: up to date
    _, msgs = ask(r, "IXFR", 0)  # not in the journal: the whole zone, AXFR form
    assert msgs[0].answer[1].rdtype != dns.rdatatype.SOA
    zone = dns.versioned.Zone(ORIGIN, relativize=False)
    apply_ixfr(zone, 0, msgs)
    assert canonical(zone) == canonical(copy_of(chain[-1]))
    # over UDP a small difference fits in one message
    _, msgs = ask(r, "IXFR", 2, "udp")
    assert len(msgs) == 1 and len(msgs[0].answer) == 6  # SOA, SOA old, del, SOA new, add, SOA
    zone = copy_of(chain[1])
    apply_ixfr(zone, 2, msgs)
    assert canonical(zone) == canonical(copy_of(chain[-1]))


async def test_a_chain_larger_than_the_zone_goes_in_axfr_form() -> None:
    chain = [plain(1, "".join(f"h{i} A 192.0.2.{i}\n" for i in range(40))),
             plain(2, ""), plain(3, "".join(f"h{i} A 192.0.2.{i}\n" for i in range(40)))]
    r = await served(chain)
    _, msgs = ask(r, "IXFR", 1)  # 2 x 40 deleted and added > the 60 RRs of the zone
    assert msgs[0].answer[1].rdtype != dns.rdatatype.SOA
    _, msgs = ask(r, "IXFR", 2)
    assert msgs[0].answer[1].rdtype == dns.rdatatype.SOA


async def test_udp_gets_the_soa_alone_when_the_difference_does_not_fit() -> None:
    chain = signed_chain("nsec")
    r = await served(chain)
    _, msgs = ask(r, "IXFR", 1, "udp")
    assert len(msgs) == 1 and [rr.rdtype for rr in msgs[0].answer] == [dns.rdatatype.SOA]
