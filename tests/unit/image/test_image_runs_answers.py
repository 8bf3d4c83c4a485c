"""Layout 5's runs answers (`layout.RUNS_ANSWER`): a signed full image's answers without an
additional section are read from their node's RR and RRSIG runs, not stored as bodies.

Each must read as the bodies layout 4 stored: the compiled zone's eager DO=0 answer and
`secure.resolve`'s DO=1 answer, flags and counts included, for single- and many-RR sets
(the runs are then split into RRs, each after its pointer to the question)."""

from __future__ import annotations

import pytest

from node.image import build_image
from node.image import layout as L
from node.image.reader import ZoneImage
from node.server import secure
from node.server.compile import CompiledZone
from node.zones.model import snapshot_from_text
from tests.unit.server.signed_zone import ORIGIN, ZONE, signed_snapshot

_ANSWER = bytes((L.KIND_ANSWER,))


def _variant(entry: tuple) -> tuple[int, int, int, int, bytes]:  # type: ignore[type-arg]
    hdr = entry[0][0]
    counts = [int.from_bytes(hdr[i:i + 2], "big") for i in (4, 6, 8)]
    return entry[5], counts[0], counts[1], counts[2], entry[2]


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_runs_answers_read_as_the_bodies_layout_4_stored(mode: str) -> None:
    snap = signed_snapshot(mode)
    zone = CompiledZone.build(snap)
    img = ZoneImage.from_bytes(build_image(snap))
    runs = {1: 0, 2: 0}  # runs answers by RR count (one, several)
    for key, entry in zone.answers.items():
        hkey, owner, qtype = key[:-2], key[:-4], int.from_bytes(key[-4:-2], "big")
        assert img.answer(hkey, 0) == _variant(entry), (owner, qtype)
        assert img.answer(hkey, 1) == _variant(secure.resolve(zone, owner, qtype)), (owner, qtype)
        off = img._record(hkey, _ANSWER)
        if img._buf[off] == L.RUNS_ANSWER:
            assert qtype not in (L.NS, L.MX, L.SRV)  # those have an additional section
            runs[min(2, _variant(entry)[1])] += 1
    assert runs[1] > 5 and runs[2] >= 1, runs  # `big` TXT: several RRs in one run


def test_unsigned_images_hold_no_runs_answers() -> None:
    plain = snapshot_from_text(ZONE, ORIGIN, revision=1)
    img = ZoneImage.from_bytes(build_image(plain))
    for key in CompiledZone.build(plain).answers:
        assert img._buf[img._record(key[:-2], _ANSWER)] == 1  # one stored variant
