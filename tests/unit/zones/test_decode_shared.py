"""A decode shares equal immutable objects across RRsets (issue 10, memory; decode.py).

A zone's MX, NS and CNAME targets are mostly its own owners or a few shared hosts,
and many of its names hold the same address or MX: each RRset used to hold its own
copy of every one (a name ~190 octets, a record 64-100). A `NodeDecoder` now keeps
one object per name text and per (type, record text); what it builds is still what
dnspython's readers build (test_decode_differential.py), and an escaped owner key
(`%2F`) is never taken for the literal name of the same text.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from node.store.values import KeyValue
from node.zones import decode
from node.zones.decode import NodeDecoder

PREFIX = b"/p/zones/z.test./data/1/"


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(PREFIX + key.encode(), value.encode(), 1, 1, 1, 0)


def _nodes(kvs: list[KeyValue]) -> dict[dns.name.Name, dict[int, object]]:
    decoder = NodeDecoder(PREFIX)
    decoder.add(kvs)
    return {owner: dict(types) for owner, types in decoder.nodes().items()}


def test_targets_are_the_owners_names_and_equal_records_one_object() -> None:
    nodes = _nodes([
        _kv("a.z.test./MX", '{"ttl": 300, "rdata": ["10 mail.z.test.", "20 mx2.a.z.test."]}'),
        _kv("b.z.test./MX", '{"ttl": 300, "rdata": ["10 mail.z.test."]}'),
        _kv("mail.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.25"]}'),
        _kv("mx2.a.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.25"]}'),
        _kv("c.z.test./NS", '{"ttl": 300, "rdata": ["ns.example.net."]}'),
        _kv("d.z.test./NS", '{"ttl": 300, "rdata": ["ns.example.net."]}'),
        _kv("w.z.test./CNAME", '{"ttl": 300, "rdata": ["mail.z.test."]}'),
    ])
    owners = {owner.to_text(): owner for owner in nodes}
    mx = {rd.preference: rd for rd in nodes[owners["a.z.test."]][dns.rdatatype.MX]}
    (mx_b,) = nodes[owners["b.z.test."]][dns.rdatatype.MX]
    (cname,) = nodes[owners["w.z.test."]][dns.rdatatype.CNAME]
    assert mx[10] is mx_b, "equal MX records: two objects"
    assert mx[10].exchange is owners["mail.z.test."] is cname.target
    assert mx[20].exchange is owners["mx2.a.z.test."]
    (a_mail,) = nodes[owners["mail.z.test."]][dns.rdatatype.A]
    (a_mx2,) = nodes[owners["mx2.a.z.test."]][dns.rdatatype.A]
    assert a_mail is a_mx2
    (ns_c,) = nodes[owners["c.z.test."]][dns.rdatatype.NS]
    (ns_d,) = nodes[owners["d.z.test."]][dns.rdatatype.NS]
    assert ns_c is ns_d
    plain = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, "10 mail.z.test.")
    assert mx_b == plain and hash(mx_b) == hash(plain)


def test_an_escaped_owner_key_is_not_the_literal_target_of_the_same_text() -> None:
    nodes = _nodes([
        _kv("a%2Fb.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.1"]}'),  # owner a/b.z.test.
        _kv("c.z.test./NS", '{"ttl": 300, "rdata": ["a%2Fb.z.test."]}'),  # label "a%2Fb"
    ])
    (ns,) = nodes[dns.name.from_text("c.z.test.")][dns.rdatatype.NS]
    assert ns.target == dns.name.from_text("a%2Fb.z.test.")
    assert dns.name.from_text("a/b.z.test.") in nodes
    assert ns.target != dns.name.from_text("a/b.z.test.")


def test_the_shared_records_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "RDATAS_MAX", 4)
    kvs = [_kv(f"h{i}.z.test./A", f'{{"ttl": 300, "rdata": ["192.0.2.{i}"]}}')
           for i in range(10)]
    decoder = NodeDecoder(PREFIX)
    decoder.add(kvs)
    assert len(decoder._rdatas[dns.rdatatype.A] or {}) <= 4
    assert len(decoder.nodes()) == 10


def test_a_target_differing_from_an_owner_only_in_case_keeps_its_own_case() -> None:
    """Shared by text, never by equality: a target written `Mail.Z.test.` is equal to the
    owner `mail.z.test.` (DNS names compare without case) but keeps its case in its text
    and wire form (RFC 4034 6.2 lowercases only the canonical form); equal records of
    another case are not one object either."""
    nodes = _nodes([
        _kv("mail.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.25"]}'),
        _kv("a.z.test./MX", '{"ttl": 300, "rdata": ["10 Mail.Z.test."]}'),
        _kv("b.z.test./MX", '{"ttl": 300, "rdata": ["10 mail.z.test."]}'),
        _kv("c.z.test./NS", '{"ttl": 300, "rdata": ["MAIL.z.test."]}'),
        _kv("d.z.test./TXT", '{"ttl": 300, "rdata": ["\\"Hi\\""]}'),
        _kv("e.z.test./TXT", '{"ttl": 300, "rdata": ["\\"hi\\""]}'),
    ])
    owners = {owner.to_text(): owner for owner in nodes}
    (mx_a,) = nodes[owners["a.z.test."]][dns.rdatatype.MX]
    (mx_b,) = nodes[owners["b.z.test."]][dns.rdatatype.MX]
    (ns_c,) = nodes[owners["c.z.test."]][dns.rdatatype.NS]
    assert mx_a == mx_b and mx_a is not mx_b
    assert mx_a.to_text() == "10 Mail.Z.test." and mx_b.to_text() == "10 mail.z.test."
    assert mx_a.to_wire() == b"\x00\x0a\x04Mail\x01Z\x04test\x00"
    assert mx_a.to_digestable() == mx_b.to_digestable()
    assert mx_b.exchange is owners["mail.z.test."]
    assert mx_a.exchange is not owners["mail.z.test."]
    assert ns_c.target.to_text() == "MAIL.z.test." and ns_c.target is not mx_a.exchange
    (txt_d,) = nodes[owners["d.z.test."]][dns.rdatatype.TXT]
    (txt_e,) = nodes[owners["e.z.test."]][dns.rdatatype.TXT]
    assert txt_d.strings == (b"Hi",) and txt_e.strings == (b"hi",)
