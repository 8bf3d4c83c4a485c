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

A change to one record of a signed 100k-name zone costs an evolve that takes
the previous version's indexes over (`reuse`: no copy; this builder is their
only user) and reports what it replaced (`CompiledZone.touched`,
`DenialIndex.before`); the builder keeps, per key and name touched since the
base, what the base had there, so the overlay is found without walking the
zone: O(changes since the base), not O(zone).
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
from node.server.proofs import Piece, SigCache
from node.server.render import Entry
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

MAX_SHARE = 0.05


class ImageBuilder:
    """Builds one zone's successive images: full, then overlays on the last full one."""

    __slots__ = ("_answers", "_base_revision", "_base_size", "_cut", "_denial", "_exists",
                 "_memo", "_zone", "max_share")

    def __init__(self, max_share: float = MAX_SHARE) -> None:
        self.max_share = max_share
        self._zone: CompiledZone | None = None  # the latest version, this builder's own
        self._memo: dict[int, Any] = {}  # CompiledZone.memo kept across overlays (RR tails)
        self._base_revision: int | None = None
        self._base_size = 0  # answers + names of the base
        # since the base, per key or name touched: what the base had
        self._answers: dict[bytes, Entry | None] = {}  # answer key -> base entry
        self._denial: dict[Any, Piece | None] = {}  # denial key -> base piece
        self._exists: dict[bytes, bool] = {}  # changed name or ancestor -> base had a node
        self._cut: dict[bytes, bool] = {}  # changed name -> was a cut in the base

    @property
    def base_revision(self) -> int | None:
        """The revision of the full image the next overlay applies to (None: no base)."""
        return self._base_revision

    def merge(self, snapshot: ZoneSnapshot) -> bytes:
        """A full image of `snapshot`, which becomes the base of the next overlays."""
        self._zone = None
        with paused_gc(full=True):
            zone = CompiledZone.build(snapshot)
            data = ImageWriter(zone).image()
            zone.memo.clear()  # its per-version render cache (~20% of it); evolve starts anew
            _drop_sig_tails(zone)
            _drop_answers(zone)
        self._zone = zone
        self._base_revision = snapshot.revision
        self._base_size = len(zone.answers) + len(zone.names)
        self._answers, self._denial, self._exists, self._cut = {}, {}, {}, {}
        self._memo = {}
        return data

    def build(self, snapshot: ZoneSnapshot) -> tuple[bytes, int | None]:
        """The image of the next version: (bytes, None) for a full image, or (bytes, base
        revision) for an overlay on the full image of that revision."""
        prev = self._zone
        if prev is None or not self._evolvable(prev, snapshot):
            return self.merge(snapshot), None
        assert snapshot.changed is not None
        self._zone = None  # evolve takes prev over: a failure leaves no half-updated state
        with paused_gc():
            return self._next(prev, snapshot)

    def _next(self, prev: CompiledZone, snapshot: ZoneSnapshot) -> tuple[bytes, int | None]:
        assert snapshot.changed is not None and self._base_revision is not None
        self._remember(prev, [name_wire(n) for n in snapshot.changed])
        zone = CompiledZone.evolve(prev, snapshot, reuse=True)
        # every overlay since the base writes the same changed nodes again: their RRs' wire
        # form (a function of the RRset object alone) is rendered once, not once per overlay
        self._memo.update(zone.memo)
        zone.memo = self._memo
        for key, entry in zone.touched.items():
            self._answers.setdefault(key, entry)
        if zone.denial is not None:
            for dkey, piece in zone.denial.before.items():
                self._denial.setdefault(dkey, piece)
        self._zone = zone
        delta = self._delta(zone)
        size = len(delta.answers) + len(delta.nodes) + len(delta.denial)
        if size > self.max_share * self._base_size + 64:
            return self.merge(snapshot), None
        return ImageWriter(zone, delta).image(), delta.base_revision

    def _remember(self, prev: CompiledZone, changed: list[bytes]) -> None:
        """What the base had at the changed names and their ancestors (prev has it still)."""
        exists, cut = self._exists, self._cut
        origin = prev.origin
        for name in (*changed, origin):
            cut.setdefault(name, name in prev.cuts)
            n = name
            while n not in exists:
                exists[n] = n in prev.names or bool(prev.below.get(n))
                if n == origin or len(n) <= 1:
                    break
                n = n[n[0] + 1 :]

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

    def _delta(self, zone: CompiledZone) -> Delta:
        """What differs from the base, from the keys and names touched since it (no walk)."""
        assert self._base_revision is not None
        now = zone.answers
        answers = tuple(k for k, b in self._answers.items()
                        if (e := now.get(k)) is not None and e is not b)
        gone_answers = tuple(k for k, b in self._answers.items()
                             if b is not None and k not in now)
        nodes = self._nodes(zone)
        live = [n for n in nodes if n in zone.names or zone.below.get(n)]
        gone_nodes = tuple(n for n in nodes if n not in zone.names and not zone.below.get(n)
                           and self._exists.get(n, False))
        denial: tuple[Any, ...] = ()
        gone_denial: tuple[bytes, ...] = ()
        if zone.denial is not None:
            new_p = zone.denial.pieces
            denial = tuple(k for k, b in self._denial.items()
                           if (p := new_p.get(k)) is not None and p is not b)
            gone = [b for k, b in self._denial.items() if b is not None and k not in new_p]
            if zone.denial.nsec3:
                gone_denial = tuple(k for k, b in self._denial.items()
                                    if b is not None and k not in new_p)
            else:
                gone_denial = tuple(L.canonical_key(b[0]) for b in gone)
        return Delta(self._base_revision, answers, gone_answers, tuple(live), gone_nodes,
                     denial, gone_denial)

    def _nodes(self, zone: CompiledZone) -> list[bytes]:
        """Changed names, their ancestors, and the names below a cut that came or went."""
        out = set(self._exists)
        cuts = {n for n, was in self._cut.items() if was != (n in zone.cuts)}
        if cuts:  # names below it that went are changed names, so in `out` already
            out.update(_below(zone.names, cuts))
        return sorted(out, key=L.canonical_key)


def _drop_sig_tails(zone: CompiledZone) -> None:
    """Empty the zone's RRSIG tails cache (~40% of a signed base: every owner's RRSIGs
    rendered); the image has them, and an evolve renders again only those it reads
    (the changed owners' and their neighbours'), as it would for a changed RRSIG set."""
    sigs = SigCache()
    zone.sigs = sigs
    if zone.denial is not None:
        zone.denial.sigs = sigs


# What the base's answers map to once its image is written: an overlay needs, per answer
# key, only whether the base had an answer (`touched` -> `_answers`: identity, None or not).
IN_BASE: Entry = ()  # type: ignore[assignment]


def _drop_answers(zone: CompiledZone) -> None:
    """Replace the base's rendered answers (in its image already) by `IN_BASE` (issue 10:
    ~40% of what the builder held): evolve re-renders the answers it touches, never reads
    the others, and the writer renders a node's RRs itself when its answer is not there."""
    answers = zone.answers
    for key in answers:
        answers[key] = IN_BASE


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
