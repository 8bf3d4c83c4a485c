"""BIND's `checkds` for a KSK roll whose parent is outside the cluster (issue #11 part 3).

A KSK (or CSK) roll waits, once the new key is ready, until its DS is at the
parent (`node.keymaster.parent_ds.awaited`). When the zone's settings name
parental agents (`zone sign --parental-agent HOST:PORT[/KEY]`), the Key Master
asks each of them for the zone's DS RRset over TCP, signed with the transfer
key KEY when one is named (the same keys NOTIFY is signed with); without
agents, and with no parent zone in the cluster, it asks the parent zone's
authoritative servers, found through the system resolver. The DS is seen when
EVERY server asked answers with a DS RRset holding a DS of the new key (its
digest recomputed from the key: `parent_ds.names_key`); a server that does not
answer, answers with an error or closes the connection fails the round. As
BIND, the answers are not validated. Then `ds_seen` is recorded with the write
`zone ds-seen` makes, fenced and guarded on the key record (event 1690).

A round runs as a task of its own, every `signing.checkds_interval` seconds per
zone while the roll waits, with short timeouts: it never holds up the Key
Master's other duties.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.tsig

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.keys import DnssecKey
from node.errors import FencedOut, NodeError
from node.events import Event, emit
from node.keymaster.duties import Fence
from node.keymaster.parent_ds import names_key
from node.server.outbound import transfer_source
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecState
from node.zones.repository import ZoneRepository
from node.zones.transfers import NotifyTarget
from node.zones.transfers import parse_parental_agent as parse_agent

log = logging.getLogger(__name__)
Name = dns.name.Name
T = dns.rdatatype
Keyring = Callable[[Name], dns.tsig.Key | None]
Answer = list[dns.rdata.Rdata] | None  # the DS RRset a server gave (None: no usable answer)


def all_hold(zone: Name, key: DnssecKey, answers: Sequence[Answer]) -> bool:
    """The decision: at least one server was asked and every one holds a DS of `key`."""
    return bool(answers) and all(a is not None and names_key(a, zone, key) for a in answers)


async def query_ds(zone: Name, host: str, port: int, key: dns.tsig.Key | None,
                   timeout: float) -> Answer:
    """The DS RRset of `zone` as one server gives it over TCP ([] if it has none)."""
    q = dns.message.make_query(zone, T.DS)
    q.flags &= ~dns.flags.RD
    if key is not None:
        q.use_tsig(key)
    try:
        r = await dns.asyncquery.tcp(q, host, port=port, timeout=timeout,
                                     source=transfer_source(host))
    except (dns.exception.DNSException, OSError, EOFError) as exc:  # EOF: closed on us
        log.info("checkds of %s at %s:%s: %r", zone, host, port, exc)
        return None
    if key is not None and not r.had_tsig:  # a signed query wants a signed answer
        log.info("checkds of %s at %s:%s: the answer is not TSIG-signed", zone, host, port)
        return None
    if r.rcode() != dns.rcode.NOERROR:
        log.info("checkds of %s at %s:%s: %s", zone, host, port, dns.rcode.to_text(r.rcode()))
        return None
    return [rd for rrset in r.answer if rrset.name == zone and rrset.rdtype == T.DS
            for rd in rrset]


async def parent_servers(zone: Name, port: int = 53, timeout: float = 5.0
                         ) -> list[NotifyTarget]:
    """The authoritative servers of the zone's parent, by the system resolver: the closest
    enclosing name with an NS RRset, and the addresses of its NS names."""
    try:
        resolver = dns.asyncresolver.Resolver()  # reads /etc/resolv.conf
    except dns.exception.DNSException as exc:
        log.info("checkds of %s: no system resolver: %r", zone, exc)
        return []
    resolver.lifetime = timeout
    name = zone
    while name != dns.name.root:
        name = name.parent()
        try:
            ns = await resolver.resolve(name, T.NS)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            log.info("checkds of %s: the parent's NS at %s: %r", zone, name, exc)
            return []
        out: list[NotifyTarget] = []
        for rd in ns:
            for rdtype in (T.A, T.AAAA):
                try:
                    addrs = await resolver.resolve(rd.target, rdtype)  # type: ignore[attr-defined]
                except dns.exception.DNSException:
                    continue
                out += [NotifyTarget(a.address, port) for a in addrs  # type: ignore[attr-defined]
                        if NotifyTarget(a.address, port) not in out]  # type: ignore[attr-defined]
        return out
    return []


@dataclass(slots=True)
class CheckDs:
    """Per zone this node holds: when the next round is due, and the round under way."""

    repository: ZoneRepository
    layout: KeyLayout
    interval: float = 60.0
    keyring: Keyring | None = None
    timeout: float = 3.0
    parent_port: int = 53  # the parent's servers (no agents): test-only other value
    clock: Clock = SYSTEM_CLOCK
    _next: dict[Name, float] = field(default_factory=dict)
    _tasks: dict[Name, asyncio.Task[None]] = field(default_factory=dict)
    _said: dict[Name, str] = field(default_factory=dict)

    def due(self, zone: Name) -> bool:
        running = self._tasks.get(zone)
        return (self.interval > 0 and self.clock.time() >= self._next.get(zone, 0.0)
                and (running is None or running.done()))

    def tasks(self) -> list[asyncio.Task[None]]:
        """The rounds under way."""
        return [t for t in self._tasks.values() if not t.done()]

    def start(self, zone: Name, state: DnssecState, key: DnssecKey, fence: Fence,
              in_cluster_parent: bool) -> bool:
        """Start a round for the DS of `key` if one is due; True if started."""
        if not self.due(zone) or (not state.config.parental_agents and in_cluster_parent):
            return False  # a parent in the cluster is read from etcd (parent_ds)
        self._next[zone] = self.clock.time() + self.interval
        self._tasks[zone] = asyncio.create_task(self._run(zone, state, key, fence))
        return True

    async def check(self, zone: Name, key: DnssecKey, agents: Sequence[str]
                    ) -> tuple[bool, list[str], list[str]]:
        """(seen, servers asked, servers that lack the DS or failed) for one round."""
        targets = ([parse_agent(a) for a in agents] if agents
                   else await parent_servers(zone, self.parent_port, self.timeout))
        answers: list[Answer] = []
        for t in targets:
            tsig = None
            if t.key is not None:
                tsig = self.keyring(t.key) if self.keyring is not None else None
                if tsig is None:
                    emit(Event.XFR_KEY_MISSING, level=logging.ERROR, zone=zone, key=t.key,
                         target=t.text(), reason="no such transfer key: checkds not sent")
                    answers.append(None)
                    continue
            answers.append(await query_ds(zone, t.host, t.port, tsig, self.timeout))
        lacking = [t.text() for t, a in zip(targets, answers, strict=True)
                   if a is None or not names_key(a, zone, key)]
        return all_hold(zone, key, answers), [t.text() for t in targets], lacking

    async def _run(self, zone: Name, state: DnssecState, key: DnssecKey, fence: Fence) -> None:
        try:
            seen, asked, lacking = await self.check(zone, key, state.config.parental_agents)
            if not seen:
                what = ",".join(lacking) or "no parent servers found"
                if self._said.get(zone) != what:
                    self._said[zone] = what
                    emit(Event.CHECKDS_NOT_SEEN, zone=zone, key=f"{key.role}:{key.tag}",
                         key_id=key.key_id, asked=asked, lacking=lacking)
                return
            self._said.pop(zone, None)
            await self._record(zone, state, key, fence, asked)
        except FencedOut as exc:  # the role moved on: the next holder checks
            log.info("checkds of %s stopped: %s", zone, exc)
        except NodeError as exc:
            log.warning("checkds of %s: %s", zone, exc)
        except Exception:
            emit(Event.TASK_CRASHED, level=logging.ERROR, task="checkds", zone=zone)
            log.exception("checkds of %s failed", zone)

    async def _record(self, zone: Name, state: DnssecState, key: DnssecKey, fence: Fence,
                      asked: list[str]) -> None:
        """`ds_seen`, as `zone ds-seen` writes it: fenced, guarded on the key record."""
        new = replace(key, ds_seen=self.clock.time())
        guard = Compare.mod_revision(self.layout.key_key(zone, key.key_id)) == \
            state.key_revision(key.key_id)
        serial = await fence.bump(self.repository, self.layout,
                                  [Op.put(self.layout.key_key(zone, key.key_id), new.to_json())],
                                  "ds-seen-by-checkds", extra=(guard,))
        if serial:
            emit(Event.DS_SEEN_BY_CHECKDS, zone=zone, serial=serial,
                 key=f"{key.role}:{key.tag}", key_id=key.key_id, agents=asked)
