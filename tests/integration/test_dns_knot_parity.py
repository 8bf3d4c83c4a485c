"""Answer parity with Knot DNS: the same zone served by both, the same questions asked.

Covers referrals and glue, DS at delegations, wildcards (closest encloser, ENT
wildcards, CNAME wildcards), CNAME chains and loops, empty non-terminals,
NXDOMAIN/NODATA with the SOA and its negative TTL, and additional-section
addresses. QTYPE ANY is left out: Knot answers one RRset (RFC 8482), we answer
all of them (documented in node/server/answer.py).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from node.image import ImageTable, ZoneImage, build_image
from node.server import DnsServer, ZoneTable
from node.zones.model import snapshot_from_text
from tests.support.ports import free_port
from tests.support.wait import wait_until
from tests.support.zones import EXAMPLE

ZONE = EXAMPLE

NAMES = [
    "", "web", "WWW", "nope", "chain1", "dangling", "external", "loop1", "toref", "foo.wild",
    "a.b.wild", "wild", "*.wild", "x.cw", "b.c", "c", "a.b.c", "x.b.c", "foo.ent", "*.ent",
    "x.*.ent", "_sip._udp", "_udp", "sub", "host.sub", "ns.sub", "nods", "ns.nods", "x.nods",
    "mail", "ns1", "deep.x.wild", "sipsrv",
    # a random-subdomain flood's names (images answer them on node.image.negative's path)
    "q7x0k2m9a1zt", "0", "zzzzzzzz", "-a", "aaaaaaaaaaaaaaaaaaaa.zz9", "k3.b.c", "p9q.sub.c",
]  # fmt: skip
TYPES = ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "DS", "SRV"]


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[int]:
    if shutil.which("knotd") is None:
        pytest.skip("knotd not installed")
    port = free_port()  # not from the ephemeral range: a connection took one (CI)
    (tmp_path / "example.com.zone").write_text("$ORIGIN example.com.\n" + ZONE)
    (tmp_path / "knot.conf").write_text(
        f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {tmp_path}\n"
        f"database:\n    storage: {tmp_path}\n"
        f"template:\n  - id: default\n    storage: {tmp_path}\n    semantic-checks: off\n"
        "zone:\n  - domain: example.com\n    file: example.com.zone\n"
        "log:\n  - target: stderr\n    any: error\n"
    )
    proc = subprocess.Popen(["knotd", "-c", str(tmp_path / "knot.conf")])
    try:

        def answers() -> bool:
            try:
                q = dns.message.make_query("example.com.", "SOA")
                return bool(dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2).answer)
            except (dns.exception.Timeout, OSError):
                return False

        wait_until(answers, 10, message="knotd did not start answering")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["compiled", "image"])
async def ours(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """Our server answering from a `ZoneTable` or, as serving workers do, an `ImageTable`."""
    snap = snapshot_from_text(ZONE, "example.com.")
    table: ZoneTable | ImageTable
    if request.param == "image":
        table = ImageTable()
        table.install(ZoneImage.from_bytes(build_image(snap)))
    else:
        table = ZoneTable()
        table.publish(snap)
    srv = DnsServer(table, [("127.0.0.1", 0)])  # type: ignore[arg-type]
    (_, port), *_ = await srv.start()
    try:
        yield port
    finally:
        await srv.stop()


def _shape(resp: dns.message.Message) -> tuple[object, ...]:
    def norm(section: list[dns.rrset.RRset]) -> list[tuple[str, int, str, str]]:
        return sorted(
            (r.name.to_text().lower(), r.ttl, dns.rdatatype.to_text(r.rdtype), rd.to_text())
            for r in section
            for rd in r
        )

    return (
        resp.rcode(),
        bool(resp.flags & dns.flags.AA),
        norm(resp.answer),
        norm(resp.authority),
        norm(resp.additional),
    )


async def test_same_answers_as_knot(knot: int, ours: int) -> None:
    def ask_all(port: int) -> list[tuple[object, ...]]:
        out = []
        for name, rdtype in itertools.product(NAMES, TYPES):
            q = dns.message.make_query(
                f"{name}.example.com." if name else "example.com.", rdtype, use_edns=0
            )
            q.flags &= ~dns.flags.RD
            out.append(_shape(dns.query.udp(q, "127.0.0.1", port=port, timeout=2)))
        return out

    theirs = await asyncio.to_thread(ask_all, knot)
    mine = await asyncio.to_thread(ask_all, ours)
    questions = list(itertools.product(NAMES, TYPES))
    differ = [
        (questions[i], t, m) for i, (t, m) in enumerate(zip(theirs, mine, strict=True)) if t != m
    ]
    assert not differ, "\n".join(f"{q}:\n  knot {t}\n  ours {m}" for q, t, m in differ)
