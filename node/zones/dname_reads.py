"""The reads the DNAME rules (RFC 6672 §2.4, `rules.check_dname_place`) need of etcd.

`dname_place`: a `record add` at an owner reads the DNAME keys of the owner's
ancestors (one read txn of point reads); adding a DNAME also scans the zone's keys
(keys only, in pages) for a name below its owner. The caller's write is fenced on
the zone head read before, so what these reads saw holds when it lands.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset

from node.store.client import EtcdClient
from node.store.keys import KeyLayout, parse_name_component
from node.store.txn import Op, prefix_range_end
from node.zones.model import ZoneHead
from node.zones.rules import check_dname_place

Name = dns.name.Name
PAGE = 1000


def ancestors(zone: Name, owner: Name) -> list[Name]:
    """The names strictly above `owner`, up to and with the apex, highest first."""
    out = []
    n = owner
    while n != zone and len(n) > 1:
        n = n.parent()
        out.append(n)
    return out[::-1]


async def name_below(etcd: EtcdClient, keys: KeyLayout, zone: Name, generation: int,
                     owner: Name) -> Name | None:
    """Some name of the zone strictly below `owner`, or None."""
    prefix = keys.data_prefix(zone, generation).encode()
    start, end = prefix, prefix_range_end(prefix)
    while True:
        res = await etcd.range(start, end, limit=PAGE, keys_only=True)
        for kv in res.kvs:
            name = parse_name_component(kv.key[len(prefix):].decode().split("/", 1)[0])
            if name != owner and name.is_subdomain(owner):
                return name
        if not res.more or not res.kvs:
            return None
        start = res.kvs[-1].key + b"\x00"


async def dname_place(etcd: EtcdClient, keys: KeyLayout, zone: Name, generation: int,
                      owner: Name, rdtype: int) -> tuple[Name | None, Name | None]:
    """(the owner of a DNAME above `owner` or None, a name below `owner` or None: asked
    only when `rdtype` is DNAME), for `rules.check_dname_place`."""
    above = ancestors(zone, owner)
    read = await etcd.txn(when=[], then=[
        Op.get(keys.rrset_key(zone, generation, a, dns.rdatatype.DNAME)) for a in above])
    dname = next((a for a, r in zip(above, read.responses, strict=True)
                  if r.kvs), None)  # type: ignore[union-attr]
    below = None
    if rdtype == dns.rdatatype.DNAME:
        below = await name_below(etcd, keys, zone, generation, owner)
    return dname, below


class DnamePlace:
    """What `rules.check_dname_place` needs for one change, read again on every retry of
    `ZoneRepository._mutate` (its `before`), checked in its `build`."""

    def __init__(self, etcd: EtcdClient, keys: KeyLayout, zone: Name, owner: Name,
                 rdtype: int) -> None:
        self.etcd, self.keys, self.zone, self.owner, self.rdtype = etcd, keys, zone, owner, rdtype
        self.above: Name | None = None
        self.below: Name | None = None

    async def read(self, head: ZoneHead) -> None:
        self.above, self.below = await dname_place(self.etcd, self.keys, self.zone,
                                                   head.generation, self.owner, self.rdtype)

    def check(self, new: dns.rrset.RRset | None) -> None:
        """ValidationError if `new` (None: a delete, always allowed) breaks a DNAME rule."""
        if new is not None:
            check_dname_place(self.owner, self.rdtype, self.above, self.below)
