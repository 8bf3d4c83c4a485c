"""A compiled zone's RR-tails memo is bounded while it answers: a packed owner (the
replica's form) makes a new RRset on every read, so each slow-path answer (here a
referral, its glue's tails) added an entry holding one RRset that no later answer
finds (identity), and a flood of names below a delegation grew the memo until the
next version (3,001 entries after 3,000 referrals; 2 from unpacked owners)."""

from __future__ import annotations

import dataclasses

import dns.name
import pytest

from node.server import compile as compile_mod
from node.server.answer import name_wire
from node.server.table import ZoneTable
from node.zones.model import snapshot_from_text
from node.zones.packed import PackedTypes

ZONE = """$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 604800 300
@ NS ns1
ns1 A 192.0.2.1
sub NS ns.sub
ns.sub A 192.0.2.9
"""


def test_referrals_below_a_cut_keep_the_memo_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_mod, "MEMO_MAX", 64, raising=False)
    snap = snapshot_from_text(ZONE, "example.")
    snap = dataclasses.replace(
        snap, nodes={o: PackedTypes.pack(o, t.values()) for o, t in snap.nodes.items()})
    table = ZoneTable()
    table.publish(snap)
    zone = table.find(name_wire(snap.origin))
    assert zone is not None
    sizes = []
    for i in range(500):
        key = name_wire(dns.name.from_text(f"h{i}.sub.example.")) + b"\x00\x01\x00\x01"
        entry = table.lookup(key, 0)
        assert entry is not None
        sizes.append(len(zone.memo))
    assert max(sizes) <= 64, sizes[-3:]
