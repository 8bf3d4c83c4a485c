"""Pre-rendered answers ("entries") and the byte assembly of responses from them.

An `Entry` is a plain tuple, so the hot path unpacks it without attribute
lookups:

    (hdrs, hdrs_edns, body, size, stat_key, flags)

* `hdrs[i]` / `hdrs_edns[i]`: the 10 header octets after the ID (flags and the
  four counts) for `i = RD | CD << 1` copied from the query; the EDNS variant
  counts one more additional record (our OPT, appended by the server);
* `body`: everything after the question;
* `size`: the response length without OPT (the question as sent has the same
  length as the canonical one, so the size is known in advance);
* `stat_key`: `rcode << 16 | qtype` for the per-query counters (unknown QTYPEs
  share one key, `stats.stat_qtype`);
* `flags`: the 16-bit flags word without RD and CD (QR, AA, rcode).

Owner names equal to the question name are written as a pointer to offset 12;
the server copies the question *as sent*, so the pointer stays valid and the
client sees its own spelling. Record data is rendered uncompressed.
"""

from __future__ import annotations

import dns.rrset

from node.server.rdwire import rdata_wire
from node.server.stats import stat_qtype
from node.server.wire import NameCompressor

Entry = tuple[tuple[bytes, ...], tuple[bytes, ...], bytes, int, int, int]

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
RRSIG = 46  # its rdata holds the original TTL at octets 4-7

_HEADERS: dict[tuple[int, int, int, int], tuple[tuple[bytes, ...], tuple[bytes, ...]]] = {}
# one int object per value for the entries' size, stat key and flags: an answer cache of a
# 100k-name zone holds ~150k entries, each with its own ints above 256 (32 octets apiece)
# otherwise. Bounded by the values: sizes and flags are 16-bit, stat keys few.
_INTS: dict[int, int] = {}


