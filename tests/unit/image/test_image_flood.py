"""The random-subdomain flood on images: NXDOMAIN assembled from pieces cached by proof
(`node.image.negative`) equals `ZoneTable`'s answer byte for byte, whatever the name's
length, depth and octets, and its caches stay bounded however many names are asked.
Overlays' merged proofs on that path: `test_image_overlay.py` (the differential keys)."""

from __future__ import annotations

import dataclasses
import random

import dns.name
import dns.rdatatype
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


def _compare(snap: ZoneSnapshot, n: int = 1500, extra: tuple[bytes, ...] = ()) -> ZoneImage:
    old = ZoneTable()
    old.publish(snap)
    new = ImageTable()
    img = ZoneImage.from_bytes(build_image(snap))
    new.install(img)
    keys = [*extra, *_flood(snap, n, random.Random(11))]
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
    assert img.bodies is not None and any(img.bodies)  # and whole entries cached by proof
    assert len(img.bodies) == negative.BODIES


@pytest.mark.parametrize("mode", ["nsec3", "nsec3-salt-optout"])
def test_questions_naming_nsec3_owners_answer_alike(mode: str) -> None:
    """An NSEC3 owner name (or a name below one) asked as a question: a proof piece's owner
    may then be compressed against the question, so that entry is never reused for another
    name of the same length and proof (each asked twice, in both orders)."""
    snap = signed_snapshot(mode, text=ZONE + PREFIXES)
    owners = [n.to_wire().lower() for n, types in snap.nodes.items()  # type: ignore[union-attr]
              if dns.rdatatype.NSEC3 in types]
    twins = [b"\x20" + bytes(reversed(o[1:33])) + o[33:] for o in owners]  # same length
    keys = [k + b"\x00\x01\x00\x01" for o in owners for k in (o, b"\x01a" + o)]
    twin_keys = [t + b"\x00\x01\x00\x01" for t in twins]
    _compare(snap, n=50, extra=(*twin_keys, *keys, *twin_keys, *keys))


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_proof_caches_stay_bounded(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(negative, "PIECES_MAX", 8)
    monkeypatch.setattr(negative, "ENTRIES_MAX", 16)
    monkeypatch.setattr(negative, "BODIES", 4)  # proofs share slots: replaced, still equal
    img = _compare(signed_snapshot(mode, text=ZONE + PREFIXES), n=800)
    assert len(img.pieces) <= 8 and len(img.memo) <= 16
    assert img.bodies is not None and len(img.bodies) == 4


def test_a_flood_never_evicts_hot_answers_nor_clears_the_proof_entries() -> None:
    """Pre-rendered answers stay in the answer cache through a flood of one-off names, and
    the whole-entry table fills slot by slot (one proof replaces another, never all)."""
    snap = signed_snapshot("nsec3", text=ZONE + PREFIXES)
    table = ImageTable()
    img = ZoneImage.from_bytes(build_image(snap))
    table.install(img)
    hot = [n.to_wire().lower() + b"\x00\x01\x00\x01"  # type: ignore[union-attr]
           for n, types in snap.nodes.items() if dns.rdatatype.A in types]
    for k in hot:
        table.lookup(k, 1)
    before = dict(table.caches[1])  # the pre-rendered ones (glue is not: below a cut)
    assert len(before) > 40
    filled = 0
    for key in _flood(snap, 3000, random.Random(5)):
        table.lookup(key, 1)
        now = sum(1 for b in img.bodies or () if b is not None)
        assert now >= filled
        filled = now
    assert filled
    assert all(table.caches[1].get(k) is e for k, e in before.items())


def test_the_root_zone_takes_the_general_path() -> None:
    root = snapshot_from_text("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n"
                              "com 300 NS ns.com\nns.com 300 A 192.0.2.2\n", ".", revision=1)
    img = _compare(root, n=300)
    assert not img.memo
    snap = dataclasses.replace(signed_snapshot("nsec", text=EXAMPLE), revision=2)
    assert negative.nxdomain(ZoneImage.from_bytes(build_image(snap)),
                             b"\x03nxx\x07example\x00", 1, 17, 1) is not None
