"""The image builder's base keeps no rendered answers once its full image is written.

Issue 10 (memory): `ImageBuilder` keeps the compiled zone of its last full
image in the control process, to evolve overlays from it. The full image
has every rendered answer; the compiled zone kept them too (~40% of what the
builder held). An overlay needs, per answer key, only to know that the base
had one, not its bytes.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from node.image.overlay import ImageBuilder
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import plain, sign_versions

N = 3000


def test_the_base_holds_less_than_its_rendered_answers() -> None:
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\nhost{k} TXT \"t{k}\"\n" for k in range(N))
    snap = plain(1, hosts)
    gc.collect()
    tracemalloc.start()
    try:
        builder = ImageBuilder()
        data, base = builder.build(snap)
        assert base is None
        del data
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_rrset = held / (2 * N)
    assert per_rrset < 220, f"the builder holds {per_rrset:.0f} bytes per RRset of its base"


def _held(snap: ZoneSnapshot) -> tuple[ImageBuilder, int]:
    gc.collect()
    tracemalloc.start()
    try:
        builder = ImageBuilder()
        data, base = builder.build(snap)
        assert base is None
        del data
        gc.collect()
        return builder, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_a_signed_base_keeps_no_rendered_denial_pieces(mode: str) -> None:
    """The NSEC/NSEC3 records and their RRSIGs rendered per owner (~70% of a signed base)
    are in the image: the base keeps the chain's keys, and what an overlay reads of an
    unchanged neighbour is rendered again from the snapshot."""
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\n" for k in range(N))
    snap = sign_versions([plain(1, hosts)], mode)[0]
    rrsets = sum(len(types) for types in snap.nodes.values())
    _, held = _held(snap)
    per_rrset = held / rrsets
    bound = {"nsec": 150, "nsec3": 100}[mode]  # before: 255 and 178 (now 134 and 79)
    assert per_rrset < bound, f"the builder holds {per_rrset:.0f} bytes per RRset of its base"
