"""Round trips of the etcd key layout (node/store/keys.py)."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from node.store.keys import KeyLayout, prefix_end


@pytest.fixture
def layout() -> KeyLayout:
    return KeyLayout()


def test_rrset_key_round_trip(layout: KeyLayout) -> None:
    zone = dns.name.from_text("Example.TEST.")
    owner = dns.name.from_text("a/b%c.Example.test.")
    key = layout.rrset_key(zone, 7, owner, dns.rdatatype.AAAA)
    assert key.startswith("/dnscluster/v1/zones/example.test./data/7/")
    parsed = layout.parse_zone_key(key)
    assert parsed is not None
    assert parsed.kind == "data" and parsed.generation == 7
    assert parsed.zone == zone and parsed.owner == owner
    assert parsed.rdtype == dns.rdatatype.AAAA
    # the slash inside the label did not add a path level
    assert key.count("/") == layout.data_prefix(zone, 7).count("/") + 1


@pytest.mark.parametrize("kind", ["config", "head", "gen"])
def test_zone_keys_round_trip(layout: KeyLayout, kind: str) -> None:
    zone = dns.name.from_text("example.test.")
    key = getattr(layout, f"{kind}_key")(zone)
    parsed = layout.parse_zone_key(key)
    assert parsed is not None and parsed.kind == kind and parsed.zone == zone


def test_unknown_keys_are_not_parsed(layout: KeyLayout) -> None:
    assert layout.parse_zone_key("/dnscluster/v1/zones/example.test./weird") is None
    assert layout.parse_zone_key("/other/zones/x./head") is None
    assert layout.parse_zone_key(layout.node_key("n1")) is None


def test_node_ids_round_trip(layout: KeyLayout) -> None:
    assert layout.parse_node_id(layout.node_key("dns-0")) == "dns-0"
    assert layout.parse_node_id(layout.alive_key("a/b")) == "a/b"


def test_prefix_must_be_a_directory() -> None:
    with pytest.raises(ValueError):
        KeyLayout(prefix="/dnscluster/v1")


def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("abc") == "abd"


@pytest.mark.parametrize(
    "kind", ["dnssec", "published", "keymaster", "dnskeyset"]
)
def test_dnssec_zone_keys_round_trip(layout: KeyLayout, kind: str) -> None:
    zone = dns.name.from_text("example.test.")
    key = getattr(layout, f"{kind}_key")(zone)
    parsed = layout.parse_zone_key(key)
    assert parsed is not None and parsed.kind == kind and parsed.zone == zone


def test_public_key_and_secret_keys(layout: KeyLayout) -> None:
    zone = dns.name.from_text("example.test.")
    parsed = layout.parse_zone_key(layout.key_key(zone, "ab12"))
    assert parsed is not None and parsed.kind == "key" and parsed.key_id == "ab12"
    intent = layout.parse_zone_key(layout.intent_key(zone))
    assert intent is not None and intent.kind == "keymaster-intent"
    # private material is outside zones/, so read-only nodes can be denied it
    assert not layout.secret_key(zone, "ab12").startswith(layout.zones_prefix())
    assert layout.parse_zone_key(layout.secret_key(zone, "ab12")) is None
    assert layout.parse_signing_key(layout.signing_key(zone, "n1")) == (zone, "n1")


def test_ever_published_key_round_trip(layout: KeyLayout) -> None:
    zone = dns.name.from_text("example.test.")
    key = layout.ever_published_key(zone)
    assert key == "/dnscluster/v1/zones/example.test./ever-published"
    parsed = layout.parse_zone_key(key)
    assert parsed is not None and parsed.kind == "ever-published" and parsed.zone == zone


def test_transfer_status_key_round_trip(layout: KeyLayout) -> None:
    zone = dns.name.from_text("sec.test.")
    key = layout.transfer_status_key(zone, "n/1")
    assert key.startswith(layout.transfers_prefix(zone))
    assert layout.parse_transfer_status_key(key) == (zone, "n/1")
    assert layout.parse_zone_key(key) is None  # outside zones/: not a zone version
    assert layout.parse_transfer_status_key(layout.signing_key(zone, "n1")) is None


def test_generation_registrations_and_the_sweeper_live_outside_zones() -> None:
    layout = KeyLayout("/p/")
    zone = dns.name.from_text("Ex/a.test.")
    assert layout.writing_key(zone, 42) == "/p/writing/ex%2Fa.test./42"
    assert layout.writing_key(zone, 42).startswith(layout.writing_prefix(zone))
    assert layout.sweeper_key() == "/p/sweeper"
    assert layout.unswept_key(zone) == "/p/unswept/ex%2Fa.test."
    assert layout.parse_unswept_key(layout.unswept_key(zone)) == zone
    assert layout.parse_unswept_key(layout.unswept_root()) is None
    assert layout.parse_unswept_key(layout.sweeper_key()) is None
    for key in (layout.writing_key(zone, 42), layout.sweeper_key(), layout.unswept_key(zone)):
        assert layout.parse_zone_key(key) is None  # replicas never see them as zone keys
