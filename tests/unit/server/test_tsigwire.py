"""TSIG on the server side (node/server/tsigwire.py), judged by dnspython as the client."""

from __future__ import annotations

import time
from unittest import mock

import dns.message
import dns.name
import dns.rcode
import dns.tsig
import dns.update
import pytest

from node.server import tsigwire

KEY = dns.tsig.Key("k1.", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=", dns.tsig.HMAC_SHA256)
RING = {KEY.name: KEY}


def signed(**kw: object) -> dns.update.UpdateMessage:
    u = dns.update.UpdateMessage("example.test.", keyring=RING, **kw)  # type: ignore[arg-type]
    u.add("www", 300, "A", "192.0.2.1")
    return u


def test_a_verified_request_gets_a_signed_answer_the_client_accepts() -> None:
    req = signed()
    wire = req.to_wire()
    _, name = tsigwire.peek(wire)
    assert name == KEY.name
    verified = tsigwire.verify(wire, KEY)
    out = tsigwire.respond(verified, dns.rcode.REFUSED, KEY)
    resp = dns.message.from_wire(out, keyring=RING, request_mac=req.mac)  # verifies the MAC
    assert resp.rcode() == dns.rcode.REFUSED and resp.had_tsig


def test_wrong_secret_is_badsig_unsigned_and_the_client_sees_it() -> None:
    req = signed()
    wire = req.to_wire()
    other = dns.tsig.Key("k1.", "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyMTI=")
    with pytest.raises(tsigwire.TsigFailure) as err:
        tsigwire.verify(wire, other)
    assert err.value.error == dns.rcode.BADSIG
    msg, _ = tsigwire.peek(wire)
    out = tsigwire.respond(msg, dns.rcode.NOTAUTH, None, dns.rcode.BADSIG)
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.message.from_wire(out, keyring=RING, request_mac=req.mac)
    plain = dns.message.from_wire(out, keyring=lambda _m, _n: False)
    assert (plain.rcode(), plain.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADSIG)


def test_unknown_key_is_badkey() -> None:
    req = signed()
    msg, _ = tsigwire.peek(req.to_wire())
    out = tsigwire.respond(msg, dns.rcode.NOTAUTH, None, dns.rcode.BADKEY)
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.message.from_wire(out, keyring=RING, request_mac=req.mac)


def test_a_request_signed_outside_the_fudge_is_badtime_signed_with_our_time() -> None:
    req = signed()
    with mock.patch("time.time", return_value=time.time() - 3600):
        wire = req.to_wire()
    with pytest.raises(tsigwire.TsigFailure) as err:
        tsigwire.verify(wire, KEY)
    assert err.value.error == dns.rcode.BADTIME
    msg, _ = tsigwire.peek(wire)
    out = tsigwire.respond(msg, dns.rcode.NOTAUTH, KEY, dns.rcode.BADTIME)
    plain = dns.message.from_wire(out, keyring=lambda _m, _n: False)
    assert (plain.rcode(), plain.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADTIME)
    assert abs(int.from_bytes(plain.tsig[0].other, "big") - time.time()) < 60  # type: ignore[index]
