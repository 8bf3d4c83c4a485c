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

import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from node.events import Event, emit
from node.image import layout as L
from node.image.baseimage import IN_BASE as BASE_ENTRY
from node.image.baseimage import BaseAnswers, BaseImage, BaseNames
from node.image.basepieces import BasePieces, compile_base, compile_names, lean_denial
from node.image.builder import Delta, ImageWriter, image_name, paused_gc, write_bytes
from node.image.forked import ForkFailed, ImageChild, ImageStopped
from node.image.fullimage import write_full
from node.image.growing import GrowingOverlay
from node.image.rendergate import GateStopped, RenderGate
from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.server.proofs import Piece, SigCache
from node.server.render import Entry
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

MAX_SHARE = 0.05
# RR-tails memo entries kept across overlays (beyond them it starts again with the version's
# own): a name changed again and again never merges, and a packed owner's reads are new
# RRsets each version, so a memo kept until the next merge grew for good
MEMO_MAX = 4096


class ImageBuilder:
    """Builds one zone's successive images: full, then overlays on the last full one."""

    __slots__ = ("_answers", "_base_bytes", "_base_revision", "_base_size", "_child", "_cut",
                 "_denial", "_exists", "_growing", "_memo", "_stopped", "_zone", "fork",
                 "gate", "max_share", "timing")

    def __init__(self, max_share: float = MAX_SHARE, fork: bool = False,
                 gate: RenderGate | None = None) -> None:
        self.max_share = max_share
        self.fork = fork  # `write` renders full images in a forked child (node.image.forked)
        self.gate = gate  # large forked renders wait their turn on the host (rendergate.py)
        self._child: ImageChild | None = None  # the child rendering now (`stop` kills it)
        self._stopped = False
        self._zone: CompiledZone | None = None  # the latest version, this builder's own
        self._memo: dict[int, Any] = {}  # CompiledZone.memo kept across overlays (RR tails)
        self._growing: GrowingOverlay | None = None  # the overlay's records so far
        self._base_revision: int | None = None
        self._base_size = 0  # answers + names of the base
        self._base_bytes = 0  # the size of its image
        # since the base, per key or name touched: what the base had
        self._answers: dict[bytes, Entry | None] = {}  # answer key -> base entry
        self._denial: dict[Any, Piece | None] = {}  # denial key -> base piece
        self._exists: dict[bytes, bool] = {}  # changed name or ancestor -> base had a node
        self._cut: dict[bytes, bool] = {}  # changed name -> was a cut in the base
        # the last build's stages (perf_counter times) and overlay size, for node.stages
        self.timing: dict[str, float] = {}

    @property
    def base_revision(self) -> int | None:
        """The revision of the full image the next overlay applies to (None: no base)."""
        return self._base_revision

    def merge(self, snapshot: ZoneSnapshot, path: Path | None = None) -> bytes:
        """A full image of `snapshot`, which becomes the base of the next overlays; with
        `path`, written there instead (returns b""): if `fork`, by a forked child while
        this process makes only the lean compile it keeps (`compile_base`)."""
        self.timing = {"build": time.perf_counter(), "full": 1}
        # the last base and everything kept since it go before the new one is compiled
        # (issue 10, memory): both alive at once set the heap's high-water mark ~40 MiB
        # higher at 100k names, and what the old one left behind was fragmentation
        self._zone = self._growing = None
        self._answers, self._denial, self._exists, self._cut = {}, {}, {}, {}
        self._memo = {}
        data = b""
        with paused_gc(full=True):
            zone = self._forked(snapshot, path) if path is not None and self.fork else None
            if zone is not None:
                size = self._base_bytes
            else:
                zone = CompiledZone.build(snapshot)
                data = ImageWriter(zone).image()
                size = len(data)
                if path is not None:
                    write_bytes(data, path)
                    data = b""
                zone.memo.clear()  # its per-version render cache (~20%); evolve starts anew
                # what the image has (answers, RRSIG tails, pieces) is read from it; without
                # `path`, the image's bytes are kept for that
                _lean(zone, BaseImage(data) if path is None else BaseImage.open(path))
        self._zone = zone
        self._base_revision = snapshot.revision
        self._base_size = len(zone.answers) + len(zone.names)
        self._base_bytes = size
        self._answers, self._denial, self._exists, self._cut = {}, {}, {}, {}
        self._memo = {}
        self._growing = None
        return data

    def stop(self) -> None:
        """From any thread (the node shuts down): kill the forked child rendering an image
        now, and fork no other; its `write` raises `ImageStopped` (no in-process fallback)."""
        self._stopped = True
        child = self._child
        if child is not None:
            child.stop()

    def _forked(self, snapshot: ZoneSnapshot, path: Path) -> CompiledZone | None:
        """The full image written to `path` by a forked child (which compiles and renders:
        its garbage and CPU leave with it) and the lean compile made here meanwhile; None
        if the child failed (event 1885: the caller builds in-process)."""
        if self._stopped:
            raise ImageStopped(f"zone {snapshot.origin}: image builder stopped")
        gate = self.gate.hold(str(snapshot.origin), lambda: self._stopped) \
            if self.gate is not None else contextlib.nullcontext(0.0)
        try:
            with gate as waited:
                self.timing["gate_s"] = waited
                # the names' indexes first: the child reads them (copy-on-write), not makes them
                zone = compile_names(snapshot)
                child = self._child = ImageChild(
                    lambda f, names=zone: write_full(snapshot, f, names), path)
                if self._stopped:  # `stop` ran while it forked
                    child.stop()
                self.timing["fork_s"] = child.fork_s
                try:
                    zone = compile_base(snapshot, zone)
                except BaseException:
                    child.kill()
                    raise
                self._base_bytes, self.timing["child_cpu"] = child.wait()
            from_image(zone, BaseImage.open(path))
            return zone
        except GateStopped as exc:
            raise ImageStopped(str(exc)) from None
        except (ForkFailed, OSError) as exc:
            emit(Event.SERVING_IMAGE_FORK_FAILED, logging.WARNING, zone=snapshot.origin,
                 serial=snapshot.serial, error=str(exc))
            return None
        finally:
            self._child = None

    def build(self, snapshot: ZoneSnapshot, full: Path | None = None
              ) -> tuple[bytes, int | None]:
        """The image of the next version: (bytes, None) for a full image, or (bytes, base
        revision) for an overlay on the full image of that revision. With `full`, a full
        image is written to that path instead (`merge`), and its bytes are not returned."""
        if self._zone is None or not self._evolvable(self._zone, snapshot):
            return self.merge(snapshot, full), None  # it lets the last base go first
        assert snapshot.changed is not None
        with paused_gc():
            return self._next(snapshot, full)

    def _next(self, snapshot: ZoneSnapshot, full: Path | None) -> tuple[bytes, int | None]:
        assert snapshot.changed is not None and self._base_revision is not None
        # evolve takes prev over: a failure leaves no half-updated state; and prev is only
        # referred to here, so a merge below lets it go before compiling the next base
        prev, self._zone = self._zone, None
        assert prev is not None
        timing = self.timing = {"build": time.perf_counter()}
        changed = [name_wire(n) for n in snapshot.changed]
        self._remember(prev, changed)
        nodes = _with_ancestors(changed, prev.origin)  # this version's changed nodes
        was_cut = {n: n in prev.cuts for n in nodes}
        zone = CompiledZone.evolve(prev, snapshot, reuse=True)
        if zone.denial is not None and isinstance(zone.denial.pieces, BasePieces):
            zone.denial.pieces.nodes = snapshot.nodes  # its unchanged pieces: this version's
        if isinstance(zone.names, BaseNames):
            zone.names.nodes = snapshot.nodes  # its unchanged names: this version's
        timing["evolve"] = time.perf_counter()
        # an overlay rebuilt from scratch (`GrowingOverlay.rebuilt`) writes the changed nodes
        # again: their RRs' wire form (a function of the RRset object alone) is kept
        if len(self._memo) + len(zone.memo) > MEMO_MAX:
            self._memo = {}
        self._memo.update(zone.memo)
        zone.memo = self._memo
        for key, entry in zone.touched.items():
            self._answers.setdefault(key, entry)
        before = zone.denial.before if zone.denial is not None else {}
        for dkey, piece in before.items():
            self._denial.setdefault(dkey, piece)
        self._zone = zone
        flipped = {n for n, was in was_cut.items() if was != (n in zone.cuts)}
        if flipped:  # the names below a cut that came or went: their data (un)occluded
            nodes.update(dict.fromkeys(_below(zone.names, flipped)))
        for name in nodes:  # one below a cut, unchanged since the base: the base has it
            self._exists.setdefault(name, True)
        growing, self._growing = self._growing, None  # a failure below: rebuilt next time
        if growing is None or growing.grown():
            growing, data = GrowingOverlay(zone, self._base_revision, self._base_bytes).rebuilt(
                zone, *self._since_base(zone))
        else:
            data = growing.step(
                zone, {k: self._answers[k] is not None for k in zone.touched},
                {n: self._exists[n] for n in nodes}, {k: self._denial[k] for k in before})
        self._growing = growing
        timing["overlay"] = time.perf_counter()
        timing["entries"] = growing.entries
        if growing.entries > self.max_share * self._base_size + 64:
            del prev, zone, growing, data, before  # `merge` lets the last base go first
            return self.merge(snapshot, full), None
        return data, self._base_revision

    def delta(self) -> Delta | None:
        """What the current overlay holds (None: the last image was a full one)."""
        return None if self._growing is None else self._growing.delta()

    def _since_base(self, zone: CompiledZone
                    ) -> tuple[dict[bytes, bool], dict[bytes, bool], dict[Any, Any]]:
        """Everything changed since the base (`GrowingOverlay.step`'s arguments)."""
        return ({k: b is not None for k, b in self._answers.items()},
                {n: self._exists.get(n, False) for n in self._nodes(zone)}, self._denial)

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
        full = directory / image_name(snapshot)
        data, base = self.build(snapshot, full)
        self.timing.setdefault("overlay", time.perf_counter())
        path = full if base is None else write_bytes(data, directory / image_name(snapshot, base))
        self.timing["write"] = time.perf_counter()
        self.timing["bytes"] = self._base_bytes if base is None else len(data)
        return path, base

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
IN_BASE: Entry = BASE_ENTRY


