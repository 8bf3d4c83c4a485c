"""Stored RRset values and data keys into dnspython objects, fast for the common types.

Loading a zone turns every stored value (`{"ttl": T, "rdata": [text, ...]}`)
into a `dns.rrset.RRset`, and every data key's owner into a `dns.name.Name`.
dnspython's text readers (a tokenizer per record) cost about 75 µs per RRset
of the 100k-name benchmark zone: 9.6 s of a load. Here records are built by
`fastrdata.py` (the common types whole, hashed without dnspython's wire
writer) and plain names (letters, digits, `-`, `_`, `*`) from their labels,
giving objects equal to, and hashed as, those of `dns.rdata.from_text` and
`dns.name.from_text`; anything else (escapes, other types) goes through those
readers as before.
`build_nodes` reads one generation's data keys (the replica's load and reload);
`NodeDecoder` does the same in parts, as an import's keys arrive by the watch.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from contextlib import nullcontext
from types import MappingProxyType
from typing import TYPE_CHECKING

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from node.events import Event, emit
from node.gcwatch import kept_part
from node.store.keys import name_from_text, parse_name_component
from node.zones.fastrdata import IN, _same_slots, rdata_from_text
from node.zones.ownertypes import OwnerTypes, owner_types, with_type
from node.zones.records import RecordTuple

if TYPE_CHECKING:  # a type only: the parse's worker processes import no protobuf code
    from node.store.values import KeyValue

Name = dns.name.Name
_SIGS = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.SIG})
_PLAIN_SET = frozenset(dns.rdatatype.RdataType) - _SIGS - {
    t for t in dns.rdatatype.RdataType if dns.rdatatype.is_singleton(t)}


# the usual stored value: one record whose text needs no JSON escape (`rrset_to_json` writes
# `json.dumps` of it: ASCII, `"` and `\` and control characters escaped); read without a
# JSON decoder's per-call overhead (~1/8 of a decode), the same ttl and text as `json.loads`
_ONE = re.compile(rb'\{"ttl": (0|[1-9][0-9]{0,9}), "rdata": \["([^"\\\x00-\x1f\x7f-\xff]*)"\]\}')


# TTLs as shared ints (issue 10, memory): a zone uses a few TTL values, mostly above 256
# (not CPython's cached small ints), and each RRset held its own (28 octets, 3.4 MiB of a
# 100k-name zone); read from the stored digits with one dict probe, no int() parse
# (keyed by the stored digits, or by the int json.loads made: the two never compare equal)
_TTLS: dict[bytes | int, int] = {}
TTLS_MAX = 4096


def _ttl(stored: bytes | int) -> int:
    ttl = _TTLS.get(stored)
    if ttl is None:
        ttl = int(stored)
        if len(_TTLS) < TTLS_MAX:
            _TTLS[stored] = ttl
    return ttl


def _empty_rrset(owner: Name, rdtype: int, ttl: int, items: object) -> dns.rrset.RRset:
    """`RRset(owner, IN, rdtype)` after `update_ttl(ttl)`, without its three constructors
    and the TTL's check (a tenth of a zone decode; `_FAST_RRSET` says this dnspython
    builds the same), holding `items` (dnspython's: an empty dict)."""
    rrset = object.__new__(dns.rrset.RRset)
    rrset.items = items  # type: ignore[assignment]
    rrset.rdclass = IN
    rrset.rdtype = rdtype  # type: ignore[assignment]
    rrset.covers = _NONE
    rrset.ttl = ttl
    rrset.name = owner
    rrset.deleting = None
    return rrset


def _same_rrset(one: dns.rrset.RRset, other: dns.rrset.RRset) -> bool:
    slots = {s for c in type(other).__mro__ for s in c.__dict__.get("__slots__", ())}
    return type(one) is type(other) and not hasattr(other, "__dict__") and _same_slots(
        one, other, slots)


_NONE = dns.rdatatype.NONE
_REFERENCE_RRSET = dns.rrset.RRset(name_from_text("a.test."), IN, dns.rdatatype.A)
_REFERENCE_RRSET.update_ttl(300)
_FAST_RRSET = _same_rrset(_empty_rrset(name_from_text("a.test."), dns.rdatatype.A, 300, {}),
                          _REFERENCE_RRSET)


# equal records shared across RRsets (issue 10, memory: a zone's many names on one address,
# its MX and NS hosts), by text, per type; bounded: started again when full
RDATAS_MAX = 1 << 16
RECORD_TUPLE_MAX = 8  # records: a larger RRset keeps its dict
_SHARED = _PLAIN_SET - {dns.rdatatype.NSEC3}  # (NSEC, RRSIG: not in it) unique texts


def rrset_from_json(owner: Name, rdtype: int, data: bytes,
                    names: dict[str, Name] | None = None,
                    rdatas: dict[str, dns.rdata.Rdata] | None = None) -> dns.rrset.RRset:
    """The RRset a stored value holds (the format of `model.rrset_to_json`); its records
    and target names the equal ones `rdatas` and `names` hold (`NodeDecoder`'s)."""
    one = _ONE.fullmatch(data)
    if one is not None:
        ttl: int = _ttl(one[1])
        texts: list[str] = [one[2].decode()]
    else:
        obj = json.loads(data)
        ttl, texts = obj["ttl"], obj["rdata"]
        if type(ttl) is int:
            ttl = _ttl(ttl)
    if rdtype in _PLAIN_SET or (len(texts) == 1 and rdtype not in _SIGS):
        # what `add` does for these types, hashing each rdata once, not twice (its
        # `to_wire` is a third of a load)
        found: list[dns.rdata.Rdata] = []
        for text in texts:
            if rdatas is None:
                found.append(rdata_from_text(rdtype, text, names))
                continue
            rdata = rdatas.get(text)  # one object per equal record
            if rdata is None:
                if len(rdatas) >= RDATAS_MAX:
                    rdatas.clear()
                rdata = rdatas[text] = rdata_from_text(rdtype, text, names)
            found.append(rdata)
        # a tuple, not dnspython's dict (`records.py`), where the records are few: its `in`
        # compares records, the dict's hashes them; distinct records as `add` keeps them
        items = RecordTuple(found if len(found) < 2 else dict.fromkeys(found)) \
            if len(found) <= RECORD_TUPLE_MAX else dict.fromkeys(found)
        if _FAST_RRSET and type(ttl) is int and 0 <= ttl:
            return _empty_rrset(owner, rdtype, ttl, items)
        rrset = dns.rrset.RRset(owner, IN, rdtype)
        rrset.update_ttl(ttl)
        rrset.items = items  # type: ignore[assignment]
        return rrset
    rrset = dns.rrset.RRset(owner, IN, rdtype)
    for text in texts:
        rrset.add(rdata_from_text(rdtype, text, names), ttl)
    if not texts:
        rrset.update_ttl(ttl)
    return rrset


def build_nodes(prefix: bytes, kvs: Sequence[KeyValue]
                ) -> dict[Name, MappingProxyType[int, dns.rrset.RRset]]:
    """The owners' RRsets from the data keys under `prefix` (one generation of a zone);
    a key or value that does not read is reported (ZONE_LOAD_FAILED) and left out."""
    decoder = NodeDecoder(prefix)
    decoder.add(kvs)
    return decoder.nodes()


KEPT_PART = 256  # keys: a part at least this large is frozen (`kept_part`)


class NodeDecoder:
    """`build_nodes` in parts: `add` data keys of one generation as they come (in any
    order; a key added again replaces its RRset), then `nodes()` once. Not thread-safe:
    one caller at a time."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        # each owner's types by owner text (a Name hashes slowly), small (`ownertypes`)
        self._raw: dict[str, OwnerTypes] = {}
        # owners by key text, and target names by text (`fastrdata._target`: one object each)
        self._owners: dict[str, Name] = {}
        self._rdatas: dict[int, dict[str, dns.rdata.Rdata] | None] = {}  # by type (None: unshared)
        self._types: dict[str, int] = {}
        # what `nodes` returns, made as the owners come (at the flip the zone waits for
        # `nodes`: 100k views made then were a tenth of a zone's decode); None once an
        # owner came in two spellings (a hand-written key): then made by `nodes`
        self._out: dict[Name, MappingProxyType[int, dns.rrset.RRset]] | None = {}
        self.count = 0  # keys added
        self.cpu = 0.0  # CPU seconds of the threads that added them

    def add(self, kvs: Sequence[KeyValue]) -> None:
        started = time.thread_time()
        # a zone-sized part's objects frozen as made (`kept_part`: its collections were ~40% of
        # a decode); a few keys' are left to the collector
        with kept_part() if len(kvs) >= KEPT_PART else nullcontext():
            self._add(kvs)
        self.count += len(kvs)
        self.cpu += time.thread_time() - started

    def _add(self, kvs: Sequence[KeyValue]) -> None:
        raw, owners, types, rdatas = self._raw, self._owners, self._types, self._rdatas
        start = len(self.prefix)
        for kv in kvs:
            try:
                owner_text, _, type_text = kv.key[start:].decode().rpartition("/")
                owner = owners.get(owner_text)
                if owner is None:  # (a key's `%` escapes `/` and `%`: `parse_name_component`)
                    owner = owners[owner_text] = name_from_text(owner_text) \
                        if "%" not in owner_text else parse_name_component(owner_text)
                rdtype = types.get(type_text)
                if rdtype is None:
                    rdtype = types[type_text] = dns.rdatatype.from_text(type_text)
                    rdatas[rdtype] = {} if rdtype in _SHARED else None
                rrset = rrset_from_json(owner, rdtype, kv.value, owners, rdatas[rdtype])
                held = raw.get(owner_text)
                by_type = raw[owner_text] = with_type(held, rdtype, rrset)
                if by_type is held or self._out is None:  # a dict changed under its view
                    continue
                proxy = MappingProxyType(by_type)
                if held is not None:  # one spelling: the owner's view replaced
                    self._out[owner] = proxy
                elif self._out.setdefault(owner, proxy) is not proxy:
                    self._out = None
            except Exception as exc:  # a bad value must not stop the node
                emit(Event.ZONE_LOAD_FAILED, level=logging.ERROR, key=kv.key, error=str(exc))

    def nodes(self) -> dict[Name, MappingProxyType[int, dns.rrset.RRset]]:
        """The owners' RRsets (a view of each owner's types, in the order they came)."""
        if self._out is not None:
            return self._out
        out: dict[Name, MappingProxyType[int, dns.rrset.RRset]] = {}
        owners = self._owners
        for text, by_type in self._raw.items():
            owner = owners[text]
            proxy = MappingProxyType(by_type)
            types = out.setdefault(owner, proxy)
            if types is not proxy:  # two spellings of one name (a hand-written key)
                out[owner] = owner_types({**types, **by_type})
        return out
