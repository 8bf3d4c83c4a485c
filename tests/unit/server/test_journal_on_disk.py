"""The IXFR journal keeps a large step's RRs in its file, not in memory (issue 10, session 7).

Memory holds the index (serials, digests, SOAs, counts, offset and length); an
IXFR over TCP reads the step back in a worker thread and answers exactly what
it answered from memory; a record cut from under the index gives AXFR form;
without `journal_dir` the files go to a private temporary directory, removed
with the journals.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import dns.versioned
import pytest

from node.server import journalfile, journalstore
from node.server.journal import Journals
from node.server.journalfile import file_name
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import ORIGIN, plain
from tests.unit.server.test_ixfr_answers import apply_ixfr, canonical, copy_of

N = 4000
HOSTS = "".join(f"host{k} A 192.0.2.{k % 250}\n" for k in range(N))


def _query(serial: int) -> bytes:
    q = dns.message.make_query(ORIGIN, "IXFR")
    q.id = 4242
    q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA",
                                           f"ns1.example. hm.example. {serial} 1 1 1 1"))
    return q.to_wire()


async def _tcp(r: Responder, serial: int) -> list[bytes]:
    out = r.tcp(_query(serial), ("127.0.0.1", 4000), False)
    if isinstance(out, AsyncIterator):
        return [m async for m in out]
    return [out] if isinstance(out, bytes) else list(out)  # type: ignore[arg-type]


async def _served(chain: list[ZoneSnapshot], directory: str = "") -> Responder:
    t = ZoneTable(Journals(directory))
    for snap in chain:
        await t.publish_async(snap)
    assert t.journals is not None
    await t.journals.caught_up(ORIGIN)
    return Responder(t)


@pytest.mark.parametrize("configured", [True, False], ids=["journal_dir", "no_journal_dir"])
async def test_a_big_step_is_not_held_in_memory(tmp_path: Path, configured: bool) -> None:
    a, b, c = plain(1), plain(2, HOSTS), plain(3, HOSTS + "x TXT \"small\"\n")
    d = plain(4, HOSTS + "x TXT \"other\"\n")
    j = Journals(str(tmp_path) if configured else "", max_versions=2)
    await j.record(None, a)
    gc.collect()
    tracemalloc.start()
    try:
        await j.record(a, b)
        await j.record(b, c)
        gc.collect()
        with_big, _ = tracemalloc.get_traced_memory()  # steps 1->2 (big) and 2->3
        await j.record(c, d)  # 1->2 goes: 2->3 and 3->4 (small) are kept
        gc.collect()
        held = with_big - tracemalloc.get_traced_memory()[0]  # the tracker's size is the same
    finally:
        tracemalloc.stop()
    assert j.versions(ORIGIN) == [2, 3, 4]
    wire = len(HOSTS)  # the 1->2 step's record is larger than that
    e = plain(5)
    await j.record(d, e)  # a big step: every host deleted
    steps = j.since(e, 3)
    assert steps is not None and [s.new_serial for s in steps] == [4, 5]
    assert steps[1].size > wire
    assert held < 32_768, f"the journal held {held} bytes in memory for a step of more " \
        f"than {wire} octets"
    read = await j.read(ORIGIN, steps)
    assert len(read[0].added) == 1 and len(read[1].deleted) == N + 1 and not steps[1].resident


async def test_ixfr_over_tcp_reads_the_step_back_and_answers_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = [plain(1), plain(2, HOSTS), plain(3, HOSTS + "x TXT \"small\"\n")]
    r = await _served(chain, str(tmp_path))
    j = r.table.journals
    assert j is not None
    steps = j.since(chain[-1], 1)
    assert steps is not None and not steps[0].resident and steps[1].resident
    from_disk = await _tcp(r, 1)
    msgs = [dns.message.from_wire(m, one_rr_per_rrset=True) for m in from_disk]
    assert msgs[0].answer[1].rdtype == dns.rdatatype.SOA and msgs[0].answer[1][0].serial == 1
    zone = copy_of(chain[0])
    apply_ixfr(zone, 1, msgs)
    assert canonical(zone) == canonical(copy_of(chain[-1]))
    # the same octets as a journal holding every step in memory answers
    monkeypatch.setattr(journalfile, "RESIDENT_MAX", 1 << 30)
    in_memory = await _served(chain, str(tmp_path / "all"))
    j2 = in_memory.table.journals
    assert j2 is not None and all(e.resident for e in j2.since(chain[-1], 1) or [])
    assert await _tcp(in_memory, 1) == from_disk


async def test_udp_never_reads_the_file(tmp_path: Path) -> None:
    chain = [plain(1), plain(2, HOSTS)]
    r = await _served(chain, str(tmp_path))
    out = r.udp(_query(1), ("127.0.0.1", 4000))
    assert isinstance(out, list) and len(out) == 1
    msg = dns.message.from_wire(out[0])
    assert [rr.rdtype for rr in msg.answer] == [dns.rdatatype.SOA], "the SOA alone: use TCP"


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [e for e in (json.loads(r.message) for r in caplog.records
                        if r.name == "node.events") if e["name"] == name]


async def test_a_file_cut_under_the_index_gives_axfr_form(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = [plain(1), plain(2, HOSTS), plain(3, HOSTS + "x TXT \"small\"\n")]
    r = await _served(chain, str(tmp_path))
    f = tmp_path / file_name(ORIGIN)
    f.write_bytes(f.read_bytes()[:1000])
    with caplog.at_level(logging.INFO, logger="node.events"):
        msgs = [dns.message.from_wire(m, one_rr_per_rrset=True) for m in await _tcp(r, 1)]
    assert msgs[0].answer[1].rdtype != dns.rdatatype.SOA, "the whole zone, AXFR form"
    zone = dns.versioned.Zone(ORIGIN, relativize=False)
    apply_ixfr(zone, 1, msgs)
    assert canonical(zone) == canonical(copy_of(chain[-1]))
    assert _events(caplog, "JOURNAL_DROPPED")
    assert r.table.journals is not None and r.table.journals.versions(ORIGIN) == []
    # the journal goes on from the next version, its file rewritten cleanly
    nxt = plain(4, HOSTS + "x TXT \"other\"\n")
    await r.table.publish_async(nxt)
    await r.table.journals.caught_up(ORIGIN)
    assert r.table.journals.versions(ORIGIN) == [3, 4]
    assert [e.new_serial for e in journalfile.decode_records(f.read_bytes())[0]] == [4]


async def test_without_a_directory_a_private_temporary_one_is_removed_with_it() -> None:
    j = Journals("")
    assert j.directory is None
    private = j._dir
    assert private is not None and private.name.startswith(journalstore.TEMP)
    assert Path(tempfile.gettempdir()) in private.parents or private.parent == Path("/var/tmp")
    assert not str(private).startswith("/dev/shm")
    a, b = plain(1), plain(2, HOSTS)
    await j.record(None, a)
    await j.record(a, b)
    assert [p.name for p in private.iterdir()] == [file_name(ORIGIN)]
    del j
    # The executor's thread drops its work item (which holds `j._step`) only after the
    # awaited result is set, so the last reference can outlive `record` for a moment on a
    # loaded machine: collect until the directory goes, with a deadline.
    deadline = time.monotonic() + 10
    while private.exists() and time.monotonic() < deadline:
        gc.collect()
        await asyncio.sleep(0.01)
    assert not private.exists()
