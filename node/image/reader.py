"""`ZoneImage`: read access to one zone version's image (a file mapped read-only, or bytes).

Owns the lookups the answer path makes in an image: the hash table of
pre-rendered answers and name nodes, node type entries and their RR, RRSIG
and target runs, and the binary searches of the denial table (NSEC canonical
keys or NSEC3 hashes). Never builds an image and never imports dnspython or
the builder; holds no per-RRset Python objects (a few per zone: the header
fields and the negative SOA runs). Layout: `node.image.layout`,
`docs/image-format.md`.
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path
from zlib import crc32

from node.errors import ValidationError
from node.image import layout as L

Node = tuple[int, int, int, int, int, int]  # (flags, types, denial, wdenial, ref, type base)
Piece = tuple[bytes, tuple[bytes, ...]]  # (owner wire, rendered RRs after the owner)
Variant = tuple[int, int, int, int, bytes]  # (flags, an, ns, ar, body)

_SLOT_UNPACK = L.SLOT.unpack_from
_ANSWER = bytes((L.KIND_ANSWER,))
_NODE = bytes((L.KIND_NODE,))


class ZoneImage:
    """One immutable zone version; build with `open(path)` or `from_bytes(buf)`."""

    __slots__ = (
        "_buf",
        "_denial",
        "_hash",
        "_mask",
        "_mm",
        "apex",
        "count",
        "iterations",
        "neg_soa",
        "neg_soa_do",
        "nsec3",
        "origin",
        "path",
        "records",
        "revision",
        "salt",
        "serial",
        "signed",
        "size",
    )

    def __init__(self, buf: bytes | mmap.mmap, path: Path | None = None,
                 mm: mmap.mmap | None = None) -> None:
        if len(buf) < L.HEADER.size:
            raise ValidationError("zone image too short")
        (magic, version, flags, serial, revision, olen, hash_off, slots, denial_off, count,
         soa_off, soa_n, soa_do_off, soa_do_n, iterations, salt_len, salt_off, size, records
         ) = L.HEADER.unpack_from(buf, 0)
        if magic != L.MAGIC:
            raise ValidationError("not a zone image (bad magic)")
        if version != L.LAYOUT_VERSION:
            raise ValidationError(f"zone image layout {version}, expected {L.LAYOUT_VERSION}")
        if size != len(buf) or hash_off + slots * L.SLOT.size > size:
            raise ValidationError(f"zone image truncated: {len(buf)} of {size} octets")
        self._buf = buf
        self._mm = mm
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
        self.records: int = records
        self.iterations: int = iterations
        self.salt: bytes = buf[salt_off : salt_off + salt_len] if salt_len else b""
        self.neg_soa = L.tails_at(buf, soa_off, soa_n)
        self.apex: Node | None = None
        self.apex = self.node(self.origin)
        self.neg_soa_do = L.tails_at(buf, soa_do_off, soa_do_n)

    @classmethod
    def from_bytes(cls, buf: bytes) -> ZoneImage:
        return cls(buf)

    @classmethod
    def open(cls, path: Path | str) -> ZoneImage:
        """Map the image file read-only (pages shared by every process mapping it)."""
        path = Path(path)
        with path.open("rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls(mm, path, mm)
        except BaseException:
            mm.close()
            raise

    def close(self) -> None:
        """Unmap (only once no reader uses this image any more)."""
        if self._mm is not None:
            self._mm.close()

    # --- hash table ------------------------------------------------------------

    def _record(self, hkey: bytes, kind: bytes) -> int:
        """Offset just after the kind octet of the record for `hkey`, or -1.

        Keys are wire names (+ 2 octets), never a proper prefix of one another
        once the kind octet is appended, so one comparison decides."""
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
        if do and buf[off] > 1:
            flags, an, ns, ar, blen = L.VARIANT.unpack_from(buf, off + 1)
            off += 1 + L.VARIANT.size + blen
        else:
            off += 1
        flags, an, ns, ar, blen = L.VARIANT.unpack_from(buf, off)
        start = off + L.VARIANT.size
        return flags, an, ns, ar, buf[start : start + blen]

    def answer(self, hkey: bytes, do: int) -> Variant | None:
        """The pre-rendered answer for `hkey` = owner wire + QTYPE, if the image has one."""
        off = self._record(hkey, _ANSWER)
        return None if off < 0 else self.variant(off, do)

    def node(self, name: bytes) -> Node | None:
        """The node of an existing name or empty non-terminal; None if there is none."""
        off = self._record(name + b"\x00\x00", _NODE)
        if off < 0:
            return None
        flags, ntypes, denial, wdenial, ref = L.NODE.unpack_from(self._buf, off)
        return flags, ntypes, denial, wdenial, ref, off + L.NODE.size

    # --- node contents ----------------------------------------------------------

    def _entry(self, node: Node, rdtype: int) -> tuple[int, ...] | None:
        buf = self._buf
        base = node[5]
        for i in range(node[1]):
            off = base + i * L.TYPE.size
            if buf[off] | buf[off + 1] << 8 == rdtype:
                return L.TYPE.unpack_from(buf, off)
        return None

    def types(self, node: Node) -> list[int]:
        buf = self._buf
        base = node[5]
        return [buf[base + i * L.TYPE.size] | buf[base + i * L.TYPE.size + 1] << 8
                for i in range(node[1])]

    def has(self, node: Node, rdtype: int) -> bool:
        return self._entry(node, rdtype) is not None

    def tails(self, node: Node, rdtype: int) -> tuple[bytes, ...]:
        """The RRs of type `rdtype` at the node, rendered after their owner."""
        e = self._entry(node, rdtype)
        if e is None:
            return ()
        _, count, off, _, tgt_n, _, _ = e
        buf = self._buf
        if rdtype == L.RRSIG and tgt_n:  # indirect: TTL, then references to RRSIG tails
            ttl = buf[off : off + 4][::-1]
            out = []
            for i in range(count):
                ref = L.U32.unpack_from(buf, off + 4 + 4 * i)[0]
                t = buf[ref : ref + 10 + (buf[ref + 8] << 8 | buf[ref + 9])]
                out.append(t[:4] + ttl + t[8:])
            return tuple(out)
        return L.tails_at(buf, off, count)

    def sigs(self, node: Node, rdtype: int) -> tuple[bytes, ...]:
        """The RRSIGs covering `rdtype` at the node (original TTL)."""
        e = self._entry(node, rdtype)
        if e is None or not e[3]:
            return ()
        return L.tails_at(self._buf, e[5], e[3])

    def targets(self, node: Node, rdtype: int) -> list[bytes]:
        """NS/MX/SRV targets (additional-section names) or the CNAME target."""
        e = self._entry(node, rdtype)
        if e is None or rdtype == L.RRSIG:
            return []
        buf = self._buf
        off = e[6]
        out = []
        for _ in range(e[4]):
            ln = buf[off]
            out.append(buf[off + 1 : off + 1 + ln])
            off += 1 + ln
        return out

    # --- denial ----------------------------------------------------------------------

    def piece(self, index: int) -> Piece | None:
        """The NSEC/NSEC3 record with its RRSIGs at position `index` of the chain."""
        if index == L.NO_DENIAL or not self.count:
            return None
        buf = self._buf
        if self.nsec3:
            off = L.U32.unpack_from(buf, self._denial + L.HASH_LEN * self.count + 4 * index)[0]
        else:
            rec = L.U32.unpack_from(buf, self._denial + 4 * index)[0]
            klen = buf[rec] | buf[rec + 1] << 8
            off = L.U32.unpack_from(buf, rec + 2 + klen)[0]
        olen = buf[off]
        owner = buf[off + 1 : off + 1 + olen]
        n = buf[off + 1 + olen] | buf[off + 2 + olen] << 8
        return owner, L.tails_at(buf, off + 3 + olen, n)

    def digest(self, name: bytes) -> bytes:
        """The raw NSEC3 hash of a lowercased wire name (RFC 5155 §5)."""
        salt = self.salt
        d = hashlib.sha1(name + salt).digest()
        for _ in range(self.iterations):
            d = hashlib.sha1(d + salt).digest()
        return d

    def cover(self, name: bytes) -> int:
        """Index of the last chain entry at or before `name` (its hash), wrapping to the last."""
        n = self.count
        if not n:
            return L.NO_DENIAL
        buf = self._buf
        base = self._denial
        lo, hi = 0, n
        if self.nsec3:
            key = self.digest(name)
            while lo < hi:
                mid = (lo + hi) >> 1
                at = base + mid * L.HASH_LEN
                if key < buf[at : at + L.HASH_LEN]:
                    hi = mid
                else:
                    lo = mid + 1
        else:
            key = L.canonical_key(name)
            unpack = L.U32.unpack_from
            while lo < hi:
                mid = (lo + hi) >> 1
                rec = unpack(buf, base + 4 * mid)[0]
                klen = buf[rec] | buf[rec + 1] << 8
                if key < buf[rec + 2 : rec + 2 + klen]:
                    hi = mid
                else:
                    lo = mid + 1
        return lo - 1 if lo else n - 1

    def contains(self, name: bytes) -> bool:
        """True if the wire name is at or below the origin (label-aligned)."""
        origin = self.origin
        while True:
            if name == origin:
                return True
            if len(name) <= len(origin):
                return False
            name = name[name[0] + 1 :]
