"""`ZoneTable.publish_async` against a `remove` that lands while the version compiles.

A publisher that is not cancelled by the zone's removal (a file-backed zone's
`record` edit runs in the API request's task, not in the zone's own task)
can be compiling a version in a worker thread when the replica removes the
zone: the removal must win, the compiled version must not bring the zone back.
"""

from __future__ import annotations

import asyncio
import threading

import dns.message
import dns.name
import dns.rcode

from node.server.compile import CompiledZone
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text

V1 = "$TTL 60\n@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n"
V2 = V1.replace("192.0.2.10", "192.0.2.20").replace("hm 1 ", "hm 2 ")
ORIGIN = dns.name.from_text("example.com.")
TIMEOUT = 30.0  # generous: the machine is shared


class GatedTable(ZoneTable):
    """A `ZoneTable` whose compile of a gated serial waits (in its worker thread) until
    the test opens the gate: the window in which a removal can land."""

    __slots__ = ("entered", "gate", "gated_serial")

    def __init__(self, gated_serial: int) -> None:
        super().__init__()
        self.gated_serial = gated_serial
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _compile(self, prev: CompiledZone | None, snapshot: ZoneSnapshot) -> CompiledZone:  # type: ignore[override]
        if snapshot.serial == self.gated_serial:
            self.entered.set()
            assert self.gate.wait(TIMEOUT)
        return ZoneTable._compile(prev, snapshot)


def _a(t: ZoneTable) -> tuple[int, list[str]]:
    q = dns.message.make_query("www.example.com.", "A")
    out = Responder(t).handle(q.to_wire(), ("127.0.0.1", 1), "udp")
    assert isinstance(out, bytes)
    resp = dns.message.from_wire(out)
    return resp.rcode(), [rd.to_text() for rrset in resp.answer for rd in rrset]


async def _compiling(t: GatedTable, snap: ZoneSnapshot) -> asyncio.Task[None]:
    task = asyncio.create_task(t.publish_async(snap))
    assert await asyncio.to_thread(t.entered.wait, TIMEOUT)
    return task


async def test_removed_while_compiling_stays_removed() -> None:
    t = GatedTable(gated_serial=2)
    await t.publish_async(snapshot_from_text(V1, "example.com.", revision=1))
    task = await _compiling(t, snapshot_from_text(V2, "example.com.", revision=2))
    assert t.remove(ORIGIN)
    t.gate.set()
    await asyncio.wait_for(task, TIMEOUT)
    assert t.get(ORIGIN) is None, "a version compiled before the removal was installed after it"
    assert t.zones() == []
    assert _a(t) == (dns.rcode.REFUSED, [])


async def test_first_version_removed_while_compiling_stays_removed() -> None:
    t = GatedTable(gated_serial=1)
    task = await _compiling(t, snapshot_from_text(V1, "example.com.", revision=1))
    assert not t.remove(ORIGIN)  # not served yet
    t.gate.set()
    await asyncio.wait_for(task, TIMEOUT)
    assert t.get(ORIGIN) is None, "a version compiled before the removal was installed after it"


async def test_recreated_zone_is_served_after_a_discarded_compile() -> None:
    t = GatedTable(gated_serial=1)
    task = await _compiling(t, snapshot_from_text(V1, "example.com.", revision=1))
    t.remove(ORIGIN)
    again = asyncio.create_task(t.publish_async(snapshot_from_text(V2, "example.com.",
                                                                    revision=9)))
    t.gate.set()
    await asyncio.wait_for(asyncio.gather(task, again), TIMEOUT)
    assert _a(t) == (dns.rcode.NOERROR, ["192.0.2.20"])
    assert t.get(ORIGIN).snapshot.revision == 9  # type: ignore[union-attr]


async def test_removed_zones_leave_no_state_per_origin_behind() -> None:
    """A zone published and removed, or a removal of a zone never served, leaves nothing in
    the table: its publishers' lock and removal count were kept per origin for good, so a
    node whose zones come and go (a test cluster, a hosting provider's) grew with every
    origin it ever served."""
    t = ZoneTable()
    for i in range(50):
        origin = f"z{i}.example.com."
        await t.publish_async(snapshot_from_text(V1, origin, revision=1))
        assert t.remove(dns.name.from_text(origin))
    assert not t.remove(dns.name.from_text("never.example.com."))
    left = {name: len(getattr(t, name)) for name in ZoneTable.__slots__
            if isinstance(getattr(t, name, None), (dict, set))}
    assert not any(left.values()), left
