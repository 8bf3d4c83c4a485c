"""node/zones/decode.py builds the same RRsets and names as dnspython's text readers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rrset

from bench import zonegen
from node.store.keys import KeyLayout, name_from_text
from node.store.values import KeyValue
from node.work.zoneparse import parse_with_dnspython
from node.zones.decode import NodeDecoder, build_nodes, rdata_from_text, rrset_from_json
from node.zones.records import RecordTuple

EXTRA = """ns2 IN NS a\\.b.other.test.
odd IN MX 5 \\@weird.other.test.
odd IN TXT "x y"
_s._tcp IN SRV 1 2 3 t
esc\\.aped IN A 192.0.2.5
"""


def reference(owner: dns.name.Name, rdtype: int, data: bytes) -> dns.rrset.RRset:
    obj = json.loads(data)
    return dns.rrset.from_rdata_list(owner, obj["ttl"], [
        dns.rdata.from_text(dns.rdataclass.IN, rdtype, text) for text in obj["rdata"]])


def test_stored_values_and_owners_read_as_dnspython_reads_them(tmp_path: Path) -> None:
    gen = zonegen.generate(tmp_path, 2000)
    text = gen.zone_file.read_text() + EXTRA
    layout = KeyLayout("/p/")
    zone = dns.name.from_text(gen.origin)
    prefix = layout.data_prefix(zone, 9)
    records = parse_with_dnspython(text, gen.origin).records
    kvs = [KeyValue((prefix + suffix).encode(), value, 1, 1, 1, 0) for suffix, value in records]
    nodes = build_nodes(prefix.encode(), kvs)
    assert sum(len(types) for types in nodes.values()) == len(records)
    for suffix, value in records:
        owner_text, _, type_text = suffix.rpartition("/")
        owner = dns.name.from_text(owner_text.replace("%2F", "/").replace("%25", "%"))
        rdtype = dns.rdatatype.from_text(type_text)
        want = reference(owner, rdtype, value)
        got = rrset_from_json(owner, rdtype, value)
        assert got == want and got.ttl == want.ttl
        assert [rd.to_text() for rd in got] == [rd.to_text() for rd in want]
        assert nodes[owner][rdtype] == want


def test_plain_names_split_as_dnspython_reads_them() -> None:
    longest = ".".join(["x" * 63] * 3 + ["y" * 61]) + "."  # 255 octets in wire form
    for text in ("a.b.", "*.Mixed-Case_x.test.", "x" * 63 + ".t.", ".", longest):
        name = name_from_text(text)
        assert name == dns.name.from_text(text) and hash(name) == hash(dns.name.from_text(text))
        assert name.labels == dns.name.from_text(text).labels
        assert isinstance(name, dns.name.Name)  # a `HashedName`: its hash computed once
        assert name.to_wire() == dns.name.from_text(text).to_wire()
        again = pickle.loads(pickle.dumps(name))
        assert again == name and hash(again) == hash(name) and type(again) is type(name)
    for bad in ("x" * 64 + ".t.", longest.replace("y", "yy", 1), "a..b."):
        try:
            name_from_text(bad)
        except dns.exception.DNSException:  # type: ignore[attr-defined]
            continue
        raise AssertionError(f"{bad!r} read as a name")


def test_a_records_are_built_whole_without_the_second_address_check() -> None:
    from node.zones import decode, fastrdata

    assert fastrdata._FAST_A  # this dnspython builds an A as decode expects
    for text in ("192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.10.100"):
        fast = decode.rdata_from_text(dns.rdatatype.A, text)
        slow = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, text)
        assert fastrdata._same(fast, slow) and fast == slow and hash(fast) == hash(slow)
    for bad in ("192.0.2.01", "192.0.2.256", "1.2.3"):  # dnspython's own reader says why
        try:
            decode.rdata_from_text(dns.rdatatype.A, bad)
        except dns.exception.SyntaxError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_decoding_in_parts_in_any_order_gives_the_whole_decode(tmp_path: Path) -> None:
    """`NodeDecoder` (an import's keys decoded as the watch brings them, batches in any
    order, a key sent again) reads as `build_nodes` of the same keys at once."""
    gen = zonegen.generate(tmp_path, 500)
    layout = KeyLayout("/p/")
    prefix = layout.data_prefix(dns.name.from_text(gen.origin), 9)
    records = parse_with_dnspython(gen.zone_file.read_text() + EXTRA, gen.origin).records
    kvs = [KeyValue((prefix + suffix).encode(), value, 1, 1, 1, 0) for suffix, value in records]
    whole = build_nodes(prefix.encode(), kvs)
    decoder = NodeDecoder(prefix.encode())
    parts = [kvs[i::7] for i in range(7)]  # every owner's types spread over parts
    for part in reversed(parts):
        decoder.add(part)
    decoder.add(kvs[:50])  # sent again (a replayed watch batch): the same RRsets
    parted = decoder.nodes()
    assert parted.keys() == whole.keys()
    for owner, types in whole.items():
        assert dict(parted[owner]) == dict(types)


def test_aaaa_records_read_as_dnspython_reads_them() -> None:
    """The AAAA fast path (the C library's inet_ntop as the canonical-form check) builds
    the object dnspython builds, for addresses with zero runs of every length and place."""
    import random

    rng = random.Random(5)
    texts = ["::", "::1", "1::", "::ffff:1.2.3.4", "64:ff9b::1.2.3.4", "2001:DB8::1",
             "2001:db8:0:0:1::1", "0:0:1::"]
    for _ in range(3000):
        groups = [rng.choice((0, 0, 0, 1, 0xABC, 0xFFFF, rng.randrange(65536)))
                  for _ in range(8)]
        address = ":".join(f"{g:x}" for g in groups)
        texts += [address, dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA,
                                               address).to_text()]
    for text in texts:
        want = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, text)
        got = rdata_from_text(dns.rdatatype.AAAA, text)
        assert isinstance(got, type(want)) and got == want and hash(got) == hash(want)
        assert got.address == want.address and got.to_text() == want.to_text()  # type: ignore[attr-defined]
        assert got.rdtype is want.rdtype and got.rdclass is want.rdclass


def test_rrsets_of_several_records_and_singletons_read_as_dnspython_reads_them() -> None:
    owner = dns.name.from_text("x.test.")
    values = [
        (dns.rdatatype.A, ["192.0.2.1", "192.0.2.2", "192.0.2.1"]),  # a repeat: kept once
        (dns.rdatatype.CNAME, ["a.test.", "b.test."]),  # a singleton: the last one stays
        (dns.rdatatype.TXT, ['"a"', '"b"']),
        (dns.rdatatype.SOA, ["a.test. b.test. 1 2 3 4 5"]),
        (dns.rdatatype.A, []),
    ]
    for rdtype, texts in values:
        data = json.dumps({"ttl": 60, "rdata": texts}).encode()
        want = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
        for text in texts:
            want.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text), 60)
        want.update_ttl(60)
        got = rrset_from_json(owner, rdtype, data)
        assert got == want and got.ttl == want.ttl and list(got) == list(want)


def test_fast_records_are_dnspythons_in_sets_and_through_pickle() -> None:
    """A and AAAA records hash from the C library's octets (`HashedA`, `HashedAAAA`): in an
    RRset, a dict or across a process pool they are the records dnspython builds."""
    owner = dns.name.from_text("x.test.")
    for rdtype, texts in ((dns.rdatatype.A, ("192.0.2.1", "10.0.0.255")),
                          (dns.rdatatype.AAAA, ("2001:db8::1", "::", "fe80::1:2"))):
        fast = [rdata_from_text(rdtype, t) for t in texts]
        slow = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, t) for t in texts]
        assert [type(f).__name__ for f in fast] == ["Hashed" + type(s).__name__ for s in slow]
        for f, s in zip(fast, slow, strict=True):
            assert f == s and s == f and hash(f) == hash(s) and {s: 1}[f] == 1
            again = pickle.loads(pickle.dumps(f))
            assert again == s and hash(again) == hash(s)
        mixed = dns.rrset.from_rdata_list(owner, 300, slow)
        assert all(f in mixed for f in fast)
        assert dns.rrset.from_rdata_list(owner, 300, fast) == mixed
        assert mixed.union(dns.rrset.from_rdata_list(owner, 300, fast)) == mixed


def test_one_record_values_read_as_json_reads_them() -> None:
    """The stored value of a one-record RRset is read without a JSON decoder when it can be:
    the same TTL and text as `json.loads`, and escapes, several records, a TTL past 32 bits
    or non-ASCII text go to `json.loads`."""
    from node.zones import decode

    texts = ["10.0.0.1", "a\\.b.test.", 'x"y', "tab\there", "é", "\x7f", "", "ns1.test."]
    for ttl in (0, 1, 3600, 2**32 - 1, 2**40):
        for rdata in [[t] for t in texts] + [texts[:2], []]:
            data = json.dumps({"ttl": ttl, "rdata": rdata}).encode()
            got = decode.rrset_from_json(dns.name.from_text("o.test."), dns.rdatatype.TXT,
                                         json.dumps({"ttl": ttl, "rdata": ['"t"']}).encode())
            assert got.ttl == ttl
            one = decode._ONE.fullmatch(data)
            if one is not None:
                assert (int(one[1]), [one[2].decode()]) == (ttl, rdata)
    assert decode._ONE.fullmatch(b'{"ttl": 007, "rdata": ["x"]}') is None  # not JSON


def test_decoded_owners_share_their_parent_labels_and_rrsets_their_ttls(tmp_path: Path) -> None:
    """Issue 10 (memory): a zone's names repeat their parents' labels and its RRsets a few
    TTLs; each decoded name used to hold its own copy of every label (~40 octets each)
    and each RRset its own TTL int (28 octets): 12 MiB of the 100k-name zone."""
    gen = zonegen.generate(tmp_path, 500)
    layout = KeyLayout("/p/")
    prefix = layout.data_prefix(dns.name.from_text(gen.origin), 9)
    records = parse_with_dnspython(gen.zone_file.read_text(), gen.origin).records
    kvs = [KeyValue((prefix + suffix).encode(), value, 1, 1, 1, 0) for suffix, value in records]
    nodes = build_nodes(prefix.encode(), kvs)
    parents = [label for name in nodes for label in name.labels[1:]]
    copies = len({id(label) for label in parents}) - len(set(parents))
    assert copies == 0, f"{copies} copies of the owners' parent labels"
    ttls = {id(rrset.ttl) for types in nodes.values() for rrset in types.values()}
    assert len(ttls) <= 3, f"{len(ttls)} TTL objects for {len(kvs)} RRsets"
    one = name_from_text("www.h1.bench.test.")
    other = name_from_text("h2.bench.test.")
    assert one.labels[2] is other.labels[1] and one.labels[3] is other.labels[2]
    assert one == dns.name.from_text("www.h1.bench.test.") and hash(one) == hash(
        dns.name.from_text("www.h1.bench.test."))


def test_plain_names_hash_as_dnspythons_from_their_first_label() -> None:
    """Issue 10 (load time): a name's hash is dnspython's fold of its lowercased octets,
    made from its first label and its parent's kept fold; the same int whatever its length
    (past 64 bits Python reduces it) and case, and its parent's labels are shared."""
    import random

    from node.store import keys

    rng = random.Random(7)
    alphabet = "abcXYZ019_-*"
    texts = ["a.", "A.", "x.Bench.TEST.", "x.bench.test.", "y" * 63 + "." + "z" * 63 + "."]
    for _ in range(3000):
        labels = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
                  for _ in range(rng.randint(1, 6))]
        texts.append(".".join(labels) + ".")
    for text in texts:
        got, want = name_from_text(text), dns.name.from_text(text)
        assert got.__hash__() == want.__hash__() and hash(got) == hash(want), text
        assert got == want and got.labels == want.labels and {want: 1}[got] == 1
    keys._SUFFIXES.clear()  # filled again from the first name of a parent
    assert hash(name_from_text("q.r.test.")) == hash(dns.name.from_text("q.r.test."))
    assert name_from_text("s.r.test.").labels[1] is name_from_text("q.r.test.").labels[1]


