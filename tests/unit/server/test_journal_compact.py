"""The IXFR journal holds a step's records as packed wire octets, not as Python objects per RR.

Issue 10 (memory): after a zone-sized step (an import, a full signing) the
journal's newest entry holds every RR of the zone; as tuples of Python
objects that was ~65 MiB in the control process on the signed 100k-name zone.
"""

from __future__ import annotations

import gc
import tracemalloc

from node.server.journal import Journals
from node.server.journalfile import encode_entry
from tests.unit.server.ixfr_versions import ORIGIN, plain

N = 4000


async def test_a_big_step_costs_about_its_wire_size() -> None:
    a = plain(1)
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\n" for k in range(N))
    b, c = plain(2, hosts), plain(3, hosts)
    j = Journals(max_versions=1)
    await j.record(None, a)
    gc.collect()
    tracemalloc.start()
    try:
        await j.record(a, b)
        index = j.since(b, 1)
        assert index is not None
        steps = await j.read(ORIGIN, index)  # large: read back from the journal file
        assert len(steps[0].added) == N
        wire = len(encode_entry(steps[0]))
        del steps, index
        gc.collect()
        with_step, _ = tracemalloc.get_traced_memory()
        await j.record(b, c)  # the step to b goes (one version kept); the new one is tiny
        assert j.versions(ORIGIN) == [2, 3]
        gc.collect()
        held = with_step - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 1.2 * wire + 4096, (
        f"the journal holds {held} bytes for a step of {wire} wire octets "
        f"({held / N:.0f} bytes per RR)")


async def test_packed_steps_read_back_as_records() -> None:
    a = plain(1, "x A 192.0.2.1\ny A 192.0.2.2\n")
    b = plain(2, "x A 192.0.2.9\nz TXT \"hello\"\n")
    j = Journals()
    await j.record(None, a)
    await j.record(a, b)
    steps = j.since(b, 1)
    assert steps is not None
    e = steps[0]
    owner = ORIGIN.to_wire()
    assert {(rr[0][:2], rr[1]) for rr in e.deleted} == {(b"\x01x", 1), (b"\x01y", 1)}
    assert {(rr[0][:2], rr[1]) for rr in e.added} == {(b"\x01x", 1), (b"\x01z", 16)}
    assert all(rr[0].endswith(owner) and isinstance(rr[3], bytes) for rr in e.added)
    assert e.count == 6
