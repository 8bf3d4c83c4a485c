"""Hot-path parser, strict parser and name compression."""

from __future__ import annotations

import dns.message
import dns.name
import pytest

from node.server.wire import (
    BADVERS,
    FORMERR,
    NOTIMP,
    NameCompressor,
    WireError,
    parse_fast,
    parse_query,
    read_name,
)


def q(name: str = "WwW.Example.COM.", rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


def test_parse_fast_plain_and_edns() -> None:
    key, qend, payload, do = parse_fast(q())  # type: ignore[misc]
    assert key == b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    assert qend == len(q()) and payload == -1 and do == 0
    key, _, payload, do = parse_fast(q(use_edns=0, payload=4000, want_dnssec=True))  # type: ignore[misc]
    assert payload == 4000 and do == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:2] + bytes([b[2] | 0x80]) + b[3:],  # QR=1
        lambda b: b[:2] + bytes([b[2] | 0x28]) + b[3:],  # opcode 5
        lambda b: b[:4] + b"\x00\x02" + b[6:],  # QDCOUNT 2
        lambda b: b + b"\x00",  # trailing octet
        lambda b: b[:-3],  # truncated
    ],
)
def test_parse_fast_declines_unusual_shapes(mutate: object) -> None:
    assert parse_fast(mutate(q())) is None  # type: ignore[operator]


def test_parse_fast_declines_edns_version_1() -> None:
    assert parse_fast(q(use_edns=1)) is None
    with pytest.raises(WireError) as exc:
        parse_query(q(use_edns=1))
    assert exc.value.rcode == BADVERS


def test_parse_query_errors() -> None:
    assert parse_query(b"\x00\x01") is None
    with pytest.raises(WireError) as exc:
        parse_query(q()[:2] + b"\x10\x00" + q()[4:])  # opcode STATUS
    assert exc.value.rcode == NOTIMP
    header = q()[:4] + b"\x00\x01\x00\x00\x00\x00\x00\x00"
    with pytest.raises(WireError) as exc:
        parse_query(header + b"\xc0\x0c\x00\x01\x00\x01")  # pointer loop in question
    assert exc.value.rcode == FORMERR
    with pytest.raises(WireError) as exc:
        parse_query(header + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01")  # label type 01
    assert exc.value.rcode == FORMERR


def test_parse_query_keeps_question_as_sent() -> None:
    query = parse_query(q())
    assert query is not None
    assert query.qname == b"\x03www\x07example\x03com\x00"
    assert query.question[:4] == b"\x03WwW"


def test_read_name_rejects_loops_and_long_names() -> None:
    with pytest.raises(ValueError):
        read_name(b"\x00" * 12 + b"\xc0\x0e\xc0\x0c", 12)
    with pytest.raises(ValueError):
        read_name(
            b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"a" * 63
            + b"\x00",
            0,
        )


def test_name_compressor_output_parses() -> None:
    comp = NameCompressor()
    out = bytearray(12)
    names = [
        b"\x03www\x07example\x03com\x00",
        b"\x04mail\x07example\x03com\x00",
        b"\x07example\x03com\x00",
        b"\x03www\x07example\x03com\x00",
    ]
    offsets = []
    for name in names:
        offsets.append(len(out))
        comp.write(out, name)
    assert len(out) < 12 + sum(len(n) for n in names)
    for offset, name in zip(offsets, names, strict=True):
        assert read_name(bytes(out), offset)[0] == name
    assert dns.name.from_wire(bytes(out), offsets[1])[0].to_text() == "mail.example.com."
