"""An IXFR over TCP whose steps were taken from the journal's index before the
file was rewritten still answers incrementally (session 7 review).

The answer is an asynchronous iterator: `since` picks the steps (their offsets
in the file) when the query is answered; they are read back when the TCP
listener first iterates it, in a worker thread. A step recorded in between can
rewrite the file (every `2 * journal_max_versions` records, or twice
`journal_max_bytes`; with zone-sized signing steps that is every few steps)
and move every kept record: the read must follow the index, not answer the
whole zone, nor drop a journal that is intact.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from node.server.journal import Journals
from node.server.responder import Responder
from node.server.table import ZoneTable
from tests.unit.server.ixfr_versions import ORIGIN, plain
from tests.unit.server.test_ixfr_answers import apply_ixfr, canonical, copy_of
from tests.unit.server.test_journal_on_disk import HOSTS, _query


async def test_an_ixfr_taken_before_a_rewrite_is_read_after_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    small = [plain(k, f'x TXT "{k}"\n') for k in range(1, 6)]
    big = [plain(k, HOSTS + f'x TXT "{k}"\n') for k in range(6, 9)]  # 5 -> 6 is on disk only
    chain = small + big
    j = Journals(str(tmp_path), max_versions=3)  # the 7th record rewrites the file
    t = ZoneTable(j)
    for snap in chain[:-1]:
        await t.publish_async(snap)
    await j.caught_up(ORIGIN)
    steps = j.since(chain[-2], 5)
    assert steps is not None and not steps[0].resident and steps[0].offset > 0
    out = Responder(t).tcp(_query(5), ("127.0.0.1", 4000), False)
    assert isinstance(out, AsyncIterator)
    await t.publish_async(chain[-1])  # the step to serial 8 rewrites the file
    await j.caught_up(ORIGIN)
    assert j.versions(ORIGIN) == [5, 6, 7, 8]
    moved = j.since(chain[-1], 5)
    assert moved is not None and moved[0].offset != steps[0].offset, "rewritten"
    caplog.set_level("INFO")
    msgs = [dns.message.from_wire(m, one_rr_per_rrset=True) async for m in out]
    first = msgs[0].answer
    assert first[1].rdtype == dns.rdatatype.SOA and first[1][0].serial == 5, \
        "the IXFR was answered in AXFR form although the journal holds every step"
    zone = copy_of(chain[4])
    apply_ixfr(zone, 5, msgs)
    assert canonical(zone) == canonical(copy_of(chain[-2]))
    dropped = [r for r in caplog.records if r.name == "node.events"
               and json.loads(r.message)["name"] == "JOURNAL_DROPPED"]
    assert not dropped and j.versions(ORIGIN) == [5, 6, 7, 8]
