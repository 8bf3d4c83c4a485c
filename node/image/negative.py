"""NXDOMAIN from an image without the general cold path: the random-subdomain flood's answer.

Owns the common NXDOMAIN case, a name with no node, no zone cut or DNAME at or above
its closest encloser and no wildcard there, and its answer assembled from
pieces cached by what they depend on, never by the query name:

* the negative SOA run written after the question (`soa_segment`): its owner
  is the origin, always a pointer into the question, so the segment depends
  only on where the origin starts in the question (`origin_pos`);
* without DNSSEC (unsigned zone, or DO=0) that segment is the whole body, and
  the entry is cached per (origin_pos, QTYPE, DO) on the image;
* with DO=1 in a signed zone, the proof (NSEC: the cover of the name and the
  wildcard's; NSEC3: the closest encloser's match, the next closer's cover, the
  wildcard's) comes from the denial table (one bisect; one SHA-1 for NSEC3),
  each piece parsed once and kept in a small table on the image keyed by
  its offset, and written after the SOA segment with the name compression
  `render.AnswerBuilder` applies (`NameCompressor`: against the question and
  the owners written before), so the bytes equal the general path's;
* that whole DO=1 entry is kept in `img.bodies`, a direct-mapped table of
  `BODIES` slots keyed by what its bytes depend on (the cover's denial index,
  the question's length, the closest encloser, QTYPE), so a flood pays a
  bisect (and a SHA-1) and one slot check while its covers repeat; a new
  proof replaces only the entry in its slot.

In an overlay the proof is looked up through both layers (`ZoneImage.cover`
and friends) and not cached. Anything else (cuts, DNAMEs, wildcards) returns None
and takes `resolve`'s general path. The caches here hold
nothing per query name: a flood adds at most one parsed piece per proof piece
(the match and wildcard ones; the cover's is parsed for its entry only), in a
table of bounded size that evicts its oldest first, and one entry per slot.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable

from node.image import layout as L
from node.image.reader import Node, Piece, ZoneImage
from node.server.render import AA, QR, Entry, make_entry
from node.server.wire import NXDOMAIN

FLAGS = QR | AA | NXDOMAIN
PIECES_MAX = 4096  # parsed denial pieces kept per image (the flood's covers cycle through)
ENTRIES_MAX = 4096  # unsigned NXDOMAIN entries per image: (origin_pos, QTYPE, DO) each
_PTR = struct.Struct(">H").pack  # a compression pointer: 0xC000 | offset
BODIES = 4096  # DO=1 NXDOMAIN entries per image, one per slot (a power of 2)
BODY_MAX = 0x3000  # longer bodies: general path (compression offsets stop at 0x3FFF)


def nxdomain(img: ZoneImage, lname: bytes, qtype: int, qlen: int, do: int) -> Entry | None:
    """The NXDOMAIN entry for `lname`, which has no node, or None to take the general path."""
    origin = img.origin
    if len(origin) == 1:
        return None  # the root zone: its owner is not compressed (general path)
    ce = lname[lname[0] + 1 :]
    if ce == origin:  # the flood's usual shape: one label below the apex
        node = img.apex
        wild = img.apex_wild
    else:
        while True:  # the closest encloser: the first ancestor with a node
            node = img.node(ce)
            if node is not None or ce == origin:
                break
            ce = ce[ce[0] + 1 :]
        if node is None:
            return None
        a = ce
        n = node
        while a != origin:  # a cut (a referral) or DNAME (synthesis) at the encloser or above
            if n is not None and n[0] & (L.N_CUT | L.N_DNAME):
                return None
            a = a[a[0] + 1 :]
            n = img.node(a) if a != origin else None
        wild = img.node(b"\x01*" + ce)
    apex = img.apex
    if wild is not None or node is None or (apex is not None and apex[0] & L.N_DNAME):
        return None  # wildcard or DNAME synthesis (or an empty non-terminal): general path
    origin_pos = 12 + len(lname) - len(origin)
    if not (do and img.signed):
        memo = img.memo
        key = (origin_pos << 16 | qtype) << 1 | do  # >= 0: entries; < 0: SOA segments
        entry = memo.get(key)
        if entry is None:
            entry = make_entry(FLAGS, qtype, qlen, soa_segment(img, origin_pos, do), 0,
                               len(img.neg_soa), 0)
            if len(memo) < ENTRIES_MAX:
                memo[key] = entry
        return entry
    if img.base is not None:  # an overlay: proofs merged from both layers, by key, uncached
        pieces = _merged_proof(img, lname, ce, node)
        rendered = None if pieces is None else _render(img, lname, origin_pos, pieces)
        if rendered is None:
            return None
        return make_entry(FLAGS, qtype, qlen, rendered[0], 0, rendered[1], 0)
    if img.count:
        return signed(img, lname, qtype, qlen, ce, node)
    return None


def soa_segment(img: ZoneImage, origin_pos: int, do: int) -> bytes:
    """The negative SOA (with its RRSIGs when `do` in a signed zone), each owner a pointer
    to the origin in the question at `origin_pos`."""
    memo = img.memo
    key = -1 - (origin_pos << 1 | do)
    seg = memo.get(key)
    if seg is None:
        ptr = _PTR(0xC000 | origin_pos)
        tails = img.neg_soa_do if do and img.signed else img.neg_soa
        seg = ptr + ptr.join(tails) if tails else b""
        if len(memo) < ENTRIES_MAX:
            memo[key] = seg
    return seg


def _piece(img: ZoneImage, index: int) -> Piece:
    pieces = img.pieces
    piece = pieces.get(index)
    if piece is None:
        piece = img.piece(index)
        if len(pieces) >= PIECES_MAX:
            pieces.popitem(last=False)
        pieces[index] = piece
    return piece


def signed(img: ZoneImage, lname: bytes, qtype: int, qlen: int, ce: bytes,
           node: Node) -> Entry | None:
    """The DO=1 entry of a full signed image: the proof's denial indexes (NSEC: the cover
    of the name and the wildcard's; NSEC3: the provable encloser's match, the next
    closer's cover, the wildcard's), then the whole entry from `img.bodies` if the same
    proof was answered for a question of this length, encloser and QTYPE before."""
    wild = node[3]
    if wild == L.NO_DENIAL:
        return None
    origin = img.origin
    lq = len(lname)
    if img.nsec3:
        match = node[2]
        enc = ce
        while match == L.NO_DENIAL:  # opt-out: up to a provable encloser
            if enc == origin:
                return None
            enc = enc[enc[0] + 1 :]
            n = img.node(enc)
            if n is None:
                return None
            match = n[2]
        nc = lname
        le = len(enc)
        while True:  # the next closer name: one label more than the encloser
            p = nc[nc[0] + 1 :]
            if len(p) <= le:
                break
            nc = p
        cover = img.cover_index(nc)
        # a question that names an NSEC3 owner (one 32-octet label below the apex) may
        # compress an owner against itself: rendered for that name alone, not kept
        keep = nc[0] != 32 or ce != origin
    else:
        one = lq == lname[0] + 1 + len(origin)  # one label below the apex
        cover = _nsec_cover(img, lname) if one else img.cover_index(lname)
        match = -1
        keep = True
    key = cover << 24 | lq << 16 | qtype
    bodies = img.bodies
    if bodies is None:
        bodies = img.bodies = [None] * BODIES
    slot = (cover + 977 * lq + 131 * qtype) & (len(bodies) - 1)
    hit = bodies[slot]
    if hit is not None and hit[0] == key and hit[1] == ce and keep:
        return hit[2]
    # the cover varies with the name: parsed, not kept in `img.pieces` (the entry is kept)
    piece = img.piece(cover)
    origin_pos = 12 + lq - len(origin)
    if match < 0:  # NSEC: the cover, then the wildcard's unless the same
        pieces = [piece] if cover == wild else [piece, _piece(img, wild)]
    else:  # NSEC3, as resolve._Proofs.nxdomain adds them, each once
        pieces = [_piece(img, match)]
        if cover != match:
            pieces.append(piece)
        if wild != match and wild != cover:
            pieces.append(_piece(img, wild))
    if match >= 0 and keep and ce == origin:  # no owner name below the apex in the question
        rendered = _render_flat(img, lq, origin_pos, pieces)
    else:
        rendered = _render(img, lname, origin_pos, pieces)
    if rendered is None:
        return None
    entry = make_entry(FLAGS, qtype, qlen, rendered[0], 0, rendered[1], 0)
    if keep:
        bodies[slot] = (key, ce, entry)
    return entry


def _nsec_cover(img: ZoneImage, lname: bytes) -> int:
    """`img.cover_index(lname)` for a name one label below the apex: its sort prefix is
    the label's first 8 octets (zero-padded) unless they hold octets 0 or 1 (escaped in
    canonical keys), so one C bisect decides unless a zone name has the same prefix."""
    prefix = img.prefix
    n = lname[0]
    head = lname[1 : 9 if n >= 8 else n + 1]
    if prefix is None or b"\x00" in head or b"\x01" in head:
        return img.cover_index(lname)
    pq = int.from_bytes(head, "big") << (8 * (8 - len(head)))
    hi = bisect_right(prefix, pq)
    if not hi:
        return img.count - 1  # before the first entry: the last one covers it
    if prefix[hi - 1] == pq:
        return img.cover_index(lname)  # equal prefixes: whole keys decide
    return hi - 1


def _merged_proof(img: ZoneImage, lname: bytes, ce: bytes, node: Node) -> list[Piece] | None:
    """As `_proof` for an overlay, through `ZoneImage.match`/`cover`/`wildcard` (which
    merge the layers), not cached; as `resolve._Proofs.nxdomain`, each owner once."""
    found: list[Piece | None] = []
    if img.nsec3:
        enc = ce
        match = img.match(enc, node)
        while match is None and enc != img.origin:  # opt-out: up to a provable encloser
            enc = enc[enc[0] + 1 :]
            match = img.match(enc, img.node(enc))
        nc = lname
        while len(nc[nc[0] + 1 :]) > len(enc):  # the next closer name
            nc = nc[nc[0] + 1 :]
        found += (match, img.cover(nc))
    else:
        found.append(img.cover(lname))
    found.append(img.wildcard(ce, node))
    out: list[Piece] = []
    for piece in found:
        if piece is not None and all(p[0] != piece[0] for p in out):
            out.append(piece)
    return out


def _render_flat(img: ZoneImage, lq: int, origin_pos: int,
                 pieces: list[Piece]) -> tuple[bytes, int] | None:
    """`_render` when every owner is one label below the origin, none of them is a name of
    the question and no two are equal (NSEC3 owners, encloser at the apex): each owner is
    its label and a pointer to the origin, its next RRs a pointer to it."""
    optr = _PTR(0xC000 | origin_pos)

    def segment(owner: bytes, tails: tuple[bytes, ...], pos: int) -> bytes:
        return owner[: owner[0] + 1] + optr + _PTR(0xC000 | pos).join(tails)

    return _body(img, lq, origin_pos, pieces, segment)


def _render(img: ZoneImage, lname: bytes, origin_pos: int,
            pieces: list[Piece]) -> tuple[bytes, int] | None:
    """SOA segment + the pieces, compressed as `NameCompressor` does after the question;
    and the number of RRs. Every owner ends in the origin, which the question holds at
    `origin_pos`, so only the labels below the origin are looked up among the names
    written before (the question's and the pieces' owners)."""
    olen = len(img.origin)
    known: dict[bytes, int] = {}
    i = 0
    stop = len(lname) - olen
    while i < stop:  # the question's names below the origin
        known[lname[i:]] = 12 + i
        i += lname[i] + 1

    def segment(owner: bytes, tails: tuple[bytes, ...], pos: int) -> bytes:
        ptr = origin_pos
        i = 0
        stop = len(owner) - olen
        while i < stop:
            p = known.get(owner[i:])
            if p is not None:
                ptr = p
                break
            i += owner[i] + 1
        if not i:  # the whole owner was written before
            head = _PTR(0xC000 | ptr)
            return head + head.join(tails)
        j = 0
        while j < i:  # the labels written here, as NameCompressor records them
            known.setdefault(owner[j:], pos + j)
            j += owner[j] + 1
        return owner[:i] + _PTR(0xC000 | ptr) + _PTR(0xC000 | pos).join(tails)

    return _body(img, len(lname), origin_pos, pieces, segment)


def _body(img: ZoneImage, lq: int, origin_pos: int, pieces: list[Piece],
          segment: Callable[[bytes, tuple[bytes, ...], int], bytes],
          ) -> tuple[bytes, int] | None:
    """The DO=1 body: the SOA segment, then each piece as `segment(owner, tails, offset)`
    writes it at its offset in the message; with its RR count. None when it is too long
    for compression pointers into it (`BODY_MAX`)."""
    soa = soa_segment(img, origin_pos, 1)
    parts = [soa]
    count = len(img.neg_soa_do)
    pos = 16 + lq + len(soa)  # header, question (name, QTYPE, QCLASS), SOA segment
    for owner, tails in pieces:
        seg = segment(owner, tails, pos)
        parts.append(seg)
        count += len(tails)
        pos += len(seg)
    if pos > BODY_MAX:
        return None
    return b"".join(parts), count