def from_image(zone: CompiledZone, image: BaseImage) -> None:
    """The base's answers and names read from its image (`BaseAnswers`, `BaseNames`:
    issue 10, memory): an evolve re-renders the answers it touches, never reads the
    others, and the writer renders a node's RRs itself when its answer is not there."""
    names = zone.names
    nodes = len(names) + sum(1 for n in zone.below if n not in names)  # node records
    zone.answers = BaseAnswers(image, image.nodes_and_answers - nodes)  # type: ignore[assignment]
    snapshot = zone.snapshot
    zone.names = BaseNames(image, snapshot.nodes, snapshot.signed,  # type: ignore[assignment]
                           len(names))


def _lean(zone: CompiledZone, image: BaseImage) -> None:
    """Drop from an in-process full compile what its image has (as `compile_base` never
    makes it): rendered answers, RRSIG tails, denial pieces, and the names' index."""
    _drop_sig_tails(zone)
    from_image(zone, image)
    _drop_pieces(zone)


def _drop_pieces(zone: CompiledZone) -> None:
    """Replace the base's rendered NSEC/NSEC3 pieces (in its image already; ~70% of what a
    signed base held) by `BasePieces`: the chain's keys, each piece rendered again from the
    version's nodes when an evolve or an overlay reads it (a changed name's neighbours)."""
    index = zone.denial
    if index is not None:
        lean_denial(index, zone.snapshot)


def _with_ancestors(names: Iterable[bytes], origin: bytes) -> dict[bytes, None]:
    """`names`, each of their ancestors down to `origin`, and `origin` (ordered, unique)."""
    out: dict[bytes, None] = {origin: None}
    for name in names:
        n = name
        while n not in out and len(n) > 1:
            out[n] = None
            n = n[n[0] + 1 :]
    return out


def _below(names: Iterable[bytes], cuts: set[bytes]) -> list[bytes]:
    """The names at or below one of `cuts`, in `names`' order."""
    if isinstance(names, BaseNames):
        return names.under(cuts)  # by label, without every name's wire form
    out = []
    for name in names:
        n = name
        while len(n) > 1:
            if n in cuts:
                out.append(name)
                break
            n = n[n[0] + 1 :]
    return out
