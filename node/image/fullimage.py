"""A full image rendered straight into a file: the forked image child's render (issue 10).

Owns `write_full(snapshot, f, names) -> size`: the same bytes as
`ImageWriter(CompiledZone.build(snapshot)).image()` (the in-process build,
kept as the reference; `tests/unit/image/test_image_streamed.py`), made with
less CPU and a bounded memory beyond the zone's indexes:

* *lean compile* (`lean_compile`): the indexes the writer reads (names,
  names below, cuts, DNAME owners: the parent's `compile_names`, made before
  the fork; the denial chain), no eager answers and no
  dependency maps (those serve `evolve`, which a child never runs), and not
  the NSEC3 owners' RRSIG tails once their pieces hold them, nor the pieces
  once they are written (`BasePieces`: a referral's proof renders its piece
  again): each answer record is rendered when it is written, then dropped;
* one pass over the owners in canonical order (keys made from the parent's):
  each name's RR runs, its node record, then its answer records (a full
  image's order since session 14; before, every node, then every answer in
  compile order), so an RRset's RRs are rendered once for both;
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
from collections.abc import Callable
from typing import BinaryIO
from zlib import crc32

from node.image import layout as L
from node.image.basepieces import BasePieces, compile_names
from node.image.builder import _WITH_TARGETS, ImageWriter, _occluded_above
from node.server import answer
from node.server.compile import LAZY_TYPES, CompiledZone, Types
from node.server.proofs import DenialIndex, SigCache, fast_tails
from node.server.render import AA, QR, rr_tails
from node.zones.model import ZoneSnapshot

SELF = b"\xc0\x0c"  # an owner equal to the question: a pointer to it
POSITIVE = QR | AA
_KIND_NODE = bytes((L.KIND_NODE,))
_ANSWER_ONE = bytes((L.KIND_ANSWER, 1))  # an answer record's kind and variant count
_ANSWER_TWO = bytes((L.KIND_ANSWER, 2))
_ANSWER_RUNS = bytes((L.KIND_ANSWER, L.RUNS_ANSWER))
_RUNS = L.RUNS.pack
_VARIANT, _REC_HEAD, _TYPE = L.VARIANT.pack, L.REC_HEAD.pack, L.TYPE.pack
_TARGETED = _WITH_TARGETS | {L.CNAME, L.DNAME}  # a node's target list (`ImageWriter._types`)


def canonical_keys() -> Callable[[bytes], bytes]:
    """`layout.canonical_key` of lowercased wire names, each made from its parent's key
    (kept, per parent, by the function returned): one label's work per name."""
    known: dict[bytes, bytes] = {b"\x00": b""}

    def key(wire: bytes) -> bytes:
        cut = wire[0] + 1
        if cut == 1:
            return b""
        parent = wire[cut:]
        head = known.get(parent)
        if head is None:
            head = known[parent] = key(parent)
        label = wire[1:cut]
        if b"\x00" in label or b"\x01" in label:
            label = label.replace(b"\x01", b"\x01\x01").replace(b"\x00", b"\x01\x00")
        return head + label + b"\x00"

    return key


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


def lean_compile(snapshot: ZoneSnapshot, names: CompiledZone | None = None) -> CompiledZone:
    """`CompiledZone.build(snapshot)` without its eager answers and dependency maps; the
    names' indexes those of `names` (`compile_names`: the parent's, in a forked child)."""
    zone = CompiledZone(snapshot)
    if snapshot.signed:
        index = zone.denial = DenialIndex.build(snapshot.origin, snapshot.nodes, zone.sigs)
        if index.nsec3:  # the RRSIG tails of the NSEC3 owners are in their pieces now, and
            # the cache holds no other owner's: it starts again for the names (NSEC: the
            # names' own, which the writer reads next)
            index.sigs = zone.sigs = SigCache()
    made = names if names is not None else compile_names(snapshot)
    zone.names, zone.below, zone.cuts, zone.dnames = made.names, made.below, made.cuts, made.dnames
    return zone


def write_full(snapshot: ZoneSnapshot, f: BinaryIO, names: CompiledZone | None = None) -> int:
    """Write the full image of `snapshot` to `f` (at its start, seekable); its size.
    `names`: its names' indexes made already (`compile_names`), read, not changed."""
    return FullWriter(lean_compile(snapshot, names), f).write()


