"""node/cli/output.py: the exit code table, error lines, JSON shapes and tables."""

from __future__ import annotations

import io
import json

import dns.name
import pytest
from apifakes import SAMPLE_NODES

from node.api.convert import rrset_from_fields
from node.api.errors import ApiUnreachable
from node.cli.output import (
    Output,
    UsageError,
    error_line,
    exit_code_for,
    node_dict,
    rrset_dict,
    zone_dict,
)
from node.cli.tables import node_table, record_table, table, zone_details, zone_table
from node.errors import (
    ConfigError,
    Conflict,
    EtcdUnavailable,
    FencedOut,
    NodeError,
    NotFound,
    Refused,
    ValidationError,
)
from node.zones.model import ZoneConfig
from node.zones.repository import ZoneInfo

ZONE = dns.name.from_text("example.test")
INFO = ZoneInfo(ZoneConfig(ZONE, allow_transfer=("10.0.0.0/8",)), 7, 2, -1, 99)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (UsageError("x"), 2),
        (ValidationError("x"), 1),  # the server said no
        (NotFound("x"), 1),
        (Conflict("x"), 1),
        (Refused("x"), 1),
        (ConfigError("x"), 1),
        (EtcdUnavailable("x"), 1),
        (FencedOut("x"), 1),
        (ApiUnreachable("x"), 1),
        (NodeError("x"), 1),
        (RuntimeError("x"), 1),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_error_line_is_one_line() -> None:
    assert error_line(NotFound("zone x.\ndoes not exist")) == (
        "clusterctl: error: zone x. does not exist"
    )
    assert error_line(ApiUnreachable("cannot reach the node API at h:1: refused")).endswith(
        "(is the node running? --endpoint / CLUSTERCTL_ENDPOINT)"
    )


def test_table_aligns_columns() -> None:
    assert table(("A", "LONGER", "C"), [("xyz", 1, "last"), ("q", 22, "")]) == (
        "A    LONGER  C\nxyz  1       last\nq    22"
    )


def test_zone_json_and_table() -> None:
    assert zone_dict(INFO) == {
        "name": "example.test.",
        "serial": 7,
        "generation": 2,
        "rrset_count": None,
        "allow_transfer": ["10.0.0.0/8"],
        "allow_update": [],
        "dynamic_update": "secure",
        "update_policy": [],
        "allow_transfer_keys": [],
        "notify": [],
        "kind": "etcd",
        "require_tls_transfer": False,
    }
    lines = zone_table([INFO]).splitlines()
    # KIND, not an RRSETS column that `zone list` never fills (the serial of a secondary or
    # file-backed zone is not the zone's: the kind says so; `zone show` counts RRsets)
    assert lines[0].split() == ["ZONE", "KIND", "SERIAL", "GENERATION", "ALLOW-TRANSFER"]
    assert lines[1].split() == ["example.test.", "etcd", "7", "2", "10.0.0.0/8"]


def test_record_json_and_table() -> None:
    rrset = rrset_from_fields(ZONE, "mail", 300, "MX", ["20 mx2", "10 mx1"])
    assert rrset_dict(rrset) == {
        "owner": "mail.example.test.",
        "ttl": 300,
        "type": "MX",
        "rdata": ["10 mx1.example.test.", "20 mx2.example.test."],
    }
    lines = record_table([rrset]).splitlines()
    assert lines[1].split() == ["mail.example.test.", "300", "MX", "10", "mx1.example.test."]
    assert len(lines) == 3


def test_node_json_and_table() -> None:
    d = node_dict(SAMPLE_NODES[1])
    assert {"id", "role", "alive", "dns_addresses", "api_address"} <= d.keys()
    assert d["served_serials"] == {"example.test.": 7}
    assert d["dns_addresses"] == ["127.0.0.1:5353", "[::1]:5353"]
    rows = node_table(SAMPLE_NODES).splitlines()
    assert rows[1].split()[:4] == ["dns-1", "readonly", "no", "no"]
    assert rows[2].split()[:4] == ["dns-0", "writable", "yes", "yes"]


def test_output_json_or_text() -> None:
    buf = io.StringIO()
    Output(as_json=True, stream=buf).result({"a": [1]}, "human")
    assert json.loads(buf.getvalue()) == {"a": [1]}
    buf = io.StringIO()
    Output(as_json=False, stream=buf).result({"a": [1]}, "human")
    assert buf.getvalue() == "human\n"


def test_secondary_zone_details_show_each_nodes_transfer() -> None:
    from node.api.convert import zone_from_pb, zone_to_pb
    from node.zones.model import TransferStatus
    cfg = ZoneConfig(name=dns.name.from_text("sec.test."), kind="secondary",
                     primaries=("192.0.2.1:53",), tsig_key="xfr.")
    info = ZoneInfo(cfg, 0, 0, -1, 5, (
        TransferStatus("n1", 12, "192.0.2.1:53", "IXFR", "2026-01-01T00:00:00+00:00", True),
        TransferStatus("ro", None, error="192.0.2.1:53: Timeout"),
    ))
    assert zone_from_pb(zone_to_pb(info)) == info  # through the API unchanged
    d = zone_dict(info)
    assert d["kind"] == "secondary" and d["primaries"] == ["192.0.2.1:53"]
    assert [(t["node"], t["serial"], t["method"], t["serving"]) for t in d["transfers"]] == [
        ("n1", 12, "IXFR", True), ("ro", None, "", False)]
    text = zone_details(info)
    assert "primaries:" in text and "xfr." in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()[-2:]}
    assert rows["n1"][1:4] == ["12", "192.0.2.1:53", "IXFR"] and rows["n1"][5] == "yes"
    assert rows["ro"][1] == "-" and rows["ro"][5] == "no"


def test_file_backed_zone_details_show_owner_file_and_copies() -> None:
    from node.api.convert import zone_from_pb, zone_to_pb
    from node.filezone.status import FileStatus
    from node.zones.model import TransferStatus
    cfg = ZoneConfig(name=dns.name.from_text("fz.test."), kind="file-backed", owner="n1",
                     path="/zones/fz.test", reload=3)
    owner = TransferStatus.from_json(FileStatus("n1", 12, "/zones/fz.test", True, "t").to_json())
    info = ZoneInfo(cfg, 0, 0, -1, 5, (owner, TransferStatus("n2", 12, "127.0.0.1:53", "IXFR")))
    assert zone_from_pb(zone_to_pb(info)) == info  # owner, path and reload through the API
    d = zone_dict(info)
    assert (d["kind"], d["owner"], d["path"]) == ("file-backed", "n1", "/zones/fz.test")
    text = zone_details(info)
    assert "owner:" in text and "/zones/fz.test" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()[-2:]}
    assert rows["n1"][1:4] == ["12", "file:/zones/fz.test", "FILE"]
    assert rows["n2"][3] == "IXFR"
