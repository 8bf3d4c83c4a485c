"""The cold path: answers an image has not pre-rendered, assembled from its pieces.

Owns the same semantics as `node.server.answer.resolve` (DO=0, and unsigned
zones) and `node.server.secure.resolve` (DO=1 in signed zones), step for
step, so the bytes are identical (tested against `CompiledZone`): referrals
below cuts, CNAME chains, DNAME synthesis (a node flagged `N_DNAME` occludes the
names below it as a cut does), wildcard synthesis, NODATA, NXDOMAIN and their
NSEC/NSEC3 proofs. Every piece comes from the image (node runs, denial
pieces, the negative SOA); lookups are hash-table probes and binary
searches, hashing is hashlib. No dnspython.
"""

from __future__ import annotations

from node.image import layout as L
from node.image import negative
from node.image.reader import Node, Piece, ZoneImage
from node.server.answer import AT_ALIAS, MAX_CHAIN, YXDOMAIN, chased, cname_tail
from node.server.render import AA, QR, AnswerBuilder, Entry, make_entry
from node.server.secure import next_closer
from node.server.wire import NXDOMAIN

# outcomes of `classify` (as node.server.secure)
EXACT, WILD, REFERRAL, ENT, WILD_ENT, NXDOMAIN_KIND, DNAME_KIND = range(7)
_UNKNOWN = (0, 0, 0, 0, 0, -1, None)  # "not looked up yet"
_NAMED = (L.CNAME, L.DNAME)  # their target list is the target, not additional names


def answer(img: ZoneImage, key: bytes, lname: bytes, qtype: int, do: int
           ) -> tuple[Entry, bool]:
    """The entry for `key` (lowercased qname wire `lname` + QTYPE `qtype` + class IN, qname
    in the zone) and whether it was pre-rendered in the image (False: assembled now)."""
    node = img.node(lname)  # answers exist only at names that have a node
    hit = None
    if node is not None:
        hit = img.answer(key[:-2], do)
        if hit is None and node[4] and qtype != L.DS:  # at a (top) zone cut: the referral
            hit = node[6].variant(node[4], do)
    if hit is not None:
        flags, an, ns, ar, body = hit
        return make_entry(flags, qtype, len(key), body, an, ns, ar), True
    if node is None:  # the flood's case first: NXDOMAIN from pieces cached by proof
        entry = negative.nxdomain(img, lname, qtype, len(key), do)
        if entry is not None:
            return entry, False
    if do and img.signed:
        return resolve_signed(img, lname, qtype, node), False
    return resolve_plain(img, lname, qtype, node), False


def classify(img: ZoneImage, name: bytes, qtype: int,
             first: Node | None = _UNKNOWN) -> tuple[int, Node | None, bytes]:
    """(kind, node, closest encloser) for `name` inside the zone (as `secure.classify`);
    the node is the cut's for REFERRAL, the DNAME owner's for DNAME_KIND, the name's or
    wildcard's for EXACT and WILD, the closest encloser's for NXDOMAIN.
    `first`: the node of `name` when the caller has looked it up already."""
    chain = [name]
    n = name
    origin = img.origin
    while n != origin:
        n = n[n[0] + 1 :]
        chain.append(n)
    nodes = [img.node(c) for c in chain[1:-1]]
    nodes.insert(0, img.node(name) if first is _UNKNOWN else first)
    if len(chain) > 1:
        nodes.append(img.apex)
    for i in range(len(chain) - 1, -1, -1):  # the highest cut or DNAME above decides
        node = nodes[i]
        if node is not None and node[0] & (L.N_CUT | L.N_DNAME):
            if node[0] & L.N_CUT and not (i == 0 and qtype == L.DS):
                return REFERRAL, node, chain[i]
            if node[0] & L.N_DNAME and i:
                return DNAME_KIND, node, chain[i]
    node = nodes[0]
    if node is not None:
        if node[0] & L.N_NAME:
            return EXACT, node, name
        return ENT, None, name
    for i in range(1, len(chain)):
        if nodes[i] is not None:
            anc = chain[i]
            wnode = img.apex_wild if i == len(chain) - 1 else img.node(b"\x01*" + anc)
            if wnode is not None:
                if wnode[0] & L.N_NAME:
                    return WILD, wnode, anc
                return WILD_ENT, wnode, anc
            return NXDOMAIN_KIND, nodes[i], anc
    return NXDOMAIN_KIND, None, origin  # unreachable: the origin always exists


