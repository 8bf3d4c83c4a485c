"""DNAME in zone transfers: AXFR and IXFR carry it like any RRset (added, then removed),
applied by dnspython's own IXFR client code, signed (NSEC3) and unsigned."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from tests.unit.server.ixfr_versions import plain, sign_versions
from tests.unit.server.test_ixfr_answers import apply_ixfr, ask, canonical, copy_of, served

OLD = dns.name.from_text("old.example.")


@pytest.mark.parametrize("mode", [None, "nsec3"])
async def test_axfr_and_ixfr_carry_a_dname(mode: str | None) -> None:
    chain = sign_versions([plain(1), plain(2, "old DNAME wild.example.\n"), plain(3)], mode)
    assert copy_of(chain[1]).get_rdataset(OLD, dns.rdatatype.DNAME) is not None  # AXFR
    r = await served(chain)
    for old in chain[:-1]:
        _, msgs = ask(r, "IXFR", old.serial)
        zone = copy_of(old)
        apply_ixfr(zone, old.serial, msgs)  # to the newest version
        assert canonical(zone) == canonical(copy_of(chain[-1]))
    _, msgs = ask(r, "IXFR", chain[0].serial)  # the DNAME came and went: in the deltas
    deltas = [rr for m in msgs for rr in m.answer if rr.rdtype == dns.rdatatype.DNAME]
    assert [str(rr.name) for rr in deltas] == [str(OLD)] * 2
