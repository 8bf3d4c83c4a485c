"""node/api/convert.py: proto <-> domain values round-trip; bad input is a ValidationError."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from apifakes import SAMPLE_NODES

from node.api import convert
from node.errors import ValidationError
from node.zones.model import ZoneConfig
from node.zones.repository import ZoneInfo

ZONE = dns.name.from_text("example.test")


def test_zone_info_round_trip() -> None:
    info = ZoneInfo(
        config=ZoneConfig(
            name=ZONE,
            allow_transfer=("192.0.2.0/24", "2001:db8::/32"),
            allow_update=("10.0.0.0/8",),
            notify=("192.0.2.53:53",),
        ),
        serial=4294967295,
        generation=3,
        rrset_count=-1,
        revision=12345,
    )
    assert convert.zone_from_pb(convert.zone_to_pb(info)) == info


@pytest.mark.parametrize("node", SAMPLE_NODES, ids=lambda n: n.id)
def test_node_info_round_trip(node: object) -> None:
    assert convert.node_from_pb(convert.node_to_pb(node)) == node  # type: ignore[arg-type]


def test_rrset_round_trip_makes_names_absolute() -> None:
    rrset = convert.rrset_from_fields(ZONE, "mail", 300, "mx", ["10 mx1", "20 mx2.other.test."])
    assert rrset.name == dns.name.from_text("mail.example.test")
    assert rrset.rdtype == dns.rdatatype.MX and rrset.ttl == 300
    pb = convert.rrset_to_pb(rrset)
    assert pb.owner == "mail.example.test."
    assert pb.type == "MX"
    assert list(pb.rdata) == ["10 mx1.example.test.", "20 mx2.other.test."]
    assert convert.rrset_from_pb(pb, ZONE) == rrset


def test_apex_and_absolute_owner() -> None:
    assert convert.rrset_from_fields(ZONE, "@", 60, "A", ["192.0.2.1"]).name == ZONE
    absolute = convert.rrset_from_fields(ZONE, "www.example.test.", 60, "A", ["192.0.2.1"])
    assert absolute.name == dns.name.from_text("www.example.test")


def test_txt_keeps_strings() -> None:
    rrset = convert.rrset_from_fields(ZONE, "txt", 60, "TXT", ['"hello world"'])
    assert [rd.to_text() for rd in rrset] == ['"hello world"']


def test_bad_rdata_names_the_record() -> None:
    with pytest.raises(ValidationError, match=r"A record data '192\.0\.2\.999' at www"):
        convert.rrset_from_fields(ZONE, "www", 60, "A", ["192.0.2.999"])


@pytest.mark.parametrize(
    ("owner", "ttl", "rdtype", "match"),
    [
        ("www", 60, "NOPE", "unknown record type"),
        ("www", 60, "ANY", "cannot be stored"),
        ("www", -1, "A", "out of range"),
        ("www", 2**31, "A", "out of range"),
        ("www.other.test.", 60, "A", "not inside zone"),
    ],
)
def test_bad_fields(owner: str, ttl: int, rdtype: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        convert.rrset_from_fields(ZONE, owner, ttl, rdtype, ["192.0.2.1"])


def test_delete_request_round_trip() -> None:
    rrset = convert.rrset_from_fields(ZONE, "www", 0, "A", ["192.0.2.1"])
    req = convert.delete_records_request(ZONE, rrset.name, rrset.rdtype, rrset)
    zone, owner, rdtype, back = convert.delete_records_args(req)
    assert (zone, owner, rdtype) == (ZONE, rrset.name, dns.rdatatype.A)
    assert back is not None and set(back) == set(rrset)
    whole = convert.delete_records_request(ZONE, rrset.name, rrset.rdtype)
    assert convert.delete_records_args(whole)[3] is None


def test_merge_config_only_touches_masked_fields() -> None:
    current = ZoneConfig(name=ZONE, allow_transfer=("192.0.2.0/24",), notify=("192.0.2.9:53",))
    wanted = ZoneConfig(name=ZONE, allow_transfer=("198.51.100.0/24",), notify=())
    req = convert.update_zone_config_request(wanted, ["allow_transfer"])
    merged = convert.merge_config(current, req)
    assert merged.allow_transfer == ("198.51.100.0/24",)
    assert merged.notify == ("192.0.2.9:53",)
    merged = convert.merge_config(current, convert.update_zone_config_request(wanted, ["notify"]))
    assert merged.notify == () and merged.allow_transfer == ("192.0.2.0/24",)
    with pytest.raises(ValidationError, match="update_mask names name"):
        convert.merge_config(current, convert.update_zone_config_request(wanted, ["name"]))


def test_merge_config_sets_and_checks_the_update_settings() -> None:
    current = ZoneConfig(name=ZONE)
    wanted = ZoneConfig(name=ZONE, allow_update=("10.0.0.0/8",),
                        dynamic_update="nonsecure_and_secure",
                        update_policy=("grant k. zonesub A TXT(2)",))
    merged = convert.merge_config(current, convert.update_zone_config_request(
        wanted, ["allow_update", "dynamic_update", "update_policy"]))
    assert (merged.allow_update, merged.dynamic_update, merged.update_policy) == (
        ("10.0.0.0/8",), "nonsecure_and_secure", ("grant k. zonesub A TXT(2)",))
    assert convert.zone_config_from_pb(convert.zone_config_to_pb(merged)) == merged
    for field, bad, message in (
        ("update_policy", ZoneConfig(name=ZONE, update_policy=("allow k. zonesub",)), "grant"),
        ("dynamic_update", ZoneConfig(name=ZONE, dynamic_update="always"), "dynamic_update"),
        ("allow_update", ZoneConfig(name=ZONE, allow_update=("nowhere",)), "allow_update"),
    ):
        with pytest.raises(ValidationError, match=message):
            convert.merge_config(current, convert.update_zone_config_request(bad, [field]))


def test_create_zone_request_round_trip() -> None:
    ns = (dns.name.from_text("ns1.example.test"), dns.name.from_text("ns2.example.test"))
    req = convert.create_zone_request(
        ZONE, primary_ns=ns[0], admin_email="h@example.test", ns=ns, allow_transfer=("::1/128",)
    )
    name, kwargs = convert.create_zone_args(req)
    assert name == ZONE
    assert kwargs == {
        "primary_ns": ns[0],
        "admin_email": "h@example.test",
        "ns": ns,
        "allow_transfer": ("::1/128",),
        "text": None,
    }


def test_require_tls_transfer_survives_proto_json_and_the_mask() -> None:
    current = ZoneConfig(name=ZONE, allow_transfer=("192.0.2.0/24",))
    wanted = ZoneConfig(name=ZONE, require_tls_transfer=True)
    merged = convert.merge_config(current, convert.update_zone_config_request(
        wanted, ["require_tls_transfer"]))
    assert merged.require_tls_transfer and merged.allow_transfer == ("192.0.2.0/24",)
    assert convert.zone_config_from_pb(convert.zone_config_to_pb(merged)) == merged
    assert ZoneConfig.from_json(merged.to_json()) == merged
    assert not ZoneConfig.from_json(b'{"name": "example.test."}').require_tls_transfer
