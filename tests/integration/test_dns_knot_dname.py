"""DNAME answers (RFC 6672) against Knot DNS: the same zones served by both, the same
questions asked through DNAMEs, DO=0 and DO=1, unsigned and signed (our signer's output,
served by Knot as a presigned zone), from a `ZoneTable` and from zone images.

The zones (`tests/support/zones.py`): DNAMEs to an in-zone target (chased), out of the
zone, through a wildcard, to a delegation; a CNAME into a DNAME; a DNAME loop (Knot stops
after five CNAMEs, and so do we); a target that makes names below it too long (YXDOMAIN);
and a second zone with a DNAME at its apex. Compared as `test_dns_knot_parity` does:
rcode, AA and each section's records (owner, TTL, type, rdata), sorted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from node.dnssec.signer import master_text
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.dnssec import signed_snapshot
from tests.support.knot import knotd_serving
from tests.support.serving import KINDS, serving
from tests.support.zones import APEX_DNAME_ZONE, DNAME_ZONE

pytestmark = pytest.mark.integration

NOW = int(time.time())
NAMES = [
    "a.old", "old", "b.old", "x.y.old", "a.ext", "cn", "cn2", "a.loop", "x.long",
    "x" * 63 + ".long", "q.wd", "x.tosub", "a.new", "new", "", "ns1",
]  # fmt: skip
TYPES = ["A", "MX", "TXT", "DNAME", "CNAME", "NS", "SOA"]
APEX_NAMES = ["", "www", "a.b"]


def _zones(kind: str) -> list[ZoneSnapshot]:
    if kind == "unsigned":
        return [snapshot_from_text(DNAME_ZONE, "dname.test."),
                snapshot_from_text(APEX_DNAME_ZONE, "apex.test.")]
    nsec3 = kind == "nsec3"
    return [signed_snapshot(DNAME_ZONE, "dname.test.", nsec3, NOW),  # type: ignore[list-item]
            signed_snapshot(APEX_DNAME_ZONE, "apex.test.", nsec3, NOW)]  # type: ignore[list-item]


@pytest.fixture(scope="module", params=["unsigned", "nsec", "nsec3"])
def zones(request: pytest.FixtureRequest) -> list[ZoneSnapshot]:
    return _zones(request.param)


@pytest.fixture
def knot(tmp_path: Path, zones: list[ZoneSnapshot]) -> Iterator[int]:
    texts = {snap.origin.to_text(): master_text(snap.nodes) for snap in zones}
    with knotd_serving(tmp_path, texts, "apex.test.") as port:
        yield port


@pytest.fixture(params=KINDS)
async def ours(request: pytest.FixtureRequest, zones: list[ZoneSnapshot]
               ) -> AsyncIterator[int]:
    async with serving(zones, request.param) as port:
        yield port


def _shape(resp: dns.message.Message) -> tuple[object, ...]:
    def norm(section: list[dns.rrset.RRset]) -> list[tuple[str, int, str, str]]:
        return sorted((r.name.to_text().lower(), r.ttl, dns.rdatatype.to_text(r.rdtype),
                       rd.to_text()) for r in section for rd in r)

    return (resp.rcode(), bool(resp.flags & dns.flags.AA), norm(resp.answer),
            norm(resp.authority), norm(resp.additional))


def _questions() -> list[tuple[str, str]]:
    out = [(f"{n}.dname.test." if n else "dname.test.", t)
           for n, t in itertools.product(NAMES, TYPES)]
    out += [(f"{n}.apex.test." if n else "apex.test.", t)
            for n, t in itertools.product(APEX_NAMES, TYPES)]
    return out


@pytest.mark.parametrize("do", [False, True], ids=["do0", "do1"])
async def test_same_dname_answers_as_knot(knot: int, ours: int, do: bool) -> None:
    def ask_all(port: int) -> list[tuple[object, ...]]:
        out = []
        for name, rdtype in _questions():
            q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do, payload=4096)
            q.flags &= ~dns.flags.RD
            out.append(_shape(dns.query.udp(q, "127.0.0.1", port=port, timeout=2)))
        return out

    theirs = await asyncio.to_thread(ask_all, knot)
    mine = await asyncio.to_thread(ask_all, ours)
    questions = _questions()
    differ = [(questions[i], t, m) for i, (t, m) in enumerate(zip(theirs, mine, strict=True))
              if t != m]
    assert not differ, "\n".join(f"{q}:\n  knot {t}\n  ours {m}" for q, t, m in differ)
