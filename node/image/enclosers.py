"""NXDOMAIN by closest encloser: the random-subdomain flood's answer in a few steps per query.

Owns `Shortcut`, built once per (zone image, closest encloser P, DO bit) by `shortcut(...)`,
and asked first after an answer-cache miss (by `Responder.fast_udp`, and by
`ImageTable.lookup`): a query name one label below P (`key[key[0] + 1 : -4] == P`) that has
no node in the image is NXDOMAIN, and its answer depends on the name only through what
`node.image.negative` keys its caches by. Each answer is offered to the table's doorkeeper
and kept in its answer cache when admitted, here. The table keeps the shortcuts in a small
bounded map by P (per DO bit) and drops a zone's with its version, those of the zones above
and below a change of its set of zones, and all with its doorkeepers, so a shortcut never
outlives its image (nor the doorkeeper it was given).

A shortcut exists only where that reasoning holds, checked when it is built: P has a node in
a served image that is not held, the zone is not the root, no zone cut or DNAME is at or
above P (below the apex; no DNAME at the apex: a name below one is synthesized, and NXDOMAIN
when its target in the zone is absent, which must not teach a shortcut), there is no `*.P`
node (no wildcard synthesis), no served or held zone's origin is directly below P (that name
belongs to the other zone), and for DO=1 in a signed zone P's wildcard proof is in the
image. Per query it checks the class (IN), the QTYPE (not AXFR/IXFR) and that the name has
no node (one probe of the image's hash table, or none where the proof itself shows it,
below); anything else returns None and takes the general path.

Modes (the bytes equal `negative.nxdomain`'s, which equal the general cold path's,
`tests/unit/image/test_image_enclosers.py`):

* unsigned zone, or DO=0: one entry per (question length, QTYPE) in the image's memo, shared
  with `negative.nxdomain`: the negative SOA with its owner a pointer to the origin inside
  the question;
* NSEC3, DO=1, P the apex (a full image with cuts, layout 4): per question length the SOA
  segment and the apex's NSEC3 (its match) rendered once (the head), the pointers, the
  header variants and the wildcard's piece by where it starts (the QTYPE changes only the
  statistics key); per name only the next closer's cover changes: one SHA-1 (the zone's salt
  and iterations), the C bisect of the hashes' 8-octet sort prefixes within the bucket of
  its top bits, then that cover's label and two RRs are copied out of the image at its cut
  (`L.nsec3_cut`) around a pointer to the origin and one to the cover's owner. The cover
  also proves the name has no node when it is not the name's own NSEC3 and has no opt-out
  flag (every name and empty non-terminal one label below the apex has an NSEC3, except
  insecure delegations in an opt-out span), so the hash table is probed only below opt-out
  covers. Only a zone this cluster signs has a denial index in its image, and its chain is
  whole by construction; a presigned zone (imported or transferred with its NSEC/NSEC3
  records) gets the `plain` shortcut, which probes, so a chain from outside that misses a
  name never answers NXDOMAIN for it. The answer is offered to the doorkeeper by
  `Doorkeeper.admit` written out (one call less); a name whose label could be an NSEC3
  owner's (32 octets), a hash that shares its first 8 octets with the cover's, and a cover
  that is also the match or the wildcard's piece or has no cut, go through `negative`
  instead;
* NSEC, DO=1, P the apex: one C bisect of the label's 8-octet sort prefix gives the cover
  and proves the name has no node (no entry with its prefix, and for a label under 8 octets
  the next entry is not below it), then the entry from `img.bodies`; ties and labels with
  octets 0 or 1 go through `negative` after the probe;
* other signed DO=1 cases (an encloser below the apex): `negative`'s proof and entry cache,
  without the table's general lookup before it;
* an overlay: `negative.nxdomain` after the probe (it merges both layers)."""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable
from hashlib import sha1
from zlib import crc32

from node.image import layout as L
from node.image import negative
from node.image.reader import Node, ZoneImage
from node.server.admission import Doorkeeper
from node.server.render import Entry, make_entry
from node.server.stats import KNOWN_QTYPES, OTHER_QTYPE

