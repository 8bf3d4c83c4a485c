"""A TSIG-signed IXFR whose chain has a step on disk only (an asynchronous answer) is
signed message by message, chained, as the in-memory one (session 7 review)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset

from node.server.journal import Journals
from node.server.responder import Responder
from node.server.table import ZoneTable
from tests.unit.server.ixfr_versions import ORIGIN, plain
from tests.unit.server.test_journal_on_disk import HOSTS
from tests.unit.server.test_xfr_tsig_answers import KEY, OUTSIDE, RING, _verified, _with_keys


async def test_a_signed_ixfr_read_from_the_file_is_signed_and_chained(tmp_path: Path) -> None:
    chain = [_with_keys(plain(1), ("xfr-key.",)), _with_keys(plain(2, HOSTS), ("xfr-key.",)),
             _with_keys(plain(3, HOSTS + 'x TXT "s"\n'), ("xfr-key.",))]
    t = ZoneTable(Journals(str(tmp_path)))
    for snap in chain:
        await t.publish_async(snap)
    assert t.journals is not None
    await t.journals.caught_up(ORIGIN)
    steps = t.journals.since(chain[-1], 1)
    assert steps is not None and not steps[0].resident
    q = dns.message.make_query(ORIGIN, "IXFR")
    q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA",
                                           "ns1.example. hm.example. 1 1 1 1 1"))
    q.use_tsig(KEY)
    out = Responder(t, keyring=RING.get).tcp(q.to_wire(), (OUTSIDE, 4000), False)
    assert isinstance(out, AsyncIterator)
    wires = [m async for m in out]
    assert len(wires) > 1
    msgs = _verified(q, wires, KEY)
    first = msgs[0].answer
    assert first[1].rdtype == dns.rdatatype.SOA and first[1][0].serial == 1, "incremental"
