"""The difference between zone versions (node.server.zonediff): exact, RRSIG/NSEC3 included."""

from __future__ import annotations

import itertools

import dns.rdatatype
import pytest

from node.server.zonediff import Tracker, diff
from tests.unit.server.ixfr_versions import apply, changed_owners, plain, records, signed_chain

RRSIG = int(dns.rdatatype.RRSIG)


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_each_step_of_a_signed_zone_applies_exactly(mode: str) -> None:
    chain = signed_chain(mode)
    t = Tracker()
    t.reset(chain[0].nodes)
    for old, new in itertools.pairwise(chain):
        delta = t.advance(old.nodes, new.nodes, new.changed)
        assert apply(records(old), delta) == records(new)
        assert t.rrs == len(records(new))
        assert any(rr[1] == RRSIG for rr in delta.deleted), "old signatures go"
        assert any(rr[1] == RRSIG for rr in delta.added), "new signatures come"


def test_a_full_resign_diffs_the_whole_zone_and_only_what_moved() -> None:
    chain = signed_chain("nsec3")
    old, new = chain[-2], chain[-1]  # the same data, signed 3 days later
    assert new.changed is None
    t = Tracker()
    t.reset(old.nodes)
    delta = t.advance(old.nodes, new.nodes, None)
    assert apply(records(old), delta) == records(new)
    assert {rr[1] for rr in delta.added} <= {RRSIG, int(dns.rdatatype.SOA)}
    sigs = sum(1 for rr in records(new) if rr[1] == RRSIG)
    assert 0 < sum(1 for rr in delta.added if rr[1] == RRSIG) < sigs, "only moved epochs"


def test_rrsig_ttl_is_the_covered_rrsets() -> None:
    snap = signed_chain("nsec")[0]
    for rr in records(snap):
        if rr[1] == RRSIG:
            covered = int.from_bytes(rr[3][:2], "big")
            ttl = int.from_bytes(rr[3][4:8], "big")  # original TTL
            assert rr[2] == ttl, f"RRSIG over {covered} sent with TTL {rr[2]}"


def test_digest_follows_content_not_path() -> None:
    a, b = plain(1), plain(2, "x A 192.0.2.9\n")
    t1 = Tracker()
    t1.reset(a.nodes)
    t1.advance(a.nodes, b.nodes, changed_owners(a, b))
    t2 = Tracker()
    t2.reset(b.nodes)
    assert t1.digest == t2.digest and t1.rrs == t2.rrs
    t3 = Tracker()
    t3.reset(plain(2, "x A 192.0.2.10\n").nodes)
    assert t3.digest != t2.digest


def test_unchanged_owners_are_not_visited() -> None:
    a, b = plain(1), plain(2, "x A 192.0.2.9\n")
    delta = diff(a.nodes, b.nodes, changed_owners(a, b))
    assert {rr[0] for rr in delta.added} == {b"\x01x\x07example\x00", b"\x07example\x00"}
    assert len(delta.deleted) == 1  # the old SOA
