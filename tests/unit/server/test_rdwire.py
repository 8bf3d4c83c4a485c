"""`rdwire.rdata_wire` writes the octets dnspython's `to_wire` writes, type by type."""

from __future__ import annotations

import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rrset
import pytest

from node.server.rdwire import rdata_wire
from node.server.render import rr_tails


def texts() -> list[tuple[str, str]]:
    rng = random.Random(7)
    out = [("A", "0.0.0.0"), ("A", "255.255.255.255"), ("AAAA", "::"), ("AAAA", "::ffff:1.2.3.4"),
           ("NS", "."), ("NS", "Mixed.Case.test."), ("CNAME", "a\\.b.test."), ("PTR", "x.y."),
           ("DNAME", "d.test."), ("MX", "0 ."), ("MX", "65535 mail.test."),
           ("TXT", '"a" "b"'), ("TXT", '""'), ("TXT", '"" "" ""'), ("TXT", '"' + "y" * 255 + '"'),
           ("TXT", " ".join(['"s"'] * 300)), ("TXT", '"\\255\\000\\001\\"Q" "Zz"'),
           ("TXT", "\\# 2 0100"), ("SPF", '"v=spf1 -all"'), ("SPF", '""'),
           ("A", "\\# 4 01020304"), ("AAAA", "2001:DB8:0:0:0:0:0:1"), ("AAAA", "::ffff:0:0"),
           ("SRV", "1 2 3 t.test."),
           ("SOA", "ns1.test. hm.test. 1 2 3 4 5")]
    for _ in range(500):
        out.append(("A", ".".join(str(rng.randrange(256)) for _ in range(4))))
        groups = [rng.choice((0, 0, rng.randrange(65536))) for _ in range(8)]
        out.append(("AAAA", ":".join(f"{g:x}" for g in groups)))
        label = "".join(rng.choice("abcXYZ-09_") for _ in range(rng.randrange(1, 20)))
        out.append(("MX", f"{rng.randrange(65536)} {label}.example."))
        out.append(("NS", f"{label}.{label}.test."))
    return out


def test_rdata_wire_is_dnspythons() -> None:
    for rdtype, text in texts():
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        assert rdata_wire(rd) == rd.to_wire(), (rdtype, text)


def test_relative_names_and_other_classes_go_to_dnspython() -> None:
    relative = dns.rdtypes.ANY.NS.NS(dns.rdataclass.IN, dns.rdatatype.NS,
                                     dns.name.Name([b"rel"]))
    with pytest.raises(dns.name.NeedAbsoluteNameOrOrigin):
        rdata_wire(relative)  # as dnspython says: no guessing an origin
    chaos = dns.rdata.from_text(dns.rdataclass.CH, "A", "ch.test. 1234")
    assert rdata_wire(chaos) == chaos.to_wire()


def test_rendered_rrsets_are_unchanged() -> None:
    owner = dns.name.from_text("o.test.")
    for rdtype, text in texts()[:200]:
        rrset = dns.rrset.from_text(owner, 300, "IN", rdtype, text)
        want = tuple(rrset.rdtype.to_bytes(2, "big") + b"\x00\x01" + (300).to_bytes(4, "big")
                     + len(rd.to_wire()).to_bytes(2, "big") + rd.to_wire() for rd in rrset)
        assert rr_tails(rrset) == want


def test_answer_name_wire_is_dnspythons_lowercased() -> None:
    from node.server.answer import name_wire

    for text in (".", "A.b.", "x\\.y.Z.", "\\000.a.", "*.W.test.", "a" * 63 + ".b."):
        name = dns.name.from_text(text)
        assert name_wire(name) == name.to_wire().lower()  # type: ignore[union-attr]


def test_address_and_text_rrsets_of_many_records_render_as_dnspython() -> None:
    """`rr_tails`' A/AAAA path (the address from `inet_pton`) and TXT/SPF's (the strings
    after their lengths) for whole RRsets, with a TTL given and not, and another class."""
    owner = dns.name.from_text("o.test.")
    sets = [("IN", "A", ["192.0.2.1", "0.0.0.0", "10.0.0.255"]),
            ("IN", "AAAA", ["::", "2001:db8::1", "::ffff:1.2.3.4"]),
            ("IN", "TXT", ['""', '"a" "B"', '"' + "z" * 255 + '" ""']),
            ("IN", "SPF", ['"v=spf1"', '""']), ("CH", "TXT", ['"ch"', '""'])]
    for rdclass, rdtype, rdatas in sets:
        rrset = dns.rrset.from_text(owner, 300, rdclass, rdtype, *rdatas)
        for ttl in (None, 7):
            head = (rrset.rdtype.to_bytes(2, "big") + rrset.rdclass.to_bytes(2, "big")
                    + (300 if ttl is None else ttl).to_bytes(4, "big"))
            want = tuple(head + len(rd.to_wire()).to_bytes(2, "big") + rd.to_wire()
                         for rd in rrset)
            assert rr_tails(rrset, ttl) == want, (rdclass, rdtype)