IN_CLASS = b"\x00\x01"
NODE_TAIL = b"\x00\x00"  # a node record's key: the name + two zero octets, then the kind
NODE_KIND = bytes((L.KIND_NODE,))
XFR = (251, 252)  # IXFR, AXFR: never here (the responder's slow path)
NSEC3_TYPE = b"\x00\x32"  # the type of an NSEC3 RR, as its piece's first RR starts
SHAPES_MAX = 256  # NSEC3 question shapes per shortcut, by question length: never reached
WILDS_MAX = 32  # wildcard tails per shape: one per cover segment length
_U32 = L.U32.unpack_from
_U32X2 = L.SLOT.unpack_from  # two u32: a bucket's first and end positions
_PAIR = L.NSEC3_PAIR  # a sort prefix and its cut, read as one: (prefix, then `L.CUT`)
_PREFIX_CUT = struct.Struct(L.PREFIX.format + L.CUT.format[1:]).unpack_from
_TOP = struct.Struct(">Q").unpack_from  # a digest's first 8 octets, as the sort prefixes
_FLAGS = negative.FLAGS
_LABEL = L.HASH_LABEL
_BODY_MAX = negative.BODY_MAX
_SHA1 = sha1()  # copied, then fed (cheaper than a new one: no digest set-up per name)
_NX = (negative.FLAGS & 0xF) << 16  # an NXDOMAIN's statistics key, without the QTYPE
# a question's known QTYPE (`stats.KNOWN_QTYPES`, not AXFR/IXFR) and class IN, as its
# last 4 octets -> the statistics key of its NXDOMAIN
_STAT_KEYS = {(t << 16 | 1).to_bytes(4, "big"): _NX | t for t in KNOWN_QTYPES if t not in XFR}

Answer = Callable[[bytes], Entry | None]
# what keeps an admitted cold answer: (key, DO bit, entry, origin, hot) as `ImageTable._keep`
Keep = Callable[[bytes, int, Entry, bytes, bool], None]
# an NSEC3 question shape (`Shortcut._shape`, by question length): head, pointers to the origin
# and the cover's owner, wildcard tails by cover segment length, header variants, the length
# of the header and question, where the cover's owner starts
_Shape = tuple[bytes, bytes, bytes, dict[int, bytes], tuple[bytes, ...], tuple[bytes, ...],
               int, int]


def shortcut(img: ZoneImage, ce: bytes, do: int, below: Callable[[bytes], bool],
             door: Doorkeeper, keep: Keep) -> Answer | None:
    """The shortcut for names one label below `ce` in `img` with this DO bit, or None where
    the reasoning above does not hold. `below(ce)`: a served or held origin is one label
    below `ce`. Each answer is offered to `door` and kept by `keep` when admitted (the
    responder calls a shortcut without the table's `lookup` around it)."""
    origin = img.origin
    if len(origin) == 1 or below(ce):
        return None
    node = img.apex if ce == origin else img.node(ce)
    if node is None:
        return None
    apex = img.apex
    if apex is not None and apex[0] & L.N_DNAME:  # synthesis for every name below
        return None
    a, n = ce, node
    while a != origin:  # a cut (referrals) or DNAME (synthesis) at the encloser or above
        if n is None or n[0] & (L.N_CUT | L.N_DNAME):
            return None
        a = a[a[0] + 1 :]
        n = img.node(a) if a != origin else None
    wild = img.apex_wild if ce == origin else img.node(b"\x01*" + ce)
    if wild is not None:
        return None
    sc = Shortcut(img, ce, node, do, door, keep)
    if img.base is not None:
        return sc.overlay
    if not (do and img.signed):
        return sc.plain
    if not img.count or node[3] == L.NO_DENIAL:
        return None
    if img.nsec3 and ce == origin and node[2] != L.NO_DENIAL and img._cuts \
            and img.prefix is not None:
        return sc.nsec3
    if not img.nsec3 and ce == origin and img.prefix is not None:
        return sc.nsec
    return sc.signed