def _headers(flags: int, an: int, ns: int, ar: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    key = (flags, an, ns, ar)
    cached = _HEADERS.get(key)
    if cached is not None:
        return cached
    variants = []
    for extra in (0, 1):
        counts = (
            b"\x00\x01"
            + an.to_bytes(2, "big")
            + ns.to_bytes(2, "big")
            + (ar + extra).to_bytes(2, "big")
        )
        variants.append(
            tuple(
                (flags | (RD if i & 1 else 0) | (CD if i & 2 else 0)).to_bytes(2, "big") + counts
                for i in range(4)
            )
        )
    out = (variants[0], variants[1])
    if len(_HEADERS) < 4096:
        _HEADERS[key] = out
    return out


def make_entry(
    flags: int, qtype: int, qlen: int, body: bytes, an: int = 0, ns: int = 0, ar: int = 0
) -> Entry:
    """An entry for a response with `flags`, a question of `qlen` octets and `body`."""
    hdrs, hdrs_edns = _headers(flags, an, ns, ar)
    share = _INTS.setdefault
    size = 12 + qlen + len(body)
    stat_key = (flags & 0xF) << 16 | stat_qtype(qtype)
    return (hdrs, hdrs_edns, body, share(size, size), share(stat_key, stat_key),
            share(flags, flags))


class AnswerBuilder:
    """Renders one response body (answer, authority, additional) after the question."""

    __slots__ = ("additional", "answer", "authority", "comp", "out", "qlen", "qname", "qtype")

    def __init__(self, qname: bytes, qtype: int) -> None:
        self.qname = qname
        self.qtype = qtype
        self.qlen = len(qname) + 4
        self.comp = NameCompressor()
        self.comp.add(qname, 12)
        # offsets are absolute, so keep a 12+qlen prefix placeholder and cut it off at the end
        self.out = bytearray(12 + self.qlen)
        self.answer = 0
        self.authority = 0
        self.additional = 0

    def _rrs(self, owner: bytes, rrset: dns.rrset.RRset, ttl: int | None) -> int:
        return self.add_tails(owner, rr_tails(rrset, ttl))

    def add_tails(self, owner: bytes, tails: tuple[bytes, ...]) -> int:
        """Append pre-rendered RRs (see `rr_tails`) owned by `owner`; returns their count."""
        for tail in tails:
            self.comp.write(self.out, owner)
            self.out += tail
        return len(tails)

    def add_answer(self, owner: bytes, rrset: dns.rrset.RRset) -> None:
        self.answer += self._rrs(owner, rrset, None)

    def add_authority(self, owner: bytes, rrset: dns.rrset.RRset, ttl: int | None = None) -> None:
        self.authority += self._rrs(owner, rrset, ttl)

    def add_additional(self, owner: bytes, rrset: dns.rrset.RRset) -> None:
        self.additional += self._rrs(owner, rrset, None)

    def entry(self, flags: int) -> Entry:
        body = bytes(self.out[12 + self.qlen :])
        return make_entry(
            flags, self.qtype, self.qlen, body, self.answer, self.authority, self.additional
        )


def rr_tails(rrset: dns.rrset.RRset, ttl: int | None = None) -> tuple[bytes, ...]:
    """Each RR of `rrset` rendered after its owner name: type, class, TTL, rdlength, rdata.

    Without `ttl`, an RRSIG RRset's RRs each take their original TTL, the TTL of the RRset
    each covers (RFC 4034 §3), not one TTL for the whole set."""
    head = (
        rrset.rdtype.to_bytes(2, "big")
        + rrset.rdclass.to_bytes(2, "big")
        + (rrset.ttl if ttl is None else ttl).to_bytes(4, "big")
    )
    own_ttl = ttl is None and rrset.rdtype == RRSIG
    out = []
    for rd in rrset:
        data = rdata_wire(rd)
        out.append((head[:4] + data[4:8] if own_ttl else head)
                   + len(data).to_bytes(2, "big") + data)
    return tuple(out)


def _skip_name(body: bytes, i: int) -> int:
    while True:
        ln = body[i]
        if ln == 0:
            return i + 1
        if ln & 0xC0:
            return i + 2
        i += ln + 1


def without_additional(qid: bytes, entry: Entry, rd_cd: int, question: bytes, opt: bytes,
                       limit: int) -> bytes | None:
    """The response without its additional section if that fits in `limit` octets (RFC
    2181 §9: TC is not set merely because additional data could not fit), else None.

    Not for referrals (AA clear): their glue is required (RFC 9471), so they truncate."""
    hdrs, _, body, _, _, flags = entry
    counts = hdrs[0]
    if not flags & AA or counts[8:10] == b"\x00\x00":
        return None
    i = 0
    for _ in range((counts[4] << 8 | counts[5]) + (counts[6] << 8 | counts[7])):
        i = _skip_name(body, i) + 10
        i += body[i - 2] << 8 | body[i - 1]
    if 12 + len(question) + i + len(opt) > limit:
        return None
    flags |= (RD if rd_cd & 1 else 0) | (CD if rd_cd & 2 else 0)
    return (qid + flags.to_bytes(2, "big") + counts[2:8]
            + (b"\x00\x01" if opt else b"\x00\x00") + question + body[:i] + opt)


def tc_response(qid: bytes, entry: Entry, rd_cd: int, question: bytes, opt: bytes) -> bytes:
    """Header + question (+ OPT) with TC=1: "retry over TCP"."""
    flags = entry[5] | TC | (RD if rd_cd & 1 else 0) | (CD if rd_cd & 2 else 0)
    counts = b"\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00")
    return qid + flags.to_bytes(2, "big") + counts + question + opt


def error_response(qid: int, qflags: int, rcode: int, question: bytes, opt: bytes | None) -> bytes:
    """A response with `rcode` (extended rcodes need `opt` built with the upper bits)."""
    flags = QR | (qflags & 0x7800) | (qflags & (RD | CD)) | (rcode & 0xF)
    counts = (
        (b"\x00\x01" if question else b"\x00\x00")
        + b"\x00\x00\x00\x00"
        + (b"\x00\x01" if opt else b"\x00\x00")
    )
    return qid.to_bytes(2, "big") + flags.to_bytes(2, "big") + counts + question + (opt or b"")
