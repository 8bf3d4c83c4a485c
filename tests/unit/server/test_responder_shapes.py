"""`Responder.fast_udp`'s placed question: the query's end taken as the question's end (no
label walk) and its octets as sent tried as the key before lowercasing, checked against
`wire.parse_fast` + `_assemble` on queries built to mislead it: mixed case, QTYPEs whose
octets are ASCII capitals, OPT records with options whose last 11 octets are an OPT seen
before, many distinct OPT records (the remembered ones are bounded)."""

from __future__ import annotations

import random

import dns.edns
import dns.message
import dns.rdatatype

from node.server.responder import _HEADS, OPT_SHAPES_MAX, Responder
from node.server.table import ZoneTable
from node.server.wire import ONE_QUESTION, parse_fast

OPT_DO_1232 = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"  # an OPT: 1232 octets, DO=1


def _expected(responder: Responder, table: ZoneTable, data: bytes) -> bytes | None:
    """What `fast_udp` must answer: `parse_fast`, the table, `_assemble` (None: slow path)."""
    p = parse_fast(data)
    if p is None:
        return None
    key, q4, payload, do = p
    entry = table.caches[do].get(key) or table.lookup(key, do)
    if entry is None:
        return None
    return responder._assemble(data[:2], data[2], data[3], data[12:q4], entry, payload, do,
                               False)


def _query(name: str, rdtype: int | str, **kwargs: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kwargs).to_wire()  # type: ignore[arg-type]


def _cases() -> list[bytes]:
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    # an option whose data ends with an OPT record seen before: the query's last 11
    # octets look like a known OPT, but the OPT starts earlier
    decoy = dns.edns.GenericOption(65001, b"\x00" * 5 + OPT_DO_1232)
    out = []
    for name in ("web.example.com.", "WEB.EXAMPLE.COM.", "wEb.ExAmPlE.cOm.", "big.example.com.",
                 "BiG.example.com.", "nope.example.com.", "NoPe.ExAmPlE.CoM.", "example.com.",
                 "x.", "foo.wild.example.com."):
        # 65 and 90: QTYPE octets that are ASCII capitals ("A", "Z"), never lowercased
        for rdtype in ("A", "TXT", "MX", 65, 90, 97, 122, 0x4141):
            for kwargs in ({}, {"use_edns": 0}, {"use_edns": 0, "want_dnssec": True},
                           {"use_edns": 0, "payload": 600}, {"use_edns": 0, "payload": 100},
                           {"use_edns": 0, "options": [cookie]},
                           {"use_edns": 0, "want_dnssec": True, "options": [decoy]},
                           {"use_edns": 1}):
                out.append(_query(name, rdtype, **kwargs))
    return out


def test_placed_questions_answer_as_parse_fast(table: ZoneTable) -> None:
    responder = Responder(table)
    cases = _cases()
    for _ in range(2):  # asked twice: the second round answers from the caches
        for data in cases:
            assert responder.fast_udp(data) == _expected(responder, table, data), data
    assert OPT_DO_1232 in responder.opt_shapes  # the decoy's tail was a known OPT


def test_qtype_octets_are_not_lowercased(table: ZoneTable) -> None:
    """A QTYPE of 65 ("A" as an octet) is not the cached answer of QTYPE 97 ("a")."""
    responder = Responder(table)
    lower = _query("web.example.com.", 97)
    responder.fast_udp(lower)
    responder.fast_udp(lower)  # cached
    upper = _query("web.example.com.", 65)
    out = responder.fast_udp(upper)
    assert responder.stats.queries(qtype=65) == 1 and responder.stats.queries() == 3
    assert out == _expected(responder, table, upper)


def test_mutations_of_placed_questions_answer_as_parse_fast(table: ZoneTable) -> None:
    responder = Responder(table)
    rng = random.Random(9)
    bases = _cases()
    for data in bases:  # learn the OPT records and fill the caches first
        responder.fast_udp(data)
    for _ in range(8000):
        b = bytearray(rng.choice(bases))
        what = rng.randrange(4)
        if what == 0:  # an octet changed, maybe a label length or a letter's case
            b[rng.randrange(2, len(b))] ^= rng.choice((0x20, 1, 0x40, 0xFF))
        elif what == 1:  # cut
            del b[rng.randrange(12, len(b)):]
        elif what == 2:  # something appended: the last 11 octets move
            b += rng.choice((OPT_DO_1232, b"\x00", bytes(rng.randrange(256) for _ in range(4))))
        else:  # an OPT seen before, appended to a query without one, ARCOUNT 1
            b[10:12] = b"\x00\x01"
            b += OPT_DO_1232
        data = bytes(b)
        assert responder.fast_udp(data) == _expected(responder, table, data), data
    # the headers learned are those of accepted queries only: at most 8 * 256 * 2
    for head, idx in _HEADS.items():
        assert len(head) == 10 and not head[0] & 0xF8, head
        assert head[2:8] == ONE_QUESTION and head[8:] in (b"\x00\x00", b"\x00\x01"), head
        assert idx == ((head[0] & 1) | ((head[1] >> 3) & 2)) - (head[9] << 2)


def test_remembered_opt_records_are_bounded(table: ZoneTable) -> None:
    responder = Responder(table)
    for payload in range(512, 512 + 4 * OPT_SHAPES_MAX):
        data = _query("big.example.com.", "TXT", use_edns=0, payload=payload)
        assert responder.fast_udp(data) == _expected(responder, table, data)
    assert len(responder.opt_shapes) == OPT_SHAPES_MAX
    data = _query("big.example.com.", dns.rdatatype.TXT, use_edns=0, payload=700)
    assert responder.fast_udp(data) == _expected(responder, table, data)  # past the bound


def test_a_flood_of_odd_opt_records_does_not_lock_out_the_common_one(table: ZoneTable) -> None:
    """OPT records past the bound push the oldest out: 64 queries with odd payload sizes
    sent first no longer send every later client's OPT through `_fast_general` (three
    times the CPU of a placed question) for the life of the process."""
    responder = Responder(table)
    for payload in range(600, 600 + 2 * OPT_SHAPES_MAX):
        responder.fast_udp(_query("web.example.com.", "A", use_edns=0, payload=payload))
    common = _query("web.example.com.", "A", use_edns=0, payload=1232, want_dnssec=True)
    assert responder.fast_udp(common) == _expected(responder, table, common)
    assert common[-11:] in responder.opt_shapes
    assert len(responder.opt_shapes) == OPT_SHAPES_MAX
    assert responder.fast_udp(common) == _expected(responder, table, common)  # placed
