"""Answer parity with Knot DNS: the same zone served by both, the same questions asked.

Covers referrals and glue, DS at delegations, wildcards (closest encloser, ENT
wildcards, CNAME wildcards), CNAME chains and loops, empty non-terminals,
NXDOMAIN/NODATA with the SOA and its negative TTL, and additional-section
addresses. QTYPE ANY is left out: Knot answers one RRset (RFC 8482), we answer
all of them (documented in node/server/answer.py).

`test_same_edge_case_answers_as_knot` sends raw protocol edge cases (EDNS version,
options, payload sizes, OPT placement, opcodes, classes, 0x20 spelling, DS/DNSKEY at
odd names) where the RFCs and Knot agree. Where Knot chooses otherwise within the RFCs
(EDE options, CD cleared, FORMERR for EDNS payload 1, no answer to QDCOUNT 2) the case
is not here.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from node.zones.model import snapshot_from_text
from tests.support.knot import knotd_serving
from tests.support.serving import KINDS, serving
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
    with knotd_serving(tmp_path, {"example.com.": "$ORIGIN example.com.\n" + ZONE},
                       "example.com.") as port:
        yield port


@pytest.fixture(params=KINDS)
async def ours(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """Our server answering from a `ZoneTable` or, as serving workers do, an `ImageTable`."""
    async with serving([snapshot_from_text(ZONE, "example.com.")], request.param) as port:
        yield port


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


def _edge_cases() -> list[tuple[str, bytes]]:
    """Protocol edge cases whose answers the RFCs pin down (raw queries, RD clear)."""

    def q(name: str, rdtype: str = "A", edns: int | None = 0, payload: int = 1232,
          do: bool = False, rdclass: str = "IN", options: list[dns.edns.Option] | None = None
          ) -> bytearray:
        m = dns.message.make_query(name, rdtype, rdclass=rdclass, want_dnssec=do,
                                   use_edns=False if edns is None else edns,
                                   payload=payload, options=options)
        m.id, m.flags = 0x2a2a, 0
        return bytearray(m.to_wire())

    www, big = "www.example.com.", "big.example.com."
    cases = [
        ("EDNS version 1: BADVERS", q(www, edns=1)),
        ("an unknown EDNS option is ignored", q(www, options=[dns.edns.GenericOption(65001,
                                                                                     b"x")])),
        ("payload 0 counts as 512: TC", q(big, "TXT", payload=0)),
        ("payload 511 counts as 512: TC", q(big, "TXT", payload=511)),
        ("payload 512: TC", q(big, "TXT", payload=512)),
        ("payload 4096: whole", q(big, "TXT", payload=4096)),
        ("no EDNS: TC", q(big, "TXT", edns=None)),
        ("DO on an unsigned zone", q(www, do=True)),
        ("a name out of every zone: REFUSED", q("www.example.org.")),
        ("the parent of a zone: REFUSED", q("com.", "SOA")),
        ("class CH: REFUSED", q(www, rdclass="CH")),
        ("class NONE: REFUSED", q(www, rdclass="NONE")),
        ("0x20 spelling kept", q("wWw.ExAmPlE.cOm.")),
        ("0x20 NXDOMAIN", q("NoPe.ExAmPlE.cOm.", "TXT")),
        ("0x20 referral", q("HoSt.SuB.example.com.")),
        ("DNSKEY at a name that is not the apex", q(www, "DNSKEY")),
        ("DS at the apex (parent not served)", q("example.com.", "DS")),
        ("DS at a delegation", q("sub.example.com.", "DS", do=True)),
        ("DS below a delegation: referral", q("ns.sub.example.com.", "DS")),
        ("NS at a delegation: referral", q("sub.example.com.", "NS")),
    ]
    two_opt = q(www)
    two_opt += two_opt[-11:]
    two_opt[11] = 2
    opt_in_answer = q(www)
    opt_in_answer[7], opt_in_answer[11] = 1, 0
    ad = q(www)
    ad[3] |= 0x20
    cases += [("two OPT RRs: FORMERR", two_opt), ("OPT in the answer section: FORMERR",
                                                   opt_in_answer), ("AD in a query", ad)]
    for opcode in (1, 2, 3, 15):  # IQUERY, STATUS, unassigned: NOTIMP
        w = q(www)
        w[2] |= opcode << 3
        cases.append((f"opcode {opcode}: NOTIMP", w))
    return [(label, bytes(w)) for label, w in cases]


def _wire_shape(resp: bytes | None) -> tuple[object, ...]:
    """Header flags, rcode, sections (owners as written, rdata lowercased: where we write a
    name uncompressed Knot points into the question) and EDNS (options left out: Knot adds
    an Extended DNS Error to REFUSED, which is optional)."""
    if resp is None:
        return ("no answer",)
    m = dns.message.from_wire(resp)

    def rrs(section: list[dns.rrset.RRset]) -> list[str]:
        return sorted(f"{r.name} {r.ttl} {dns.rdatatype.to_text(r.rdtype)} "
                      f"{rd.to_text().lower()}" for r in section for rd in r)

    return (m.id, dns.flags.to_text(m.flags), m.rcode(), [str(x.name) for x in m.question],
            rrs(m.answer), rrs(m.authority), rrs(m.additional), m.edns,
            m.ednsflags & dns.flags.DO)


async def test_same_edge_case_answers_as_knot(knot: int, ours: int) -> None:
    def ask_all(port: int) -> list[tuple[object, ...]]:
        out = []
        for _, wire in _edge_cases():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                s.sendto(wire, ("127.0.0.1", port))
                try:
                    out.append(_wire_shape(s.recv(65535)))
                except TimeoutError:
                    out.append(_wire_shape(None))
        return out

    theirs = await asyncio.to_thread(ask_all, knot)
    mine = await asyncio.to_thread(ask_all, ours)
    labels = [label for label, _ in _edge_cases()]
    differ = [(labels[i], t, m) for i, (t, m) in enumerate(zip(theirs, mine, strict=True))
              if t != m]
    assert not differ, "\n".join(f"{q}:\n  knot {t}\n  ours {m}" for q, t, m in differ)
