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
from pathlib import Path

import dns.name
import pytest

from node.image.basepieces import compile_base, name_key
from node.image.overlay import ImageBuilder
from node.server.answer import name_wire
from node.server.proofs import wire_key
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import plain, sign_versions

N = 3000


def _held(snap: ZoneSnapshot, directory: Path, fork: bool = False) -> tuple[ImageBuilder, int]:
    """What the builder holds once its full image of `snap` is written under `directory`
    (the file is mapped, not traced: its pages are the page cache's, shared)."""
    gc.collect()
    tracemalloc.start()
    try:
        builder = ImageBuilder(fork=fork)
        _, base = builder.write(snap, directory)
        assert base is None
        gc.collect()
        return builder, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "forked"])
def test_the_base_holds_less_than_its_rendered_answers(tmp_path: Path, fork: bool) -> None:
    """Nor a key per answer or name: which answers and names the base has is read from its
    image (issue 10, memory: a bytes object and a dict entry each, 12 and 11 MiB of the
    100k-name zone)."""
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\nhost{k} TXT \"t{k}\"\n" for k in range(N))
    snap = plain(1, hosts)
    _, held = _held(snap, tmp_path, fork)
    per_rrset = held / (2 * N)
    bound = 40  # now 2; before: 156 (a key per answer and per name)
    assert per_rrset < bound, f"the builder holds {per_rrset:.0f} bytes per RRset of its base"


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_a_signed_base_keeps_no_rendered_denial_pieces(mode: str, tmp_path: Path) -> None:
    """The NSEC/NSEC3 records and their RRSIGs rendered per owner (~70% of a signed base)
    are in the image: the base keeps the chain's keys, and what an overlay reads of an
    unchanged neighbour is rendered again from the snapshot."""
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\n" for k in range(N))
    snap = sign_versions([plain(1, hosts)], mode)[0]
    rrsets = sum(len(types) for types in snap.nodes.values())
    _, held = _held(snap, tmp_path)
    per_rrset = held / rrsets
    # before: 255 and 178; 133 and 79 with a key per answer and per name, the NSEC3 chain
    # in a list
    bound = {"nsec": 80, "nsec3": 25}[mode]  # now 50 (the NSEC chain's keys) and 6
    assert per_rrset < bound, f"the builder holds {per_rrset:.0f} bytes per RRset of its base"


@pytest.mark.parametrize("text", ["Mixed.CASE.example.", "a.b.example.", "x\\.y.example.",
                                  "\\000.\\001b.example.", "."])
def test_a_chain_key_from_a_name_equals_the_one_from_its_wire_form(text: str) -> None:
    name = dns.name.from_text(text)
    assert name_key(name) == wire_key(name_wire(name))


def test_a_signed_base_keeps_its_chain_keys_in_the_owners_own_labels() -> None:
    """Issue 10 (memory): the lean base keeps a key per NSEC owner for as long as it lives;
    made from the owner's wire form, each had its own copy of every label (12 of the 51
    MiB the base held at 100k names); made from the owner's `Name`, lowercase labels
    are the name's own objects."""
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\n" for k in range(50))
    snap = sign_versions([plain(1, hosts)], "nsec")[0]
    base = compile_base(snap)
    assert base.denial is not None
    labels = {id(label) for name in snap.nodes for label in name.labels}
    keys = [k for k in base.denial.keys if k]
    assert len(keys) > 50
    copies = [k for k in keys if not all(id(label) in labels for label in k)]
    assert not copies, f"{len(copies)} of {len(keys)} keys hold their own labels: {copies[:3]}"
