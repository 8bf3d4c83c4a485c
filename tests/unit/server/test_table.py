"""`ZoneTable`: publish/remove, ordering, atomic swaps, and a changed zone's answers dropped."""

from __future__ import annotations

import dataclasses

import dns.message
import dns.name
import dns.rcode

from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import snapshot_from_text

V1 = "$TTL 60\n@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n"
V2 = V1.replace("192.0.2.10", "192.0.2.20").replace("hm 1 ", "hm 2 ")


def _a(r: Responder, name: str = "www.example.com.") -> list[str]:
    q = dns.message.make_query(name, "A")
    resp = dns.message.from_wire(r.handle(q.to_wire(), ("127.0.0.1", 1), "udp"))  # type: ignore[arg-type]
    return [rd.to_text() for rrset in resp.answer for rd in rrset]


def test_publish_swaps_and_invalidates_cache() -> None:
    t = ZoneTable()
    r = Responder(t)
    t.publish(snapshot_from_text(V1, "example.com.", revision=1))
    assert _a(r) == ["192.0.2.10"]
    assert _a(r) == ["192.0.2.10"]  # cached
    snap = snapshot_from_text(V2, "example.com.", revision=2)
    t.publish(
        dataclasses.replace(snap, changed=frozenset({dns.name.from_text("www.example.com.")}))
    )
    assert _a(r) == ["192.0.2.20"]
    assert t.get(dns.name.from_text("example.com.")).serial == 2  # type: ignore[union-attr]


def test_older_revision_is_ignored() -> None:
    t = ZoneTable()
    t.publish(snapshot_from_text(V2, "example.com.", revision=5))
    t.publish(snapshot_from_text(V1, "example.com.", revision=4))
    assert _a(Responder(t)) == ["192.0.2.20"]


def test_remove_and_zones() -> None:
    t = ZoneTable()
    t.publish(snapshot_from_text(V1, "example.com."))
    t.publish(snapshot_from_text(V1, "example.net."))
    assert [z.to_text() for z in t.zones()] == ["example.com.", "example.net."]
    r = Responder(t)
    assert _a(r) == ["192.0.2.10"]
    assert t.remove(dns.name.from_text("example.com."))
    assert not t.remove(dns.name.from_text("example.com."))
    assert _a(r) == []
    assert t.find(b"\x03www\x07example\x03com\x00") is None


async def test_publish_async_compiles_off_loop() -> None:
    t = ZoneTable()
    await t.publish_async(snapshot_from_text(V1, "example.com.", revision=1))
    await t.publish_async(snapshot_from_text(V2, "example.com.", revision=2))
    assert _a(Responder(t)) == ["192.0.2.20"]


def test_hold_answers_servfail_until_next_publish() -> None:
    t = ZoneTable()
    r = Responder(t)
    origin = dns.name.from_text("example.com.")
    t.hold(origin)  # before any version: held, not REFUSED
    q = dns.message.make_query("www.example.com.", "A")
    out = r.handle(q.to_wire(), ("127.0.0.1", 1), "udp")
    assert dns.message.from_wire(out).rcode() == dns.rcode.SERVFAIL  # type: ignore[arg-type]
    t.publish(snapshot_from_text(V1, "example.com.", revision=1))
    assert not t.held(origin) and _a(r) == ["192.0.2.10"]
    t.hold(origin)
    out = r.handle(q.to_wire(), ("127.0.0.1", 1), "udp")
    assert dns.message.from_wire(out).rcode() == dns.rcode.SERVFAIL  # type: ignore[arg-type]
    axfr = dns.message.make_query("example.com.", "AXFR")
    msgs = r.handle(axfr.to_wire(), ("127.0.0.1", 1), "tcp")
    assert dns.message.from_wire(msgs[0]).rcode() == dns.rcode.REFUSED  # type: ignore[index,arg-type]
    t.publish(snapshot_from_text(V2, "example.com.", revision=2))
    assert _a(r) == ["192.0.2.20"]


def _query(r: Responder, name: str, rdtype: str = "A") -> bytes:
    wire = dns.message.make_query(name, rdtype).to_wire()
    out = r.handle(wire, ("127.0.0.1", 1), "udp")
    assert isinstance(out, bytes)
    return out


def _cached(t: ZoneTable) -> int:
    zone = t.get(dns.name.from_text("example.com."))
    assert zone is not None
    return len(t.caches[0]) + len(t.caches[1]) + len(zone.lazy) + len(zone.lazy_do)


def test_names_asked_once_do_not_grow_the_caches() -> None:
    # a random-subdomain flood (found by tests/cluster/test_hostile_input.py): every
    # new name was cached, so memory grew with the flood until the caches were cleared
    t = ZoneTable()
    r = Responder(t)
    t.publish(snapshot_from_text(V1, "example.com.", revision=1))
    for i in range(20_000):
        _query(r, f"nx{i}.example.com.")
        _query(r, f"x{i}.elsewhere.test.")
        _query(r, "www.example.com.", f"TYPE{1000 + i}")  # NODATA for odd types
    assert _cached(t) < 1000


def test_names_asked_again_are_cached_and_existing_answers_at_once() -> None:
    t = ZoneTable()
    r = Responder(t)
    t.publish(snapshot_from_text(V1, "example.com.", revision=1))
    first = _query(r, "www.example.com.")
    assert len(t.caches[0]) == 1  # an existing answer: no memory of its own to pay
    nx = _query(r, "nx.example.com.")
    assert len(t.caches[0]) == 1
    assert _query(r, "nx.example.com.")[2:] == nx[2:]
    assert len(t.caches[0]) == 2
    assert _query(r, "www.example.com.")[2:] == first[2:]
