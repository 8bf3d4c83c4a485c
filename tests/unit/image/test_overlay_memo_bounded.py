"""The RR-tails memo an `ImageBuilder` carries across overlays is bounded: a zone whose one
name changes again and again never grows its overlay enough to merge, and each version's
reads are new RRset objects (the replica's packed owners make them on every read), so a
memo kept until the next merge grew by several RRsets per version, for good."""

from __future__ import annotations

import dataclasses

import pytest

from node.image import overlay
from node.image.overlay import ImageBuilder
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import plain


def _packed(snap: ZoneSnapshot, prev: ZoneSnapshot | None) -> ZoneSnapshot:
    """`snap` as the replica hands it on: packed owners, the owners changed since `prev`."""
    changed = None if prev is None else frozenset(
        o for o in snap.nodes.keys() | prev.nodes.keys()
        if dict(snap.nodes.get(o, {})) != dict(prev.nodes.get(o, {})))
    nodes = {o: {rt: rr.copy() for rt, rr in t.items()} for o, t in snap.nodes.items()}
    return dataclasses.replace(snap, nodes=nodes, changed=changed)


def test_the_memo_stays_bounded_while_one_name_keeps_changing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlay, "MEMO_MAX", 32, raising=False)
    builder = ImageBuilder(max_share=1.0)  # never merge: every later version is an overlay
    prev = None
    sizes = []
    for i in range(1, 200):
        snap = plain(i, f"added A 192.0.2.{i % 3 + 1}\n")
        _, base = builder.build(_packed(snap, prev))
        assert (base is None) == (i == 1)
        prev = snap
        sizes.append(len(builder._memo))
    assert max(sizes) <= 64, sizes[-5:]
