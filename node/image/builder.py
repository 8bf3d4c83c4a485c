"""Builds the image of one zone version: runs in a worker process, never in a serving one.

Owns the translation of a `ZoneSnapshot` into the byte layout of
`node.image.layout` (documented in `docs/image-format.md`). The answers are
rendered by the same code the `ZoneTable` serves from (`CompiledZone`,
`answer`, `secure`), so an image answers byte for byte as the compiled zone
does; this module only lays the pieces out. Heavy on purpose (dnspython,
one full compile): the serving processes import `node.image.reader` and
`node.image.table`, which never import this module.
"""

from __future__ import annotations

import bisect
import itertools
import os
import sys
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.gcwatch import paused, settle
from node.image import layout as L
from node.server import answer, secure
from node.server.compile import CompiledZone
from node.server.proofs import fast_tails
from node.server.render import Entry
from node.zones.model import ZoneSnapshot


@contextmanager
def paused_gc(full: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while a build allocates (the zone's objects are live
    until the end anyway; collections of the growing heap only cost time). After a `full`
    (zone-sized) build, what is alive is frozen before the collector runs again
    (`node.gcwatch.settle`): else the first collections would visit every object allocated
    meanwhile. An overlay's few objects are left to the collector."""
    with paused():  # node/gcwatch.py: with the other threads' pauses
        try:
            yield
        finally:
            if full:
                settle()


def build_image(snapshot: ZoneSnapshot) -> bytes:
    """One contiguous image of `snapshot` (see `docs/image-format.md`)."""
    with paused_gc(full=True):
        return ImageWriter(CompiledZone.build(snapshot)).image()


def image_name(snapshot: ZoneSnapshot, base_revision: int | None = None) -> str:
    """The file name of a version's image: origin, serial and etcd revision; an overlay's
    also names the revision of its base (`<origin>.<serial>.<revision>+<base>.ovl`)."""
    origin = snapshot.origin.to_text(omit_final_dot=True).lower() or "root"
    origin = origin.replace("/", "_")
    if base_revision is None:
        return f"{origin}.{snapshot.serial}.{snapshot.revision}.img"
    return f"{origin}.{snapshot.serial}.{snapshot.revision}+{base_revision}.ovl"


def write_image(snapshot: ZoneSnapshot, directory: Path) -> Path:
    """Write the image of `snapshot` under `directory` atomically (temp file + rename)."""
    return write_bytes(build_image(snapshot), directory / image_name(snapshot))


def write_bytes(data: bytes, path: Path) -> Path:
    """Write an image (or overlay) to `path` atomically (temp file in its directory + rename)."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True, slots=True)
class Delta:
    """What an overlay holds: the changes of a zone since the full image `base_revision`."""

    base_revision: int
    answers: tuple[bytes, ...]  # answer keys (owner + QTYPE + class) to (re)write
    gone_answers: tuple[bytes, ...]
    nodes: tuple[bytes, ...]  # names whose node to (re)write
    gone_nodes: tuple[bytes, ...]
    denial: tuple[Any, ...]  # DenialIndex keys whose piece to (re)write
    gone_denial: tuple[bytes, ...]  # layout keys (hash or canonical key) of deleted pieces


def _variant(entry: Entry) -> bytes:
    hdr = entry[0][0]
    counts = (int.from_bytes(hdr[4:6], "big"), int.from_bytes(hdr[6:8], "big"),
              int.from_bytes(hdr[8:10], "big"))
    body = entry[2]
    return L.VARIANT.pack(entry[5], *counts, len(body)) + body


class ImageWriter:
    """Lays out one compiled zone; `image()` returns the finished buffer."""

    def __init__(self, zone: CompiledZone, delta: Delta | None = None) -> None:
        self.zone = zone
        self.delta = delta
        self._pos: dict[bytes, int] | None = None  # denial key -> position
        self.signed = zone.denial is not None
        self.out = bytearray(L.HEADER.size) + zone.origin
        self.slots: list[tuple[bytes, int]] = []  # (hash key, record offset)
        self._runs_of: dict[int, bytes] = {}  # the last node's `RUNS` by type (full, signed)

    def _put(self, data: bytes) -> int:
        off = len(self.out)
        self.out += data
        return off

    def _run(self, tails: tuple[bytes, ...] | list[bytes]) -> int:
        return self._put(b"".join(tails)) if tails else 0

    def _record(self, hkey: bytes, kind: int, payload: bytes) -> int:
        off = self._put(L.REC_HEAD.pack(len(hkey)) + hkey + bytes((kind,)) + payload)
        self.slots.append((hkey, off))
        return off

    def _variants(self, qname: bytes, qtype: int, plain: Entry) -> bytes:
        """DO=0 then (signed zones only) DO=1 variant of an answer."""
        if not self.signed:
            return b"\x01" + _variant(plain)
        return b"\x02" + _variant(plain) + _variant(secure.resolve(self.zone, qname, qtype))

    # --- sections -------------------------------------------------------------

    def _denial(self) -> tuple[int, int, list[bytes]]:
        """Pieces and the sorted table; returns (table offset, count, sorted keys)."""
        index = self.zone.denial
        if index is None:
            return 0, 0, []
        keyed: list[tuple[bytes, int]] = []
        delta = self.delta
        cuts: dict[bytes, bytes] = {}  # a full NSEC3 image's cuts, by hash
        for key in index.keys if delta is None else delta.denial:
            owner, tails = index.pieces[key]
            off = self._put(bytes((len(owner),)) + owner + L.U16.pack(len(tails)) + b"".join(tails))
            if index.nsec3:
                keyed.append((key, off))
                if delta is None:
                    cuts[key] = L.nsec3_cut(owner, tails, self.zone.origin, off)
            else:
                ckey = L.canonical_key(owner)
                keyed.append((ckey, off))
        if delta is not None:
            keyed.extend((k, 0) for k in delta.gone_denial)  # 0: deleted
        keyed.sort()
        keys = [k for k, _ in keyed]
        if index.nsec3:
            bits = L.bucket_bits(len(keys))
            table = self._put(b"".join(keys) + b"".join(L.U32.pack(o) for _, o in keyed)
                              + L.U32.pack(bits)
                              + b"".join(L.U32.pack(i) for i in L.buckets(keys, bits)))
            if delta is None:  # full images: the flood's sort prefixes, each with its cut
                self.out += b"\x00" * (L.align16(len(self.out)) - len(self.out))
                self._put(b"".join(L.PREFIX.pack(int.from_bytes(k[:8], "big")) + cuts[k]
                                   for k in keys))
        else:
            recs = [self._put(L.U16.pack(len(k)) + k + L.U32.pack(o)) for k, o in keyed]
            table = self._put(b"".join(L.U32.pack(r) for r in recs))
            self.out += b"\x00" * (L.align8(len(self.out)) - len(self.out))
            skip = len(L.canonical_key(self.zone.origin))  # every key starts with the origin's
            self._put(b"".join(L.PREFIX.pack(L.sort_prefix(k[skip:])) for k in keys))
        return table, len(keys), keys

    def _denial_key(self, name: bytes) -> bytes:
        index = self.zone.denial
        assert index is not None
        return index.digest(name) if index.nsec3 else L.canonical_key(name)

    def _match(self, keys: list[bytes], name: bytes) -> int:
        if not keys:
            return L.NO_DENIAL
        if self._pos is None:
            self._pos = {k: i for i, k in enumerate(keys)}
        return self._pos.get(self._denial_key(name), L.NO_DENIAL)

    def _cover(self, keys: list[bytes], name: bytes) -> int:
        if not keys:
            return L.NO_DENIAL
        i = bisect.bisect_right(keys, self._denial_key(name)) - 1
        return i if i >= 0 else len(keys) - 1

    def _types(self, owner: bytes) -> bytes:
        zone = self.zone
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
        entries = []
        runs = self._runs_of = {}
        for rdtype in sorted(types):
            rrset = types[rdtype]
            tails = _answer_tails(zone.answers.get(owner + rdtype.to_bytes(2, "big") + b"\x00\x01"))
            if tails is None:  # RRSIG: the signer's rdata carry their wire form already
                tails = fast_tails(rrset) if rdtype == L.RRSIG else zone.tails(rrset)
            else:  # what `secure.resolve` renders next (DO=1 variants) through zone.tails
                zone.memo[id(rrset)] = (rrset, tails)
            indirect = 0
            rr_off = 0
            if rdtype == L.RRSIG:
                rr_off = self._rrsig_indirect(tails, sigs_by_type, sig_off)
                indirect = 1 if rr_off else 0
            if not rr_off:
                rr_off = self._run(tails)
            tgts: list[bytes] = answer.targets(rrset) if rdtype in _WITH_TARGETS else []
            if rdtype in (L.CNAME, L.DNAME):
                tgts = [answer.name_wire(rrset[0].target)]  # type: ignore[attr-defined]
            tgt_off = self._put(b"".join(bytes((len(t),)) + t for t in tgts)) if tgts else 0
            sigs = sigs_by_type.get(rdtype, ())
            count = len(tgts) if rdtype != L.RRSIG else indirect
            at = sig_off.get(rdtype, 0)
            entries.append(L.TYPE.pack(rdtype, len(tails), rr_off, len(sigs), count, at, tgt_off))
            if sig_off and tails and rdtype != L.RRSIG and self.delta is None:
                runs[rdtype] = L.RUNS.pack(rr_off, L.run_length(tails), len(tails), at,
                                           L.run_length(sigs), len(sigs))
        return b"".join(entries)

    def _rrsig_indirect(self, tails: tuple[bytes, ...], sigs: dict[int, tuple[bytes, ...]],
                        sig_off: dict[int, int]) -> int:
        """The RRSIG RRset as references to the per-type RRSIG runs (same rdata, own TTL);
        0 if some RR is not found there (then the run is stored as is)."""
        where: dict[bytes, int] = {}
        for rdtype, run in sigs.items():
            off = sig_off[rdtype]
            for t in run:
                where.setdefault(t[8:], off)
                off += len(t)
        refs = []
        for t in tails:
            off = where.get(t[8:])
            if off is None:
                return 0
            refs.append(off)
        ttl = int.from_bytes(tails[0][4:8], "big") if tails else 0
        return self._put(L.U32.pack(ttl) + b"".join(L.U32.pack(r) for r in refs))

    def _nodes(self, keys: list[bytes]) -> None:
        zone = self.zone
        delta = self.delta
        if delta is not None:
            for owner in delta.gone_nodes:
                self._record(owner + b"\x00\x00", L.KIND_NODE, L.NODE.pack(0, 0, 0, 0, 0))
            owners: Iterable[bytes] = delta.nodes
        else:
            owners = sorted(set(zone.names) | set(zone.below), key=L.canonical_key)
        for owner in owners:
            flags = (L.N_NAME if owner in zone.names else 0) | (
                L.N_BELOW if zone.below.get(owner) else 0)
            ref = 0
            if owner in zone.dnames:
                flags |= L.N_DNAME
            if owner in zone.cuts:
                flags |= L.N_CUT
                if not _occluded_above(zone, owner):
                    plain = answer.resolve(zone, owner, L.A)
                    ref = self._put(self._variants(owner, L.A, plain))
            types = self._types(owner)
            denial = wdenial = L.NO_DENIAL
            if delta is not None and zone.denial is not None:  # found by key when read
                wdenial = L.BY_KEY
                if zone.denial.match(owner) is not None:
                    denial = L.BY_KEY
            elif keys:
                denial = self._match(keys, owner)
                wild = b"\x01*" + owner
                wdenial = self._match(keys, wild)
                if wdenial == L.NO_DENIAL:
                    wdenial = self._cover(keys, wild)
            head = L.NODE.pack(flags, len(types) // L.TYPE.size, denial, wdenial, ref)
            self._record(owner + b"\x00\x00", L.KIND_NODE, head + types)
            if delta is None:  # a full image: the name's answers right after its node
                for rdtype in zone.names.get(owner) or ():
                    key = owner + rdtype.to_bytes(2, "big") + b"\x00\x01"
                    entry = zone.answers.get(key)
                    if entry is None:
                        continue
                    runs = None if rdtype in _WITH_TARGETS or len(owner) == 1 else (
                        self._runs_of.get(rdtype))  # layout 5: read from the node's runs
                    self._record(key[:-2], L.KIND_ANSWER, _RUNS_ANSWER + runs if runs else
                                 self._variants(owner, rdtype, entry))

    def _answers(self) -> None:
        zone = self.zone
        delta = self.delta
        if delta is None:  # a full image: `_nodes` wrote each name's answers after its node
            return
        for key in delta.gone_answers:
            self._record(key[:-2], L.KIND_ANSWER, b"\x00")  # 0 variants: deleted
        items = ((k, zone.answers[k]) for k in delta.answers)
        for key, entry in items:
            owner, qtype = key[:-4], key[-4] << 8 | key[-3]
            self._record(key[:-2], L.KIND_ANSWER, self._variants(owner, qtype, entry))

    def _hash(self) -> tuple[int, int]:
        n = 8
        while n < 2 * len(self.slots):
            n <<= 1
        mask = n - 1
        table = [(0, 0)] * n
        for hkey, off in self.slots:
            t = L.tag(hkey)
            i = t & mask
            while table[i][0]:
                i = (i + 1) & mask
            table[i] = (t, off)
        # align the table to 8 octets
        self.out += b"\x00" * (-len(self.out) % 8)
        return self._put(_slots(table)), n

    def image(self) -> bytes:
        zone = self.zone
        snap = zone.snapshot
        soa = zone.negative_soa()
        soa_off = self._run(soa)
        soa_do: tuple[bytes, ...] = zone.negative_soa_signed() if self.signed else soa
        soa_do_off = self._run(soa_do)
        denial_off, denial_count, keys = self._denial()
        index = zone.denial
        nsec3 = index is not None and index.nsec3
        salt = index.salt if index is not None else b""
        salt_off = self._put(salt) if salt else 0
        self._nodes(keys)
        self._answers()
        hash_off, hash_slots = self._hash()
        flags = (L.F_SIGNED if self.signed else 0) | (L.F_NSEC3 if nsec3 else 0)
        if self.delta is not None:
            flags |= L.F_OVERLAY
        L.HEADER.pack_into(
            self.out, 0, L.MAGIC, L.LAYOUT_VERSION, flags, snap.serial, snap.revision,
            len(zone.origin), hash_off, hash_slots, denial_off, denial_count,
            soa_off, len(soa), soa_do_off, len(soa_do),
            index.iterations if index is not None else 0, len(salt), salt_off, len(self.out),
            len(self.slots), 0 if self.delta is None else self.delta.base_revision)
        return bytes(self.out)


_WITH_TARGETS = frozenset({answer.NS, answer.SRV, answer.MX})  # answer.targets' types
_RUNS_ANSWER = bytes((L.RUNS_ANSWER,))


def _slots(table: list[tuple[int, int]]) -> bytes:
    """`b"".join(L.SLOT.pack(t, o) for t, o in table)` (two little-endian u32 per slot),
    packed by `array` in one pass: a 100k-name zone has half a million slots."""
    words = array("I", itertools.chain.from_iterable(table))
    if words.itemsize != 4:  # pragma: no cover - no such platform here
        return b"".join(L.SLOT.pack(t, o) for t, o in table)
    if sys.byteorder != "little":  # pragma: no cover
        words.byteswap()
    return words.tobytes()


def _answer_tails(entry: Entry | None) -> tuple[bytes, ...] | None:
    """The answer RRs of an eager positive answer, cut after their owner (a pointer to the
    question: `c0 0c`), which are `rr_tails` of the RRset; saves rendering them again."""
    if not entry:  # none, or only known to be in the base image (`overlay.IN_BASE`)
        return None
    body = entry[2]
    an = int.from_bytes(entry[0][0][4:6], "big")
    out = []
    pos = 0
    for _ in range(an):
        if body[pos : pos + 2] != b"\xc0\x0c":
            return None
        end = pos + 12 + (body[pos + 10] << 8 | body[pos + 11])
        out.append(body[pos + 2 : end])
        pos = end
    return tuple(out)


def _occluded_above(zone: CompiledZone, owner: bytes) -> bool:
    """True if a cut or a DNAME owner (the apex included) is above `owner`."""
    n = owner
    while n != zone.origin and len(n) > 1:
        n = n[n[0] + 1 :]
        if n in zone.cuts or n in zone.dnames:
            return True
    return False
