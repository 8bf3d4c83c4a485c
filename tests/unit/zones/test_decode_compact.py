"""A decoded zone holds no dict per RRset, and none per one- or two-type owner (issue 10,
memory; records.py, ownertypes.py).

dnspython keeps an RRset's records in a dict (224 octets) and the replica kept each
owner's types in another: half of a decoded zone's bytes. A decode now gives an RRset
a `RecordTuple` and an owner of one or two types a `OneType` / `TwoTypes` behind the
same `MappingProxyType`; both read as the dicts they replace, for every reader. These
fail on main (dicts there).
"""

from __future__ import annotations

import copy
import io
import itertools
import pickle
import sys
from types import MappingProxyType

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.store.values import KeyValue
from node.zones.decode import NodeDecoder, rrset_from_json
from node.zones.ownertypes import OneType, TwoTypes, owner_types, with_type
from node.zones.records import RecordTuple

PREFIX = b"/p/zones/z.test./data/1/"
T = dns.rdatatype
OWNER = dns.name.from_text("a.z.test.")


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(PREFIX + key.encode(), value.encode(), 1, 1, 1, 0)


def _a(*addresses: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(OWNER, 300, "IN", "A", *addresses)


def _wire(rrset: dns.rrset.RRset) -> bytes:
    out = io.BytesIO()
    rrset.to_wire(out, want_shuffle=False)  # dnspython shuffles the records by default
    return out.getvalue()


def test_a_decoded_zone_holds_no_dict_per_rrset_or_per_small_owner() -> None:
    decoder = NodeDecoder(PREFIX)
    decoder.add([
        _kv("a.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.1"]}'),
        _kv("b.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.1", "192.0.2.2"]}'),
        _kv("b.z.test./AAAA", '{"ttl": 300, "rdata": ["2001:db8::1"]}'),
        _kv("c.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.3"]}'),
        _kv("c.z.test./TXT", '{"ttl": 300, "rdata": ["\\"x\\""]}'),
        _kv("c.z.test./MX", '{"ttl": 300, "rdata": ["10 a.z.test."]}'),
    ])
    nodes = decoder.nodes()
    one, two, three = (nodes[dns.name.from_text(f"{n}.z.test.")] for n in "abc")
    assert type(one) is MappingProxyType and type(two) is MappingProxyType
    for types in (one, two, three):
        for rrset in types.values():
            assert type(rrset.items) is RecordTuple
    sizes = [sys.getsizeof(rrset.items) for types in (one, two) for rrset in types.values()]
    assert max(sizes) <= 64, sizes  # a dict: 224
    assert list(three) == [T.A, T.TXT, T.MX]  # in the order the keys came


def test_an_owners_later_types_replace_its_map_in_order() -> None:
    decoder = NodeDecoder(PREFIX)
    decoder.add([_kv("a.z.test./A", '{"ttl": 300, "rdata": ["192.0.2.1"]}')])
    first = decoder.nodes()[OWNER]
    decoder.add([_kv("a.z.test./AAAA", '{"ttl": 300, "rdata": ["2001:db8::1"]}'),
                 _kv("a.z.test./A", '{"ttl": 60, "rdata": ["192.0.2.9"]}')])
    types = decoder.nodes()[OWNER]
    assert list(first) == [T.A] and first[T.A].ttl == 300  # a published map never changes
    assert list(types) == [T.A, T.AAAA] and types[T.A].ttl == 60
    assert [rd.to_text() for rd in types[T.A]] == ["192.0.2.9"]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_small_owner_map_reads_as_the_dict_it_replaces(count: int) -> None:
    rrsets = [_a("192.0.2.1"), dns.rrset.from_text(OWNER, 300, "IN", "AAAA", "2001:db8::1"),
              dns.rrset.from_text(OWNER, 300, "IN", "TXT", '"t"')][:count]
    want = {rs.rdtype: rs for rs in rrsets}
    got = owner_types(want)
    assert type(got) is MappingProxyType
    assert got == want and want == got and dict(got) == want and len(got) == count
    assert list(got) == list(want) and list(got.keys()) == list(want)
    assert list(got.values()) == list(want.values()) and list(got.items()) == list(want.items())
    assert got.keys() - {T.A} == want.keys() - {T.A}
    for rdtype in (T.A, T.AAAA, T.TXT, T.MX):
        assert (rdtype in got) == (rdtype in want)
        assert got.get(rdtype) is want.get(rdtype)
        assert got.get(rdtype, "none") is want.get(rdtype, "none")
        if rdtype in want:
            assert got[rdtype] is want[rdtype]
        else:
            with pytest.raises(KeyError):
                got[rdtype]


