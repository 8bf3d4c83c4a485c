"""A full image rendered straight into a file: the forked image child's render (issue 10).

Owns `write_full(snapshot, f) -> size`: the same bytes as
`ImageWriter(CompiledZone.build(snapshot)).image()` (the in-process build,
kept as the reference; `tests/unit/image/test_image_streamed.py`), made with
less CPU and a bounded memory beyond the zone's indexes:

* *lean compile* (`lean_compile`): the indexes the writer reads (names,
  names below, cuts, DNAME owners, the denial chain), no eager answers and no
  dependency maps (those serve `evolve`, which a child never runs), and not
  the NSEC3 owners' RRSIG tails once their pieces hold them, nor the pieces
  once they are written (`BasePieces`: a referral's proof renders its piece
  again): each answer record is rendered when it is written, then dropped;
* an answer without an additional section (any type but NS, MX, SRV; not at
  the root; an RRset with records) is its RRs after a pointer to the question (`c0 0c`), and in a
  signed zone its DO=1 variant the same followed by the RRSIGs of its type:
  joined here directly, without `AnswerBuilder`, `Entry` and re-parsing the
  body into the record (the other answers go through `answer.positive` and
  `secure.resolve` as before);
* the output is a `FileSink`: every piece goes to the (buffered) file as it
  is made, the header is written last at offset 0, and the hash table is
  built in one flat `array` of u32 from per-record tags and offsets (no
  per-record tuples or key copies): the child no longer holds the image (and
  a copy of it) in memory, which at 1M names was several hundred MB.
"""

from __future__ import annotations

import sys
from array import array
from typing import BinaryIO

from node.image import layout as L
from node.image.basepieces import BasePieces
from node.image.builder import _WITH_TARGETS, ImageWriter
from node.server import answer
from node.server.compile import LAZY_TYPES, CompiledZone
from node.server.proofs import DenialIndex, SigCache, is_hashed_owner
from node.server.render import AA, QR, rr_tails
from node.zones.model import ZoneSnapshot

SELF = b"\xc0\x0c"  # an owner equal to the question: a pointer to it
POSITIVE = QR | AA


class FileSink:
    """The write end of an image: `+=` appends to `f`, `len()` is the offset reached."""

    __slots__ = ("f", "n")

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.n = 0

    def __iadd__(self, data: bytes | bytearray | memoryview) -> FileSink:
        self.n += self.f.write(data)
        return self

    def __len__(self) -> int:
        return self.n


def lean_compile(snapshot: ZoneSnapshot) -> CompiledZone:
    """`CompiledZone.build(snapshot)` without its eager answers and dependency maps."""
    zone = CompiledZone(snapshot)
    signed = snapshot.signed
    if signed:
        index = zone.denial = DenialIndex.build(snapshot.origin, snapshot.nodes, zone.sigs)
        if index.nsec3:  # the RRSIG tails of the NSEC3 owners are in their pieces now, and
            # the cache holds no other owner's: it starts again for the names (NSEC: the
            # names' own, which the writer reads next)
            index.sigs = zone.sigs = SigCache()
    for name, types in snapshot.nodes.items():
        if types and not (signed and is_hashed_owner(types)):
            zone._add_name(answer.name_wire(name), types)
    return zone


def write_full(snapshot: ZoneSnapshot, f: BinaryIO) -> int:
    """Write the full image of `snapshot` to `f` (at its start, seekable); its size."""
    return FullWriter(lean_compile(snapshot), f).write()


