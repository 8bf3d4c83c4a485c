"""DNS wire helpers of the answer path: query parsing (fast and strict) and RR rendering.

Pure, no I/O, no dnspython on the hot path. Two parsers share one contract:

* `parse_fast(data)` accepts only the common shape of a query (QR=0, opcode
  QUERY, one question, no answer/authority records, no or one well-formed OPT
  with version 0 at the end) and returns `(key, qend, payload, do)`, or None
  to hand the message to the strict parser. `key` is the lowercased question
  name in wire form followed by the QTYPE and QCLASS bytes as sent; `qend` is
  the offset just after the question; `payload` is the client's EDNS UDP size
  or -1 without EDNS; `do` is 1 when the DO bit is set.
* `parse_query(data)` handles everything else and says precisely what is
  wrong: it returns a `Query`, None (drop: header unparseable or QR=1) or
  raises `WireError(rcode, query)` for answers like FORMERR and BADVERS.

Names compare case-insensitively: `bytes.lower()` lowercases only ASCII A-Z,
and label length bytes are <= 63, so lowering a whole wire name is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
NOTAUTH = 9
BADVERS = 16

OPCODE_QUERY = 0
OPCODE_NOTIFY = 4
OPCODE_UPDATE = 5

TYPE_OPT = 41
TYPE_AXFR = 252
TYPE_IXFR = 251
TYPE_TSIG = 250
TYPE_ANY = 255
CLASS_IN = 1

MIN_UDP_PAYLOAD = 512
EDNS_PAYLOAD = 1232  # what answers built outside the `Responder` advertise (its default)


ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0


def name_end(data: bytes, n: int) -> int:
    """Where the question name starting at offset 12 of `data` (`n` octets) ends: the offset
    after its root label; 0 if it is not a valid uncompressed name within the message."""
    i = 12
    ln = data[12]
    while ln:
        if ln > 63:
            return 0
        i += ln + 1
        if i >= n:
            return 0
        ln = data[i]
    i += 1
    return i if i <= 267 else 0  # at most 255 octets


def parse_fast(data: bytes) -> tuple[bytes, int, int, int] | None:
    """The common query shape, cheaply; None means "use `parse_query`"."""
    n = len(data)
    if n < 17 or data[2] & 0xF8 or data[4:10] != ONE_QUESTION:
        return None
    i = 12
    ln = data[12]
    while ln:
        if ln > 63:
            return None
        i += ln + 1
        if i >= n:
            return None
        ln = data[i]
    i += 1
    if i > 267:  # name longer than 255 octets
        return None
    q4 = i + 4
    if not data[11] and not data[10]:
        if q4 != n:
            return None
        return data[12:i].lower() + data[i:q4], q4, -1, 0
    if data[10] or data[11] != 1 or n < q4 + 11:
        return None
    # OPT: root owner, type 41, class = payload, ttl = ext-rcode/version/flags, rdlen
    if data[q4] or data[q4 + 1] or data[q4 + 2] != TYPE_OPT or data[q4 + 6]:
        return None
    if q4 + 11 + (data[q4 + 9] << 8 | data[q4 + 10]) != n:
        return None
    return (
        data[12:i].lower() + data[i:q4],
        q4,
        data[q4 + 3] << 8 | data[q4 + 4],
        data[q4 + 7] >> 7,
    )


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query (strict parser). `question` is the question bytes as sent."""

    id: int
    flags: int  # 16-bit flags word as sent
    opcode: int
    qname: bytes  # lowercased wire name
    qtype: int
    qclass: int
    question: bytes  # qname as sent + qtype + qclass (empty if QDCOUNT == 0)
    payload: int  # client's EDNS UDP size, -1 without EDNS
    do: int  # 1 if DO set
    edns_version: int
    tsig: bool = False  # the message carries a TSIG RR (the answer must be signed)


class WireError(Exception):
    """A query that must be answered with `rcode` (header and what could be parsed)."""

    def __init__(self, rcode: int, query: Query) -> None:
        super().__init__(rcode)
        self.rcode = rcode
        self.query = query


def within(name: bytes, origin: bytes) -> bool:
    """True if the wire name `name` is at or below `origin` (label-aligned; both
    lowercased)."""
    while True:
        if name == origin:
            return True
        if len(name) <= len(origin):
            return False
        name = name[name[0] + 1 :]


def read_name(data: bytes, offset: int) -> tuple[bytes, int]:
    """(lowercased uncompressed wire name, offset after it); follows pointers safely.

    Raises ValueError on truncation, bad label types, loops or names > 255 octets.
    """
    labels: list[bytes] = []
    total = 1
    end = -1
    hops = 0
    n = len(data)
    while True:
        if offset >= n:
            raise ValueError("name runs past the message")
        ln = data[offset]
        if ln == 0:
            offset += 1
            break
        if ln & 0xC0 == 0xC0:
            if offset + 1 >= n:
                raise ValueError("truncated compression pointer")
            ptr = (ln & 0x3F) << 8 | data[offset + 1]
            if end < 0:
                end = offset + 2
            hops += 1
            if hops > 127 or ptr >= offset:
                raise ValueError("compression pointer loop or forward pointer")
            offset = ptr
            continue
        if ln > 63:
            raise ValueError("unsupported label type")
        total += ln + 1
        if total > 255 or offset + 1 + ln > n:
            raise ValueError("name too long or truncated")
        labels.append(data[offset : offset + 1 + ln])
        offset += 1 + ln
    return b"".join(labels).lower() + b"\x00", (end if end >= 0 else offset)


