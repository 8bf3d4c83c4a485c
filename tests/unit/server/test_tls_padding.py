"""EDNS(0) Padding (RFC 7830 §4) on DNS over TLS: a padded query gets a padded answer.

"A responder MUST pad a response when the matching query included the Padding
option" (RFC 7830 §4); the block length is RFC 8467 §4.1's 468 octets. Only
over TLS: the option is for encrypted transports, and plain UDP and TCP answers
(Knot's too) stay unpadded. An unpadded query over TLS gets no padding.
"""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode
import pytest

from node.server.responder import Responder

PADDING = dns.edns.OptionType.PADDING


def _ask(responder: Responder, transport: str, name: str = "www.example.com.",
         rdtype: str = "A", padding: int | None = 0) -> tuple[bytes, dns.message.Message]:
    options = [] if padding is None else [dns.edns.GenericOption(PADDING, b"\x00" * padding)]
    q = dns.message.make_query(name, rdtype, use_edns=0, options=options)
    out = responder.handle(q.to_wire(), ("127.0.0.1", 5300), transport)
    if isinstance(out, list):
        out = out[0]
    assert isinstance(out, bytes)
    return out, dns.message.from_wire(out)


def _padding(m: dns.message.Message) -> list[dns.edns.Option]:
    return [o for o in m.options if o.otype == PADDING]


@pytest.mark.parametrize(("name", "rdtype", "rcode"), [
    ("www.example.com.", "A", dns.rcode.NOERROR),
    ("nope.example.com.", "A", dns.rcode.NXDOMAIN),
    ("example.com.", "MX", dns.rcode.NOERROR),
    ("www.not-ours.test.", "A", dns.rcode.REFUSED),
])
@pytest.mark.parametrize("query_padding", [0, 100])
def test_padded_query_over_tls_gets_a_padded_answer(responder: Responder, name: str,
                                                    rdtype: str, rcode: int,
                                                    query_padding: int) -> None:
    wire, resp = _ask(responder, "tls", name, rdtype, query_padding)
    assert resp.rcode() == rcode
    assert len(_padding(resp)) == 1
    assert len(wire) % 468 == 0  # RFC 8467 §4.1 block-length padding
    unpadded = _ask(responder, "tcp", name, rdtype, query_padding)[1]
    assert resp.answer == unpadded.answer and resp.authority == unpadded.authority


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_plain_transports_are_not_padded(responder: Responder, transport: str) -> None:
    assert not _padding(_ask(responder, transport, padding=0)[1])


def test_unpadded_query_over_tls_is_not_padded(responder: Responder) -> None:
    assert not _padding(_ask(responder, "tls", padding=None)[1])