class FullWriter(ImageWriter):
    """`ImageWriter` for a full image of a lean compile, streamed to a file."""

    def __init__(self, zone: CompiledZone, f: BinaryIO) -> None:
        super().__init__(zone)
        self.f = f
        self.out = FileSink(f)  # type: ignore[assignment]
        self.out += bytes(L.HEADER.size) + zone.origin
        self.tags = array("I")  # per record: its hash tag and offset (`_record` order)
        self.offs = array("I")

    def _record(self, hkey: bytes, kind: int, payload: bytes) -> int:
        off = self._put(L.REC_HEAD.pack(len(hkey)) + hkey + bytes((kind,)) + payload)
        self.tags.append(L.tag(hkey))
        self.offs.append(off)
        return off

    def _answers(self) -> None:
        """The answer records `CompiledZone.build` would hold, in its order, each rendered
        and written at once."""
        zone = self.zone
        occluded = zone._occluded
        signed = self.signed
        record = self._record
        for owner, types in zone.names.items():
            if occluded(owner):
                continue
            for rdtype, rrset in types.items():
                if rdtype in LAZY_TYPES:
                    continue
                key = owner + rdtype.to_bytes(2, "big")
                if rdtype in _WITH_TARGETS or len(owner) == 1 or not len(rrset):
                    # additional section; root (no pointer); no RR, so no `c0 0c` either
                    plain = answer.positive(zone, owner, rdtype)[0]
                    record(key, L.KIND_ANSWER, self._variants(owner, rdtype, plain))
                    continue
                tails = rr_tails(rrset)  # as `answer.positive`: no memo to churn
                body = SELF + SELF.join(tails)
                one = L.VARIANT.pack(POSITIVE, len(tails), 0, 0, len(body)) + body
                if not signed:
                    record(key, L.KIND_ANSWER, b"\x01" + one)
                    continue
                sigs = zone.sigs.get(owner, types, rdtype)
                if sigs:
                    body += SELF + SELF.join(sigs)
                record(key, L.KIND_ANSWER, b"\x02" + one + L.VARIANT.pack(
                    POSITIVE, len(tails) + len(sigs), 0, 0, len(body)) + body)

    def _hash(self) -> tuple[int, int]:
        """`ImageWriter._hash`'s table, filled in a flat array of (tag, offset) u32 pairs."""
        tags, offs = self.tags, self.offs
        n = 8
        while n < 2 * len(tags):
            n <<= 1
        mask = n - 1
        table = array("I", (0,)) * (2 * n)  # zeroed, no temporary
        for t, off in zip(tags, offs, strict=True):
            i = t & mask
            while table[2 * i]:
                i = (i + 1) & mask
            table[2 * i] = t
            table[2 * i + 1] = off
        del self.tags, self.offs
        if sys.byteorder != "little":  # pragma: no cover - no such platform here
            table.byteswap()
        self.out += bytes(-len(self.out) % 8)  # align the table to 8 octets
        return self._put(memoryview(table).cast("B")), n  # type: ignore[arg-type]

    def write(self) -> int:
        """Write the image; its size. The header goes last, at offset 0."""
        zone = self.zone
        snap = zone.snapshot
        soa = zone.negative_soa()
        soa_off = self._run(soa)
        soa_do: tuple[bytes, ...] = zone.negative_soa_signed() if self.signed else soa
        soa_do_off = self._run(soa_do)
        denial_off, denial_count, keys = self._denial()
        index = zone.denial
        if index is not None:  # the pieces are in the file: a cut's referral that reads one
            # (no DS: the proof) renders it again; the zone's worth of them go now
            index.pieces = BasePieces(index, snap)
        nsec3 = index is not None and index.nsec3
        salt = index.salt if index is not None else b""
        salt_off = self._put(salt) if salt else 0
        self._nodes(keys)
        del keys
        self._pos = None
        self._answers()
        records = len(self.tags)
        hash_off, hash_slots = self._hash()
        size = len(self.out)
        flags = (L.F_SIGNED if self.signed else 0) | (L.F_NSEC3 if nsec3 else 0)
        header = L.HEADER.pack(
            L.MAGIC, L.LAYOUT_VERSION, flags, snap.serial, snap.revision,
            len(zone.origin), hash_off, hash_slots, denial_off, denial_count,
            soa_off, len(soa), soa_do_off, len(soa_do),
            index.iterations if index is not None else 0, len(salt), salt_off, size,
            records, 0)
        self.f.seek(0)
        self.f.write(header)
        self.f.seek(size)
        return size
