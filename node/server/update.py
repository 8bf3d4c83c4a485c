"""RFC 2136 UPDATE at the DNS port: TSIG, who may update, one etcd txn; NOTIFY in.

A writable node answers an UPDATE itself: it reads the TSIG key from etcd
(`zones/tsig.py`; BADKEY / BADSIG / BADTIME answered NOTAUTH with the TSIG
error), parses the message (`zones/update.py`), and hands the repository a
pure plan that decides from what the transaction read: the zone's
`dynamic_update`, `allow_update` and `update_policy` (`zones/update_policy.py`),
the DNSSEC-type refusal, the prerequisites, the update section and the
policy's record limits. NOERROR means the transaction committed. Every
refusal is an event naming the zone, key, client and rule.

A read-only node never applies an UPDATE: it relays the message as
received (TSIG intact) over TCP to a live writable node and relays the
answer (RFC 2136 §6); the writable node then sees the read-only node's
address.

The work runs in a task per message (`hook` returns it; the listener
sends the answer when it completes), so the event loop only ever waits
on etcd, never on a lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import NotFound, ValidationError
from node.events import Event, emit
from node.nodes.membership import NodeDirectory
from node.server import tsigwire
from node.server.outbound import transfer_source
from node.server.render import error_response
from node.server.table import ZoneTable
from node.server.wire import Query, reply_opt
from node.zones.repository import ZoneRepository
from node.zones.rules import UNSUPPORTED_TYPES
from node.zones.tsig import TsigKeyStore
from node.zones.update import (
    UpdateError,
    UpdateRequest,
    apply,
    evaluate,
    parse_update,
    refused_types,
)
from node.zones.update_policy import authorize, over_limit
from node.zones.update_txn import MAX_TXN_OPS, UpdateRead, Writes

log = logging.getLogger(__name__)

Name = dns.name.Name
FORWARD_TIMEOUT = 5.0
DIRECTORY_TTL = 5.0
MAX_PENDING = 2000  # UPDATEs in progress on this node; more are refused at once


class _Refusal(Exception):
    def __init__(self, rule: str, reason: str, event: Event = Event.UPDATE_REFUSED) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.event = event


class FileRoutes(Protocol):
    """Where an UPDATE of a file-backed zone goes: the zone here (the owner: something with
    `update_rrsets`), the owning node's id (forward to its addresses), or None."""

    def route(self, zone: Name) -> object | None: ...

    async def owner_addresses(self, owner: str) -> list[str]: ...