def test_target_mx_and_txt_records_are_built_whole_and_hash_as_dnspythons() -> None:
    """Issue 10 (load time): NS, CNAME, PTR and MX of a plain name and TXT of plain quoted
    strings are built without dnspython's readers, hashed from their canonical wire form
    without its writer: the same records, hashes, text and wire form as dnspython's, in a
    set or an RRset with them, through pickle; anything else is read by dnspython."""
    cases = [(dns.rdatatype.NS, "Ns1.Example.test."), (dns.rdatatype.CNAME, "www.test."),
             (dns.rdatatype.PTR, "h.in-addr.test."), (dns.rdatatype.MX, "10 Mail.test."),
             (dns.rdatatype.MX, "0 mx.test."), (dns.rdatatype.MX, "65535 mx.test."),
             (dns.rdatatype.TXT, '"v=spf1 -all"'), (dns.rdatatype.TXT, '"a" "" "b c"'),
             (dns.rdatatype.TXT, '""'), (dns.rdatatype.TXT, '"' + "x" * 255 + '"')]
    owner = dns.name.from_text("o.test.")
    for rdtype, text in cases:
        fast = rdata_from_text(rdtype, text)
        slow = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        assert type(fast).__name__ == "Hashed" + type(slow).__name__, text
        slots = set(slow._get_all_slots())
        assert set(fast._get_all_slots()) == slots  # a name field: a HashedName, equal
        assert all(getattr(fast, s) == getattr(slow, s) for s in slots) and slow == fast
        assert fast.rdtype is slow.rdtype and hash(fast) == hash(slow)
        assert fast.to_text() == slow.to_text() and fast.to_wire() == slow.to_wire()
        assert {slow: 1}[fast] == 1 and {fast: 1}[slow] == 1
        again = pickle.loads(pickle.dumps(fast))
        assert again == slow and hash(again) == hash(slow)
        mixed = dns.rrset.from_rdata_list(owner, 60, [slow])
        assert fast in mixed and mixed.union(dns.rrset.from_rdata_list(owner, 60, [fast])) == mixed
    for rdtype, text in ((dns.rdatatype.TXT, '"a\\"b"'), (dns.rdatatype.TXT, '"\\195\\169"'),
                         (dns.rdatatype.MX, "10 a\\.b.test."), (dns.rdatatype.NS, "a\\@b.test.")):
        got = rdata_from_text(rdtype, text)  # escapes: dnspython's reader
        assert not type(got).__name__.startswith("Hashed")
        assert got == dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
    for rdtype, bad in ((dns.rdatatype.TXT, '"' + "x" * 256 + '"'),
                        (dns.rdatatype.MX, "65536 m.t.")):
        try:  # too long, too large: dnspython's reader says why
            rdata_from_text(rdtype, bad)
        except dns.exception.DNSException:  # type: ignore[attr-defined]
            continue
        raise AssertionError(f"{bad!r} read as {rdtype}")


