"""A kept overlay (`GrowingOverlay`) after many versions: each version appends only what it
changed, and the overlay on its base answers as a full compile of that version does.

The chain: names added one per version next to each other (so every new name
changes its chain neighbours' NSEC/NSEC3), every third one deleted again two
versions later and some re-added, an existing name's address changed, a
delegation with glue added over new names and removed again; unsigned and
signed (NSEC, NSEC3), signed incrementally as a node does. Every version is
compared with a full compile (`ZoneTable` given the snapshot without `changed`),
for the owners of this and the previous version, their ancestors, and
nonexistent names below and next to them (NXDOMAIN and NODATA proofs next to
changed and removed names), DO=0 and DO=1. Also with the region rebuilt every
few versions (a tiny garbage bound), so versions after a rebuild are covered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from node.image import ImageTable, ZoneImage, growing
from node.image.overlay import ImageBuilder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.image.test_image_differential import _keys
from tests.unit.server.ixfr_versions import BASE, sign_versions
from tests.unit.server.signed_zone import ORIGIN

VERSIONS = 16  # steps 0-15: every kind of change (a delete, a re-add and the delegation gone
# at step 14) and, with the region rebuilt often, three rebuilds with versions after them


def _text(step: int) -> str:
    """The zone at `step`: names n00..n<step> (less the deleted ones) and the rest."""
    lines = []
    for i in range(1, step + 1):
        deleted = i % 3 == 0 and step >= i + 2 and not (i % 9 == 0 and step >= i + 5)
        if not deleted:
            lines.append(f"n{i:02d} A 192.0.2.{100 + i}")
    if 8 <= step < 14:  # a delegation with glue over names that exist, then gone again
        lines += ["n05 NS ns.n05", "ns.n05 A 192.0.2.99"]
    text = BASE.replace("hostmaster 1 ", f"hostmaster {step + 1} ")
    if step >= 6:
        text = text.replace("192.0.2.3\n", f"192.0.2.{200 + step}\n")  # web A changes
    return text + "\n".join(lines) + "\n"


def _added(step: int) -> str:
    """The zone at `step` with one name more per step (n01..n<step>)."""
    text = BASE.replace("hostmaster 1 ", f"hostmaster {step + 1} ")
    return text + "".join(f"n{i:02d} A 192.0.2.{100 + i}\n" for i in range(1, step + 1))


def versions(mode: str | None, count: int = VERSIONS,
             text: Callable[[int], str] = _text) -> list[ZoneSnapshot]:
    plains = [snapshot_from_text(text(i), ORIGIN, revision=i + 1,
                                 allow_transfer=["127.0.0.0/8"]) for i in range(count)]
    return sign_versions(plains, mode)


def _full(snap: ZoneSnapshot) -> ZoneTable:
    table = ZoneTable()
    table.publish(dataclasses.replace(snap, changed=None))  # a full compile
    return table


@pytest.mark.parametrize("rebuild_often", [False, True], ids=["kept", "rebuilt"])
@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
def test_many_versions_answer_as_a_full_compile(
        mode: str | None, rebuild_often: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if rebuild_often:
        monkeypatch.setattr(growing, "GARBAGE_BYTES", 1)  # rebuilt when it doubled
    builder = ImageBuilder(max_share=1.0)  # never a full image after the first
    snaps = versions(mode)
    base: ZoneImage | None = None
    for i, snap in enumerate(snaps):
        data, base_revision = builder.build(snap)
        if base_revision is None:
            image = base = ZoneImage.from_bytes(data)
        else:
            assert base is not None and base_revision == base.revision
            image = ZoneImage.from_bytes(data, base=base)
        served = ImageTable()
        served.install(image)
        want = _full(snap)
        for key in _keys(snaps[max(0, i - 1) : i + 1], seed=i):
            for do in (0, 1):
                assert served.lookup(key, do) == want.lookup(key, do), \
                    f"v{snap.serial} {key!r} DO={do}"
    assert base is not None and base.revision == snaps[0].revision


def test_each_version_writes_only_what_it_changed() -> None:
    """One name added per version: the records a version appends stay the same few while
    the overlay (everything since the base) keeps growing."""
    builder = ImageBuilder(max_share=1000.0)  # (a tiny zone: a share of it would be small)
    written, entries = [], []
    for snap in versions("nsec", 40, _added):
        _, base_revision = builder.build(snap)
        grown = builder._growing
        if base_revision is not None and grown is not None:
            written.append(grown.written)
            entries.append(grown.entries)
    first = max(written[:3])
    assert max(written[3:]) <= first + 8, written
    assert entries[-1] > 4 * first, entries


def test_a_version_that_failed_half_way_is_rebuilt_next_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after some of a version's records were appended (here: writing a denial
    piece) leaves no half-updated region behind: the next version rebuilds the overlay."""
    snaps = versions("nsec", 6, _added)
    builder = ImageBuilder(max_share=1000.0)
    full, _ = builder.build(snaps[0])
    base = ZoneImage.from_bytes(full)
    for snap in snaps[1:3]:
        builder.build(snap)

    def fails(self: object, key: object) -> int:
        raise RuntimeError("piece failed")

    monkeypatch.setattr(growing._Writer, "piece", fails)
    with pytest.raises(RuntimeError):
        builder.build(snaps[3])
    monkeypatch.undo()
    for i, snap in enumerate(snaps[4:], start=4):
        data, base_revision = builder.build(snap)
        assert base_revision == base.revision
        served = ImageTable()
        served.install(ZoneImage.from_bytes(data, base=base))
        want = _full(snap)
        for key in _keys(snaps[i - 2 : i + 1], seed=i):
            for do in (0, 1):
                assert served.lookup(key, do) == want.lookup(key, do), \
                    f"v{snap.serial} {key!r} DO={do}"


def _referrals(step: int) -> str:
    """A delegation whose referral names glue elsewhere in the zone (ns1, the apex's name
    server) and an insecure one: both come after the base, then the glue's address changes
    and names come right after the insecure delegation (open0 in NSEC order, x2 in NSEC3
    hash order: the DO=1 referral's proof that it has no DS changes); the delegations
    themselves stay as they were."""
    text = BASE.replace("hostmaster 1 ", f"hostmaster {step + 1} ")
    if step >= 1:
        text += "sib NS ns1\nopen NS ns.other.net.\n"
    if step >= 2:
        text = text.replace("192.0.2.1\n", "192.0.2.77\n")  # ns1 A
    if step >= 3:
        text += "open0 A 192.0.2.78\nx2 A 192.0.2.79\n"  # next to open: NSEC; NSEC3 (hash)
    return text


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
def test_a_kept_referral_follows_its_glue_and_proof(mode: str | None) -> None:
    """A cut's node written by an earlier version is kept while the cut is unchanged, but
    its referral also holds the glue of names elsewhere and (DO=1) the cut's NSEC: each
    version answers as a full compile does."""
    snaps = versions(mode, 4, _referrals)
    builder = ImageBuilder(max_share=1.0)
    base = ZoneImage.from_bytes(builder.build(snaps[0])[0])
    for i, snap in enumerate(snaps[1:], start=1):
        data, base_revision = builder.build(snap)
        assert base_revision == base.revision
        served = ImageTable()
        served.install(ZoneImage.from_bytes(data, base=base))
        want = _full(snap)
        for key in _keys(snaps[i - 1 : i + 1], seed=i):
            for do in (0, 1):
                assert served.lookup(key, do) == want.lookup(key, do), \
                    f"v{snap.serial} {key!r} DO={do}"