def _addresses(img: ZoneImage, b: AnswerBuilder, names: list[bytes], signed: bool) -> None:
    seen: set[bytes] = set()
    for t in names:
        if t in seen:
            continue
        seen.add(t)
        node = img.node(t)
        if node is None or not node[0] & L.N_NAME:
            continue
        for rdtype in (L.A, L.AAAA):
            tails = img.tails(node, rdtype)
            if tails:
                b.additional += b.add_tails(t, tails)
                if signed:
                    b.additional += b.add_tails(t, img.sigs(node, rdtype))


def _dname(img: ZoneImage, b: AnswerBuilder, qname: bytes, owner: bytes, node: Node,
           qtype: int, hop: int, seen: set[bytes], written: set[bytes], signed: bool
           ) -> tuple[bytes | None, int]:
    """The DNAME step of both chases: the DNAME at `owner` (`node`) once per answer (a loop
    through it is written once), with its RRSIGs when `signed`, then the CNAME synthesized
    for `qname`, TTL the DNAME's. (next name to chase or None to stop, rcode): YXDOMAIN,
    nothing synthesized, past 255 octets."""
    if owner not in written:
        written.add(owner)
        b.answer += b.add_tails(owner, img.tails(node, L.DNAME))
        if signed:
            b.answer += b.add_tails(owner, img.sigs(node, L.DNAME))
    target = qname[: len(qname) - len(owner)] + img.targets(node, L.DNAME)[0]
    if len(target) > 255:
        return None, YXDOMAIN
    ttl = int.from_bytes(img.tails(node, L.DNAME)[0][4:8], "big")
    b.answer += b.add_tails(qname, (cname_tail(ttl, target),))
    if qtype == L.CNAME:
        return None, 0
    return chased(img, target, hop, seen), 0


def resolve_plain(img: ZoneImage, qname: bytes, qtype: int,
                  first: Node | None = _UNKNOWN) -> Entry:
    """As `answer.resolve`; `first`: the node of `qname` if looked up already."""
    b = AnswerBuilder(qname, qtype)
    owner = qname
    seen = {qname}
    written: set[bytes] = set()  # DNAME owners in the answer
    aa = AA
    rcode = 0
    for hop in range(MAX_CHAIN + 1):
        kind, node, ce = classify(img, owner, qtype, first if hop == 0 else _UNKNOWN)
        if kind == REFERRAL:
            assert node is not None
            if hop == 0:
                aa = 0
            b.authority += b.add_tails(ce, img.tails(node, L.NS))
            _addresses(img, b, img.targets(node, L.NS), False)
            break
        if kind == DNAME_KIND:
            assert node is not None
            next_owner, rcode = _dname(img, b, owner, ce, node, qtype, hop, seen, written, False)
            if next_owner is None:
                break
            owner = next_owner
            continue
        if kind in (ENT, WILD_ENT, NXDOMAIN_KIND):
            b.authority += b.add_tails(img.origin, img.neg_soa)
            if kind == NXDOMAIN_KIND:
                rcode = NXDOMAIN
            break
        assert node is not None
        types = img.types(node)
        if qtype in types or (qtype == L.ANY and types):
            chosen = types if qtype == L.ANY else [qtype]
            deps: list[bytes] = []
            for rdtype in chosen:
                b.answer += b.add_tails(owner, img.tails(node, rdtype))
                deps.extend(img.targets(node, rdtype) if rdtype not in _NAMED else ())
            _addresses(img, b, deps, False)
            break
        if L.CNAME not in types or qtype in AT_ALIAS:
            b.authority += b.add_tails(img.origin, img.neg_soa)
            break
        b.answer += b.add_tails(owner, img.tails(node, L.CNAME))
        next_owner = chased(img, img.targets(node, L.CNAME)[0], hop, seen)
        if next_owner is None:
            break
        owner = next_owner
    return b.entry(QR | aa | rcode)


