"""The parent side of RFC 7344: a parent zone's Key Master polls its children's CDS/CDNSKEY
and keeps their DS RRsets current (issue #11 part 7).

Every `signing.cds_poll_interval` seconds the Key Master of a zone lists the
zone's delegations and asks each child's servers for its DNSKEY, CDS and
CDNSKEY RRsets with their RRSIGs, over TCP: a child zone that is in the
cluster is asked at the live nodes' DNS addresses, any other at the addresses
of its delegation (the NS names' glue in this zone, port 53). What it answered
is judged by `node.dnssec.cds_accept.accept` against the DS now stored at the
cut; a change is one fenced write of the DS RRset (serial + 1, so every
writable node re-signs the parent at one serial), guarded on the DS record's
mod revision and on the zone's generation, so a change made meanwhile by an
operator or an import is never overwritten. Nothing here trusts an answer
that the current DS does not validate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.cds_accept import Seen, Verdict, accept
from node.events import Event, emit
from node.keymaster.duties import Fence
from node.nodes.membership import NodeInfo
from node.server.outbound import transfer_source
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.model import ZoneHead, ZoneSnapshot, parse_primary, rrset_from_json, rrset_to_json
from node.zones.repository import ZoneRepository

log = logging.getLogger(__name__)
Name = dns.name.Name
T = dns.rdatatype
Address = tuple[str, int]


def pollable(snap: ZoneSnapshot, child: Name, in_cluster: bool) -> bool:
    """Whether a child is polled: one in the cluster always; one outside only when the
    parent holds a DS for it (RFC 7344 accepts a CDS only under a DS it can check, so
    polling an unsigned delegation's servers would only send them traffic)."""
    return in_cluster or snap.get(child, T.DS) is not None


def delegations(snap: ZoneSnapshot) -> list[Name]:
    """The zone's cuts: owners below the apex with NS, not themselves below another cut.

    One pass over the owners and a walk up each NS owner's ancestors: linear in
    the zone (it runs on the control event loop; comparing every cut with every
    other held the loop for seconds on a zone of thousands of delegations)."""
    origin = snap.origin
    with_ns = {o for o, types in snap.nodes.items() if o != origin and T.NS in types}
    out: list[Name] = []
    for owner in with_ns:
        parent = owner.parent()
        while parent != origin and parent not in with_ns:
            parent = parent.parent()
        if parent == origin:
            out.append(owner)
    return sorted(out)


def glue_addresses(snap: ZoneSnapshot, child: Name, port: int = 53) -> list[Address]:
    """The delegation's addresses: A/AAAA of its NS names held in this zone (glue)."""
    ns = snap.get(child, T.NS)
    out: list[Address] = []
    for rd in ns or ():
        target = rd.target  # type: ignore[attr-defined]
        for rdtype in (T.A, T.AAAA):
            for a in snap.get(target, rdtype) or ():
                if (a.address, port) not in out:  # type: ignore[attr-defined]
                    out.append((a.address, port))  # type: ignore[attr-defined]
    return out


def node_addresses(nodes: Sequence[NodeInfo]) -> list[Address]:
    """The DNS addresses of the live nodes (a child zone served by the cluster)."""
    out: list[Address] = []
    for n in nodes:
        if n.alive:
            out += [parse_primary(a) for a in n.dns_addresses]
    return out


def seen_from(child: Name, answers: dict[int, dns.message.Message]) -> Seen:
    """The RRsets and their RRSIGs at the child's apex from three answers."""
    def pick(msg: dns.message.Message, rdtype: int, covers: int = 0) -> dns.rrset.RRset | None:
        for rrset in msg.answer:
            if rrset.name == child and rrset.rdtype == rdtype and rrset.covers == covers:
                return rrset
        return None

    got: dict[str, dns.rrset.RRset | None] = {}
    for rdtype, name in ((T.DNSKEY, "dnskey"), (T.CDS, "cds"), (T.CDNSKEY, "cdnskey")):
        got[name] = pick(answers[rdtype], rdtype)
        got[f"{name}_sigs"] = pick(answers[rdtype], T.RRSIG, rdtype)
    return Seen(**got)


async def fetch(child: Name, addresses: Sequence[Address], timeout: float) -> Seen | None:
    """The child's apex answers from the first address that gives all three authoritatively."""
    for host, port in addresses:
        answers: dict[int, dns.message.Message] = {}
        try:
            for rdtype in (T.DNSKEY, T.CDS, T.CDNSKEY):
                q = dns.message.make_query(child, rdtype, want_dnssec=True)
                q.flags &= ~dns.flags.RD
                r = await dns.asyncquery.tcp(q, host, port=port, timeout=timeout,
                                             source=transfer_source(host))
                if r.rcode() != dns.rcode.NOERROR or not r.flags & dns.flags.AA:
                    raise dns.exception.DNSException(f"{dns.rcode.to_text(r.rcode())}, "
                                                     f"AA={bool(r.flags & dns.flags.AA)}")
                answers[rdtype] = r
        except (dns.exception.DNSException, OSError, EOFError) as exc:  # EOF: closed on us
            log.info("CDS poll of %s at %s:%s: %r", child, host, port, exc)
            continue
        return seen_from(child, answers)
    return None


@dataclass(slots=True)
class CdsPoller:
    """Per parent zone this node holds: when it polls next, and what it said last per child."""

    etcd: EtcdClient
    layout: KeyLayout
    repository: ZoneRepository
    interval: float
    timeout: float = 2.0
    clock: Clock = SYSTEM_CLOCK
    glue_port: int = 53  # test-only: where the children outside the cluster listen
    _next: dict[Name, float] = field(default_factory=dict)
    _said: dict[Name, str] = field(default_factory=dict)

    def due(self, zone: Name) -> bool:
        return self.interval > 0 and self.clock.time() >= self._next.get(zone, 0.0)

    def forget(self, zone: Name) -> None:
        self._next.pop(zone, None)

    async def poll(self, zone: Name, snap: ZoneSnapshot, fence: Fence,
                   nodes: Sequence[NodeInfo]) -> int:
        """Poll every child of `zone` once; the number of DS RRsets changed."""
        self._next[zone] = self.clock.time() + self.interval
        changed = 0
        for child in await asyncio.to_thread(delegations, snap):  # zone-sized: off the loop
            in_cluster = await self.etcd.get(self.layout.head_key(child)) is not None
            if not pollable(snap, child, in_cluster):
                continue
            addresses = (node_addresses(nodes) if in_cluster
                         else glue_addresses(snap, child, self.glue_port))
            seen = await fetch(child, addresses, self.timeout)
            if seen is None:
                self._say(child, "unreachable", Event.CDS_POLL_FAILED, parent=zone,
                          addresses=[f"{h}:{p}" for h, p in addresses])
                continue
            changed += await self._judge(zone, child, seen, fence, in_cluster)
        return changed

    async def _judge(self, zone: Name, child: Name, seen: Seen, fence: Fence,
                     in_cluster: bool) -> int:
        head_kv = await self.etcd.get(self.layout.head_key(zone))
        if head_kv is None:
            return 0
        head = ZoneHead.from_json(head_kv.value)
        key = self.layout.rrset_key(zone, head.generation, child, T.DS)
        kv = await self.etcd.get(key)
        current = rrset_from_json(child, T.DS, kv.value) if kv is not None else None
        verdict = accept(child, list(current or ()), seen, self.clock.time(), chain=in_cluster)
        if verdict.action == "refuse":
            self._say(child, verdict.reason, Event.CDS_REFUSED, parent=zone,
                      reason=verdict.reason)
            return 0
        if verdict.action == "none":
            self._said.pop(child, None)
            return 0
        guards = (Compare.mod_revision(key) == kv.mod_revision if kv is not None
                  else Compare.version(key) == 0,
                  Compare.mod_revision(self.layout.gen_key(zone)) < head.generation + 1)
        ttl = current.ttl if current is not None else _cut_ttl(seen, verdict)
        if verdict.action == "delete":
            op = Op.delete(key)
        else:
            op = Op.put(key, rrset_to_json(dns.rrset.from_rdata_list(child, ttl, verdict.ds)))
        serial = await fence.bump(self.repository, self.layout, [op], "cds-ds-update",
                                  extra=guards)
        if not serial:
            return 0
        self._said.pop(child, None)
        emit(Event.CDS_ACCEPTED, zone=zone, serial=serial, child=child, action=verdict.action,
             old=[rd.to_text() for rd in current or ()],
             new=[rd.to_text() for rd in verdict.ds])
        return 1

    def _say(self, child: Name, what: str, event: Event, **fields: object) -> None:
        if self._said.get(child) != what:
            self._said[child] = what
            emit(event, level=logging.WARNING, child=child, **fields)


def _cut_ttl(seen: Seen, verdict: Verdict) -> int:
    """The TTL of a first DS RRset: the child's DNSKEY TTL (a DS set is never first here:
    an insecure delegation is not bootstrapped; kept for the delete-then-add case)."""
    del verdict
    return seen.dnskey.ttl if seen.dnskey is not None else 3600
