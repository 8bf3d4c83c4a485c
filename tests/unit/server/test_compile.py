"""`CompiledZone.evolve` gives byte-identical answers to a full build after random edits."""

from __future__ import annotations

import dataclasses
import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.zones.model import ZoneConfig, ZoneSnapshot, snapshot_from_rrsets

ORIGIN = dns.name.from_text("example.com.")
LABELS = ["a", "b", "c", "*", "mail", "ns"]
# owner -> {type: [rdata text]}
Records = dict[str, dict[str, list[str]]]


def _snapshot(records: Records, serial: int, changed: set[str] | None) -> ZoneSnapshot:
    rrsets = []
    for owner, types in records.items():
        name = dns.name.from_text(owner, ORIGIN)
        for rdtype, texts in types.items():
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
            for text in texts:
                rrset.add(
                    dns.rdata.from_text("IN", rdtype, text, origin=ORIGIN, relativize=False), 300
                )
            rrsets.append(rrset)
    snap = snapshot_from_rrsets(ZoneConfig(name=ORIGIN), rrsets, serial=serial)
    if changed is None:
        return snap
    return dataclasses.replace(
        snap, changed=frozenset(dns.name.from_text(o, ORIGIN) for o in changed)
    )


def _random_owner(rng: random.Random) -> str:
    return ".".join(rng.choice(LABELS) for _ in range(rng.randrange(1, 4)))


def _edit(rng: random.Random, records: Records) -> set[str]:
    """One random change; returns the owners it touched."""
    owner = rng.choice([*records, _random_owner(rng), _random_owner(rng)])
    if owner == "@":
        records["@"]["NS"] = rng.sample(["ns", "ns.a", "mail.b", "x.other.net."], 2)
        return {owner}
    kind = rng.randrange(7)
    types = records.setdefault(owner, {})
    if kind == 0:
        records.pop(owner, None)
    elif kind == 1:
        types.pop("CNAME", None)
        types["A"] = [f"192.0.2.{rng.randrange(1, 250)}"]
    elif kind == 2:
        types.pop("CNAME", None)
        types["AAAA"] = [f"2001:db8::{rng.randrange(1, 999)}"]
    elif kind == 3:
        types.pop("CNAME", None)
        types["MX"] = [f"10 {_random_owner(rng)}", "20 mail"]
    elif kind == 4 and "*" not in owner:
        types.pop("CNAME", None)
        types["NS"] = [_random_owner(rng), "ns"]  # a delegation (or removal below)
    elif kind == 5:
        records[owner] = {"CNAME": [_random_owner(rng)]}
    else:
        types.pop(rng.choice([*types, "A"]), None)
    if owner in records and not records[owner]:
        del records[owner]
    return {owner}


def _probe_keys(rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(60):
        name = name_wire(dns.name.from_text(_random_owner(rng), ORIGIN))
        rdtype = rng.choice([1, 28, 15, 2, 5, 6, 43, 255])
        out.append(name + rdtype.to_bytes(2, "big") + b"\x00\x01")
    return out


def test_evolve_matches_full_build_after_random_edits() -> None:
    rng = random.Random(1234)
    records: Records = {
        "@": {"SOA": ["ns hostmaster 1 7200 3600 1209600 300"], "NS": ["ns", "ns.a"]},
        "ns": {"A": ["192.0.2.1"]},
        "mail": {"A": ["192.0.2.2"]},
        "a": {"MX": ["10 mail"]},
    }
    serial = 1
    zone = CompiledZone.build(_snapshot(records, serial, None))
    for step in range(300):
        touched = set()
        for _ in range(rng.randrange(1, 4)):
            touched |= _edit(rng, records)
        serial += 1
        snap = _snapshot(records, serial, touched)
        zone = CompiledZone.evolve(zone, snap)
        full = CompiledZone.build(dataclasses.replace(snap, changed=None))
        assert zone.answers == full.answers, f"step {step}"
        assert zone.names == full.names and zone.below == full.below and zone.cuts == full.cuts
        assert zone.fdeps == full.fdeps
        assert {k: v for k, v in zone.rdeps.items() if v} == full.rdeps
        for key in _probe_keys(rng):
            assert zone.answer(key) == full.answer(key), (step, key)


def test_evolve_reuses_unchanged_entries() -> None:
    records: Records = {
        "@": {"SOA": ["ns hostmaster 1 7200 3600 1209600 300"], "NS": ["ns"]},
        "ns": {"A": ["192.0.2.1"]},
        "www": {"A": ["192.0.2.3"]},
        "m": {"MX": ["10 mail"]},
        "mail": {"A": ["192.0.2.2"]},
    }
    first = CompiledZone.build(_snapshot(records, 1, None))
    records["mail"]["A"] = ["192.0.2.99"]
    second = CompiledZone.evolve(first, _snapshot(records, 2, {"mail"}))
    www = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    mx = b"\x01m\x07example\x03com\x00\x00\x0f\x00\x01"
    assert second.answers[www] is first.answers[www]  # reused
    assert second.answers[mx] != first.answers[mx]  # its additional A changed
    assert b"\xc0\x00\x02\x63" in second.answers[mx][2]  # 192.0.2.99 in the body
