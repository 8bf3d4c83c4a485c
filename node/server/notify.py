"""NOTIFY out (RFC 1996): tell a zone's configured secondaries that a new serial is served.

Sent by writable nodes after a new version of a zone is served, to each
`host:port` in the zone's `notify` setting, over UDP, retried a few times
until the secondary answers; never blocks serving (a task per zone, the
newest serial wins). Slow path: dnspython builds and parses the messages.
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

from node.events import Event, emit

log = logging.getLogger(__name__)


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def notify_once(zone: dns.name.Name, target: str, timeout: float) -> bool:
    msg = dns.message.make_query(zone, dns.rdatatype.SOA)
    msg.set_opcode(dns.opcode.NOTIFY)
    msg.flags |= dns.flags.AA
    host, port = _target(target)
    try:
        reply = dns.query.udp(msg, host, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return reply.opcode() == dns.opcode.NOTIFY


class Notifier:
    """Sends NOTIFY for new serials; at most one sending task per zone."""

    def __init__(self, tries: int = 3, timeout: float = 1.0) -> None:
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
            for attempt in range(self._tries):
                if await asyncio.to_thread(notify_once, zone, target, self._timeout):
                    log.info("NOTIFY %s serial %d acknowledged by %s", zone, serial, target)
                    break
                await asyncio.sleep(attempt + 1)
            else:
                emit(Event.NOTIFY_UNANSWERED, level=logging.WARNING, zone=zone, serial=serial,
                     target=target)
