"""`ImageBuilder`: a zone's next image as a small overlay on its last full image.

Worker-side, like `node.image.builder` (which it uses): keeps, per zone, the
`CompiledZone` of the last full image (the base) and of the latest version,
and evolves the latter with `CompiledZone.evolve` for each new snapshot (the
same incremental compile `ZoneTable` uses). The overlay written for a version
holds everything that differs from the base, cumulatively, so a reader only
ever stacks one overlay on one full image (`ZoneImage.open(path, base=...)`):

* answer records whose entry `evolve` re-rendered (or dropped: tombstones);
* the nodes of the names changed since the base, of all their ancestors
  (empty non-terminal flags) and, when a cut came or went, of the names below
  it; nodes that went are tombstones;
* the NSEC/NSEC3 pieces that changed or went (re-signed records included);
* the header's serial, revision and negative SOA runs.

A change to one record of a signed 100k-name zone costs an evolve and a walk
of the answer and denial dicts by identity (no rendering of unchanged data).
When the overlay grows past `max_share` of the base (or the zone's signing
mode or NSEC3 parameters change, or a snapshot comes without `changed`), the
next call returns a full image and makes it the base; `merge(snapshot)`
does that on demand (for instance from an idle worker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from node.image import layout as L
from node.image.builder import Delta, ImageWriter, image_name, paused_gc, write_bytes
from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

MAX_SHARE = 0.05


class ImageBuilder:
    """Builds one zone's successive images: full, then overlays on the last full one."""

    __slots__ = ("_base", "_changed", "_zone", "max_share")

    def __init__(self, max_share: float = MAX_SHARE) -> None:
        self.max_share = max_share
        self._base: CompiledZone | None = None
        self._zone: CompiledZone | None = None
        self._changed: set[bytes] = set()  # names changed since the base

    @property
    def base_revision(self) -> int | None:
        """The revision of the full image the next overlay applies to (None: no base)."""
        return None if self._base is None else self._base.snapshot.revision

    def merge(self, snapshot: ZoneSnapshot) -> bytes:
        """A full image of `snapshot`, which becomes the base of the next overlays."""
        with paused_gc():
            zone = CompiledZone.build(snapshot)
            self._base = self._zone = zone
            self._changed = set()
            data = ImageWriter(zone).image()
            zone.memo.clear()  # its per-version render cache (~20% of it); evolve starts anew
            return data

    def build(self, snapshot: ZoneSnapshot) -> tuple[bytes, int | None]:
        """The image of the next version: (bytes, None) for a full image, or (bytes, base
        revision) for an overlay on the full image of that revision."""
        prev = self._zone
        base = self._base
        if prev is None or base is None or not self._evolvable(prev, snapshot):
            return self.merge(snapshot), None
        assert snapshot.changed is not None
        with paused_gc():
            return self._next(prev, base, snapshot)

    def _next(self, prev: CompiledZone, base: CompiledZone,
              snapshot: ZoneSnapshot) -> tuple[bytes, int | None]:
        assert snapshot.changed is not None
        zone = CompiledZone.evolve(prev, snapshot)
        self._zone = zone
        self._changed.update(name_wire(n) for n in snapshot.changed)
        self._changed.add(zone.origin)
        delta = self._delta(base, zone)
        size = len(delta.answers) + len(delta.nodes) + len(delta.denial)
        if size > self.max_share * (len(base.answers) + len(base.names)) + 64:
            return self.merge(snapshot), None
        return ImageWriter(zone, delta).image(), delta.base_revision

    def write(self, snapshot: ZoneSnapshot, directory: Path) -> tuple[Path, int | None]:
        """`build`, written atomically under `directory` (`builder.image_name`)."""
        data, base = self.build(snapshot)
        return write_bytes(data, directory / image_name(snapshot, base)), base

    @staticmethod
    def _evolvable(prev: CompiledZone, snapshot: ZoneSnapshot) -> bool:
        if snapshot.changed is None or prev.snapshot.origin != snapshot.origin:
            return False
        if prev.snapshot.signed != snapshot.signed:
            return False
        if snapshot.signed:
            assert prev.denial is not None
            return prev.denial.same_params(snapshot.nodes.get(snapshot.origin, {}))
        return True

    def _delta(self, base: CompiledZone, zone: CompiledZone) -> Delta:
        old = base.answers
        answers = tuple(k for k, e in zone.answers.items() if old.get(k) is not e)
        gone_answers = tuple(k for k in old if k not in zone.answers)
        nodes = self._nodes(base, zone)
        live = [n for n in nodes if n in zone.names or zone.below.get(n)]
        gone_nodes = tuple(n for n in nodes if n not in zone.names and not zone.below.get(n)
                           and (n in base.names or base.below.get(n)))
        denial: tuple[Any, ...] = ()
        gone_denial: tuple[bytes, ...] = ()
        if zone.denial is not None and base.denial is not None:
            new_p, old_p = zone.denial.pieces, base.denial.pieces
            denial = tuple(k for k, p in new_p.items() if old_p.get(k) is not p)
            gone = [k for k in old_p if k not in new_p]
            if zone.denial.nsec3:
                gone_denial = tuple(gone)
            else:
                gone_denial = tuple(L.canonical_key(old_p[k][0]) for k in gone)
        return Delta(base.snapshot.revision, answers, gone_answers, tuple(live), gone_nodes,
                     denial, gone_denial)

    def _nodes(self, base: CompiledZone, zone: CompiledZone) -> list[bytes]:
        """Changed names, their ancestors, and the names below a cut that came or went."""
        out: set[bytes] = set()
        origin = zone.origin
        for name in self._changed:
            n = name
            while n not in out:
                out.add(n)
                if n == origin or len(n) <= 1:
                    break
                n = n[n[0] + 1 :]
        cuts = base.cuts ^ zone.cuts
        if cuts:
            out.update(_below(zone.names, cuts))
            out.update(_below(base.names, cuts))
        return sorted(out, key=L.canonical_key)


def _below(names: Iterable[bytes], cuts: set[bytes]) -> list[bytes]:
    out = []
    for name in names:
        n = name
        while len(n) > 1:
            if n in cuts:
                out.append(name)
                break
            n = n[n[0] + 1 :]
    return out