def test_an_owner_in_two_spellings_merges_its_types() -> None:
    """`NodeDecoder` makes each owner's view as it comes (`nodes` at the flip costs
    nothing); an owner whose key is spelt twice (`%2F` and `%2f`: a hand-written key)
    still comes out once, with the types of both keys."""
    prefix = b"/p/zones/t./data/9/"
    value = json.dumps({"ttl": 60, "rdata": ["192.0.2.1"]}).encode()
    txt = json.dumps({"ttl": 60, "rdata": ['"x"']}).encode()
    kvs = [KeyValue(prefix + b"a%2Fb.t./A", value, 1, 1, 1, 0),
           KeyValue(prefix + b"c.t./A", value, 1, 1, 1, 0),
           KeyValue(prefix + b"a%2fb.t./TXT", txt, 1, 1, 1, 0)]
    for order in (kvs, kvs[::-1]):
        decoder = NodeDecoder(prefix)
        for kv in order:
            decoder.add([kv])
        nodes = decoder.nodes()
        owner = dns.name.from_text("a/b.t.")
        assert list(nodes) in ([owner, dns.name.from_text("c.t.")],
                               [dns.name.from_text("c.t."), owner])
        assert sorted(nodes[owner]) == [dns.rdatatype.A, dns.rdatatype.TXT]
    decoder = NodeDecoder(prefix)
    decoder.add(kvs[:2])
    decoder.add([KeyValue(prefix + b"c.t./A", b"not json", 1, 1, 1, 0)])  # reported, kept
    assert sorted(map(str, decoder.nodes())) == ["a/b.t.", "c.t."]


