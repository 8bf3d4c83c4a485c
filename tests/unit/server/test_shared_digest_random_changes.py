"""The shared owner digests (`SignedNode.digest`, issue 10 memory) against from-scratch ones.

The signing worker's `ZoneDigest` and the journal's `Tracker` read a signed owner's digest
from the node kept in the map they saw last, not from their own copy. This drives one
signer through random versions (names added and removed, TTL-only and case-only changes,
CNAME and DNAME owners, a delegation with glue and occluded data, an apex change, clock
jumps that refresh signatures, full re-signs) and checks, after every version: both
running digests equal a fresh one, the journal's delta applies exactly, and a second
tracker that sees only every other version (`changed` None: compare everything) agrees.
"""

from __future__ import annotations

import dataclasses
import random

import dns.name
import pytest

from node.dnssec.digest import ZoneDigest
from node.server.zonediff import Tracker, owner_records
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.server.ixfr_versions import apply, records, text_at
from tests.unit.server.signed_zone import NOW, ORIGIN, signer

LINES = [
    "x A 192.0.2.50", "x A 192.0.2.51", "X A 192.0.2.51", 'x TXT "t"', "y CNAME web",
    "Y.Example. CNAME web", "d NS ns.d", "ns.d A 192.0.2.60",
    "d DS 12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
    "dn DNAME other.net.", "q.r.s A 192.0.2.61", "t 60 A 192.0.2.62", "t 120 A 192.0.2.62",
    "u.secure A 192.0.2.63", "@ 300 MX 20 mail", "z.b.c.ent A 192.0.2.66", "W.Web A 192.0.2.67",
    "w.web A 192.0.2.67",
]


def _changed(a: ZoneSnapshot, b: ZoneSnapshot) -> frozenset[dns.name.Name]:
    """Owners whose records (TTLs included) or spelling differ."""
    def spelt(s: ZoneSnapshot, o: dns.name.Name) -> set[str]:
        return {k.to_text() for k in s.nodes if k == o}
    return frozenset(o for o in a.nodes.keys() | b.nodes.keys()
                     if set(owner_records(o, a.nodes.get(o, {})))
                     != set(owner_records(o, b.nodes.get(o, {}))) or spelt(a, o) != spelt(b, o))


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
@pytest.mark.parametrize("seed", range(3))
def test_shared_digests_equal_fresh_ones_after_random_changes(mode: str | None,
                                                             seed: int) -> None:
    rnd = random.Random(seed)
    zs = signer(mode) if mode else None
    zd, tracker, every_other = ZoneDigest(), Tracker(), Tracker()
    prev_plain: ZoneSnapshot | None = None
    prev: ZoneSnapshot | None = None
    seen: ZoneSnapshot | None = None  # the version `every_other` saw last
    now = NOW
    for i in range(1, 26):
        extra = "".join(ln + "\n" for ln in LINES if rnd.random() < 0.3)
        drop = rnd.choice(["", "", "mail ", "big ", "web "])
        p = snapshot_from_text(text_at(i, "\n" + extra, drop), ORIGIN, revision=i,
                               allow_transfer=["127.0.0.0/8"])
        now += rnd.choice([10, 100, 86400, 86400 * 5])
        changed = None if prev_plain is None or rnd.random() < 0.1 else _changed(prev_plain, p)
        if zs is not None:
            res = zs.sign(p.nodes, changed, now)
            snap = dataclasses.replace(p, nodes=res.nodes, signed=True,
                                       changed=None if changed is None else res.changed)
            hexd = zd.reset(res.nodes) if res.changed is None \
                else zd.update(res.nodes, res.changed)
            assert hexd == ZoneDigest().reset(res.nodes), f"worker digest, version {i}"
        else:
            snap = dataclasses.replace(p, changed=changed)
        fresh = Tracker()
        fresh.reset(snap.nodes)
        if prev is None:
            tracker.reset(snap.nodes)
        else:
            delta = tracker.advance(prev.nodes, snap.nodes, snap.changed)
            assert apply(records(prev), delta) == records(snap), f"version {i}"
        assert (tracker.digest, tracker.rrs) == (fresh.digest, fresh.rrs), f"version {i}"
        if seen is None:
            every_other.reset(snap.nodes)
            seen = snap
        elif i % 2 == 0:
            delta = every_other.advance(seen.nodes, snap.nodes, None)
            assert apply(records(seen), delta) == records(snap), f"version {i}"
            assert every_other.digest == fresh.digest, f"version {i}"
            seen = snap
        prev_plain, prev = p, snap