class _Proofs:
    """Denial records for the authority section, each once, in the order first asked for."""

    __slots__ = ("img", "pieces")

    def __init__(self, img: ZoneImage) -> None:
        self.img = img
        self.pieces: dict[bytes, Piece] = {}

    def add(self, piece: Piece | None) -> None:
        if piece is not None:
            self.pieces.setdefault(piece[0], piece)

    def match(self, name: bytes) -> Piece | None:
        return self.img.match(name, self.img.node(name))

    def closest_encloser(self, name: bytes, ce: bytes, ce_node: Node | None = _UNKNOWN) -> None:
        img = self.img
        match = self.match(ce) if ce_node is _UNKNOWN else img.match(ce, ce_node)
        while match is None and ce != img.origin:  # opt-out: up to a provable encloser
            ce = ce[ce[0] + 1 :]
            match = self.match(ce)
        self.add(match)
        self.add(img.cover(next_closer(name, ce)))

    def nxdomain(self, name: bytes, ce: bytes, ce_node: Node | None) -> None:
        """`ce_node`: the node of the closest encloser `ce`."""
        img = self.img
        if img.nsec3:
            self.closest_encloser(name, ce, ce_node)
        else:
            self.add(img.cover(name))
        self.add(img.wildcard(ce, ce_node))

    def nodata(self, name: bytes) -> None:
        match = self.match(name)
        if match is not None:
            self.add(match)
        elif self.img.nsec3:
            self.closest_encloser(name, name[name[0] + 1 :])
        else:
            self.add(self.img.cover(name))

    def wildcard_answer(self, name: bytes, ce: bytes) -> None:
        img = self.img
        self.add(img.cover(next_closer(name, ce) if img.nsec3 else name))

    def wildcard_nodata(self, name: bytes, ce: bytes) -> None:
        img = self.img
        wild = b"\x01*" + ce
        if img.nsec3:
            self.add(self.match(ce))
            self.add(img.cover(next_closer(name, ce)))
            self.add(self.match(wild))
        else:
            self.add(img.cover(name))
            self.add(img.wildcard(ce, img.node(ce)))


def resolve_signed(img: ZoneImage, qname: bytes, qtype: int,
                   first: Node | None = _UNKNOWN) -> Entry:
    """As `secure.resolve`: the DO=1 answer in a signed zone; `first` as for `resolve_plain`."""
    b = AnswerBuilder(qname, qtype)
    proofs = _Proofs(img)
    owner = qname
    seen = {qname}
    written: set[bytes] = set()  # DNAME owners in the answer
    aa = AA
    rcode = 0
    negative = False
    referral: list[tuple[bytes, tuple[bytes, ...]]] = []
    addresses: list[bytes] = []
    for hop in range(MAX_CHAIN + 1):
        kind, node, ce = classify(img, owner, qtype, first if hop == 0 else _UNKNOWN)
        if kind == REFERRAL:
            assert node is not None
            if hop == 0:
                aa = 0
            referral.append((ce, img.tails(node, L.NS)))
            ds = img.tails(node, L.DS)
            if ds:
                referral.append((ce, ds + img.sigs(node, L.DS)))
            else:
                proofs.nodata(ce)
            addresses = img.targets(node, L.NS)
            break
        if kind == DNAME_KIND:
            assert node is not None
            next_owner, rcode = _dname(img, b, owner, ce, node, qtype, hop, seen, written, True)
            if next_owner is None:
                break
            owner = next_owner
            continue
        if kind == ENT:
            negative = True
            proofs.nodata(owner)
            break
        if kind == WILD_ENT:
            negative = True
            proofs.wildcard_nodata(owner, ce)
            break
        if kind == NXDOMAIN_KIND:
            negative = True
            rcode = NXDOMAIN
            proofs.nxdomain(owner, ce, node)
            break
        assert node is not None
        types = img.types(node)
        if qtype in types or (qtype == L.ANY and types):
            chosen = [t for t in types if t != L.RRSIG] if qtype == L.ANY else [qtype]
            for rdtype in chosen:
                b.answer += b.add_tails(owner, img.tails(node, rdtype))
                if rdtype != L.RRSIG:
                    b.answer += b.add_tails(owner, img.sigs(node, rdtype))
                if rdtype not in _NAMED:
                    addresses.extend(img.targets(node, rdtype))
            if kind == WILD:
                proofs.wildcard_answer(owner, ce)
            break
        if L.CNAME not in types or qtype in AT_ALIAS:
            negative = True
            if kind == WILD:
                proofs.wildcard_nodata(owner, ce)
            else:
                proofs.nodata(owner)
            break
        b.answer += b.add_tails(owner, img.tails(node, L.CNAME))
        b.answer += b.add_tails(owner, img.sigs(node, L.CNAME))
        if kind == WILD:
            proofs.wildcard_answer(owner, ce)
        next_owner = chased(img, img.targets(node, L.CNAME)[0], hop, seen)
        if next_owner is None:
            break
        owner = next_owner
    if negative:
        b.authority += b.add_tails(img.origin, img.neg_soa_do)
    for cut, tails in referral:
        b.authority += b.add_tails(cut, tails)
    for piece_owner, tails in proofs.pieces.values():
        b.authority += b.add_tails(piece_owner, tails)
    _addresses(img, b, addresses, True)
    return b.entry(QR | aa | rcode)
