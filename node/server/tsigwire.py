"""TSIG (RFC 8945) on the server side of the slow path: read, verify, answer, via dnspython.

`peek` parses a message and names its TSIG key without verifying anything;
`verify` parses it again with the key (MAC first, then time within the
fudge, as dnspython does; `TsigFailure` carries the TSIG error);
`respond` renders a response, signed with the request's key when the
request was verified (BADTIME included, with our time as other data), or,
for BADKEY and BADSIG, with an unsigned TSIG RR that carries the error and
an empty MAC (RFC 8945 §5.3.2). Never on the hot path.
"""

from __future__ import annotations

import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from node.clock import SYSTEM_CLOCK, Clock
from node.server.wire import EDNS_PAYLOAD

Name = dns.name.Name
FUDGE = 300


class TsigFailure(Exception):
    """The request's TSIG failed: `error` is BADKEY, BADSIG or BADTIME."""

    def __init__(self, error: int, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def peek(wire: bytes) -> tuple[dns.message.Message, Name | None]:
    """The message, unverified, and the name of the key that signed it (None: unsigned)."""
    names: list[Name] = []

    def ring(_msg: dns.message.Message, name: Name) -> bool:
        names.append(name)
        return False  # dnspython: a false key skips verification

    msg = dns.message.from_wire(wire, keyring=ring, one_rr_per_rrset=True)
    return msg, (names[0].canonicalize() if names else None)


def verify(wire: bytes, key: dns.tsig.Key) -> dns.message.Message:
    """The message verified with `key`; TsigFailure naming the TSIG error otherwise."""
    try:
        return dns.message.from_wire(wire, keyring=key, one_rr_per_rrset=True)
    except dns.tsig.BadTime:
        raise TsigFailure(dns.rcode.BADTIME, "signature time outside the fudge") from None
    except (dns.tsig.BadKey, dns.tsig.BadAlgorithm):
        raise TsigFailure(dns.rcode.BADKEY, "key name or algorithm does not match") from None
    except dns.tsig.BadSignature:
        raise TsigFailure(dns.rcode.BADSIG, "the MAC does not verify") from None


def respond(request: dns.message.Message, rcode: int, key: dns.tsig.Key | None,
            tsig_error: int = 0, clock: Clock = SYSTEM_CLOCK) -> bytes:
    """The response to `request` with `rcode`, TSIG as RFC 8945 asks (see the module doc)."""
    resp = dns.message.make_response(request, our_payload=EDNS_PAYLOAD)
    if request.edns >= 0:  # RFC 3225 §3: the DO bit is copied
        resp.use_edns(0, request.ednsflags & dns.flags.DO, EDNS_PAYLOAD)
    resp.set_rcode(rcode)
    if request.tsig is None:
        return resp.to_wire()
    if key is not None:  # verified key (BADTIME too): a signed answer
        other = b""
        if tsig_error == dns.rcode.BADTIME:
            other = int(clock.time()).to_bytes(6, "big")
        resp.use_tsig(key, key.name, fudge=FUDGE, original_id=request.id,
                      tsig_error=tsig_error, other_data=other)
        resp.request_mac = request.mac or b""
        return resp.to_wire()
    wire = resp.to_wire()
    return _append_unsigned_tsig(wire, request, tsig_error)


def _append_unsigned_tsig(wire: bytes, request: dns.message.Message, error: int) -> bytes:
    assert request.tsig is not None
    rd = request.tsig[0]
    rdata = (rd.algorithm.to_wire() + struct.pack("!HIH", rd.time_signed >> 32,  # type: ignore[attr-defined]
                                                    rd.time_signed & 0xFFFFFFFF,  # type: ignore[attr-defined]
                                                    rd.fudge)  # type: ignore[attr-defined]
             + struct.pack("!HHHH", 0, request.id, error, 0))
    rr = (request.tsig.name.to_wire()
          + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(rdata)) + rdata)
    arcount = struct.unpack("!H", wire[10:12])[0] + 1
    return wire[:10] + struct.pack("!H", arcount) + wire[12:] + rr


def error_of(exc: Exception) -> int:
    """FORMERR for a message dnspython cannot parse."""
    return dns.rcode.FORMERR if isinstance(exc, dns.exception.DNSException) else dns.rcode.SERVFAIL
