"""node/zones/packed.py: an owner's RRsets packed into one blob read back as the same RRsets,
for every type the zone test corpora use (DNSSEC and unknown types included), and the
replica's form of a zone holding a fraction of what dnspython objects held."""

from __future__ import annotations

import copy
import gc
import io
import pickle
import random
import socket
import tracemalloc
from pathlib import Path

import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset
import pytest

from bench import zonegen
from node.dnssec.digest import ZoneDigest
from node.store.keys import KeyLayout
from node.store.values import KeyValue
from node.work.zoneparse import parse_with_dnspython
from node.zones.decode import build_nodes
from node.zones.layered import LayeredNodes
from node.zones.model import snapshot_from_text
from node.zones.packed import PackedTypes, ReadCache, WiredA, WiredAAAA
from tests.support.zones import EXAMPLE, FUZZ
from tests.unit.server.signed_zone import MODES, NOW, ORIGIN, ZONE, signed_snapshot, signer

T = dns.rdatatype
IN = dns.rdataclass.IN

# types beyond the corpora's: names with upper case (kept, as `to_wire` keeps them),
# an embedded IPv4 AAAA, unknown types in generic syntax, and the usual oddities
ODD = """
$TTL 300
@        IN SOA Ns1.Example. HostMaster 7 3600 600 604800 300
@        IN NS  Ns1.Example.
@        IN CAA 0 issue "ca.example.net"
@        IN HINFO "cpu" "os"
mixed    IN MX  10 MaIl.Other.Test.
cname    IN CNAME Target.Example.
v4in6    IN AAAA ::ffff:192.0.2.1
zeros    IN AAAA 1:0:2:3:4:5:6:7
zeros    IN AAAA ::
unk      IN TYPE65280 \\# 4 0a000001
unk      IN TYPE65534 \\# 0
empty    IN TXT ""
multi    IN TXT "a" "b c" "\\"q\\""
_tls._tcp IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
host     IN SSHFP 1 1 0123456789abcdef0123456789abcdef01234567
svc      IN SVCB 1 . alpn="h2,h3" port=8443
svc      IN HTTPS 1 . alpn=h2
nap      IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.!" .
loc      IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
ptr      IN PTR Some.Host.Example.
srv      IN SRV 0 5 5060 Sip.Example.
ds       IN NS  ns1
ds       IN DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""


def corpora() -> list[tuple[str, dict]]:
    """(name, {owner: types}) of every corpus: plain, FUZZ, odd types, and signed zones."""
    out = [("example", snapshot_from_text(EXAMPLE, "example.").nodes),
           ("fuzz", snapshot_from_text(FUZZ.format(zone="fuzz.test.", txt="x" * 200),
                                       "fuzz.test.").nodes),
           ("odd", snapshot_from_text(ODD, "example.").nodes)]
    out += [(mode, signed_snapshot(mode).nodes) for mode in MODES]
    return out


def _wire(rrset: dns.rrset.RRset) -> bytes:
    out = io.BytesIO()
    rrset.to_wire(out, want_shuffle=False)
    return out.getvalue()


def same_rrset(got: dns.rrset.RRset, want: dns.rrset.RRset) -> None:
    assert type(got) is dns.rrset.RRset
    assert (got.name, got.rdclass, got.rdtype, got.covers, got.ttl) == \
        (want.name, want.rdclass, want.rdtype, want.covers, want.ttl)
    assert got == want
    assert [rd.to_text() for rd in got] == [rd.to_text() for rd in want]
    assert [rd.to_wire() for rd in got] == [rd.to_wire() for rd in want]
    assert [hash(rd) for rd in got] == [hash(rd) for rd in want]
    for a, b in zip(got, want, strict=True):
        assert isinstance(a, type(b)) or isinstance(b, type(a))  # the signer keeps subclasses
        assert a == b and b == a
    assert _wire(got) == _wire(want)
    assert got.to_text() == want.to_text()


@pytest.mark.parametrize("name,nodes", corpora(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_rrset_of_the_corpora_reads_back_as_packed(name: str, nodes: dict) -> None:
    seen: set[int] = set()
    for owner, types in nodes.items():
        packed = PackedTypes.pack(owner, types.values())
        assert list(packed) == sorted(types) and len(packed) == len(types)
        assert packed == PackedTypes.pack(owner, reversed(list(types.values())))
        for rdtype, rrset in types.items():
            seen.add(rdtype)
            assert rdtype in packed
            same_rrset(packed[rdtype], rrset)
            same_rrset(packed.get(rdtype), rrset)
            assert packed.ttl(rdtype) == rrset.ttl
            assert packed.rdata_wires(rdtype) == [rd.to_wire() for rd in rrset]
        for (t, got), want in zip(packed.items(), sorted(types), strict=True):
            assert t == want
            same_rrset(got, types[want])
        assert T.NULL not in packed and packed.get(T.NULL) is None
        with pytest.raises(KeyError):
            packed[T.NULL]
    wanted = {
        "example": {T.SOA, T.NS, T.MX, T.A, T.AAAA, T.CNAME, T.TXT, T.SRV, T.DS},
        "odd": {T.CAA, T.HINFO, T.TLSA, T.SSHFP, T.SVCB, T.HTTPS, T.NAPTR, T.LOC, T.PTR,
                65280, 65534},
        "nsec": {T.RRSIG, T.NSEC, T.DNSKEY},
        "nsec3": {T.RRSIG, T.NSEC3, T.NSEC3PARAM, T.DNSKEY},
    }.get(name, set())
    assert wanted <= seen


def test_the_bench_zone_reads_back_as_packed(tmp_path: Path) -> None:
    gen = zonegen.generate(tmp_path, 500)
    for owner, types in snapshot_from_text(gen.zone_file.read_text(), gen.origin).nodes.items():
        packed = PackedTypes.pack(owner, types.values())
        for rdtype, rrset in types.items():
            same_rrset(packed[rdtype], rrset)


def test_replaced_changes_one_type_and_copies_the_others() -> None:
    nodes = snapshot_from_text(EXAMPLE, "example.").nodes
    owner = dns.name.from_text("mail.example.")
    packed = PackedTypes.pack(owner, nodes[owner].values())
    mx = dns.rrset.from_text(owner, 60, IN, T.MX, "5 a.example.", "10 B.example.")
    added = packed.replaced(T.MX, mx)
    assert list(added) == [T.A, T.MX, T.AAAA]  # type order
    same_rrset(added[T.MX], mx)
    for kept in (T.A, T.AAAA):
        assert added.segment(kept) == packed.segment(kept)
    a = dns.rrset.from_text(owner, 5, IN, T.A, "192.0.2.99")
    swapped = added.replaced(T.A, a)
    assert list(swapped) == [T.A, T.MX, T.AAAA]
    same_rrset(swapped[T.A], a)
    assert swapped.replaced(T.MX, None) == packed.replaced(T.A, a)
    gone = packed.replaced(T.A, None).replaced(T.AAAA, None)
    assert not gone and len(gone) == 0 and list(gone) == []
    assert packed.replaced(T.NULL, None) == packed  # removing what is not there
    assert PackedTypes(owner, b"").replaced(T.A, a) == PackedTypes.pack(owner, [a])


def test_addresses_made_without_dnspython_are_dnspython_addresses() -> None:
    rng = random.Random(7)
    owner = dns.name.from_text("h.example.")
    for _ in range(3000):
        fields = [rng.choice((0, 0, 1, 0xFFFF, rng.randrange(65536))) for _ in range(8)]
        wire = b"".join(f.to_bytes(2, "big") for f in fields)
        text = dns.ipv6.inet_ntoa(wire)
        want = dns.rrset.from_text(owner, 1, IN, T.AAAA, text)
        got = PackedTypes.pack(owner, [want])[T.AAAA]
        assert [rd.address for rd in got] == [text]
        four = socket.inet_ntoa(wire[:4])
        got = PackedTypes.pack(owner, [dns.rrset.from_text(owner, 1, IN, T.A, four)])[T.A]
        assert [rd.address for rd in got] == [four]


@pytest.mark.parametrize("cls,base,rdtype,text,other", [
    (WiredA, dns.rdtypes.IN.A.A, T.A, "192.0.2.1", "192.0.2.2"),
    (WiredAAAA, dns.rdtypes.IN.AAAA.AAAA, T.AAAA, "2001:db8::1", "2001:db8::2")])
def test_a_wired_address_is_its_address_everywhere(cls: type, base: type, rdtype: int,
                                                   text: str, other: str) -> None:
    owner = dns.name.from_text("h.example.")
    rrset = dns.rrset.from_text(owner, 1, IN, rdtype, text)
    rd = PackedTypes.pack(owner, [rrset])[rdtype][0]
    plain = base(IN, rdtype, text)
    assert type(rd) is cls and rd == plain and hash(rd) == hash(plain)
    assert rd.to_wire() == plain.to_wire() and rd.to_digestable() == plain.to_digestable()
    moved = rd.replace(address=other)
    assert moved.to_wire() == base(IN, rdtype, other).to_wire() and moved.address == other
    for again in (copy.copy(moved), copy.deepcopy(moved), pickle.loads(pickle.dumps(moved))):
        assert again == moved and again.to_wire() == moved.to_wire()
        assert hash(again) == hash(moved)


def _held(make: object) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        value = make()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, value
    finally:
        tracemalloc.stop()


def test_the_replica_holds_a_zone_in_a_few_hundred_octets_per_rrset(tmp_path: Path) -> None:
    gen = zonegen.generate(tmp_path, 3000)
    layout = KeyLayout("/p/")
    prefix = layout.data_prefix(dns.name.from_text(gen.origin), 1)
    records = parse_with_dnspython(gen.zone_file.read_text(), gen.origin).records
    kvs = [KeyValue((prefix + s).encode(), v, 1, 1, 1, 0) for s, v in records]
    held, nodes = _held(lambda: build_nodes(prefix.encode(), kvs))
    # the owners' names are the map's keys whatever holds their RRsets: not counted
    names, _ = _held(lambda: [dns.name.from_text(o.to_text()) for o in nodes])  # type: ignore[attr-defined]
    per_rrset = (held - names) / len(records)
    assert per_rrset <= 200, f"{per_rrset:.0f} octets held per RRset (bound 200)"


def test_a_read_cache_makes_each_rrset_once_and_lets_go_at_its_end() -> None:
    nodes = snapshot_from_text(EXAMPLE, "example.").nodes
    owner = dns.name.from_text("mail.example.")
    packed = PackedTypes.pack(owner, nodes[owner].values())
    assert packed[T.A] is not packed[T.A]  # no cache: made on every read
    with ReadCache() as cache:
        first = packed[T.A]
        assert packed.get(T.A) is first and dict(packed.items())[T.A] is first
        with ReadCache():  # an inner pass uses the outer cache and leaves it in place
            assert packed[T.A] is first
        assert packed[T.A] is first
        cache.clear()
        assert packed[T.A] is not first
    assert packed[T.A] is not packed[T.A]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_zone_signed_from_its_packed_form_is_the_same_zone(mode: str) -> None:
    plain = snapshot_from_text(ZONE, ORIGIN).nodes
    packed = LayeredNodes({o: PackedTypes.pack(o, t.values()) for o, t in plain.items()})
    one, two = signer(mode), signer(mode)
    a, b = one.sign(plain, None, NOW), two.sign(packed, None, NOW)
    assert ZoneDigest().reset(a.nodes) == ZoneDigest().reset(b.nodes)
    www = dns.name.from_text("www.example.")
    added = dns.rrset.from_text(www, 300, IN, T.AAAA, "2001:db8::77")
    changed_plain = dict(plain)
    changed_plain[www] = {**plain[www], T.AAAA: added}
    changed_packed = packed.updated({www: packed[www].replaced(T.AAAA, added)})
    later = NOW + 86400 * 20  # signatures fall due as well
    a = one.sign(changed_plain, frozenset({www}), later)
    b = two.sign(changed_packed, frozenset({www}), later)
    assert a.changed == b.changed and a.signatures_made == b.signatures_made
    assert ZoneDigest().reset(a.nodes) == ZoneDigest().reset(b.nodes)


def test_an_rrset_the_blob_cannot_hold_is_a_bad_value() -> None:
    """The blob's counts and lengths are 16 bits: more is refused as a bad value (ValueError,
    which the replica reports and skips), not struct's error (which stopped its watch)."""
    owner = dns.name.from_text("big.example.")
    many = dns.rrset.RRset(owner, IN, T.A)
    for i in range(0x10000):
        many.add(dns.rdata.from_wire(IN, T.A, i.to_bytes(4, "big"), 0, 4), 60)
    long = dns.rrset.RRset(owner, IN, T.TXT)
    long.add(dns.rdata.from_text(IN, T.TXT, " ".join(['"' + "x" * 255 + '"'] * 300)), 60)
    for rrset in (many, long):
        with pytest.raises(ValueError, match="over 65535"):
            PackedTypes.pack(owner, [rrset])
    many.discard(next(iter(many)))  # 65,535 RRs fit
    assert PackedTypes.pack(owner, [many])[T.A] == many
