"""`ZoneImage`: read access to one zone version's image (a file mapped read-only, or bytes).

Owns the lookups the answer path makes in an image: the hash table of
pre-rendered answers and name nodes, node type entries and their RR, RRSIG
and target runs, and the binary searches of the denial table (NSEC canonical
keys or NSEC3 hashes), through an overlay to its base. Never builds an image
nor imports dnspython or the builder; no per-RRset Python objects (a few per
zone). Layout: `node.image.layout`, `docs/image-format.md`.
"""

from __future__ import annotations

import hashlib
import mmap
import sys
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from pathlib import Path
from zlib import crc32

from node.errors import ValidationError
from node.image import layout as L
from node.server.wire import within

# (flags, types, denial, wdenial, ref, type base, the image whose buffer holds it)
Node = tuple[int, int, int, int, int, int, "ZoneImage"]
Piece = tuple[bytes, tuple[bytes, ...]]  # (owner wire, rendered RRs after the owner)
Variant = tuple[int, int, int, int, bytes]  # (flags, an, ns, ar, body)

_SLOT_UNPACK = L.SLOT.unpack_from  # also two u32 of the bucket index
_ANSWER = bytes((L.KIND_ANSWER,))
_NODE = bytes((L.KIND_NODE,))


class ZoneImage:
    """One immutable zone version; build with `open(path)` or `from_bytes(buf)`."""

    __slots__ = ("_bucket_off", "_bucket_shift", "_buf", "_cuts", "_denial", "_hash", "_mask",
                 "_mm", "_skip", "apex", "apex_wild", "base", "base_revision", "bodies", "count",
                 "iterations", "memo", "neg_soa", "neg_soa_do", "nsec3", "origin", "overlay",
                 "path", "pieces", "prefix", "records", "revision", "salt", "serial", "signed",
                 "size")

    def __init__(self, buf: bytes | mmap.mmap, path: Path | None = None,
                 mm: mmap.mmap | None = None, base: ZoneImage | None = None) -> None:
        (_, _, flags, serial, revision, olen, hash_off, slots, denial_off, count, soa_off,
         soa_n, soa_do_off, soa_do_n, iterations, salt_len, salt_off, size, records,
         base_revision) = L.read_header(buf)
        self._buf, self._mm = buf, mm
        self.path = path
        self.size = size
        self.origin: bytes = buf[L.HEADER.size : L.HEADER.size + olen]
        self.serial: int = serial
        self.revision: int = revision
        self.signed = bool(flags & L.F_SIGNED)
        self.nsec3 = bool(flags & L.F_NSEC3)
        self._hash = hash_off
        self._mask = slots - 1
        self._denial = denial_off
        self.count: int = count
        self._bucket_off = self._bucket_shift = self._cuts = 0  # _cuts: NSEC3's `L.CUT`s
        self._skip = len(L.canonical_key(self.origin))  # every NSEC key starts with it
        self.prefix: memoryview | None = None  # the sort prefixes (u64), bisected in C
        self.memo: dict[int, object] = {}  # node.image.negative's, bounded
        self.bodies: list[tuple[int, bytes, object] | None] | None = None  # negative's, bounded
        self.pieces: OrderedDict[int, Piece] = OrderedDict()  # node.image.negative's, bounded
        prefix_off = L.align8(denial_off + 4 * count)  # NSEC
        if self.nsec3:  # the bucket index after the hashes and piece offsets
            at = denial_off + (L.HASH_LEN + 4) * count
            bits = L.U32.unpack_from(buf, at)[0]  # full images: then sort prefixes, cuts
            self._bucket_shift, self._bucket_off = 32 - bits, at + 4
            prefix_off = 0 if flags & L.F_OVERLAY else L.align16(at + 8 + 4 * (1 << bits))
            self._cuts = prefix_off and prefix_off + L.PREFIX_LEN  # each after its prefix
        self.records: int = records
        self.iterations: int = iterations
        self.salt: bytes = buf[salt_off : salt_off + salt_len] if salt_len else b""
        self.neg_soa = L.tails_at(buf, soa_off, soa_n)
        self.neg_soa_do = L.tails_at(buf, soa_do_off, soa_do_n)
        self.overlay = bool(flags & L.F_OVERLAY)
        self.base_revision: int = base_revision
        self.base: ZoneImage | None = None
        if self.overlay:
            if base is None or base.overlay or base.revision != base_revision \
                    or base.origin != self.origin:
                raise ValidationError(
                    f"zone image overlay applies to revision {base_revision} of its zone; "
                    f"give that full image as its base")
            self.base = base
        elif base is not None:
            raise ValidationError("a full zone image takes no base")
        self.apex: Node | None = None
        self.apex = self.node(self.origin)
        self.apex_wild = self.node(b"\x01*" + self.origin)  # the flood's wildcard check
        if prefix_off and count and sys.byteorder == "little":  # last: nothing raises after
            if self.nsec3:  # every other u64: each prefix is followed by its cut
                pairs = memoryview(buf)[prefix_off : prefix_off + L.NSEC3_PAIR * count]
                self.prefix = pairs.cast("Q")[::2]
            else:
                self.prefix = memoryview(buf)[prefix_off : prefix_off + L.PREFIX_LEN * count
                                              ].cast("Q")

    @classmethod
    def from_bytes(cls, buf: bytes, base: ZoneImage | None = None) -> ZoneImage:
        """An image in memory; an overlay needs the full image it applies to as `base`."""
        return cls(buf, base=base)

    @classmethod
    def open(cls, path: Path | str, base: ZoneImage | None = None) -> ZoneImage:
        """Map the image file read-only (pages shared by every process mapping it)."""
        path = Path(path)
        with path.open("rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls(mm, path, mm, base)
        except BaseException:
            mm.close()
            raise

    @property
    def full(self) -> ZoneImage:
        """The full image under this one (itself unless an overlay): the next overlay's base."""
        return self.base or self

    def release(self) -> None:
        """No longer served: break the image's one reference cycle (its apex nodes name it),
        so it is freed, and its file unmapped, once nothing holds it. Else only the cyclic
        collector frees it, and never once `gc.freeze()` (node/gcwatch.py) has frozen it
        while it was served: each superseded version would stay mapped for good."""
        self.apex = self.apex_wild = None

    def close(self) -> None:
        """Unmap (only once no reader uses this image any more)."""
        if self.prefix is not None:  # an exported buffer would keep the mapping open
            self.prefix, prefix = None, self.prefix
            prefix.release()
        if self._mm is not None:
            self._mm.close()

    # --- hash table ------------------------------------------------------------

    def _record(self, hkey: bytes, kind: bytes) -> int:
        """Offset just after the kind octet of the record for `hkey`, or -1. Keys are wire
        names (+ 2 octets), never a proper prefix of one another once the kind octet is
        appended, so one comparison decides."""
        buf = self._buf
        t = crc32(hkey) or 1
        mask = self._mask
        i = t & mask
        base = self._hash
        unpack = _SLOT_UNPACK
        want = hkey + kind
        n = len(want) + 2
        while True:
            st, off = unpack(buf, base + (i << 3))
            if st == t and buf[off + 2 : off + n] == want:
                return off + n
            if not st:
                return -1
            i = (i + 1) & mask

    def variant(self, off: int, do: int) -> Variant:
        """The answer variant stored at `off` (a record payload or a referral)."""
        buf = self._buf
        if buf[off] == L.RUNS_ANSWER:  # read from the node's runs (layout 5)
            return L.runs_variant(buf, off + 1, do)
        skip = do and buf[off] > 1  # the DO=0 variant
        off += 1 + (L.VARIANT.size + L.VARIANT.unpack_from(buf, off + 1)[4] if skip else 0)
        flags, an, ns, ar, blen = L.VARIANT.unpack_from(buf, off)
        start = off + L.VARIANT.size
        return flags, an, ns, ar, buf[start : start + blen]

    def answer(self, hkey: bytes, do: int) -> Variant | None:
        """The pre-rendered answer for `hkey` = owner wire + QTYPE, if the image has one."""
        off = self._record(hkey, _ANSWER)
        if off < 0:
            return None if self.base is None else self.base.answer(hkey, do)
        return None if not self._buf[off] else self.variant(off, do)  # 0 variants: deleted

    def node(self, name: bytes) -> Node | None:
        """The node of an existing name or empty non-terminal; None if there is none."""
        off = self._record(name + b"\x00\x00", _NODE)
        if off < 0:
            base = self.base
            if base is None:
                return None
            node = base.node(name)
            if node is None:
                return None
            # the base's referral and wildcard proof may be stale: the cold path recomputes
            return node[0], node[1], node[2], L.BY_KEY, 0, node[5], base
        flags, ntypes, denial, wdenial, ref = L.NODE.unpack_from(self._buf, off)
        if not flags:  # deleted in this overlay
            return None
        return flags, ntypes, denial, wdenial, ref, off + L.NODE.size, self

    # --- node contents ----------------------------------------------------------

    def _entry(self, node: Node, rdtype: int) -> tuple[int, ...] | None:
        buf = node[6]._buf
        base = node[5]
        for i in range(node[1]):
            off = base + i * L.TYPE.size
            if buf[off] | buf[off + 1] << 8 == rdtype:
                return L.TYPE.unpack_from(buf, off)
        return None

    def types(self, node: Node) -> list[int]:
        buf = node[6]._buf
        base = node[5]
        return [buf[base + i * L.TYPE.size] | buf[base + i * L.TYPE.size + 1] << 8
                for i in range(node[1])]

    def tails(self, node: Node, rdtype: int) -> tuple[bytes, ...]:
        """The RRs of type `rdtype` at the node, rendered after their owner."""
        e = self._entry(node, rdtype)
        if e is None:
            return ()
        _, count, off, _, tgt_n, _, _ = e
        buf = node[6]._buf
        if rdtype == L.RRSIG and tgt_n:  # indirect: TTL, then references to RRSIG tails
            out = []  # each keeps its own TTL, that of the RRset it covers (RFC 4034 §3)
            for i in range(count):
                ref = L.U32.unpack_from(buf, off + 4 + 4 * i)[0]
                out.append(buf[ref : ref + 10 + (buf[ref + 8] << 8 | buf[ref + 9])])
            return tuple(out)
        return L.tails_at(buf, off, count)

    def sigs(self, node: Node, rdtype: int) -> tuple[bytes, ...]:
        """The RRSIGs covering `rdtype` at the node (original TTL)."""
        e = self._entry(node, rdtype)
        if e is None or not e[3]:
            return ()
        return L.tails_at(node[6]._buf, e[5], e[3])

    def targets(self, node: Node, rdtype: int) -> list[bytes]:
        """NS/MX/SRV targets (additional-section names) or the CNAME target."""
        e = self._entry(node, rdtype)
        if e is None or rdtype == L.RRSIG:
            return []
        buf = node[6]._buf
        off = e[6]
        out = []
        for _ in range(e[4]):
            ln = buf[off]
            out.append(buf[off + 1 : off + 1 + ln])
            off += 1 + ln
        return out

    # --- denial (one layer) -------------------------------------------------------

    def _key_at(self, index: int) -> bytes:
        buf = self._buf
        if self.nsec3:
            at = self._denial + L.HASH_LEN * index
            return buf[at : at + L.HASH_LEN]
        rec = L.U32.unpack_from(buf, self._denial + 4 * index)[0]
        return buf[rec + 2 : rec + 2 + (buf[rec] | buf[rec + 1] << 8)]

    def _off_at(self, index: int) -> int:
        """Offset of the piece at `index`; 0 in an overlay: deleted there."""
        buf = self._buf
        if self.nsec3:
            return L.U32.unpack_from(buf, self._denial + L.HASH_LEN * self.count + 4 * index)[0]
        rec = L.U32.unpack_from(buf, self._denial + 4 * index)[0]
        return L.U32.unpack_from(buf, rec + 2 + (buf[rec] | buf[rec + 1] << 8))[0]

    def _piece_at(self, off: int) -> Piece:
        buf = self._buf
        olen = buf[off]
        n = buf[off + 1 + olen] | buf[off + 2 + olen] << 8
        return buf[off + 1 : off + 1 + olen], L.tails_at(buf, off + 3 + olen, n)

    def _bisect(self, key: bytes) -> int:
        """The number of chain entries at or before `key`."""
        buf = self._buf
        base = self._denial
        lo, hi = 0, self.count
        if self.nsec3:  # the bucket of the hash's top bits, then bisect inside it
            at = self._bucket_off + 4 * (int.from_bytes(key[:4], "big") >> self._bucket_shift)
            lo, hi = _SLOT_UNPACK(buf, at)
            while lo < hi:
                mid = (lo + hi) >> 1
                at = base + mid * L.HASH_LEN
                if key < buf[at : at + L.HASH_LEN]:
                    hi = mid
                else:
                    lo = mid + 1
            return lo
        prefix = self.prefix
        if prefix is not None:  # C bisect of the sort prefixes; whole keys only for ties
            pq = L.sort_prefix(key[self._skip :])
            hi = bisect_right(prefix, pq)
            if not hi or prefix[hi - 1] != pq:
                return hi
            lo = bisect_left(prefix, pq, 0, hi)
        unpack = L.U32.unpack_from
        while lo < hi:
            mid = (lo + hi) >> 1
            rec = unpack(buf, base + 4 * mid)[0]
            if key < buf[rec + 2 : rec + 2 + (buf[rec] | buf[rec + 1] << 8)]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _exact(self, key: bytes) -> int:
        """Piece offset for `key` in this layer: -1 absent, 0 deleted (overlay)."""
        i = self._bisect(key) - 1
        return self._off_at(i) if i >= 0 and self._key_at(i) == key else -1

    # --- denial (what answers use) ---------------------------------------------------

    def digest(self, name: bytes) -> bytes:
        """The raw NSEC3 hash of a lowercased wire name (RFC 5155 §5)."""
        d = hashlib.sha1(name + (salt := self.salt)).digest()
        for _ in range(self.iterations):
            d = hashlib.sha1(d + salt).digest()
        return d

    def denial_key(self, name: bytes) -> bytes:  # the chain's sort key of a name
        return self.digest(name) if self.nsec3 else L.canonical_key(name)

    def match(self, name: bytes, node: Node | None) -> Piece | None:
        """The NSEC at `name`, or the NSEC3 of its hash (`node`: the name's node)."""
        if node is None:
            return None
        index = node[2]
        if index == L.NO_DENIAL:
            return None
        src = node[6]
        if self.base is None:
            return src._piece_at(src._off_at(index))
        if index == L.BY_KEY:
            return self._merged_exact(self.denial_key(name))
        if src is self:
            return self._piece_at(self._off_at(index))
        key = src._key_at(index)
        off = self._exact(key)
        if off < 0:
            return src._piece_at(src._off_at(index))
        return self._piece_at(off) if off else None

    def _merged_exact(self, key: bytes) -> Piece | None:
        off = self._exact(key)
        if off >= 0 or self.base is None:  # found, or deleted (0) in this overlay
            return self._piece_at(off) if off > 0 else None
        off = self.base._exact(key)
        return self.base._piece_at(off) if off > 0 else None

    def cover(self, name: bytes) -> Piece | None:
        """The last chain entry at or before `name` (its hash), wrapping to the last: it
        covers `name` unless it matches it."""
        base = self.base
        if base is None:
            i = self.cover_index(name)
            return self.piece(i) if i >= 0 else None
        key = self.denial_key(name)
        i = self._live_base(base._bisect(key) - 1)
        j = self._live_top(self._bisect(key) - 1)
        if i < 0 and j < 0:  # before the first entry: wrap to the last
            i = self._live_base(base.count - 1)
            j = self._live_top(self.count - 1)
        if j >= 0 and (i < 0 or self._key_at(j) >= base._key_at(i)):
            return self._piece_at(self._off_at(j))
        return base._piece_at(base._off_at(i)) if i >= 0 else None

    def cover_index(self, name: bytes) -> int:
        """`cover` in this layer only: the entry's index (-1: empty table)."""
        if not self.count:
            return -1
        i = self._bisect(self.digest(name) if self.nsec3 else L.canonical_key(name)) - 1
        return i if i >= 0 else self.count - 1

    def piece(self, index: int) -> Piece:
        """The denial piece at `index` of this layer's table."""
        return self._piece_at(self._off_at(index))

    def _live_base(self, i: int) -> int:
        base = self.base
        while i >= 0 and base is not None and self._exact(base._key_at(i)) == 0:
            i -= 1
        return i

    def _live_top(self, j: int) -> int:
        while j >= 0 and not self._off_at(j):
            j -= 1
        return j

    def wildcard(self, ce: bytes, node: Node | None) -> Piece | None:
        """The NSEC/NSEC3 matching or covering `*.ce` (`node`: the node of `ce`)."""
        if node is None or node[3] == L.BY_KEY or self.base is not None:
            return self.cover(b"\x01*" + ce)
        if node[3] == L.NO_DENIAL:
            return None
        src = node[6]
        return src._piece_at(src._off_at(node[3]))

    def contains(self, name: bytes) -> bool:
        """True if the wire name is at or below the origin (label-aligned)."""
        return within(name, self.origin)
