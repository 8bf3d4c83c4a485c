"""The IXFR journal (node.server.journal): chains, bounds, files kept across restarts."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from node.server.journal import Journals
from node.server.journalfile import Entry, decode_records, encode_entry, file_name
from node.server.zonediff import Delta
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import ORIGIN, apply, plain, records, signed_chain


def _delta(steps: list[Entry]) -> list[Delta]:
    return [Delta((e.old_soa, *e.deleted), (e.new_soa, *e.added)) for e in steps]


async def _feed(j: Journals, chain: list[ZoneSnapshot]) -> None:
    prev = None
    for snap in chain:
        await j.record(prev, snap)
        prev = snap


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [e for e in (json.loads(r.message) for r in caplog.records
                        if r.name == "node.events") if e["name"] == name]


async def test_steps_reach_the_served_version_from_every_older_serial() -> None:
    chain = signed_chain("nsec3")
    j = Journals()
    await _feed(j, chain)
    last = chain[-1]
    assert j.versions(ORIGIN) == [1, 2, 3, 4, 5]
    for start in chain[:-1]:
        steps = j.since(last, start.serial)
        assert steps is not None and steps[0].old_serial == start.serial
        rrs = records(start)
        for d in _delta(steps):
            rrs = apply(rrs, d)
        assert rrs == records(last)
    assert j.since(last, 99) is None
    # the table serves a version once the journal has it: the one before is still served
    ahead = j.since(chain[-2], 1)
    assert ahead is not None and ahead[-1].new_serial == chain[-2].serial
    assert j.since(chain[-3], 1) is None, "only for the versions served now"


async def test_same_serial_with_other_content_starts_over(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    j = Journals()
    a, b = plain(1), plain(2, "x A 192.0.2.1\n")
    await _feed(j, [a, b])
    await j.record(b, b)  # the same version again: nothing to record
    assert j.versions(ORIGIN) == [1, 2]
    other = plain(2, "x A 192.0.2.2\n")
    with caplog.at_level(logging.INFO, logger="node.events"):
        await j.record(b, other)
    assert j.versions(ORIGIN) == [] and j.since(other, 1) is None
    assert _events(caplog, "JOURNAL_DROPPED")


async def test_bounded_by_count_and_by_size(tmp_path: Path) -> None:
    chain = [plain(i, "".join(f"n{k} A 192.0.2.{k}\n" for k in range(i))) for i in range(1, 12)]
    j = Journals(str(tmp_path), max_versions=4)
    await _feed(j, chain)
    assert j.versions(ORIGIN) == [7, 8, 9, 10, 11]
    f = tmp_path / file_name(ORIGIN)
    assert len(decode_records(f.read_bytes())[0]) <= 8, "the file is compacted"
    j2 = Journals(max_bytes=600)
    await _feed(j2, chain)
    kept = j2.versions(ORIGIN)
    assert kept and kept[-1] == 11 and len(kept) < 10
    j3 = Journals(max_bytes=10)  # no step fits: an empty journal, answered in AXFR form
    await _feed(j3, chain)
    assert j3.versions(ORIGIN) == [] and j3.since(chain[-1], 10) is None


async def test_kept_across_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = signed_chain("nsec")
    await _feed(Journals(str(tmp_path)), chain)
    j = Journals(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="node.events"):
        await j.record(None, chain[-1])  # the first version served after the start
    assert _events(caplog, "JOURNAL_LOADED")
    steps = j.since(chain[-1], 1)
    assert steps is not None
    rrs = records(chain[0])
    for d in _delta(steps):
        rrs = apply(rrs, d)
    assert rrs == records(chain[-1])


async def test_not_used_when_the_served_version_differs(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    chain = [plain(1), plain(2, "x A 192.0.2.1\n"), plain(3, "x A 192.0.2.3\n")]
    await _feed(Journals(str(tmp_path)), chain)
    for served in (plain(4, "x A 192.0.2.3\n"),  # newer than the journal
                   plain(3, "x A 192.0.2.4\n")):  # the same serial, other content
        j = Journals(str(tmp_path))
        with caplog.at_level(logging.INFO, logger="node.events"):
            await j.record(None, served)
        assert j.versions(ORIGIN) == [] and j.since(served, 1) is None
        assert _events(caplog, "JOURNAL_DROPPED")
        await _feed(Journals(str(tmp_path)), chain)  # again for the next case


async def test_a_torn_tail_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = [plain(i, f"x A 192.0.2.{i}\n") for i in range(1, 6)]
    await _feed(Journals(str(tmp_path)), chain)
    f = tmp_path / file_name(ORIGIN)
    data = f.read_bytes()
    entries, end = decode_records(data)
    assert len(entries) == 4 and end == len(data)
    f.write_bytes(data[:-7])  # a crash in the middle of the last append
    j = Journals(str(tmp_path))
    await j.record(None, chain[3])  # the node serves serial 4 (the last intact step's end)
    assert j.versions(ORIGIN) == [1, 2, 3, 4]
    assert len(f.read_bytes()) == sum(
        len(encode_entry(e)) for e in entries[:3]), "the torn tail is gone from the file"
    await j.record(chain[3], chain[4])  # and the file grows cleanly again
    again, end = decode_records(f.read_bytes())
    assert [e.new_serial for e in again] == [2, 3, 4, 5] and end == len(f.read_bytes())
    f.write_bytes(f.read_bytes()[:-3])
    j = Journals(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="node.events"):
        await j.record(None, chain[4])  # the journal now ends at 4, the node serves 5
    assert j.versions(ORIGIN) == [] and _events(caplog, "JOURNAL_DROPPED")


async def test_a_broken_chain_keeps_only_its_newest_part(tmp_path: Path) -> None:
    chain = [plain(i, f"x A 192.0.2.{i}\n") for i in range(1, 6)]
    await _feed(Journals(str(tmp_path)), chain)
    f = tmp_path / file_name(ORIGIN)
    entries, _ = decode_records(f.read_bytes())
    del entries[1]  # 2 -> 3 is lost: 1 -> 2, then 3 -> 4 -> 5
    f.write_bytes(b"".join(encode_entry(e) for e in entries))
    j = Journals(str(tmp_path))
    await j.record(None, chain[4])
    assert j.versions(ORIGIN) == [3, 4, 5]
    assert j.since(chain[4], 1) is None and j.since(chain[4], 2) is None
    assert j.since(chain[4], 3) is not None
    # serials that follow but a digest that does not: a break as well
    await _feed(Journals(str(tmp_path)), chain)
    entries, _ = decode_records(f.read_bytes())
    assert [e.old_serial for e in entries] == [1, 2, 3, 4]
    entries[2] = replace(entries[2], old_digest=b"\x00" * 32)  # 3 -> 4 starts elsewhere
    f.write_bytes(b"".join(encode_entry(e) for e in entries))
    j = Journals(str(tmp_path))
    await j.record(None, chain[4])
    assert j.versions(ORIGIN) == [3, 4, 5] and j.since(chain[4], 2) is None


async def test_memory_only_without_a_directory(tmp_path: Path) -> None:
    j = Journals("")
    await _feed(j, [plain(1), plain(2, "x A 192.0.2.1\n")])
    assert j.versions(ORIGIN) == [1, 2]
    assert not os.listdir(tmp_path)


async def test_an_unusable_directory_means_memory_only_and_remove_deletes_the_file(
        tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    j = Journals(str(blocker / "journal"))  # cannot be created: the node serves anyway
    assert j.directory is None
    await _feed(j, [plain(1), plain(2, "x A 192.0.2.1\n")])
    assert j.versions(ORIGIN) == [1, 2]
    j = Journals(str(tmp_path / "j"))
    await _feed(j, [plain(1), plain(2, "x A 192.0.2.1\n")])
    assert os.listdir(tmp_path / "j") == [file_name(ORIGIN)]
    j.remove(ORIGIN)
    assert os.listdir(tmp_path / "j") == [] and j.versions(ORIGIN) == []
