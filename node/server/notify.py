"""NOTIFY out (RFC 1996): tell a zone's configured secondaries that a new serial is served.

Sent by writable nodes after a new version of a zone is served, to each
`host:port` in the zone's `notify` setting, over UDP, retried a few times
until the secondary answers; never blocks serving (a task per zone, the
newest serial wins). A target written `host:port/KEY` gets the NOTIFY signed
with the TSIG transfer key KEY (from the node's keyring), and its answer
must verify with it; when KEY is not in etcd nothing is sent to that target
and `XFR_KEY_MISSING` says so. Slow path: dnspython builds and parses the
messages.
"""

from __future__ import annotations

import asyncio
import logging

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rdatatype
import dns.tsig

from node.events import Event, emit
from node.server.outbound import notify_source
from node.server.xfrauth import Keyring
from node.zones.transfers import parse_notify_target

log = logging.getLogger(__name__)


def notify_once(zone: dns.name.Name, target: str, timeout: float,
                key: dns.tsig.Key | None = None) -> bool:
    """One NOTIFY to `target` (`host:port[/KEY]`), signed with `key` if given; True when
    the secondary answered it (its answer verified with `key`)."""
    msg = dns.message.make_query(zone, dns.rdatatype.SOA)
    msg.set_opcode(dns.opcode.NOTIFY)
    msg.flags |= dns.flags.AA
    if key is not None:
        msg.use_tsig(key)
    t = parse_notify_target(target)
    try:
        reply = dns.query.udp(msg, t.host, port=t.port, timeout=timeout,
                              source=notify_source(t.host))  # server.notify_source
    except (dns.exception.DNSException, OSError):
        return False
    return reply.opcode() == dns.opcode.NOTIFY


class Notifier:
    """Sends NOTIFY for new serials; at most one sending task per zone."""

    def __init__(self, tries: int = 3, timeout: float = 1.0,
                 keyring: Keyring | None = None) -> None:
        self._keyring = keyring  # transfer keys, for targets written host:port/KEY
        self._tries = tries
        self._timeout = timeout
        self._sent: dict[dns.name.Name, int] = {}
        self._tasks: dict[dns.name.Name, asyncio.Task[None]] = {}

    def serial_served(self, zone: dns.name.Name, serial: int, targets: tuple[str, ...]) -> None:
        if not targets or self._sent.get(zone) == serial:
            return
        self._sent[zone] = serial
        old = self._tasks.get(zone)
        if old is not None and not old.done():
            old.cancel()  # a newer serial supersedes it
        self._tasks[zone] = asyncio.get_running_loop().create_task(
            self._send(zone, serial, targets))

    async def _send(self, zone: dns.name.Name, serial: int, targets: tuple[str, ...]) -> None:
        for target in targets:
            name = parse_notify_target(target).key
            key = None
            if name is not None:
                key = self._keyring(name) if self._keyring is not None else None
                if key is None:
                    emit(Event.XFR_KEY_MISSING, level=logging.ERROR, zone=zone, key=name,
                         target=target, reason="no such transfer key: NOTIFY not sent")
                    continue
            for attempt in range(self._tries):
                if await asyncio.to_thread(notify_once, zone, target, self._timeout, key):
                    log.info("NOTIFY %s serial %d acknowledged by %s", zone, serial, target)
                    break
                await asyncio.sleep(attempt + 1)
            else:
                emit(Event.NOTIFY_UNANSWERED, level=logging.WARNING, zone=zone, serial=serial,
                     target=target)
