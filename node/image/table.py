"""`ImageTable`: the zones a serving process answers from, as mapped images, by origin.

Owns the same hot-path surface as `node.server.table.ZoneTable`, so
`Responder(ImageTable())` works unchanged: `caches[do]` (one dict per DO bit,
key = lowercased qname wire + QTYPE + QCLASS as sent) is read first, and
`lookup(key, do)` computes and maybe caches an entry after a miss. SERVFAIL
for held zones, REFUSED outside our zones or class IN, and DS at a zone's
apex answered by the parent zone when we serve it (SERVFAIL while it is held):
exactly as `ZoneTable`.

The cache is never cleared wholesale: its policy is `node.server.answercache`'s
(`AnswerCache`, shared with `ZoneTable`), two segments with their own bounds in
entries and in bytes:

* hot: answers pre-rendered in an image, admitted at once while the segment
  has room; once it is full, only when their key is asked again while the
  doorkeeper (`node.server.admission.Doorkeeper`) remembers it;
* cold: answers assembled on the cold path (negative answers, wildcard
  synthesis, CNAME chains, referrals below cuts) and SERVFAIL/REFUSED,
  admitted only when their key is asked again while the doorkeeper remembers it.

A flood of one-off names, existing or not, fills at most the cold segment and
the hot one's free room: it never evicts a hot answer. The table sets the byte
bound per DO bit, `cache_bytes`, from the zones served (after each install and
removal): `CACHE_SHARE` of their images' bytes plus `ENTRY_COST` for each of
`cache_max` entries (at least `CACHE_BYTES_MIN`), so every pre-rendered answer
fits once, and the heap a serving worker spends on cached answers stays within
1.5 times the images plus 2 x `ENTRY_COST` x `cache_max` (82 MB at the
200,000-entry floor) over both DO bits whatever the clients ask.

`install(image)` swaps a zone's version and drops only that zone's cached
keys (and, when the set of served or held origins changes, those of the
zones above and below it, and the REFUSED ones).
"""

from __future__ import annotations

import logging
import weakref

from node.image import enclosers, resolve
from node.image import layout as L
from node.image.reader import ZoneImage
from node.server.answercache import ENTRY_COST, NO_ZONE, AnswerCache, under
from node.server.render import QR, Entry, make_entry
from node.server.wire import NXDOMAIN, REFUSED, SERVFAIL, TYPE_AXFR, TYPE_IXFR

log = logging.getLogger(__name__)

CACHE_BYTES_MIN = 16 << 20  # per DO bit
CACHE_SHARE = 0.75  # per DO bit: cache_bytes = this share of the served images' bytes
IN_CLASS = b"\x00\x01"
SHORTCUTS_MAX = 1024  # NXDOMAIN shortcuts by closest encloser, per DO bit (oldest out)


def _parent(name: bytes) -> bytes:
    return name[name[0] + 1 :]


def _weak_keep(ref: weakref.ReferenceType[ImageTable]) -> enclosers.Keep:
    """`ImageTable._keep` of the table `ref` names, while it lives."""

    def keep(key: bytes, do: int, entry: Entry, origin: bytes, hot: bool) -> None:
        table = ref()
        if table is not None:
            table._keep(key, do, entry, origin, hot)

    return keep


def _release(images: set[ZoneImage]) -> None:
    """Images this table served and no longer does (a version and the full image under it,
    nothing the new version reads): freed as soon as their owners let go (`ZoneImage.release`)."""
    for image in images:
        image.release()


