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

from node.image.overlay import ImageBuilder
from tests.unit.server.ixfr_versions import plain

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
