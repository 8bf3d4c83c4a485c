"""DnssecKey values: generation, JSON round trip, tags, private key loading."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import dns.dnssec
import dns.name
import pytest

from node.dnssec.keys import DnssecKey, load_private_key, new_key
from node.dnssec.lifecycle import KeyPolicy, KeyTimes
from node.errors import ValidationError

ZONE = dns.name.from_text("Example.COM.")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("role", "flags"), [("ksk", 257), ("zsk", 256), ("csk", 257)])
def test_new_key_fields(role: str, flags: int) -> None:
    key, pem = new_key(ZONE, 13, role, now=WHEN)  # type: ignore[arg-type]
    assert key.flags == flags and key.role == role
    assert key.zone == dns.name.from_text("example.com.")
    assert key.created == "2026-01-02T03:04:05Z"
    assert len(key.key_id) == 32 and key.state == "active" and key.replicate
    rd = key.dnskey()
    assert rd.flags == flags and rd.algorithm == 13 and rd.protocol == 3
    assert key.tag == dns.dnssec.key_id(rd)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    private = load_private_key(pem)
    assert dns.dnssec.make_dnskey(private.public_key(), 13, flags=flags) == rd


def test_json_round_trip() -> None:
    key, _ = new_key(ZONE, 15, "zsk", now=WHEN, replicate=False)
    back = DnssecKey.from_json(key.to_json())
    assert back == key
    assert back.replicate is False


def test_from_json_rejects_garbage() -> None:
    key, _ = new_key(ZONE, 15, "zsk", now=WHEN)
    with pytest.raises(ValidationError):
        DnssecKey.from_json(b"{}")
    bad = key.to_json().replace(b'"flags": 256', b'"flags": 257')
    with pytest.raises(ValidationError, match="does not match"):
        DnssecKey.from_json(bad)


def test_revoked_sets_flag_and_new_tag() -> None:
    key, _ = new_key(ZONE, 13, "ksk", now=WHEN)
    revoked = key.with_state("revoked")
    assert revoked.flags == 257 | 0x80
    assert revoked.dnskey().flags == 385
    assert revoked.tag == dns.dnssec.key_id(revoked.dnskey()) != key.tag
    assert key.with_state("retired").tag == key.tag
    with pytest.raises(ValidationError):
        key.with_state("bogus")


def test_bad_role_refused() -> None:
    with pytest.raises(ValidationError, match="role"):
        new_key(ZONE, 13, "kzk", now=WHEN)  # type: ignore[arg-type]


def test_load_private_key_rejects_garbage() -> None:
    with pytest.raises(ValidationError, match="does not load"):
        load_private_key(b"not a pem")


def test_lifecycle_round_trips_and_old_records_load() -> None:
    """Times, policy, predecessor and operator marks survive etcd; a record written before
    they existed loads with none of them (no schedule, default policy)."""
    key, _ = new_key(ZONE, 13, "zsk", now=WHEN, state="published", predecessor="ab" * 16,
                     policy=KeyPolicy(auto=False, every=600, offset=60))
    assert key.times == KeyTimes(published=WHEN.timestamp())
    key = replace(key, roll_at=1.5, ds_seen=2.5,
                  times=key.times.at(ready=3.0, active=3.0, retired=4.0))
    assert DnssecKey.from_json(key.to_json()) == key
    first, _ = new_key(ZONE, 13, "ksk", now=WHEN)
    assert first.times.published == first.times.ready == first.times.active == WHEN.timestamp()
    old = {k: v for k, v in json.loads(first.to_json()).items()
           if k not in ("times", "policy", "predecessor", "roll_at", "ds_seen")}
    loaded = DnssecKey.from_json(json.dumps(old))
    assert loaded.times == KeyTimes() and loaded.policy == KeyPolicy() and not loaded.predecessor
