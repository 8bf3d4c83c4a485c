"""node/work/masterfile.py: the faults of a zone file, each named by the line it starts on."""

from __future__ import annotations

import dns.name
import pytest

from node.errors import ValidationError
from node.filezone.files import parse_master
from node.work.masterfile import read_zone
from node.work.zoneparse import parse_for_store

ORIGIN = dns.name.from_text("mf.test.")
HEAD = "$TTL 300\n@ IN SOA ns1 hostmaster ( 1 7200\n  3600 1209600 300 )\n  IN NS ns1\n"


def fault(text: str) -> str:
    with pytest.raises(ValidationError) as info:
        read_zone(HEAD + text, ORIGIN, "zone text for mf.test.")
    return str(info.value)


def test_an_out_of_zone_owner_is_refused_not_dropped() -> None:
    assert fault("ns1 A 192.0.2.1\nwww.other.test. A 192.0.2.2\n") == (
        "zone text for mf.test. does not parse: line 6: "
        "owner www.other.test. is outside the zone mf.test.")
    assert "line 6: $GENERATE: owner h1.other.test. is outside" in fault(
        "ns1 A 192.0.2.1\n$GENERATE 1-2 h$.other.test. A 192.0.2.$\n")


def test_a_fault_in_a_last_field_names_its_own_line() -> None:
    assert "line 5: " in fault("ns1 A 192.0.2.300\nwww A 192.0.2.1\n")
    assert "line 7: " in fault("ns1 A 192.0.2.1\nw CNAME x\nw A 192.0.2.1\n")


def test_include_is_refused_naming_the_directive_and_line() -> None:
    assert "line 6: $INCLUDE is not read by a node" in fault(
        "ns1 A 192.0.2.1\n$INCLUDE /etc/hostname\n")


def test_generate_origin_and_ttl_are_read() -> None:
    zone = read_zone(HEAD + "ns1 A 192.0.2.1\n$ORIGIN sub\n$GENERATE 1-3 h$ A 192.0.2.$\n",
                     ORIGIN, "x")
    assert dns.name.from_text("h3.sub.mf.test.") in zone.nodes


def test_import_and_file_backed_parses_use_it() -> None:
    text = HEAD + "ns1 A 192.0.2.1\nwww.other.test. A 192.0.2.2\n"
    with pytest.raises(ValidationError, match=r"line 6: owner www\.other\.test\. is outside"):
        parse_for_store(text, "mf.test.")
    with pytest.raises(ValidationError, match=r"master file of mf\.test\. .*line 6: owner"):
        parse_master(text, ORIGIN)
