"""A zone's journal file stays gone once the zone is removed (node/server/journal.py).

`Journals.remove` unlinked the file at once, while a recording step of the zone
(computed in a worker thread, appended to the file from there) could still be
queued or running: it then wrote the file again, for a zone that no longer
existed, and a zone created again under the same name found it on disk.
"""

from __future__ import annotations

from pathlib import Path

from node.server.journal import Journals
from node.server.journalfile import decode_records, file_name
from tests.unit.server.ixfr_versions import ORIGIN, plain


async def test_a_step_running_at_the_removal_does_not_write_the_file_again(
        tmp_path: Path) -> None:
    j = Journals(str(tmp_path))
    v1, v2, v3 = plain(1), plain(2, "x A 192.0.2.1\n"), plain(3, "y A 192.0.2.2\n")
    await j.record(None, v1)
    step = j.record(v1, v2)  # the step to serial 2 is under way...
    later = j.record(v2, v3)  # ...and another one waits for it
    j.remove(ORIGIN)  # the zone is deleted meanwhile
    await step
    await later
    await j.caught_up(ORIGIN)
    path = tmp_path / file_name(ORIGIN)
    assert not path.exists(), f"removed zone's journal written again: {path.stat().st_size} B"
    assert j.versions(ORIGIN) == []


async def test_a_zone_created_again_starts_a_journal_of_its_own(tmp_path: Path) -> None:
    j = Journals(str(tmp_path))
    v1, v2 = plain(1), plain(2, "x A 192.0.2.1\n")
    await j.record(None, v1)
    step = j.record(v1, v2)
    j.remove(ORIGIN)
    again = [plain(7, "a A 192.0.2.7\n"), plain(8, "a A 192.0.2.8\n")]
    await j.record(None, again[0])
    await j.record(again[0], again[1])
    await step
    assert j.versions(ORIGIN) == [7, 8]
    entries, _ = decode_records((tmp_path / file_name(ORIGIN)).read_bytes())
    assert [(e.old_serial, e.new_serial) for e in entries] == [(7, 8)], \
        "the removed zone's step was written into the new zone's journal"
