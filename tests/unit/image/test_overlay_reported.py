"""Overlays from reported changes: `ImageBuilder` finds an overlay's content from what
`CompiledZone.evolve(..., reuse=True)` and `DenialIndex.evolve` report (no walk of the
zone), and the result equals a full build.

Each version of a chain (unsigned, NSEC, NSEC3, NSEC3 with salt and opt-out, the
signed ones signed incrementally as a node does) is checked three ways:

* the builder's own evolved zone (its indexes taken over version after version)
  equals a full compile of the snapshot: answers, names, empty non-terminal counts,
  cuts, the denial chain;
* the overlay covers every difference between full compiles of the base and of the
  version (answers, nodes, NSEC/NSEC3 pieces: the chain neighbours of an added or
  deleted name included), and deletes exactly what went;
* the overlay on its base answers as `ZoneTable` does, byte for byte.

Changes: a name added at the end of the chain, a name below new empty non-terminals,
a new wildcard, a name deleted with its empty non-terminals, a delegation added over
an existing name and a new one with glue, both removed again with a wildcard, and the
deleted empty non-terminals back.
"""

from __future__ import annotations

import pytest

from node.image import ImageTable, ZoneImage
from node.image.builder import Delta
from node.image.layout import canonical_key
from node.image.overlay import IN_BASE, ImageBuilder
from node.server.compile import CompiledZone
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.image.test_image_differential import _keys
from tests.unit.server.ixfr_versions import BASE, sign_versions
from tests.unit.server.signed_zone import ORIGIN

DELEG = "web NS ns.other.net.\nsub NS ns.sub\nns.sub A 192.0.2.60\n"
STEPS: list[tuple[str, tuple[str, ...]]] = [  # (extra lines, dropped line prefixes)
    ("", ()),
    ("zz-last A 192.0.2.44\n", ()),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n", ()),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n*.nw TXT \"new\"\n", ()),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n*.nw TXT \"new\"\n", ("a.b.c.ent",)),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n*.nw TXT \"new\"\n" + DELEG,
     ("a.b.c.ent",)),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n*.nw TXT \"new\"\n",
     ("a.b.c.ent", "*.wild")),
    ("zz-last A 192.0.2.44\nx.y.ent2 A 192.0.2.45\n", ("*.wild", "mail ")),
]


def _plain(serial: int, extra: str, drops: tuple[str, ...]) -> ZoneSnapshot:
    text = BASE.replace("hostmaster 1 ", f"hostmaster {serial} ")
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(drops)) + "\n"
    return snapshot_from_text(text + extra, ORIGIN, revision=serial,
                              allow_transfer=["127.0.0.0/8"])


def versions(mode: str | None) -> list[ZoneSnapshot]:
    plains = [_plain(i, extra, drops) for i, (extra, drops) in enumerate(STEPS, start=1)]
    return sign_versions(plains, mode)


def _same_compile(got: CompiledZone, want: CompiledZone) -> None:
    # answers of the base, written in its image, are kept only as `IN_BASE` (issue 10)
    assert got.answers.keys() == want.answers.keys()
    assert all(e is IN_BASE or e == want.answers[k] for k, e in got.answers.items())
    assert got.names.keys() == want.names.keys()
    assert got.below == want.below
    assert got.cuts == want.cuts
    if want.denial is not None:
        assert got.denial is not None
        assert got.denial.keys == want.denial.keys
        # the base's pieces, in its image, are rendered again when read (`BasePieces`)
        assert {k: got.denial.pieces[k] for k in got.denial.pieces} == want.denial.pieces


def _node(zone: CompiledZone, name: bytes) -> tuple[object, ...]:
    types = zone.names.get(name)
    return (None if types is None else sorted(types), bool(zone.below.get(name)),
            name in zone.cuts)


def _covers(delta: Delta, base: CompiledZone, now: CompiledZone) -> None:
    """Every difference between two full compiles is in the overlay; deletions exact."""
    changed = {k for k, e in now.answers.items() if base.answers.get(k) != e}
    assert changed <= set(delta.answers)
    assert set(delta.gone_answers) == base.answers.keys() - now.answers.keys()
    def alive(z: CompiledZone) -> set[bytes]:
        return set(z.names) | set(z.below)
    differ = {n for n in alive(now) if _node(base, n) != _node(now, n)}
    assert differ <= set(delta.nodes)
    assert set(delta.gone_nodes) == alive(base) - alive(now)
    if now.denial is None:
        return
    assert base.denial is not None
    old, new = base.denial.pieces, now.denial.pieces
    assert {k for k, p in new.items() if old.get(k) != p} <= set(delta.denial)
    gone = old.keys() - new.keys()
    if not now.denial.nsec3:
        gone = {canonical_key(old[k][0]) for k in gone}
    assert set(delta.gone_denial) == gone


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3", "nsec3-salt-optout"])
def test_overlay_from_reported_changes_equals_a_full_build(mode: str | None) -> None:
    builder = ImageBuilder(max_share=1.0)  # never merge: every later version an overlay
    table = ZoneTable()
    snaps = versions(mode)
    base_zone = CompiledZone.build(snaps[0])
    base: ZoneImage | None = None
    for snap in snaps:
        table.publish(snap)
        data, base_revision = builder.build(snap)
        zone = builder._zone
        assert zone is not None
        full = CompiledZone.build(snap)
        _same_compile(zone, full)
        if base_revision is None:
            image = base = ZoneImage.from_bytes(data)
        else:
            assert base is not None and base_revision == base.revision
            delta = builder.delta()
            assert delta is not None
            _covers(delta, base_zone, full)
            image = ZoneImage.from_bytes(data, base=base)
            assert image.overlay
        served = ImageTable()
        served.install(image)
        for key in _keys([snap], seed=snap.serial):
            for do in (0, 1):
                assert served.lookup(key, do) == table.lookup(key, do), \
                    f"v{snap.serial} {key!r} DO={do}"


def test_evolve_reports_what_it_replaced() -> None:
    a, b = versions(None)[:2]
    prev = CompiledZone.build(a)
    kept = dict(prev.answers)
    zone = CompiledZone.evolve(prev, b)  # a copy: prev unchanged
    assert prev.answers == kept
    added = b"\x07zz-last\x07example\x00\x00\x01\x00\x01"
    assert zone.touched[added] is None and added in zone.answers
    apex_soa = b"\x07example\x00\x00\x06\x00\x01"
    assert zone.touched[apex_soa] is kept[apex_soa]  # the serial: re-rendered
    assert set(zone.touched) < set(zone.answers) | {added}
    again = CompiledZone.evolve(CompiledZone.build(a), b, reuse=True)
    assert again.answers == zone.answers


def test_a_failed_evolve_starts_the_next_image_from_a_full_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = versions(None)
    builder = ImageBuilder(max_share=1.0)
    builder.build(snaps[0])
    real = CompiledZone.evolve

    def fails_half_way(prev: CompiledZone, snap: ZoneSnapshot, reuse: bool = False) -> None:
        real(prev, snap, reuse)  # prev's indexes updated in place, then a failure
        raise RuntimeError("compile failed")

    monkeypatch.setattr(CompiledZone, "evolve", fails_half_way)
    with pytest.raises(RuntimeError):
        builder.build(snaps[1])
    monkeypatch.undo()
    _, base_revision = builder.build(snaps[2])
    assert base_revision is None  # no half-updated state reused: a full image
