"""`canonical.rdata_digestable` writes the octets dnspython's `to_digestable` writes."""

from __future__ import annotations

import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS

from node.dnssec.canonical import rdata_digestable


def texts() -> list[tuple[str, str]]:
    rng = random.Random(7)
    out = [("A", "0.0.0.0"), ("A", "255.255.255.255"), ("AAAA", "::"), ("AAAA", "::ffff:1.2.3.4"),
           ("NS", "."), ("NS", "Mixed.Case.test."), ("CNAME", "a\\.b.test."), ("PTR", "x.y."),
           ("DNAME", "D.Test."), ("MX", "0 ."), ("MX", "65535 Mail.Test."),
           ("TXT", '"a" "b"'), ("TXT", '""'), ("TXT", '"Mixed Case" "x\\"y" "\\200"'),
           ("SPF", '"v=spf1 -all"'), ("SRV", "1 2 3 T.test."), ("CAA", '0 issue "ca.test"'),
           ("SOA", "NS1.Test. HostMaster.TEST. 4294967295 2 3 4 5"),
           ("NS", "\\200\\065.test."), ("CNAME", "Www.EXAMPLE.")]
    for _ in range(500):
        out.append(("A", ".".join(str(rng.randrange(256)) for _ in range(4))))
        groups = [rng.choice((0, 0, rng.randrange(65536))) for _ in range(8)]
        out.append(("AAAA", ":".join(f"{g:x}" for g in groups)))
        label = "".join(rng.choice("abcXYZ-09_") for _ in range(rng.randrange(1, 20)))
        out.append(("MX", f"{rng.randrange(65536)} {label}.example."))
        out.append(("NS", f"{label}.{label}.test."))
        out.append(("TXT", f'"{label}" "{label.upper()}"'))
    return out


def test_rdata_digestable_is_dnspythons() -> None:
    origin = dns.name.from_text("test.")
    for rdtype, text in texts():
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        assert rdata_digestable(rd) == rd.to_digestable(), (rdtype, text)
        assert rdata_digestable(rd, origin) == rd.to_digestable(origin), (rdtype, text)


def test_relative_names_and_other_classes_go_to_dnspython() -> None:
    origin = dns.name.from_text("test.")
    relative = dns.rdtypes.ANY.NS.NS(dns.rdataclass.IN, dns.rdatatype.NS,
                                     dns.name.Name([b"Rel"]))
    assert rdata_digestable(relative, origin) == relative.to_digestable(origin)
    chaos = dns.rdata.from_text(dns.rdataclass.CH, "A", "ch.test. 1234")
    assert rdata_digestable(chaos) == chaos.to_digestable()


def test_owner_digests_are_those_of_dnspythons_canonical_form() -> None:
    """The journal's and the signer's per-owner digests keep their values (they are
    stored with journal steps and compared between nodes)."""
    import hashlib

    import dns.rrset

    from node.dnssec.digest import owner_digest

    owner = dns.name.from_text("Owner.Test.")
    types = {}
    for rdtype, text in texts()[:40]:
        t = dns.rdatatype.from_text(rdtype)
        types.setdefault(t, dns.rrset.RRset(owner, dns.rdataclass.IN, t)).add(
            dns.rdata.from_text(dns.rdataclass.IN, rdtype, text), 300)
    wire = owner.to_digestable()
    records = sorted(wire + t.to_bytes(2, "big") + b"\x00\x01" + (300).to_bytes(4, "big")
                     + t.to_bytes(2, "big") + rd.to_digestable(owner)
                     for t, rrset in types.items() for rd in rrset)
    h = hashlib.sha256()
    for rec in records:
        h.update(len(rec).to_bytes(4, "big") + rec)
    assert owner_digest(owner, types) == int.from_bytes(h.digest(), "big")
