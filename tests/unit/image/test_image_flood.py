"""The random-subdomain flood on images: NXDOMAIN assembled from pieces cached by proof
(`node.image.negative`) equals `ZoneTable`'s answer byte for byte, whatever the name's
length, depth and octets, and its caches stay bounded however many names are asked.
Overlays' merged proofs on that path: `test_image_overlay.py` (the differential keys)."""

from __future__ import annotations

import dataclasses
import random

import dns.name
import pytest

from node.image import ImageTable, ZoneImage, build_image, negative
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE
from tests.unit.server.signed_zone import ZONE, signed_snapshot

# names sharing long prefixes (the NSEC table's 8-octet sort prefixes tie), octets 0 and 1
# (escaped in canonical keys), and names sorting first and last
PREFIXES = "".join(f"customer-{i:04d} 300 A 192.0.2.{i % 250}\n" for i in range(40)) + """
customer-0001.sub 300 A 192.0.2.1
\\000 300 TXT "zero"
\\001\\000x 300 TXT "one"
- 300 TXT "first"
\\255\\255 300 TXT "last"
"""


def _flood(snap: ZoneSnapshot, n: int, rng: random.Random) -> list[bytes]:
    """Keys of `n` nonexistent names: 1-3 random labels below the apex or a random owner."""
    owners = [name.to_wire().lower() for name in snap.nodes]  # type: ignore[union-attr]
    origin = snap.origin.to_wire().lower()  # type: ignore[union-attr]
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_*\x00\x01\xff"
    out = []
    for i in range(n):
        parent = origin if i % 2 else rng.choice(owners)
        name = parent
        for _ in range(rng.choice((1, 1, 2, 3))):
            label = bytes(rng.choices(alphabet, k=rng.choice((1, 3, 12, 12, 40, 63))))
            name = bytes((len(label),)) + label + name
        if len(name) <= 255:
            out.append(name + bytes((0, rng.choice((1, 1, 28, 15, 255)), 0, 1)))
    return out


def _compare(snap: ZoneSnapshot, n: int = 1500) -> ZoneImage:
    old = ZoneTable()
    old.publish(snap)
    new = ImageTable()
    img = ZoneImage.from_bytes(build_image(snap))
    new.install(img)
    keys = _flood(snap, n, random.Random(11))
    for key in keys + keys[:200]:  # some asked twice: admitted to the answer cache
        for do in (0, 1):
            want = old.lookup(key, do)
            got = new.lookup(key, do)
            assert got == want, f"{dns.name.from_wire(key, 0)[0]!r} DO={do}"
    return img


@pytest.mark.parametrize("text", [EXAMPLE, ZONE, ZONE + PREFIXES],
                         ids=["example", "signed-zone-text", "prefixes"])
def test_unsigned_flood_answers_alike(text: str) -> None:
    img = _compare(snapshot_from_text(text, "example.", revision=1))
    assert img.memo  # the fast path answered (entries cached per question shape, not name)
    assert len(img.memo) <= negative.ENTRIES_MAX


@pytest.mark.parametrize("mode", ["nsec", "nsec3", "nsec3-salt-optout"])
@pytest.mark.parametrize("text", [EXAMPLE, ZONE + PREFIXES], ids=["example", "prefixes"])
def test_signed_flood_answers_alike(mode: str, text: str) -> None:
    img = _compare(signed_snapshot(mode, text=text))
    assert img.pieces  # the fast path answered, from pieces cached by denial index
    assert len(img.pieces) <= img.count


def test_proof_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(negative, "PIECES_MAX", 8)
    monkeypatch.setattr(negative, "ENTRIES_MAX", 16)
    img = _compare(signed_snapshot("nsec", text=ZONE + PREFIXES), n=800)
    assert len(img.pieces) <= 8 and len(img.memo) <= 16


def test_the_root_zone_takes_the_general_path() -> None:
    root = snapshot_from_text("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n"
                              "com 300 NS ns.com\nns.com 300 A 192.0.2.2\n", ".", revision=1)
    img = _compare(root, n=300)
    assert not img.memo
    snap = dataclasses.replace(signed_snapshot("nsec", text=EXAMPLE), revision=2)
    assert negative.nxdomain(ZoneImage.from_bytes(build_image(snap)),
                             b"\x03nxx\x07example\x00", 1, 17, 1) is not None
