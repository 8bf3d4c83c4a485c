"""A signed zone with DNAMEs judged by third-party validators: `ldns-verify-zone` and
`dnssec-verify` accept the signer's output (the DNAME RRset signed, its owner's NSEC/NSEC3
bitmap naming DNAME), and `delv` validates answers through a DNAME (the DNAME's RRSIG
proves the synthesized CNAME, RFC 6672 §5.3) served from a `ZoneTable` and an image."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from node.dnssec.signer import master_text
from node.zones.model import ZoneSnapshot
from tests.support.dnssec import (
    anchor_file,
    delv,
    dnssec_verify,
    fully_validated,
    have,
    ldns_verify,
    signed_snapshot,
)
from tests.support.serving import KINDS, serving
from tests.support.zones import DNAME_ZONE

pytestmark = pytest.mark.integration

T = dns.rdatatype
NOW = int(time.time())  # third-party validators check against the real clock
ORIGIN = "dname.test."


@pytest.fixture(scope="module", params=["nsec", "nsec3"])
def snap(request: pytest.FixtureRequest) -> ZoneSnapshot:
    return signed_snapshot(DNAME_ZONE, ORIGIN, request.param == "nsec3", NOW)  # type: ignore[return-value]


def test_the_dname_is_signed_and_in_its_owners_bitmap(snap: ZoneSnapshot) -> None:
    old = snap.nodes[dns.name.from_text("old." + ORIGIN)]
    assert {rd.type_covered for rd in old[T.RRSIG]} >= {T.DNAME}
    bitmaps = [rd for types in snap.nodes.values() for t in (T.NSEC, T.NSEC3)
               for rd in types.get(t, ())
               if T.DNAME in {w * 256 + i * 8 + b for w, bits in rd.windows
                              for i, octet in enumerate(bits) for b in range(8)
                              if octet & (0x80 >> b)}]
    assert bitmaps, "no NSEC/NSEC3 bitmap names DNAME"


@pytest.mark.skipif(not (have("ldns-verify-zone") and have("dnssec-verify")),
                    reason="ldns-verify-zone or dnssec-verify not installed")
def test_verifiers_accept_the_signed_zone(snap: ZoneSnapshot, tmp_path: Path) -> None:
    path = tmp_path / "dname.zone"
    path.write_text(master_text(snap.nodes))
    res = ldns_verify(path)
    assert res.returncode == 0, res.stdout + res.stderr
    res = dnssec_verify(path, ORIGIN)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(params=KINDS)
async def port(request: pytest.FixtureRequest, snap: ZoneSnapshot) -> AsyncIterator[int]:
    async with serving([snap], request.param) as p:
        yield p


@pytest.mark.skipif(not have("delv"), reason="delv not installed")
async def test_delv_validates_answers_through_a_dname(snap: ZoneSnapshot, port: int,
                                                      tmp_path: Path) -> None:
    ksks = [rd.to_text() for rd in snap.nodes[dns.name.from_text(ORIGIN)][T.DNSKEY]
            if rd.flags & 1]
    anchors = anchor_file(tmp_path / "anchors.conf", ORIGIN, ksks)
    cases = [("a.old." + ORIGIN, "A", "192.0.2.5"),  # DNAME, CNAME, the chased A
             ("q.wd." + ORIGIN, "A", "192.0.2.7"),  # through a wildcard
             ("b.old." + ORIGIN, "A", "NXDOMAIN"),  # the target does not exist, proven
             ("old." + ORIGIN, "DNAME", "new." + ORIGIN)]
    for name, rdtype, expect in cases:
        res = await asyncio.to_thread(delv, "127.0.0.1", port, anchors, ORIGIN, name, rdtype)
        assert fully_validated(res) and expect in res.stdout, f"{name} {rdtype}:\n{res.stdout}"
    # a broken trust anchor fails: the checks above are not vacuous
    anchors.write_text(anchors.read_text().replace(ksks[0].split()[3][:8], "AAAAAAAA"))
    res = await asyncio.to_thread(delv, "127.0.0.1", port, anchors, ORIGIN,
                                  "a.old." + ORIGIN, "A")
    assert not fully_validated(res), res.stdout
