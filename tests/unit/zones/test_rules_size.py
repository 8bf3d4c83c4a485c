"""What DNS cannot carry is refused with a message naming it, by `record add` (check_change)
and by an import (parse_for_store): an rdata over 65,535 octets (RDLENGTH is 16 bits) or an
RRset of more than 65,535 records. Before, such an RRset was stored, and the replica's packed
form could not hold it (the node skipped it as a bad value)."""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.errors import ValidationError
from node.work.zoneparse import parse_for_store
from node.zones.rules import check_change

ZONE = dns.name.from_text("size.test.")
OWNER = dns.name.from_text("big.size.test.")
LONG_TXT = " ".join(['"' + "x" * 255 + '"'] * 300)  # 300 strings: 76,800 octets of rdata
HEAD = "$ORIGIN size.test.\n@ 300 IN SOA ns1 h 1 3600 600 86400 300\n@ 300 IN NS ns1\n" \
       "ns1 300 IN A 192.0.2.1\n"


def test_record_add_refuses_an_rdata_over_65535_octets() -> None:
    rrset = dns.rrset.from_text(OWNER, 300, "IN", "TXT", LONG_TXT)
    with pytest.raises(ValidationError, match=r"big.size.test. TXT: a record of 76800 octets"):
        check_change(ZONE, OWNER, dns.rdatatype.TXT, rrset, {})


def test_record_add_refuses_more_than_65535_records() -> None:
    rrset = dns.rrset.RRset(OWNER, dns.rdataclass.IN, dns.rdatatype.A)
    for i in range(65536):
        rrset.add(dns.rdata.from_text("IN", "A", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"))
    with pytest.raises(ValidationError, match="65536 records; one RRset holds at most 65535"):
        check_change(ZONE, OWNER, dns.rdatatype.A, rrset, {})


def test_an_import_refuses_an_rdata_over_65535_octets_and_accepts_one_that_fits() -> None:
    with pytest.raises(ValidationError, match=r"big.size.test. TXT: a record of 76800 octets"):
        parse_for_store(HEAD + f"big 300 IN TXT {LONG_TXT}\n", "size.test.")
    fits = " ".join(['"' + "x" * 255 + '"'] * 250)  # 64,000 octets
    parsed = parse_for_store(HEAD + f"big 300 IN TXT {fits}\n", "size.test.")
    assert any(key.endswith("/TXT") for key, _ in parsed.records)
