"""A version that replaces a zone's whole content (an import: `changed` is None) is served
at once; the IXFR journal records it afterwards (an O(zone) difference), and an IXFR that
reaches the new serial meanwhile is answered in AXFR form. A record change is still served
only once its step is recorded, so its IXFR is always incremental."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator

import dns.rdatatype
import pytest

from node.server.journal import Journals
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import ORIGIN, changed_owners, plain
from tests.unit.server.test_ixfr_answers import ask


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Recording a step of serial 2 or more waits until the gate opens."""
    opened = threading.Event()
    real = Journals._step

    def slow(self: Journals, z: object, prev: ZoneSnapshot | None, snap: ZoneSnapshot) -> object:
        if snap.serial >= 2:
            opened.wait(30)
        return real(self, z, prev, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(Journals, "_step", slow)
    yield opened
    opened.set()


def served_serial(t: ZoneTable) -> int:
    zone = t.get(ORIGIN)
    assert zone is not None
    return zone.snapshot.serial


async def test_an_import_is_served_before_the_journal_records_it(gate: threading.Event) -> None:
    journals = Journals()
    t = ZoneTable(journals)
    await t.publish_async(plain(1))
    await journals.caught_up(ORIGIN)
    await asyncio.wait_for(t.publish_async(plain(2, "x A 192.0.2.1\n")), 20)
    assert served_serial(t) == 2, "the imported version is served while its step is recorded"
    assert journals.versions(ORIGIN) == []
    _, msgs = ask(Responder(t), "IXFR", 1)
    assert msgs[0].answer[1].rdtype != dns.rdatatype.SOA, "AXFR form until it is recorded"
    gate.set()
    await journals.caught_up(ORIGIN)
    assert journals.versions(ORIGIN) == [1, 2]
    _, msgs = ask(Responder(t), "IXFR", 1)
    assert msgs[0].answer[1].rdtype == dns.rdatatype.SOA, "incremental once recorded"


async def test_a_record_change_is_served_once_its_step_is_recorded(
        gate: threading.Event) -> None:
    journals = Journals()
    t = ZoneTable(journals)
    v1 = plain(1)
    await t.publish_async(v1)
    await journals.caught_up(ORIGIN)
    v2 = plain(2, "x A 192.0.2.1\n")
    v2 = dataclasses.replace(v2, changed=changed_owners(v1, v2))
    publishing = asyncio.create_task(t.publish_async(v2))
    done, _ = await asyncio.wait([publishing], timeout=0.5)
    assert not done and served_serial(t) == 1  # its step cannot be recorded while shut
    gate.set()
    await asyncio.wait_for(publishing, 20)
    assert served_serial(t) == 2 and journals.versions(ORIGIN) == [1, 2]


async def test_an_import_step_waits_for_settle_a_record_change_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With `settle` set (serving workers: their image first), the O(zone) step of a first
    version or an import starts only once `settle` returns; a record change's step, which
    the table waits for, never waits for it."""
    steps: list[int] = []
    real = Journals._step

    def counted(self: Journals, z: object, prev: ZoneSnapshot | None,
                snap: ZoneSnapshot) -> object:
        steps.append(snap.serial)
        return real(self, z, prev, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(Journals, "_step", counted)
    journals = Journals()
    entered: asyncio.Queue[object] = asyncio.Queue()
    release = asyncio.Event()

    async def settle(origin: object) -> None:
        await entered.put(origin)
        await release.wait()

    journals.settle = settle
    t = ZoneTable(journals)
    await asyncio.wait_for(t.publish_async(plain(1)), 20)
    assert served_serial(t) == 1
    assert await asyncio.wait_for(entered.get(), 20) == ORIGIN
    assert steps == [], "the first version's step ran before settle returned"
    release.set()
    await asyncio.wait_for(journals.caught_up(ORIGIN), 20)
    assert steps == [1]
    release.clear()
    await asyncio.wait_for(t.publish_async(plain(2, "x A 192.0.2.1\n")), 20)  # an import
    assert await asyncio.wait_for(entered.get(), 20) == ORIGIN
    assert steps == [1], "the import's step ran before settle returned"
    release.set()
    await asyncio.wait_for(journals.caught_up(ORIGIN), 20)
    assert steps == [1, 2] and journals.versions(ORIGIN) == [1, 2]
    release.clear()  # a record change: its step is waited for by the table, never deferred
    third = plain(3, "x A 192.0.2.2\n")
    third = dataclasses.replace(third, changed=changed_owners(third, plain(2, "x A 192.0.2.1\n")))
    await asyncio.wait_for(t.publish_async(third), 20)
    assert steps == [1, 2, 3] and entered.empty()
    assert journals.versions(ORIGIN) == [1, 2, 3]
