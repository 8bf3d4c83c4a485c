"""Protocol handling of `Responder`: EDNS0, truncation, errors, fast path == slow path."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from node.server.responder import Responder
from node.server.stats import DnsStats
from node.server.table import ZoneTable

Ask = Callable[..., dns.message.Message]
CLIENT = ("127.0.0.1", 5300)


def wire(name: str = "web.example.com.", rdtype: str = "A", **kwargs: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kwargs).to_wire()  # type: ignore[arg-type]


def test_edns_answer_carries_opt_with_our_size_and_do_echo(ask: Ask) -> None:
    resp = ask("web.example.com.", "A", use_edns=0, payload=4096)
    assert resp.edns == 0 and resp.payload == 1232
    assert not resp.ednsflags & dns.flags.DO
    resp = ask("web.example.com.", "A", use_edns=0, want_dnssec=True)
    assert resp.ednsflags & dns.flags.DO
    resp = ask("web.example.com.", "A")
    assert resp.edns == -1


def test_edns_on_negative_and_refused_answers(ask: Ask) -> None:
    assert ask("nope.example.com.", "A", use_edns=0).edns == 0
    assert ask("example.org.", "A", use_edns=0).edns == 0


def test_truncation_without_edns_and_tcp_fallback(ask: Ask) -> None:
    resp = ask("big.example.com.", "TXT")  # ~650 octets > 512
    assert resp.flags & dns.flags.TC
    assert not resp.answer and resp.question[0].name.to_text() == "big.example.com."
    resp = ask("big.example.com.", "TXT", transport="tcp")
    assert not resp.flags & dns.flags.TC
    assert len(resp.answer[0]) == 8


def test_truncation_follows_negotiated_payload(ask: Ask) -> None:
    resp = ask("big.example.com.", "TXT", use_edns=0, payload=1232)
    assert not resp.flags & dns.flags.TC and len(resp.answer[0]) == 8
    resp = ask("big.example.com.", "TXT", use_edns=0, payload=600)
    assert resp.flags & dns.flags.TC and not resp.answer and resp.edns == 0
    # below 512 counts as 512
    resp = ask("web.example.com.", "A", use_edns=0, payload=100)
    assert not resp.flags & dns.flags.TC and resp.answer


def test_our_maximum_caps_the_client_size(table: ZoneTable) -> None:
    r = Responder(table, max_udp_payload=600)
    q = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=4096)
    resp = dns.message.from_wire(r.handle(q.to_wire(), CLIENT, "udp"))  # type: ignore[arg-type]
    assert resp.flags & dns.flags.TC and resp.payload == 600


def test_badvers(ask: Ask) -> None:
    resp = ask("web.example.com.", "A", use_edns=1)
    assert resp.rcode() == dns.rcode.BADVERS
    assert resp.edns == 0 and not resp.answer


def test_two_opts_is_formerr(responder: Responder) -> None:
    q = bytearray(wire(use_edns=0))
    opt = bytes(q[-11:])
    q[10:12] = b"\x00\x02"
    out = responder.handle(bytes(q) + opt, CLIENT, "udp")
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR


def test_qdcount_not_one_is_formerr(responder: Responder) -> None:
    q = bytearray(wire())
    for count in (0, 2, 65535):
        q[4:6] = count.to_bytes(2, "big")
        out = responder.handle(bytes(q), CLIENT, "udp")
        assert isinstance(out, bytes)
        flags = struct.unpack("!H", out[2:4])[0]
        assert flags & 0x8000 and flags & 0xF == dns.rcode.FORMERR
        assert out[:2] == q[:2]


def test_responses_are_never_answered(responder: Responder) -> None:
    resp = dns.message.make_response(dns.message.make_query("web.example.com.", "A"))
    assert responder.handle(resp.to_wire(), CLIENT, "udp") is None
    assert responder.handle(b"\x00" * 5, CLIENT, "udp") is None


def test_update_and_notify_are_notimp_until_hooked(table: ZoneTable) -> None:
    r = Responder(table)
    for opcode in (dns.opcode.UPDATE, dns.opcode.NOTIFY, dns.opcode.STATUS):
        q = dns.message.make_query("example.com.", "SOA")
        q.set_opcode(opcode)
        out = r.handle(q.to_wire(), CLIENT, "udp")
        assert isinstance(out, bytes)
        assert dns.message.from_wire(out).rcode() == dns.rcode.NOTIMP
    seen: list[int] = []
    r = Responder(table, hooks={int(dns.opcode.NOTIFY): lambda w, q, a, t: seen.append(q.opcode)})
    q = dns.message.make_query("example.com.", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    assert r.handle(q.to_wire(), CLIENT, "udp") is None
    assert seen == [dns.opcode.NOTIFY]


def test_formerr_for_bad_question_name(responder: Responder) -> None:
    # a compression pointer loop in the question
    q = bytes(wire()[:12]) + b"\xc0\x0c\x00\x01\x00\x01"
    out = responder.handle(q, CLIENT, "udp")
    assert isinstance(out, bytes) and out[3] & 0xF == dns.rcode.FORMERR
    # a truncated question
    out = responder.handle(wire()[:20], CLIENT, "udp")
    assert isinstance(out, bytes) and out[3] & 0xF == dns.rcode.FORMERR


def test_fast_and_slow_paths_agree(responder: Responder) -> None:
    names = ["web", "WWW", "nope", "foo.wild", "host.sub", "sub", "chain1", "b.c", "", "big"]
    types = ["A", "AAAA", "TXT", "MX", "NS", "DS", "SOA", "ANY", "CNAME"]
    for name in names:
        for rdtype in types:
            for kwargs in ({}, {"use_edns": 0}, {"use_edns": 0, "want_dnssec": True}):
                q = wire(f"{name}.example.com." if name else "example.com.", rdtype, **kwargs)
                fast = responder.udp(q, CLIENT)
                assert responder.table.caches[0] or responder.table.caches[1]
                slow = responder._slow(q, CLIENT, False)
                assert fast == slow, (name, rdtype, kwargs)
                assert responder.tcp(q, CLIENT) == responder._slow(q, CLIENT, True)


def test_edns_options_are_accepted(ask: Ask) -> None:
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    resp = ask("web.example.com.", "A", use_edns=0, options=[cookie])
    assert resp.rcode() == dns.rcode.NOERROR and resp.answer


def test_stats_count_rcodes_and_types(table: ZoneTable) -> None:
    stats = DnsStats()
    r = Responder(table, stats=stats)
    for _ in range(3):
        r.handle(wire(), CLIENT, "udp")
    r.handle(wire("nope.example.com."), CLIENT, "udp")
    assert stats.queries(rcode=0, qtype=1) == 3
    assert stats.queries(rcode=dns.rcode.NXDOMAIN) == 1


def test_random_garbage_never_raises(responder: Responder) -> None:
    rng = random.Random(7)
    base = wire(use_edns=0)
    for i in range(3000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(0, 80))
        else:
            data = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randrange(len(data) + 1)])
        for transport in ("udp", "tcp"):
            out = responder.handle(data, CLIENT, transport)
            assert out is None or isinstance(out, bytes | list)
    assert dns.message.from_wire(responder.handle(wire(), CLIENT, "udp")).answer  # type: ignore[arg-type]


def test_error_answers_to_edns_queries_carry_opt(responder: Responder) -> None:
    q = dns.message.make_query("example.com.", "SOA", use_edns=0)
    q.set_opcode(dns.opcode.STATUS)
    resp = dns.message.from_wire(responder.handle(q.to_wire(), CLIENT, "udp"))  # type: ignore[arg-type]
    assert resp.rcode() == dns.rcode.NOTIMP and resp.edns == 0
    q = dns.message.make_query("example.com.", "SOA", use_edns=0)
    q.question = []  # QDCOUNT=0 (a cookie-only query, say)
    out = responder.handle(q.to_wire(), CLIENT, "udp")
    assert isinstance(out, bytes) and out[3] & 0xF == dns.rcode.FORMERR
    assert out[10:12] == b"\x00\x01" and out[-11:-8] == b"\x00\x00\x29"  # our OPT


def test_fast_udp_takes_what_parse_fast_takes_and_answers_as_assembled(
        responder: Responder, table: ZoneTable) -> None:
    """`fast_udp` writes `parse_fast` out inline: on valid queries and thousands of mutated
    ones (octets flipped, cut, appended; EDNS with odd versions, sizes and rdata) it declines
    exactly what `parse_fast` declines, and otherwise answers as `_assemble` for UDP."""
    from node.server.wire import parse_fast

    rng = random.Random(5)
    bases = [wire(n, t, **kw) for n in ("web.example.com.", "NoPe.example.com.", "x.")
             for t in ("A", "TXT", "MX")
             for kw in ({}, {"use_edns": 0}, {"use_edns": 0, "want_dnssec": True,
                                               "payload": 600})]
    messages = list(bases)
    for _ in range(6000):
        b = bytearray(rng.choice(bases))
        for _ in range(rng.choice((1, 1, 2))):
            what = rng.randrange(4) if len(b) > 12 else 2
            if what == 0:
                b[rng.randrange(len(b))] = rng.choice((0, 1, 41, 63, 64, 0x80, rng.randrange(256)))
            elif what == 1:
                del b[rng.randrange(12, len(b)) :]
            elif what == 2:
                b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
            else:
                b[rng.randrange(2, 12)] = rng.randrange(256)  # header: flags and counts
        messages.append(bytes(b))
    taken = 0
    for data in messages:
        p = parse_fast(data)
        got = responder.fast_udp(data)
        if p is None:
            assert got is None, data
            continue
        key, q4, payload, do = p
        entry = table.caches[do].get(key) or table.lookup(key, do)
        if entry is None:  # AXFR/IXFR: the slow path
            assert got is None, data
            continue
        taken += 1
        assert got == responder._assemble(data[:2], data[2], data[3], data[12:q4], entry,
                                          payload, do, False), data
    assert taken > 500