def _skip_rr(data: bytes, offset: int) -> tuple[int, int, int, int]:
    """(type, class, ttl, offset of rdata) of the RR at `offset`; ValueError if bad."""
    _, offset = read_name(data, offset)
    if offset + 10 > len(data):
        raise ValueError("truncated RR header")
    rtype = data[offset] << 8 | data[offset + 1]
    rclass = data[offset + 2] << 8 | data[offset + 3]
    ttl = int.from_bytes(data[offset + 4 : offset + 8], "big")
    return rtype, rclass, ttl, offset + 10


def parse_query(data: bytes) -> Query | None:
    """Strict parse of any message; None to drop it, WireError to answer an error.

    The whole message is walked first, so that error answers echo the question
    and carry an OPT whenever the query's own OPT could be read; then, in
    order: FORMERR for a malformed message (no OPT; an OPT outside the additional section
    is one), more than one OPT
    (no OPT) or trailing octets, NOTIMP for opcodes other than QUERY, NOTIFY
    and UPDATE, BADVERS for EDNS versions above 0, FORMERR for QDCOUNT != 1.
    """
    if len(data) < 12:
        return None
    flags = data[2] << 8 | data[3]
    if flags & 0x8000:
        return None  # responses are never answered
    qid = data[0] << 8 | data[1]
    opcode = (flags >> 11) & 0xF
    qdcount, ancount, nscount, arcount = (
        int.from_bytes(data[i : i + 2], "big") for i in (4, 6, 8, 10)
    )
    qname, question, qtype, qclass = b"", b"", 0, 0
    payload, do, version, opts, tsig = -1, 0, 0, 0, False
    offset = 12
    try:
        for k in range(qdcount):
            name, end = read_name(data, offset)
            if end + 4 > len(data):
                raise ValueError("truncated question")
            if k == 0 and qdcount == 1:
                if _has_pointer(data, offset):
                    raise ValueError("compressed question name")
                qname, question = name, data[offset : end + 4]
                qtype = data[end] << 8 | data[end + 1]
                qclass = data[end + 2] << 8 | data[end + 3]
            offset = end + 4
        for _ in range(ancount + nscount):
            rtype, _, _, rd = _skip_rr(data, offset)
            if rtype == TYPE_OPT:  # RFC 6891 §6.1.1: only in the additional section
                raise ValueError("OPT outside the additional section")
            offset = _rdata_end(data, rd)
        for _ in range(arcount):
            rtype, rclass, ttl, rd = _skip_rr(data, offset)
            if rtype == TYPE_OPT:
                if data[offset] != 0:
                    raise ValueError("OPT owner is not the root")
                opts += 1
                payload = rclass
                version = (ttl >> 16) & 0xFF
                do = (ttl >> 15) & 1
            elif rtype == TYPE_TSIG:
                tsig = True
            offset = _rdata_end(data, rd)
    except ValueError:
        raise WireError(
            FORMERR, Query(qid, flags, opcode, qname, qtype, qclass, question, -1, 0, 0)
        ) from None
    if opts > 1:
        raise WireError(
            FORMERR, Query(qid, flags, opcode, qname, qtype, qclass, question, -1, 0, 0)
        )
    query = Query(qid, flags, opcode, qname, qtype, qclass, question, payload, do, version,
                  tsig)
    if offset != len(data):
        raise WireError(FORMERR, query)
    if opcode not in (OPCODE_QUERY, OPCODE_NOTIFY, OPCODE_UPDATE):
        raise WireError(NOTIMP, query)
    if payload >= 0 and version > 0:
        raise WireError(BADVERS, query)
    if qdcount != 1:
        raise WireError(FORMERR, query)
    return query


def _has_pointer(data: bytes, offset: int) -> bool:
    while True:
        ln = data[offset]
        if ln == 0:
            return False
        if ln & 0xC0:
            return True
        offset += ln + 1


def _rdata_end(data: bytes, rd: int) -> int:
    end = rd + (data[rd - 2] << 8 | data[rd - 1])
    if end > len(data):
        raise ValueError("truncated rdata")
    return end


def reply_opt(query: Query) -> bytes | None:
    """The OPT of a response to `query` built outside the `Responder` (NOTIFY, UPDATE,
    transfers): one when the query had one (RFC 6891 §7), DO copied (RFC 3225 §3)."""
    return opt_record(EDNS_PAYLOAD, query.do) if query.payload >= 0 else None


def opt_record(max_payload: int, do: int, ext_rcode: int = 0) -> bytes:
    """Our OPT RR (11 octets): root owner, our payload size, version 0, DO echoed."""
    return (
        b"\x00\x00\x29"
        + max_payload.to_bytes(2, "big")
        + bytes((ext_rcode, 0, 0x80 if do else 0, 0))
        + b"\x00\x00"
    )


class NameCompressor:
    """Writes owner names with RFC 1035 compression against names already written."""

    __slots__ = ("offsets",)

    def __init__(self) -> None:
        self.offsets: dict[bytes, int] = {}

    def add(self, name: bytes, offset: int) -> None:
        """Record `name` (lowercased wire) as written at `offset` (no pointer inside)."""
        i = 0
        while name[i] and offset + i < 0x3FFF:
            self.offsets.setdefault(name[i:], offset + i)
            i += name[i] + 1

    def write(self, out: bytearray, name: bytes) -> None:
        """Append `name` to `out`, compressed against the names recorded so far."""
        i = 0
        while name[i]:
            ptr = self.offsets.get(name[i:])
            if ptr is not None:
                start = len(out)
                out += name[:i]
                out += bytes((0xC0 | ptr >> 8, ptr & 0xFF))
                j = 0
                while j < i and start + j < 0x3FFF:
                    self.offsets.setdefault(name[j:], start + j)
                    j += name[j] + 1
                return
            i += name[i] + 1
        start = len(out)
        out += name
        self.add(name, start)
