"""node.filezone.files: master file parsing, canonical text, atomic replace, signed header."""

from __future__ import annotations

import os
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from node.errors import ValidationError
from node.filezone import files
from node.filezone.status import FileStatus
from node.zones.model import TransferStatus

ORIGIN = dns.name.from_text("fz.test.")
TEXT = """$ORIGIN fz.test.
$TTL 300
@ IN SOA ns1 hostmaster 7 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
"""


def test_parse_and_render_round_trip() -> None:
    nodes = files.parse_master(TEXT, ORIGIN)
    assert nodes[ORIGIN][dns.rdatatype.SOA][0].serial == 7
    again = files.parse_master(files.master_text(nodes), ORIGIN)
    assert {o: dict(t) for o, t in again.items()} == {o: dict(t) for o, t in nodes.items()}


def test_rrsigs_of_several_types_are_one_rrset_per_owner() -> None:
    text = TEXT + ("@ 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 fz.test. AAAA\n"
                   "@ 300 IN RRSIG NS 13 2 300 20300101000000 20200101000000 1 fz.test. AAAA\n")
    nodes = files.parse_master(text, ORIGIN)
    assert len(nodes[ORIGIN][dns.rdatatype.RRSIG]) == 2


def test_a_file_that_does_not_parse_names_the_zone() -> None:
    with pytest.raises(ValidationError, match=r"fz\.test"):
        files.parse_master("@ IN SOA broken\n", ORIGIN)


def test_signed_header_round_trip(tmp_path: Path) -> None:
    header = files.SignedHeader(source="ab" * 32, keyset="k1:active", serial=9, time=123)
    path = tmp_path / "z.signed"
    path.write_bytes(files.signed_bytes(header, files.parse_master(TEXT, ORIGIN)))
    got = files.read_signed(str(path), ORIGIN)
    assert got is not None and got[0] == header
    path.write_text(TEXT)  # no header: not ours, never served as a signed copy
    assert files.read_signed(str(path), ORIGIN) is None


def test_write_atomic_replaces_or_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "zone"
    path.write_text("old")
    files.write_atomic(str(path), b"new")
    assert path.read_text() == "new"
    (tmp_path / f".zone.tmp{os.getpid()}").mkdir()  # the temporary file cannot be created
    with pytest.raises(OSError):
        files.write_atomic(str(path), b"newer")
    assert path.read_text() == "new"


def test_file_status_reads_as_a_transfer_status() -> None:
    status = FileStatus(node="n1", serial=5, path="/z", serving=True, at="t", reload=2,
                        reload_state="done", message="loaded")
    assert FileStatus.from_json(status.to_json()) == status
    seen = TransferStatus.from_json(status.to_json())
    assert (seen.node, seen.serial, seen.primary, seen.method) == ("n1", 5, "file:/z", "FILE")


def test_wildcard_listen_addresses_are_not_reachable() -> None:
    from node.filezone.zones import _reachable
    assert _reachable("127.0.0.1:53") and _reachable("[2001:db8::1]:53")
    assert _reachable("dns-0.dns:53")
    assert not _reachable("0.0.0.0:5300") and not _reachable("[::]:5300")


def test_canonical_text_takes_the_fast_path_with_the_same_result() -> None:
    nodes = files.parse_master(TEXT, ORIGIN)  # $ORIGIN, relative names: the full parser
    assert files._parse_canonical(TEXT, ORIGIN) is None
    text = files.master_text(nodes) + (
        "fz.test. 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 fz.test. AAAA\n"
        "fz.test. 300 IN RRSIG NS 13 2 300 20300101000000 20200101000000 1 fz.test. AAAA\n")
    fast = files._parse_canonical(text, ORIGIN)
    assert fast is not None
    import dns.zone
    full = dns.zone.from_text(text, origin=ORIGIN, relativize=False)
    assert sum(len(r) for t in fast.values() for r in t.values()) == sum(
        len(rds) for node in full.nodes.values() for rds in node.rdatasets)
    assert len(fast[ORIGIN][dns.rdatatype.RRSIG]) == 2



@pytest.mark.parametrize("fast", [False, True])
def test_a_master_file_with_a_dname_loads_and_keeps_its_rules(fast: bool) -> None:
    """A DNAME (RFC 6672) loads; a name below its owner is refused, naming the owner."""
    text = (files.master_text(files.parse_master(TEXT, ORIGIN))
            + "old.fz.test. 300 IN DNAME new.example.\n") if fast \
        else TEXT + "old IN DNAME new.example.\n"
    nodes = files.parse_master(text, ORIGIN)
    assert nodes[dns.name.from_text("old.fz.test.")][dns.rdatatype.DNAME][0].to_text() == (
        "new.example.")
    with pytest.raises(ValidationError, match=r"old\.fz\.test\. has a DNAME; nothing may "
                                              r"exist below it \(a\.old\.fz\.test\.\)"):
        files.parse_master(text + "a.old.fz.test. 300 IN A 192.0.2.1\n", ORIGIN)
