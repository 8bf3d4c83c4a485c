"""DNAMEs coming and going in a chain of image overlays, unsigned and signed, answered as
the compiled zone answers (byte for byte, DO=0 and DO=1): a DNAME over a wildcard, one
above a delegation (which it occludes, referral variant included), one at the apex (which
occludes the whole zone), each removed again."""

from __future__ import annotations

import dns.name
import pytest

from node.image import ImageTable, ZoneImage
from node.image.overlay import ImageBuilder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
from tests.unit.image.test_image_differential import _keys
from tests.unit.server.ixfr_versions import plain, sign_versions

OLD = "old DNAME wild.example.\n"
ABOVE_CUT = "y DNAME other.test.\n"
STEPS = ["", OLD, OLD + ABOVE_CUT, ABOVE_CUT, "", "@ DNAME other.test.\n", ""]
DNAME_OWNERS = ["old.example.", "y.example.", "example.", "x.y.example.", "deep.x.y.example."]


def versions(mode: str | None) -> list[ZoneSnapshot]:
    return sign_versions([plain(i, extra) for i, extra in enumerate(STEPS, start=1)], mode)


def _dname_keys() -> list[bytes]:
    out = []
    for owner in DNAME_OWNERS:
        wire = dns.name.from_text(owner).to_wire()
        for prefix in (b"", b"\x01a", b"\x01a\x01b"):
            for qtype in (1, 5, 39, 2, 43):  # A, CNAME, DNAME, NS, DS
                out.append(prefix + wire + qtype.to_bytes(2, "big") + b"\x00\x01")
    return out


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
def test_dname_overlays_answer_as_the_compiled_zone(mode: str | None) -> None:
    builder = ImageBuilder(max_share=1.0)  # never merge: every later version is an overlay
    old = ZoneTable()
    base: ZoneImage | None = None
    for snap in versions(mode):
        old.publish(snap)
        data, base_revision = builder.build(snap)
        image = base = ZoneImage.from_bytes(data) if base_revision is None else base
        if base_revision is not None:
            image = ZoneImage.from_bytes(data, base=base)
        new = ImageTable()
        new.install(image)
        full = ImageTable()
        full.install(ZoneImage.from_bytes(ImageBuilder().build(snap)[0]))
        for key in _keys([snap], seed=snap.serial) + _dname_keys():
            for do in (0, 1):
                want = old.lookup(key, do)
                assert new.lookup(key, do) == want, f"v{snap.serial} {key!r} DO={do} overlay"
                assert full.lookup(key, do) == want, f"v{snap.serial} {key!r} DO={do} full"