class Shortcut:
    """One encloser's NXDOMAIN answers (see the module docstring); its methods are the modes."""

    __slots__ = ("_admit", "_base", "_bucket_off", "_buf", "_count", "_digest", "_flat",
                 "_keep", "_mask", "_match", "_offsets", "_pairs", "_seen", "_shapes", "_shift",
                 "_skip", "_slots", "_sort", "_wild", "_wild_head", "_wild_tails", "ce", "do",
                 "img", "node", "origin")

    def __init__(self, img: ZoneImage, ce: bytes, node: Node, do: int, door: Doorkeeper,
                 keep: Keep) -> None:
        self._admit = door.admit
        self._seen, self._slots = door.table  # `nsec3` writes the offer out
        self._keep = keep
        self.img = img
        self.ce = ce
        self.node = node
        self.do = do
        self.origin = img.origin
        self._buf = img._buf
        self._base = img._hash
        self._mask = img._mask
        self._shapes: dict[int, _Shape] = {}
        self._match = node[2]
        self._wild = node[3]
        self._count = img.count
        self._shift = img._bucket_shift + 32  # of a hash's first 8 octets: its bucket
        self._bucket_off = img._bucket_off
        self._pairs = img._cuts - L.PREFIX_LEN  # NSEC3: (sort prefix, cut) pairs
        self._skip = L.HASH_LABEL + len(img.origin) + 2  # a cut piece's RRs, from its label
        self._offsets = img._denial + L.HASH_LEN * img.count  # NSEC3: the piece offsets
        self._digest = img.digest
        self._sort = img.prefix  # the sort prefixes (u64), bisected in C
        self._flat = not img.iterations and not img.salt  # `_SHA1` copied (else `_digest`)
        self._wild_head = b""
        self._wild_tails: tuple[bytes, ...] = ()
        if (img.nsec3 and img.base is None and node[3] not in (L.NO_DENIAL, L.BY_KEY)
                and node[3] != node[2]):
            owner, self._wild_tails = img.piece(node[3])
            self._wild_head = owner[: owner[0] + 1]  # its label; the origin is a pointer

    def _absent(self, lname: bytes) -> bool:
        """True if `lname` has no node in the (full) image: one probe of its hash table."""
        hkey = lname + NODE_TAIL
        t = crc32(hkey) or 1
        want = hkey + NODE_KIND
        n = len(want) + 2
        buf = self._buf
        base = self._base
        mask = self._mask
        unpack = L.SLOT.unpack_from
        i = t & mask
        while True:
            st, off = unpack(buf, base + (i << 3))
            if not st:
                return True
            if st == t and buf[off + 2 : off + n] == want:
                return False
            i = (i + 1) & mask

    def _kept(self, key: bytes, entry: Entry | None) -> Entry | None:
        """`entry`, offered to the doorkeeper and kept in the answer cache if admitted."""
        if entry is not None and self._admit(key):
            self._keep(key, self.do, entry, self.origin, False)
        return entry

    def plain(self, key: bytes) -> Entry | None:
        """Unsigned zone, or DO=0: the negative SOA only, one entry per question shape, kept
        in the image's memo as `negative.nxdomain` keeps it (bounded, shared by enclosers)."""
        lname = key[:-4]
        qtype = key[-4] << 8 | key[-3]
        if key[-2:] != IN_CLASS or qtype in XFR:
            return None
        img = self.img
        origin_pos = 12 + len(lname) - len(self.origin)
        mk = (origin_pos << 16 | qtype) << 1 | self.do  # negative.nxdomain's memo key
        memo = img.memo
        entry = memo.get(mk)
        if entry is None:
            entry = make_entry(negative.FLAGS, qtype, len(key),
                               negative.soa_segment(img, origin_pos, self.do), 0,
                               len(img.neg_soa), 0)
            if len(memo) < negative.ENTRIES_MAX:
                memo[mk] = entry
        if not self._absent(lname):
            return None
        h = hash(key)  # `Doorkeeper.admit` written out, as in `nsec3`
        i, f = h & self._slots, h >> 48 | 1
        if self._seen[i] == f:
            self._keep(key, self.do, entry, self.origin, False)
        else:
            self._seen[i] = f
        return entry

    def overlay(self, key: bytes) -> Entry | None:
        """An overlay: `negative.nxdomain` (both layers) once the name has no node."""
        qtype = key[-4] << 8 | key[-3]
        if key[-2:] != IN_CLASS or qtype in XFR:
            return None
        lname = key[:-4]
        img = self.img
        if img.node(lname) is not None:
            return None
        return self._kept(key, negative.nxdomain(img, lname, qtype, len(key), self.do))

    def signed(self, key: bytes) -> Entry | None:
        """DO=1 in a signed full image: `negative`'s proof and entry cache."""
        qtype = key[-4] << 8 | key[-3]
        if key[-2:] != IN_CLASS or qtype in XFR:
            return None
        lname = key[:-4]
        if not self._absent(lname):
            return None
        return self._kept(key, negative.signed(self.img, lname, qtype, len(key), self.ce,
                                               self.node))

    def nsec(self, key: bytes) -> Entry | None:
        """NSEC, DO=1, the encloser is the apex: one C bisect of the label's sort prefix
        finds the cover and proves the name has no node (no entry shares its prefix, and
        for a label under 8 octets the next entry is not below it: an empty non-terminal);
        then `negative`'s entry for that cover. Ties and escaped octets: `signed`."""
        qtype = key[-4] << 8 | key[-3]
        if key[-2:] != IN_CLASS or qtype in XFR:
            return None
        lname = key[:-4]
        n = lname[0]
        head = lname[1 : 9 if n >= 8 else n + 1]
        if b"\x00" in head or b"\x01" in head:  # escaped in canonical keys
            return self.signed(key)
        prefix = self._sort
        pq = int.from_bytes(head, "big") << (8 * (8 - len(head)))
        hi = bisect_right(prefix, pq)
        if hi and prefix[hi - 1] == pq:  # the name, or one sharing its prefix: whole keys
            return self.signed(key)
        if n < 8 and hi < self._count and prefix[hi] >> (56 - 8 * n) == pq >> (56 - 8 * n):
            return self.signed(key)  # the next name is below it: an empty non-terminal
        cover = hi - 1 if hi else self._count - 1
        img = self.img
        lq = len(lname)
        bodies = img.bodies
        if bodies is not None:
            hit = bodies[(cover + 977 * lq + 131 * qtype) & (len(bodies) - 1)]
            if hit is not None and hit[0] == cover << 24 | lq << 16 | qtype \
                    and hit[1] == self.ce:
                return self._kept(key, hit[2])  # type: ignore[arg-type]
        return self._kept(key, negative.signed(img, lname, qtype, len(key), self.ce, self.node))

    def nsec3(self, key: bytes) -> Entry | None:
        """NSEC3, DO=1, the encloser is the apex: one SHA-1, the bucket bisect, then the
        body is the question shape's head (SOA segment, the apex's NSEC3), the cover's piece
        cut out of the image around its two owner pointers, and the wildcard's piece."""
        sk = _STAT_KEYS.get(key[-4:])
        if sk is None:  # another QTYPE (counted as other), another class, AXFR/IXFR
            if key[-2:] != IN_CLASS or key[-4] << 8 | key[-3] in XFR:
                return None
            sk = _NX | OTHER_QTYPE
        lname = key[:-4]
        if lname[0] == 32:  # may name an NSEC3 owner, compressed against the question
            return self.signed(key)
        lq = len(lname)
        # by length only: a flood's QTYPEs times its lengths would overflow any bound
        shape = self._shapes.get(lq)
        if shape is None:
            shape = self._shape(lq)
            if shape is None:
                return None
        # the next closer name is the query name: its hash's cover, by the C bisect of the
        # hashes' first 8 octets inside the bucket of its top bits
        buf = self._buf
        if self._flat:
            h = _SHA1.copy()
            h.update(lname)
            pq = _TOP(h.digest())[0]
        else:
            pq = _TOP(self._digest(lname))[0]
        lo, hi = _U32X2(buf, self._bucket_off + 4 * (pq >> self._shift))
        hi = bisect_right(self._sort, pq, lo, hi)
        cover = hi - 1 if hi else self._count - 1
        # its sort prefix and the cut of its piece: the label, the NSEC3 and its RRSIG
        top, off, first, both = _PREFIX_CUT(buf, self._pairs + _PAIR * cover)  # 0: no cut
        if top == pq:  # the name's own NSEC3 (or a hash sharing 8 octets)
            return self.signed(key)
        if not first or cover == self._match or cover == self._wild:
            return self._other(key, cover)
        # every name one label below the apex (no cut above it) and every empty non-terminal
        # there has an NSEC3, except insecure delegations in an opt-out span: a cover without
        # the opt-out flag (the NSEC3 rdata's second octet) proves the name has no node
        at = off + self._skip  # the RRs (after the label, the origin and the RR count):
        rr = buf[at : at + first]  # the NSEC3 (its flags octet: opt-out), then the RRSIG
        if rr[11] & 1 and not self._absent(lname):
            return None
        head, optr, own, wilds, hdrs, hdrs_e, hq, _ = shape
        tail = wilds.get(both)
        if tail is None:
            tail = self._wild_tail(shape, both)
        body = b"".join((head, buf[off : off + _LABEL], optr, rr, own,
                         buf[at + first : at + both], tail))
        size = hq + len(body)  # header, question, body
        if size > _BODY_MAX:
            return None
        entry = (hdrs, hdrs_e, body, size, sk, _FLAGS)
        h = hash(key)  # `Doorkeeper.admit` written out: one call less per flood answer
        i, f = h & self._slots, h >> 48 | 1
        if self._seen[i] == f:
            self._keep(key, 1, entry, self.origin, False)
        else:
            self._seen[i] = f
        return entry

    def _other(self, key: bytes, cover: int) -> Entry | None:
        """`nsec3` for a cover it does not cut out (`L.nsec3_cut`), the match or the
        wildcard's proof: asks the image whether the name exists unless the cover proves
        it absent (an NSEC3 first, without the opt-out flag), then `negative`'s answer."""
        lname = key[:-4]
        buf = self._buf
        off = _U32(buf, self._offsets + 4 * cover)[0]
        at = off + 3 + buf[off]  # the first RR after owner length, owner and RR count
        if (buf[at : at + 2] != NSEC3_TYPE or buf[at + 11] & 1) and not self._absent(lname):
            return None
        return self._kept(key, negative.signed(self.img, lname, key[-4] << 8 | key[-3],
                                               len(key), self.ce, self.node))

    def _shape(self, lq: int) -> _Shape | None:
        """What `nsec3` writes around the cover for a question name of `lq` octets: the SOA
        segment and the apex's NSEC3 as written after the question (`head`), the pointers
        to the origin in the question and to the cover's owner, the wildcard tails by where
        they start, and the entry's header variants (RR counts: the head's, the cover's
        two, the wildcard's). None for a head too long for pointers after it."""
        img = self.img
        origin_pos = 12 + lq - len(self.origin)
        soa = negative.soa_segment(img, origin_pos, 1)
        pos = 16 + lq + len(soa)
        owner, tails = img.piece(self._match)
        head = soa + owner[: owner[0] + 1] + _ptr(origin_pos) + _ptr(pos).join(tails)
        count = len(img.neg_soa_do) + len(tails) + 2 + len(self._wild_tails)
        hdrs, hdrs_e, _, _, _, _ = make_entry(negative.FLAGS, 0, lq + 4, b"", 0, count, 0)
        start = 16 + lq + len(head)  # where the cover's owner is written
        if start > negative.BODY_MAX:  # pointers after it could pass 0x3FFF: general path
            return None
        shape = (head, _ptr(origin_pos), _ptr(start), {}, hdrs, hdrs_e, 16 + lq, start)
        if len(self._shapes) < SHAPES_MAX:
            self._shapes[lq] = shape
        return shape

    def _wild_tail(self, shape: _Shape, seg: int) -> bytes:
        """The wildcard's piece written after a cover segment whose RRs take `seg` octets
        (then its label and two pointers) for `shape`; empty when the apex's NSEC3 is that
        proof too. Kept in the shape by `seg`: NSEC3 pieces of one zone differ in length
        only by their type bitmaps, so a few."""
        tail = b""
        if self._wild_tails:
            pos = shape[7] + L.HASH_LABEL + 4 + seg
            tail = self._wild_head + shape[1] + _ptr(pos).join(self._wild_tails)
        wilds = shape[3]
        if len(wilds) < WILDS_MAX:
            wilds[seg] = tail
        return tail


def _ptr(offset: int) -> bytes:
    """A compression pointer to `offset`."""
    return bytes((0xC0 | offset >> 8, offset & 0xFF))