class UpdateService:
    """Answers UPDATE (writable) or forwards it (read-only)."""

    def __init__(
        self,
        *,
        repository: ZoneRepository | None,
        keys: TsigKeyStore,
        writable_addresses: Callable[[], Awaitable[list[str]]],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._repo = repository
        self._keys = keys
        self._writable_addresses = writable_addresses
        self._clock = clock
        self._tasks: set[asyncio.Task[bytes | None]] = set()
        self.counts: dict[str, int] = {}  # result -> UPDATEs (dnscluster_dns_updates_total)
        self.file_zones: FileRoutes | None = None  # file-backed zones: their owner applies

    def _count(self, result: str) -> None:
        self.counts[result] = self.counts.get(result, 0) + 1

    def hook(self, wire: bytes, query: Query, addr: tuple[str, int], transport: str
             ) -> asyncio.Task[bytes | None] | bytes:
        """The `Responder` hook for OPCODE UPDATE: a task whose result is the answer
        (REFUSED at once while MAX_PENDING UPDATEs are already in progress here)."""
        if len(self._tasks) >= MAX_PENDING:
            log.warning("%d UPDATEs in progress: refusing one from %s", len(self._tasks),
                        addr[0])
            self._count("refused")
            return error_response(query.id, query.flags, dns.rcode.REFUSED, query.question,
                                  reply_opt(query))
        task = asyncio.get_running_loop().create_task(self.handle(wire, query, addr[0]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def handle(self, wire: bytes, query: Query, client: str) -> bytes | None:
        try:
            route = self._file_route(query)
            if route is not None:  # a file-backed zone: its owner applies it
                if isinstance(route, str):
                    targets = await self.file_zones.owner_addresses(route)  # type: ignore[union-attr]
                    emit(Event.FILE_ZONE_FORWARDED, client=client, to=route, how="UPDATE")
                    return await self._forward(wire, query, client, targets)
                return await self._answer(route, wire, query, client)  # type: ignore[arg-type]
            if self._repo is None:
                return await self._forward(wire, query, client)
            return await self._answer(self._repo, wire, query, client)
        except Exception as exc:
            self._failed(client, exc)
            return error_response(query.id, query.flags, dns.rcode.SERVFAIL, query.question,
                                  reply_opt(query))

    def _failed(self, client: str, exc: Exception) -> None:
        log.exception("UPDATE from %s failed", client)
        self._count("failed")
        emit(Event.UPDATE_FAILED, logging.ERROR, client=client, error=repr(exc))

    async def _answer(self, repo: ZoneRepository, wire: bytes, query: Query, client: str
                      ) -> bytes:
        try:
            msg, key_name = tsigwire.peek(wire)
        except dns.exception.DNSException:
            self._count("formerr")
            return error_response(query.id, query.flags, dns.rcode.FORMERR, query.question,
                                  reply_opt(query))
        key: dns.tsig.Key | None = None
        zone_text = msg.question[0].name.to_text() if msg.question else "?"
        if key_name is not None:
            found = await self._keys.lookup(key_name, "update")
            if found is None:
                return self._tsig_failed(msg, None, dns.rcode.BADKEY, "no such update key",
                                         zone_text, key_name, client)
            try:
                msg = tsigwire.verify(wire, found.dns_key())
            except tsigwire.TsigFailure as f:
                signer = found.dns_key() if f.error == dns.rcode.BADTIME else None
                return self._tsig_failed(msg, signer, f.error, f.reason, zone_text, key_name,
                                         client)
            key = found.dns_key()
        try:
            req = parse_update(msg)
        except UpdateError as exc:
            self._count("formerr")
            return tsigwire.respond(msg, exc.rcode, key)
        try:
            serial, rcode = await repo.update_rrsets(
                req.zone, req.owners, lambda read: _plan(read, req, client, key_name),
                req.dname_owners)
        except _Refusal as r:
            self._count("too_large" if r.event == Event.UPDATE_TOO_LARGE else "refused")
            emit(r.event, logging.WARNING, zone=req.zone, key=_key_text(key_name), client=client,
                 rule=r.rule, reason=r.reason)
            return tsigwire.respond(msg, dns.rcode.REFUSED, key)
        except NotFound:
            self._count("refused")
            emit(Event.UPDATE_REFUSED, logging.WARNING, zone=req.zone, key=_key_text(key_name),
                 client=client, rule="not-authoritative", reason="no such zone here")
            return tsigwire.respond(msg, dns.rcode.NOTAUTH, key)
        except ValidationError as exc:  # too many names for one transaction
            self._count("too_large")
            emit(Event.UPDATE_TOO_LARGE, logging.WARNING, zone=req.zone, key=_key_text(key_name),
                 client=client, rule="one etcd transaction", reason=exc.message)
            return tsigwire.respond(msg, dns.rcode.REFUSED, key)
        except Exception as exc:  # etcd gave no answer in time, ...: the request's TSIG
            # verified, so the SERVFAIL is signed with its key (RFC 8945 5.3); unsigned, the
            # client cannot tell it from a forgery and drops it
            self._failed(client, exc)
            return tsigwire.respond(msg, dns.rcode.SERVFAIL, key)
        self._count("applied" if serial is not None else
                    "unchanged" if rcode == dns.rcode.NOERROR else "prerequisite")
        if serial is not None:
            emit(Event.UPDATE_APPLIED, zone=req.zone, serial=serial, key=_key_text(key_name),
                 client=client, changes=len(req.changes))
        return tsigwire.respond(msg, int(rcode), key)  # type: ignore[call-overload]

    def _tsig_failed(self, msg: dns.message.Message, signer: dns.tsig.Key | None, error: int,
                     reason: str, zone: str, key_name: Name, client: str) -> bytes:
        self._count("tsig")
        emit(Event.UPDATE_TSIG_FAILED, logging.WARNING, zone=zone, key=_key_text(key_name),
             client=client, rule="tsig", error=dns.rcode.to_text(error), reason=reason)
        return tsigwire.respond(msg, dns.rcode.NOTAUTH, signer, error, self._clock)

    def _file_route(self, query: Query) -> object | None:
        if self.file_zones is None or not query.qname:
            return None
        try:
            zone = dns.name.from_wire(query.qname, 0)[0]
        except dns.exception.DNSException:
            return None
        return self.file_zones.route(zone)

    async def _forward(self, wire: bytes, query: Query, client: str,
                       targets: list[str] | None = None) -> bytes | None:
        if targets is None:
            targets = await self._writable_addresses()
        for target in targets:
            host, _, port = target.rpartition(":")
            try:
                async with asyncio.timeout(FORWARD_TIMEOUT):
                    answer = await _tcp_exchange(host.strip("[]"), int(port), wire)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                log.info("forwarding an UPDATE to %s failed: %s", target, exc)
                continue
            self._count("forwarded")
            emit(Event.UPDATE_FORWARDED, client=client, to=target,
                 rcode=dns.rcode.to_text(answer[3] & 0xF) if len(answer) > 3 else "?")
            return answer
        self._count("failed")
        emit(Event.UPDATE_FORWARD_FAILED, logging.ERROR, client=client, tried=targets)
        return error_response(query.id, query.flags, dns.rcode.SERVFAIL, query.question,
                              reply_opt(query))


def _plan(read: UpdateRead, req: UpdateRequest, client: str, key: Name | None
          ) -> tuple[Writes, int]:
    """The decision on what the transaction read (pure; raises _Refusal to refuse)."""
    cfg = read.config
    if cfg.secondary:  # its data is the outside primary's: change it there
        raise _Refusal("secondary-zone", "the zone is a secondary of "
                       + ", ".join(cfg.primaries) + ": send the UPDATE to its primary",
                       Event.UPDATE_SECONDARY_REFUSED)
    bad = refused_types(req, read.signed)
    if bad:  # whoever asks: the key lifecycle (or the signer) owns these
        names = ", ".join(sorted(dns.rdatatype.to_text(t) for t in bad))
        raise _Refusal("dnssec-types", f"{names}: DNSSEC records are owned by the key lifecycle")
    unsupported = sorted({c.rdtype for c in req.changes
                          if c.kind == "add" and c.rdtype in UNSUPPORTED_TYPES})
    if unsupported:  # REFUSED, as BIND answers a type its policy refuses (deletes still go)
        raise _Refusal("unsupported-type", UNSUPPORTED_TYPES[unsupported[0]])
    verdict = authorize(cfg.dynamic_update, cfg.allow_update, cfg.update_policy, req.zone, req,
                        client, key)
    if not verdict.allowed:
        raise _Refusal(verdict.rule, verdict.reason)
    rcode = evaluate(req, read.data)
    if rcode != dns.rcode.NOERROR:
        return {}, rcode
    outcome = apply(req, read.data, read.head.serial, read.below)
    if outcome.ignored:
        log.info("UPDATE of %s: ignored %s", req.zone, "; ".join(outcome.ignored))
    rule = over_limit(verdict, outcome.writes)
    if rule:
        raise _Refusal(rule, "the update exceeds the rule's record limit")
    if len(outcome.writes) + 1 > MAX_TXN_OPS:
        raise _Refusal("one etcd transaction",
                       f"{len(outcome.writes)} RRsets changed; one transaction holds "
                       f"{MAX_TXN_OPS - 1}", Event.UPDATE_TOO_LARGE)
    return outcome.writes, dns.rcode.NOERROR


class WritableTargets:
    """The DNS addresses of live writable nodes, from the node directory, cached briefly."""

    def __init__(self, directory: NodeDirectory, clock: Clock = SYSTEM_CLOCK) -> None:
        self._directory = directory
        self._clock = clock
        self._cached: list[str] = []
        self._until = 0.0

    async def __call__(self) -> list[str]:
        now = self._clock.monotonic()
        if now >= self._until or not self._cached:
            nodes = await self._directory.list_nodes()
            self._cached = [a for n in nodes if n.alive and n.role == "writable"
                            for a in n.dns_addresses]
            self._until = now + DIRECTORY_TTL
        return list(self._cached)


def _key_text(key: Name | None) -> str:
    return key.to_text() if key is not None else "-"


async def _tcp_exchange(host: str, port: int, wire: bytes) -> bytes:
    source = transfer_source(host)  # BIND's transfer-source covers forwarded UPDATEs too
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0) if source else None)
    try:
        writer.write(len(wire).to_bytes(2, "big") + wire)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(size)
    finally:
        writer.close()


def notify_hook(table: ZoneTable,
                secondary: Callable[[Name, str], bool | None] | None = None,
                ) -> Callable[[bytes, Query, tuple[str, int], str], bytes]:
    """NOTIFY in (RFC 1996). For a secondary zone `secondary(zone, client)` decides: from a
    listed primary NOERROR (AA) and the zone refreshes at once, from anyone else REFUSED.
    For one of our own zones: NOERROR, no action; NOTAUTH otherwise."""

    def hook(wire: bytes, query: Query, addr: tuple[str, int], transport: str) -> bytes:
        if secondary is not None and query.qname:
            try:
                name = dns.name.from_wire(query.qname, 0)[0]
            except dns.exception.DNSException:
                name = None
            verdict = secondary(name, addr[0]) if name is not None else None
            if verdict is not None:
                rcode = dns.rcode.NOERROR if verdict else dns.rcode.REFUSED
                resp = error_response(query.id, query.flags, rcode, query.question,
                                      reply_opt(query))
                return resp[:2] + bytes((resp[2] | 0x04,)) + resp[3:] if verdict else resp
        zone = table.find(query.qname)
        ours = zone is not None and zone.origin == query.qname
        if ours:
            emit(Event.NOTIFY_RECEIVED, zone=dns.name.from_wire(query.qname, 0)[0],
                 client=addr[0])
        rcode = dns.rcode.NOERROR if ours else dns.rcode.NOTAUTH
        resp = error_response(query.id, query.flags, rcode, query.question,
                              reply_opt(query))
        return resp[:2] + bytes((resp[2] | 0x04,)) + resp[3:] if ours else resp  # AA: ours

    return hook
