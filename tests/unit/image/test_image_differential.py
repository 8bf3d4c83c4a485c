"""Differential oracle: a zone image answers every query byte for byte as `CompiledZone`.

Both tables are fed the same snapshots (unsigned; NSEC, NSEC3, NSEC3 with
salt and opt-out), then asked the same generated queries: every owner and
ancestor with every type it has and many it has not, ANY, names below cuts
and wildcards, nonexistent names at several depths, NSEC3 owner names,
DS at a zone apex served by the parent, both DO bits. The entries (header
variants, body, size, stat key, flags) must be equal.
"""

from __future__ import annotations

import random
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from node.image import ImageTable, ZoneImage, build_image, write_image
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE
from tests.unit.server.signed_zone import ZONE, signed_snapshot

T = dns.rdatatype
QTYPES = [T.A, T.AAAA, T.NS, T.SOA, T.CNAME, T.MX, T.TXT, T.SRV, T.DS, T.DNSKEY, T.RRSIG,
          T.NSEC, T.NSEC3, T.NSEC3PARAM, T.CAA, 255, 0, 65280]
CHILD = """
$TTL 300
@    SOA  ns hostmaster 7 3600 600 604800 60
@    NS   ns
ns   A    192.0.2.99
"""


def _wire(name: dns.name.Name) -> bytes:
    return name.to_wire().lower()  # type: ignore[union-attr]


def _names(snap: ZoneSnapshot, rng: random.Random) -> list[bytes]:
    """Owners, their ancestors, and nonexistent names at depths 1-3 below them."""
    out: set[bytes] = set()
    for name in snap.nodes:
        n = name
        while n != snap.origin.parent():
            out.add(_wire(n))
            n = n.parent()
    base = sorted(out)
    for owner in base:
        for depth in (1, 2, 3):
            labels = [f"nx{rng.randrange(10**6)}" for _ in range(depth)]
            out.add(_wire(dns.name.from_text(".".join(labels), dns.name.from_wire(owner, 0)[0])))
    for _ in range(50):  # random names right below the apex, some sorting before anything
        label = "".join(rng.choice("-0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(8))
        out.add(_wire(dns.name.from_text(label.strip("-") or "x", snap.origin)))
    out.add(_wire(dns.name.from_text("\\000\\001.x", snap.origin)))
    return sorted(out)


def _keys(snaps: list[ZoneSnapshot], seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    keys = []
    for snap in snaps:
        for name in _names(snap, rng):
            for qtype in QTYPES:
                keys.append(name + qtype.to_bytes(2, "big") + b"\x00\x01")
    keys.append(_wire(dns.name.from_text("www.example.net.")) + b"\x00\x01\x00\x01")
    keys.append(_wire(dns.name.from_text("www.example.")) + b"\x00\x01\x00\x03")  # CH
    return keys


def _compare(snaps: list[ZoneSnapshot], directory: Path | None = None) -> int:
    """Entries compared; images mapped from files under `directory` if given."""
    old = ZoneTable()
    new = ImageTable()
    for snap in snaps:
        old.publish(snap)
        image = (ZoneImage.from_bytes(build_image(snap)) if directory is None
                 else ZoneImage.open(write_image(snap, directory)))
        assert new.install(image)
    count = 0
    for key in _keys(snaps):
        for do in (0, 1):
            want = old.lookup(key, do)
            got = new.lookup(key, do)
            assert got == want, f"{dns.name.from_wire(key, 0)[0]} type {key[-4:-2].hex()} DO={do}"
            count += 1
    return count


def _child() -> ZoneSnapshot:
    return snapshot_from_text(CHILD, "sub.example.", revision=3)


@pytest.mark.parametrize("text", [EXAMPLE, ZONE], ids=["example", "signed-zone-text"])
def test_unsigned_zones_answer_alike(text: str) -> None:
    snap = snapshot_from_text(text, "example.", revision=1)
    assert _compare([snap, _child()]) > 1000


@pytest.mark.parametrize("mode", ["nsec", "nsec3", "nsec3-salt-optout"])
@pytest.mark.parametrize("text", [EXAMPLE, ZONE], ids=["example", "signed-zone-text"])
def test_signed_zones_answer_alike(mode: str, text: str) -> None:
    snap = signed_snapshot(mode, text=text)
    keys = [_wire(n) for n in snap.nodes]
    assert keys  # NSEC3 owner names are among the generated names (they must not exist)
    assert _compare([snap, _child()]) > 1000


def test_mapped_files_answer_alike(tmp_path: Path) -> None:
    assert _compare([signed_snapshot("nsec3", text=EXAMPLE), _child()], tmp_path) > 1000