def test_with_type_grows_a_one_type_map_to_two_then_a_dict() -> None:
    a, aaaa = _a("192.0.2.1"), dns.rrset.from_text(OWNER, 300, "IN", "AAAA", "2001:db8::1")
    txt = dns.rrset.from_text(OWNER, 300, "IN", "TXT", '"t"')
    one = with_type(None, T.A, a)
    assert type(one) is OneType and type(with_type(one, T.A, _a("192.0.2.2"))) is OneType
    two = with_type(one, T.AAAA, aaaa)
    assert type(two) is TwoTypes and list(two.items()) == [(T.A, a), (T.AAAA, aaaa)]
    three = with_type(two, T.TXT, txt)
    assert type(three) is dict and list(three) == [T.A, T.AAAA, T.TXT]
    assert with_type(three, T.A, a) is three


def test_a_record_tuple_reads_as_dnspythons_dict() -> None:
    got = rrset_from_json(OWNER, T.A, b'{"ttl": 300, "rdata": ["192.0.2.1", "192.0.2.2"]}')
    want = _a("192.0.2.1", "192.0.2.2")
    assert type(got.items) is RecordTuple and type(want.items) is dict
    assert got == want and want == got and not got != want
    assert got == _a("192.0.2.2", "192.0.2.1")  # order ignored, as the dict's
    assert got != _a("192.0.2.1") and _a("192.0.2.1") != got
    assert len(got) == 2 and list(got) == list(want) and got[1] == want[1]
    assert got[-1] == want[-1] and got[0:2] == want[0:2]
    assert list(itertools.islice(got, 1, None)) == [want[1]]
    rd = dns.rdata.from_text(dns.rdataclass.IN, T.A, "192.0.2.2")
    assert rd in got and dns.rdata.from_text(dns.rdataclass.IN, T.A, "192.0.2.9") not in got
    assert got.to_text() == want.to_text()
    assert _wire(got) == _wire(want)
    assert got.to_rdataset() == want.to_rdataset() and got.issubset(want)
    assert rrset_from_json(OWNER, T.A, b'{"ttl": 300, "rdata": ["192.0.2.1", "192.0.2.1"]}'
                           ).items == RecordTuple(want.items)[:1]  # one of equal records


def test_a_copy_of_a_decoded_rrset_may_change_the_rrset_itself_may_not() -> None:
    got = rrset_from_json(OWNER, T.A, b'{"ttl": 300, "rdata": ["192.0.2.1"]}')
    for made in (got.copy(), copy.copy(got)):
        assert type(made.items) is dict and made == got
        made.add(dns.rdata.from_text(dns.rdataclass.IN, T.A, "192.0.2.2"))
        assert len(made) == 2 and len(got) == 1
    for same in (pickle.loads(pickle.dumps(got)), copy.deepcopy(got)):
        assert type(same.items) is RecordTuple and same == got
    with pytest.raises(TypeError):
        got.add(dns.rdata.from_text(dns.rdataclass.IN, T.A, "192.0.2.2"))
    with pytest.raises(AttributeError):
        got.clear()
    assert len(got) == 1
