"""EDNS(0) Padding (RFC 7830) of answers sent over DNS over TLS.

Owns one rule: a query that came over TLS with the Padding option gets its
answer padded ("a responder MUST pad a response when the matching query
included the Padding option", RFC 7830 §4) to a multiple of 468 octets, the
block length RFC 8467 §4.1 recommends for responses. Plain UDP and TCP answers
are never padded (the option is for encrypted transports; Knot does the same).
An answer that does not end with our own OPT (a TSIG-signed one, whose MAC
covers every octet) goes out as it is.
"""

from __future__ import annotations

from node.server.wire import TYPE_OPT, read_name

PADDING = 12  # the option code (RFC 7830 §3)
BLOCK = 468  # RFC 8467 §4.1: responses padded to a multiple of this
_MAX = 65535


def asks_padding(query: bytes) -> bool:
    """True if `query`'s OPT carries the Padding option (a well-formed message only)."""
    try:
        return _asks(query)
    except (ValueError, IndexError):  # answered already; a malformed OPT is not padded
        return False


def _asks(query: bytes) -> bool:
    counts = [int.from_bytes(query[i : i + 2], "big") for i in (4, 6, 8, 10)]
    offset = 12
    for _ in range(counts[0]):
        offset = read_name(query, offset)[1] + 4
    for k in range(counts[1] + counts[2] + counts[3]):
        offset = read_name(query, offset)[1]
        rtype = int.from_bytes(query[offset : offset + 2], "big")
        rdlen = int.from_bytes(query[offset + 8 : offset + 10], "big")
        rd = offset + 10
        offset = rd + rdlen
        if rtype != TYPE_OPT or k < counts[1] + counts[2]:
            continue
        i = rd
        while i + 4 <= offset:
            if int.from_bytes(query[i : i + 2], "big") == PADDING:
                return True
            i += 4 + int.from_bytes(query[i + 2 : i + 4], "big")
    return False


def pad(query: bytes, answer: bytes) -> bytes:
    """`answer` with a Padding option in its OPT when `query` asked for one."""
    # our OPT ends the answer: root owner, type 41, class, TTL, rdlength 0
    if len(answer) < 23 or answer[-11:-8] != b"\x00\x00\x29" or answer[-2:] != b"\x00\x00" \
            or not asks_padding(query):
        return answer
    size = len(answer) + 4  # the option's code and length
    fill = -size % BLOCK
    if size + fill > _MAX:
        fill = _MAX - size
        if fill < 0:
            return answer
    option = PADDING.to_bytes(2, "big") + fill.to_bytes(2, "big") + bytes(fill)
    return answer[:-2] + len(option).to_bytes(2, "big") + option
