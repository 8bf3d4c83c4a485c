"""TSIG on zone transfers (RFC 8945): the request's key checked, every answer message signed.

`authenticate` reads a transfer request: unsigned, verified with a transfer
key from the node's keyring, or failed (the NOTAUTH answer with BADKEY,
BADSIG or BADTIME, as `tsigwire.respond` renders it, and an
`XFR_TSIG_FAILED` event). `Auth.sign` signs a stream of answer messages as
RFC 8945 §5.3.1 requires: the first message's MAC covers the request's MAC,
each later one the previous message's MAC, with the timers of each; every
message carries a TSIG RR (dnspython's `inbound_xfr` and BIND verify each).
`Auth.refuse` answers REFUSED, signed when the request was. `sign_answer`
does the same for an ordinary query that came signed (BIND signs its SOA
refresh queries with the key it transfers with).

Slow path only (dnspython parses and signs); the answer path never sees TSIG.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from node.clock import SYSTEM_CLOCK, Clock
from node.events import Event, emit
from node.server import tsigwire
from node.server.render import error_response
from node.server.wire import Query, reply_opt

log = logging.getLogger(__name__)

Name = dns.name.Name
Keyring = Callable[[Name], dns.tsig.Key | None]


@dataclass(frozen=True, slots=True)
class Auth:
    """A transfer request as parsed: its key if signed and verified, else None."""

    request: dns.message.Message
    key: dns.tsig.Key | None = None
    clock: Clock = SYSTEM_CLOCK

    @property
    def key_name(self) -> Name | None:
        return self.key.name if self.key is not None else None

    def tsig_room(self) -> int:
        """Octets the TSIG RR adds to each answer message (0 when unsigned)."""
        if self.key is None:
            return 0
        mac = len(dns.tsig.get_context(self.key).sign())
        return len(self.key.name.to_wire()) + 10 + len(self.key.algorithm.to_wire()) + 16 + mac

    def refuse(self, rcode: int = dns.rcode.REFUSED) -> bytes:
        return tsigwire.respond(self.request, rcode, self.key, clock=self.clock)

    def sign(self, messages: Iterable[bytes]) -> Iterator[bytes]:
        """`messages` as they go out: each TSIG-signed, chained, when the request was."""
        if self.key is None:
            yield from messages
            return
        key, ctx = self.key, None
        request_mac = self.request.mac or b""
        for wire in messages:
            rdata = dns.rdtypes.ANY.TSIG.TSIG(
                dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, tsigwire.FUDGE,
                b"", self.request.id, 0, b"")
            tsig, ctx = dns.tsig.sign(wire, key, rdata, int(self.clock.time()), request_mac,
                                      ctx, True)
            yield _append(wire, key.name, tsig)


def _append(wire: bytes, owner: Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """`wire` with a TSIG RR appended (uncompressed owner) and ARCOUNT raised by one."""
    data = rdata.to_wire()
    assert data is not None
    rr = owner.to_wire() + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0,
                                       len(data)) + data
    arcount = struct.unpack("!H", wire[10:12])[0] + 1
    return wire[:10] + struct.pack("!H", arcount) + wire[12:] + rr


def authenticate(wire: bytes, query: Query, keyring: Keyring | None, client: str,
                 clock: Clock = SYSTEM_CLOCK) -> Auth | bytes:
    """The request's `Auth`, or the answer when its TSIG fails (FORMERR when dnspython
    cannot parse it)."""
    try:
        msg, key_name = tsigwire.peek(wire)
    except dns.exception.DNSException:
        return error_response(query.id, query.flags, dns.rcode.FORMERR, query.question,
                              reply_opt(query))
    zone = msg.question[0].name.to_text() if msg.question else "?"
    if key_name is None:
        return Auth(msg, None, clock)
    key = keyring(key_name) if keyring is not None else None
    if key is None:
        return _failed(msg, None, dns.rcode.BADKEY, "no such transfer key", key_name, client,
                       zone, clock)
    try:
        verified = tsigwire.verify(wire, key)
    except tsigwire.TsigFailure as f:
        return _failed(msg, key if f.error == dns.rcode.BADTIME else None, f.error, f.reason,
                       key_name, client, zone, clock)
    return Auth(verified, key, clock)


def sign_answer(wire: bytes, query: Query, keyring: Keyring | None, client: str,
                answer: bytes) -> bytes:
    """`answer` to a TSIG-signed query, signed with its key once the query verifies (a
    secondary signs its SOA checks with its transfer key); the NOTAUTH answer otherwise."""
    auth = authenticate(wire, query, keyring, client)
    if isinstance(auth, bytes):
        return auth
    return next(auth.sign([answer]))


def _failed(msg: dns.message.Message, signer: dns.tsig.Key | None, error: int, reason: str,
            key_name: Name, client: str, zone: str, clock: Clock) -> bytes:
    emit(Event.XFR_TSIG_FAILED, level=logging.WARNING, zone=zone, key=key_name.to_text(),
         client=client, error=dns.rcode.to_text(error), reason=reason)
    return tsigwire.respond(msg, dns.rcode.NOTAUTH, signer, error, clock)