class ImageTable(AnswerCache):
    """Zone images by origin wire name; `caches[do]` is the hot path's first stop."""

    __slots__ = ("__weakref__", "_below", "_held", "_keeper", "_zones", "journals",
                 "shortcuts")

    def __init__(self) -> None:
        super().__init__()
        self.cache_bytes = CACHE_BYTES_MIN
        self.journals = None  # AXFR/IXFR are not served from images (Responder's slow path)
        self._zones: dict[bytes, ZoneImage] = {}
        self._held: set[bytes] = set()
        # closest encloser -> its NXDOMAIN shortcut (`node.image.enclosers`), per DO bit;
        # dropped with their zone's version (they hold its image), with the zones above and
        # below a change of the zones served or held, and all with the doorkeepers they
        # offer to (`_forget`); the responder asks them first after a cache miss (`lookup`)
        self.shortcuts: tuple[dict[bytes, enclosers.Answer], ...] = ({}, {})
        self._below: set[bytes] | None = None  # parents of served and held origins
        # `_keep` for the shortcuts without a reference to the table (a bound method would
        # make table -> shortcuts -> Shortcut -> table a cycle: a dropped table would wait
        # for the collector, and stay for good once `gc.freeze()` has frozen it)
        self._keeper = _weak_keep(weakref.ref(self))

    # --- zone management ------------------------------------------------------

    def install(self, image: ZoneImage) -> bool:
        """Serve `image` for its origin; False (ignored, and released: nothing will read it)
        if an older revision than served."""
        origin = image.origin
        prev = self._zones.get(origin)
        if prev is not None and image.revision < prev.revision:
            log.info("ignoring image of %r at revision %d: revision %d is served",
                     origin, image.revision, prev.revision)
            _release({image, image.full} - {prev, prev.full})
            return False
        was_held = origin in self._held
        self._zones[origin] = image
        if prev is not None:
            _release({prev, prev.full} - {image, image.full})
        self._held.discard(origin)
        related = prev is None or was_held  # the set of served or held origins changes
        self._forget(origin, related)
        if related:
            self._drop_related(origin)
        else:
            self._drop(origin)
        self._size()
        return True

    def _size(self) -> None:
        """The cache's bounds from the zones served now (after each install and removal)."""
        doors = self._doors
        self._bound(sum(2 * z.records for z in self._zones.values()))
        if self._doors is not doors:  # the shortcuts offer their answers to the old ones
            self.shortcuts = ({}, {})
        # room for `cache_max` entries of the served answers' usual size: every pre-rendered
        # answer of the zones fits once per DO bit (a compact unsigned image's answers, each
        # with ENTRY_COST, are more than a share of its bytes: the bench mix thrashed at
        # 8x the CPU); the bound bites on unusually large answers only
        self.cache_bytes = max(CACHE_BYTES_MIN, int(CACHE_SHARE * sum(
            z.size + (z.base.size if z.base is not None else 0) for z in self._zones.values()))
            + ENTRY_COST * self.cache_max)

    def remove(self, origin: bytes) -> bool:
        """Stop serving `origin` (lowercased wire); False if it was neither served nor held."""
        zone = self._zones.pop(origin, None)
        held = origin in self._held
        self._held.discard(origin)
        self._forget(origin, True)
        self._drop_related(origin)
        if zone is not None:
            _release({zone, zone.full})
            self._size()
        return zone is not None or held

    def hold(self, origin: bytes) -> None:
        """Answer SERVFAIL for `origin` until its next `install`."""
        self._held.add(origin)
        self._forget(origin, True)
        self._drop_related(origin)

    def held(self, origin: bytes) -> bool:
        return origin in self._held

    def get(self, origin: bytes) -> ZoneImage | None:
        return self._zones.get(origin)

    def zones(self) -> list[bytes]:
        """The origins served (lowercased wire names), in canonical order."""
        return sorted(self._zones, key=L.canonical_key)

    # --- cache ------------------------------------------------------------------

    def _forget(self, origin: bytes, related: bool) -> None:
        """Drop the NXDOMAIN shortcuts built from the zone `origin` (their enclosers are at or
        below it), and with `related` (the set of served or held origins changes there)
        those of the zones above it too: an encloser's shortcut exists only while no served
        or held origin is one label below it. Other zones' stay: a flood on one zone does
        not re-learn its enclosers at each version of another."""
        for short in self.shortcuts:
            gone = [ce for ce in short if under(ce, origin) or (related and under(origin, ce))]
            for ce in gone:
                del short[ce]  # the same dict: the responder reads it through the tuple
        if related:
            self._below = None

    def _origin_below(self, name: bytes) -> bool:
        """True if a served or held origin is one label below `name`."""
        below = self._below
        if below is None:
            below = self._below = {_parent(o) for o in (*self._zones, *self._held) if o[0]}
        return name in below

    def _learn(self, image: ZoneImage, lname: bytes, do: int) -> None:
        """After an NXDOMAIN for `lname` from `image`: the shortcut of its parent, if any."""
        ce = _parent(lname)
        short = self.shortcuts[do]
        if ce in short:
            return
        answer = enclosers.shortcut(image, ce, do, self._origin_below, self._doors[do],
                                    self._keeper)
        if answer is None:
            return
        if len(short) >= SHORTCUTS_MAX:
            del short[next(iter(short))]
        short[ce] = answer

    # --- lookups ----------------------------------------------------------------

    def find(self, lname: bytes) -> ZoneImage | None:
        """The served image with the longest origin that is a suffix of the lowercased wire
        name; None if there is none or if that zone is held."""
        image, held = self._match(lname)
        return None if held is not None else image

    def held_origin(self, lname: bytes) -> bytes | None:
        """The origin of the held zone that answers for `lname`, if one does (as
        `ZoneTable.held_origin`: the responder's transfer path asks either table)."""
        return self._match(lname)[1]

    def _match(self, lname: bytes) -> tuple[ZoneImage | None, bytes | None]:
        zones = self._zones
        held = self._held
        n = lname
        while True:
            if held and n in held:
                return None, n
            image = zones.get(n)
            if image is not None:
                return image, None
            if len(n) <= 1:
                return None, None
            n = _parent(n)

    def lookup(self, key: bytes, do: int) -> Entry | None:
        """The entry for a hot-path key after a cache miss; None for AXFR/IXFR (slow path).

        The flood's NXDOMAIN below a known closest encloser P is answered by P's shortcut
        (`shortcuts[do]`, by the key's name without its first label), which offers its
        answer to the doorkeeper and keeps it itself; `Responder.fast_udp` calls it
        directly (that name is one label under P: its placement needs no walk)."""
        short = self.shortcuts[do].get(key[key[0] + 1 : -4])
        if short is not None:
            entry = short(key)
            if entry is not None:
                return entry
        return self.resolve(key, do)

    def resolve(self, key: bytes, do: int) -> Entry | None:
        """`lookup` without asking a shortcut: for `Responder.fast_udp`, which asked the
        key's shortcut itself (or placed the key where none is), so a shortcut that
        declines is not asked twice."""
        qtype = key[-4] << 8 | key[-3]
        if qtype in (TYPE_AXFR, TYPE_IXFR):
            return None
        lname = key[:-4]
        image, held = self._match(lname)
        if image is not None and qtype == L.DS and lname == image.origin and len(lname) > 1:
            above, held = self._match(_parent(lname))  # the parent's RRset, if we serve it
            image = None if held is not None else above or image
        hot = False
        if held is not None:
            entry = make_entry(QR | SERVFAIL, qtype, len(key), b"")
            origin = held
        elif image is None or key[-2:] != IN_CLASS:
            entry = make_entry(QR | REFUSED, qtype, len(key), b"")
            origin = NO_ZONE
        else:
            entry, hot = resolve.answer(image, key, lname, qtype, do)
            origin = image.origin
            if entry[5] & 0xF == NXDOMAIN and lname[0]:
                self._learn(image, lname, do)
        if hot or self._doors[do].admit(key):
            self._keep(key, do, entry, origin, hot)
        return entry
