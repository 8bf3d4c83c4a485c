"""Overlays: successive versions of a zone as small overlays on its last full image answer
byte for byte as `ZoneTable` serving the same versions (evolved incrementally).

Versions: a record added, a name added below new empty non-terminals, a name
deleted, a wildcard deleted, an existing name turned into a delegation (its
data occluded), the delegation removed again; unsigned and signed (NSEC,
NSEC3, NSEC3 with opt-out), the signed ones signed incrementally as a node
does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.image import ImageTable, ZoneImage
from node.image.overlay import ImageBuilder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
from tests.unit.image.test_image_differential import _keys
from tests.unit.server.ixfr_versions import plain, sign_versions

STEPS = [  # (extra lines, dropped line prefix)
    ("", ""),
    ("added A 192.0.2.44\n", ""),
    ("added A 192.0.2.44\nnew.deep.er A 192.0.2.45\n", ""),
    ("added A 192.0.2.44\nnew.deep.er A 192.0.2.45\n", "mail "),
    ("added A 192.0.2.44\nnew.deep.er A 192.0.2.45\n", "*.wild"),
    ("added A 192.0.2.44\nnew.deep.er A 192.0.2.45\nweb NS ns.other.net.\n", "*.wild"),
    ("added A 192.0.2.44\nnew.deep.er A 192.0.2.45\n", "*.wild"),
]


def versions(mode: str | None) -> list[ZoneSnapshot]:
    plains = [plain(i, extra, drop) for i, (extra, drop) in enumerate(STEPS, start=1)]
    return sign_versions(plains, mode)


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3", "nsec3-salt-optout"])
def test_overlays_answer_as_the_compiled_zone(mode: str | None) -> None:
    builder = ImageBuilder(max_share=1.0)  # never merge: every later version is an overlay
    old = ZoneTable()
    base: ZoneImage | None = None
    overlays = 0
    for snap in versions(mode):
        old.publish(snap)
        data, base_revision = builder.build(snap)
        if base_revision is None:
            image = base = ZoneImage.from_bytes(data)
        else:
            assert base is not None and base_revision == base.revision
            image = ZoneImage.from_bytes(data, base=base)
            # (no size bound here: a kept overlay also carries the records it replaced, up to
            # its bound; test_overlay_growing checks that bound)
            assert image.overlay
            overlays += 1
        assert (image.serial, image.revision) == (snap.serial, snap.revision)
        new = ImageTable()
        new.install(image)
        for key in _keys([snap], seed=snap.serial):
            for do in (0, 1):
                want = old.lookup(key, do)
                got = new.lookup(key, do)
                assert got == want, f"v{snap.serial} {key!r} DO={do}"
    assert overlays == len(STEPS) - 1


def test_overlay_grows_into_a_full_image() -> None:
    builder = ImageBuilder(max_share=0.0)
    kinds = [builder.build(s)[1] for s in versions(None)[:3]]
    assert kinds[0] is None
    assert builder.base_revision is not None


def test_overlay_needs_its_base() -> None:
    snaps = versions(None)[:2]
    builder = ImageBuilder(max_share=1.0)
    full, _ = builder.build(snaps[0])
    over, rev = builder.build(snaps[1])
    assert rev == snaps[0].revision
    with pytest.raises(Exception, match="overlay applies to revision"):
        ZoneImage.from_bytes(over)
    other = ZoneImage.from_bytes(ImageBuilder().build(snaps[1])[0])
    with pytest.raises(Exception, match="overlay applies to revision"):
        ZoneImage.from_bytes(over, base=other)
    assert ZoneImage.from_bytes(over, base=ZoneImage.from_bytes(full)).serial == 2


def test_overlay_files_map_onto_their_base(tmp_path: Path) -> None:
    snaps = versions(None)[:2]
    builder = ImageBuilder(max_share=1.0)
    full_path, none = builder.write(snaps[0], tmp_path)
    over_path, rev = builder.write(snaps[1], tmp_path)
    assert none is None and full_path.name == "example.1.1.img"
    assert rev == 1 and over_path.name == "example.2.2+1.ovl"
    assert sorted(p.name for p in tmp_path.iterdir()) == [full_path.name, over_path.name]
    image = ZoneImage.open(over_path, base=ZoneImage.open(full_path))
    table = ImageTable()
    table.install(image)
    entry = table.lookup(b"\x05added\x07example\x00\x00\x01\x00\x01", 0)
    assert entry is not None
    assert entry[5] == 0x8400 and entry[0][0][4:6] == b"\x00\x01"  # QR AA, one answer