class FullWriter(ImageWriter):
    """`ImageWriter` for a full image of a lean compile, streamed to a file.

    The same bytes as `ImageWriter`, with less work per name and per RRset (issue 10,
    load time: this render is most of what a node spends after an import's flip): one
    pass over the owners in canonical order, each name's answer records written right
    after its node record from the RR tails rendered for the node (once, no memo); the
    owners sorted by canonical keys made from their parent's (kept per parent); the
    occluded names found in that order (a cut's or DNAME's names follow it) instead of
    a walk up each name; the records written without the `_put`/`_record`/`FileSink`
    calls per piece."""

    def __init__(self, zone: CompiledZone, f: BinaryIO) -> None:
        super().__init__(zone)
        self.f = f
        self.out = FileSink(f)  # type: ignore[assignment]
        self.out += bytes(L.HEADER.size) + zone.origin
        self.tags = array("I")  # per record: its hash tag and offset (`_record` order)
        self.offs = array("I")
        self._rendered: dict[int, tuple[bytes, ...]] = {}  # the last `_types`' RR tails

    def _record(self, hkey: bytes, kind: int, payload: bytes) -> int:
        off = self._put(L.REC_HEAD.pack(len(hkey)) + hkey + bytes((kind,)) + payload)
        self.tags.append(L.tag(hkey))
        self.offs.append(off)
        return off

    def _nodes(self, keys: list[bytes]) -> None:
        """`ImageWriter._nodes` of a full image: each node record, then its name's answer
        records (`_answers_of`) unless the name is occluded."""
        zone = self.zone
        names, below, cuts, dnames = zone.names, zone.below, zone.cuts, zone.dnames
        key = canonical_keys()  # the keys live for the sort only (1M names: ~100 MB)
        ordered = sorted(names.keys() | below.keys(), key=key)
        block: bytes | None = None  # the canonical key of the cut or DNAME owner we are under
        sink, write = self.out, self.f.write
        tags, offs = self.tags.append, self.offs.append
        node, rec_head = L.NODE.pack, L.REC_HEAD.pack
        match, cover, answers_of = self._match, self._cover, self._answers_of
        for owner in ordered:
            # `CompiledZone._occluded`: in canonical order a name's names follow it (a key
            # made again only under a cut or DNAME: the parents' are kept)
            if block is not None and key(owner).startswith(block):
                occluded = True  # (a DNAME owner itself is not: it set `block` below)
            else:
                block = None
                occluded = owner in cuts
                if occluded or (owner in dnames and len(owner) > 1):  # (`_occluded` never
                    block = key(owner)  # looks at the root: a DNAME there hides nothing)
            types = names.get(owner)
            flags = (L.N_NAME if types is not None else 0) | (
                L.N_BELOW if below.get(owner) else 0)
            ref = 0
            if owner in dnames:
                flags |= L.N_DNAME
            if owner in cuts:
                flags |= L.N_CUT
                if not _occluded_above(zone, owner):
                    plain = answer.resolve(zone, owner, L.A)
                    ref = self._put(self._variants(owner, L.A, plain))
            entries = self._types(owner, types) if types else b""
            denial = wdenial = L.NO_DENIAL
            if keys:
                denial = match(keys, owner)
                wild = b"\x01*" + owner
                wdenial = match(keys, wild)
                if wdenial == L.NO_DENIAL:
                    wdenial = cover(keys, wild)
            hkey = owner + b"\x00\x00"
            tags(crc32(hkey) or 1)
            offs(sink.n)
            sink.n += write(b"".join((rec_head(len(hkey)), hkey, _KIND_NODE,
                                      node(flags, len(entries) // L.TYPE.size, denial,
                                           wdenial, ref), entries)))
            if types and not occluded:
                answers_of(owner, types)

    def _types(self, owner: bytes, types: Types | None = None) -> bytes:
        """`ImageWriter._types` (its RRs rendered here: a lean compile has no answers); the
        RR tails stay in `_rendered` for the name's answers. `types`: the name's, if read
        already."""
        zone = self.zone
        if types is None:
            types = zone.names.get(owner)
        if not types:
            return b""
        sigs_by_type: dict[int, tuple[bytes, ...]] = {}
        sig_off: dict[int, int] = {}
        if self.signed:
            for rdtype in types:
                tails = zone.sigs.get(owner, types, rdtype) if rdtype != L.RRSIG else ()
                if tails:
                    sigs_by_type[rdtype] = tails
                    sig_off[rdtype] = self._run(tails)
        sink, write = self.out, self.f.write
        rendered = self._rendered = {}
        runs = self._runs_of = {}
        entries = []
        for rdtype in sorted(types) if len(types) > 1 else types:
            rrset = types[rdtype]
            tgt_off = 0
            if rdtype == L.RRSIG:  # the signer's rdata carry their wire form already
                tails = fast_tails(rrset)
                rr_off = self._rrsig_indirect(tails, sigs_by_type, sig_off)
                count = 1 if rr_off else 0
                if not rr_off:
                    rr_off = self._run(tails)
            else:
                tails = rendered[rdtype] = rr_tails(rrset)
                rr_off = rr_len = 0
                if tails:
                    rr_off = sink.n
                    rr_len = write(b"".join(tails))
                    sink.n += rr_len
                count = 0
                if rdtype in _TARGETED:
                    tgts = ([answer.name_wire(rrset[0].target)]  # type: ignore[attr-defined]
                            if rdtype == L.CNAME or rdtype == L.DNAME else answer.targets(rrset))
                    if tgts:
                        count = len(tgts)
                        tgt_off = sink.n
                        sink.n += write(b"".join([bytes((len(t),)) + t for t in tgts]))
            sigs = sigs_by_type.get(rdtype, ()) if sig_off else ()
            at = sig_off.get(rdtype, 0) if sigs else 0
            entries.append(_TYPE(rdtype, len(tails), rr_off, len(sigs), count, at, tgt_off))
            if sig_off and tails and rdtype != L.RRSIG:  # a signed name: its answers' runs
                runs[rdtype] = _RUNS(rr_off, rr_len, len(tails), at, L.run_length(sigs), len(sigs))
        return b"".join(entries)

    def _answers_of(self, owner: bytes, types: Types) -> None:
        """The answer records `CompiledZone.build` holds for the name `owner` (not
        occluded), in its order, each rendered and written at once; most from the RR
        tails its node's `_types` rendered."""
        rendered = self._rendered
        root = len(owner) == 1
        sink = self.out
        for rdtype in types:
            if rdtype in LAZY_TYPES:
                continue
            key = owner + rdtype.to_bytes(2, "big")
            # additional section; root (no pointer); no RR, so no `c0 0c` either
            tails = () if rdtype in _WITH_TARGETS or root else rendered[rdtype]
            if not tails:
                plain = answer.positive(self.zone, owner, rdtype)[0]
                self._record(key, L.KIND_ANSWER, self._variants(owner, rdtype, plain))
                continue
            self.tags.append(crc32(key) or 1)
            self.offs.append(sink.n)
            rrs = SELF.join(tails)  # the answer's body: `SELF` before each
            if not self.signed:  # the record in one join: kind, 1 variant, its head, body
                sink.n += self.f.write(b"".join((
                    _REC_HEAD(len(key)), key, _ANSWER_ONE,
                    _VARIANT(POSITIVE, len(tails), 0, 0, 2 + len(rrs)), SELF, rrs)))
                continue
            runs = self._runs_of.get(rdtype)
            if runs is not None:  # read from the node's runs (layout 5)
                sink.n += self.f.write(b"".join((_REC_HEAD(len(key)), key, _ANSWER_RUNS, runs)))
                continue
            body = SELF + rrs
            one = _VARIANT(POSITIVE, len(tails), 0, 0, len(body)) + body
            sigs = self.zone.sigs.get(owner, types, rdtype)
            if sigs:
                body += SELF + SELF.join(sigs)
            sink.n += self.f.write(b"".join((
                _REC_HEAD(len(key)), key, _ANSWER_TWO, one,
                _VARIANT(POSITIVE, len(tails) + len(sigs), 0, 0, len(body)), body)))

    def _answers(self) -> None:
        """Nothing: `_nodes` wrote each name's answers after its node."""

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