def test_copies_of_a_name_compare_by_labels_not_fullcompare(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 (load time): every node map decodes its own owner names, and the journal's
    step of an import looks each old owner up in the new map: two `HashedName` copies of
    one name compare by hash and labels, without dnspython's `fullcompare`; a case
    difference, a plain `Name` or anything else is compared as dnspython compares it."""
    one, two = name_from_text("www.h1.bench.test."), name_from_text("www.h1.bench.test.")
    other = name_from_text("www.h2.bench.test.")
    upper = name_from_text("WWW.h1.Bench.test.")
    plain = dns.name.from_text("www.h1.bench.test.")
    with monkeypatch.context() as m:
        def refused(*_args: object) -> None:
            raise AssertionError("fullcompare called for two copies of a name")

        m.setattr(dns.name.Name, "fullcompare", refused)
        assert one == two and not one != two and one is not two
        assert one != other and not one == other  # different hashes: no compare either
        assert {one: 1}[two] == 1 and two in {one}
    assert one == upper and upper == one and not one != upper and hash(one) == hash(upper)
    assert one == plain and plain == one and not one != plain and {plain: 1}[one] == 1
    assert one != "www.h1.bench.test." and not one == 1 and one != other
    assert one != name_from_text("h1.bench.test.") and sorted([other, one]) == [one, other]


def test_decoded_rrsets_hold_what_dnspythons_constructor_gives_them(tmp_path: Path) -> None:
    """Issue 10 (load time): an RRset of a stored value is made without dnspython's
    constructors (`_empty_rrset`); every slot of it (name, class, type, covers, TTL,
    deleting, records) is what `RRset(...)`, `add` and `update_ttl` give it; the records
    in the same order, as a `RecordTuple` in place of the dict where they are few."""
    from node.zones import decode

    assert decode._FAST_RRSET  # this dnspython builds an RRset as decode expects
    gen = zonegen.generate(tmp_path, 300)
    records = parse_with_dnspython(gen.zone_file.read_text() + EXTRA, gen.origin).records
    for suffix, value in records:
        owner_text, _, type_text = suffix.rpartition("/")
        owner = dns.name.from_text(owner_text.replace("%2F", "/").replace("%25", "%"))
        rdtype = dns.rdatatype.from_text(type_text)
        want = reference(owner, rdtype, value)
        got = rrset_from_json(owner, rdtype, value)
        assert list(got.items) == list(want.items) and got.items == want.items, suffix
        if isinstance(got.items, RecordTuple):
            assert len(got) <= decode.RECORD_TUPLE_MAX, suffix
            got.items = dict.fromkeys(got.items)
        assert decode._same_rrset(got, want), suffix
    got = rrset_from_json(dns.name.from_text("o.test."), dns.rdatatype.A,
                          b'{"ttl": 4294967295, "rdata": ["192.0.2.1"]}')
    assert got.ttl == 4294967295 and got.deleting is None and got.covers == dns.rdatatype.NONE


def test_the_import_checks_say_no_not_raise_when_dnspython_sets_a_slot_decode_does_not() -> None:
    """A dnspython whose constructor sets one more slot than `_built` / `_empty_rrset`
    fill must make the checks false (decode keeps dnspython's constructors), not raise
    AttributeError at import (the node would not start)."""
    from node.zones import decode, fastrdata

    class NewerNS(dns.rdtypes.ANY.NS.NS):  # what a newer NS would hold: a cache, say
        __slots__ = ("_cached",)

    target = name_from_text("ns.example.")
    newer = NewerNS(dns.rdataclass.IN, dns.rdatatype.NS, target)
    object.__setattr__(newer, "_cached", b"x")
    built = fastrdata._built(NewerNS, dns.rdatatype.NS, "target", target)
    assert fastrdata._same(built, newer) is False

    class NewerRRset(dns.rrset.RRset):
        __slots__ = ("_cached",)

    reference = NewerRRset(target, dns.rdataclass.IN, dns.rdatatype.A)
    reference._cached = 1
    empty = object.__new__(NewerRRset)
    for slot in ("items", "rdclass", "rdtype", "covers", "ttl", "name", "deleting"):
        setattr(empty, slot, getattr(reference, slot))
    assert decode._same_rrset(empty, reference) is False


def test_built_target_records_hash_as_dnspythons_after_a_relative_replace() -> None:
    """dnspython hashes a record by `to_digestable(root)`: a relative target is written
    with the root after it. A built NS/CNAME/MX given a relative target (`replace`) must
    hash as dnspython's equal record, else a set holds both."""
    relative = dns.name.from_text("Ns1", None)
    for rdtype, text, field in ((dns.rdatatype.NS, "a.example.", "target"),
                                (dns.rdatatype.CNAME, "a.example.", "target"),
                                (dns.rdatatype.PTR, "a.example.", "target"),
                                (dns.rdatatype.MX, "10 a.example.", "exchange")):
        for target in (relative, dns.name.empty):
            built = rdata_from_text(rdtype, text).replace(**{field: target})
            plain = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text).replace(
                **{field: target})
            assert built == plain and hash(built) == hash(plain) and len({built, plain}) == 1
