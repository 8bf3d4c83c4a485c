"""The signed-copy digest: order-independent, incremental equals full, sensitive to any byte."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
from dnssec_support import NOW, example_nodes, key_pair

from node.dnssec.digest import ZoneDigest
from node.dnssec.params import SigningParams
from node.dnssec.sigstore import SignedNode
from node.dnssec.zonesigner import ZoneSigner

N = dns.name.from_text
T = dns.rdatatype


def test_incremental_digest_equals_full_digest_after_changes() -> None:
    signer = ZoneSigner(N("example."), SigningParams(), key_pair(13))
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    first = signer.sign(nodes, None, NOW)
    running = ZoneDigest()
    running.reset(first.nodes)
    for i in range(5):
        name = N(f"new{i}.example.")
        nodes[name] = {T.A: dns.rrset.from_text(name, 300, "IN", "A", f"192.0.2.{i}")}
        res = signer.sign({k: dict(v) for k, v in nodes.items()}, frozenset({name}), NOW + i)
        assert res.changed is not None
        incremental = running.update(res.nodes, res.changed)
        assert incremental == ZoneDigest().reset(res.nodes)


def test_digest_ignores_order_and_sees_a_changed_ttl() -> None:
    nodes = example_nodes()
    a = ZoneDigest().reset(nodes)
    b = ZoneDigest().reset(dict(reversed(list(nodes.items()))))
    assert a == b
    www = N("web.example.")
    changed = {k: dict(v) for k, v in nodes.items()}
    rs = changed[www][T.A].copy()
    rs.update_ttl(301)
    changed[www][T.A] = rs
    assert ZoneDigest().reset(changed) != a


def test_signed_owner_digests_are_computed_once_and_kept_only_on_the_nodes(
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 (memory): the signing worker's ZoneDigest and the journal's Tracker kept
    the same digest per owner in a dict each (11 MiB each at 100k names), each computed
    by its own full pass. A SignedNode keeps its digest; the running digests read it from
    the map they saw last, and keep only owners that are not SignedNodes (glue here)."""
    from node.dnssec import digest as digest_module
    from node.server.zonediff import Tracker

    calls: list[dns.name.Name] = []
    real = digest_module._records_digest

    def counted(owner, types):  # type: ignore[no-untyped-def]
        calls.append(owner)
        return real(owner, types)

    monkeypatch.setattr(digest_module, "_records_digest", counted)
    signer = ZoneSigner(N("example."), SigningParams(), key_pair(13))
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    first = signer.sign(nodes, None, NOW)
    signed = [o for o, t in first.nodes.items() if type(t) is SignedNode]
    plain = [o for o, t in first.nodes.items() if type(t) is not SignedNode]
    assert signed and plain  # the example zone has glue
    running = ZoneDigest()
    hexdigest = running.reset(first.nodes)
    tracker = Tracker()
    tracker.reset(first.nodes)
    assert tracker.digest.hex() == hexdigest
    assert sorted(calls) == sorted(signed + plain * 2), "a signed owner digested twice"
    assert sorted(running._digests.plain) == sorted(tracker._digests.plain) == sorted(plain)
    # session 16: a whole map's digests are not kept on its nodes (64 octets each), its
    # sum is, on the map, and the tracker took it from there
    assert all(first.nodes[o].digest is None for o in signed)
    assert first.nodes.digest_sum == int(hexdigest, 16)  # type: ignore[attr-defined]
    # a change: each changed owner's old and new node digested once, and both agree
    calls.clear()
    name = N("new0.example.")
    nodes[name] = {T.A: dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.9")}
    res = signer.sign({k: dict(v) for k, v in nodes.items()}, frozenset({name}), NOW + 1)
    assert res.changed is not None
    hexdigest = running.update(res.nodes, res.changed)
    tracker.advance(first.nodes, res.nodes, res.changed)
    before = [o for o in res.changed if type(first.nodes.get(o)) is SignedNode]
    after = [o for o in res.changed if type(res.nodes.get(o)) is SignedNode]
    assert len(calls) == len(before) + len(after), "a changed signed owner digested twice"
    assert tracker.digest.hex() == hexdigest == ZoneDigest().reset(res.nodes)


def test_tracker_after_a_full_sign_compares_signed_nodes_by_their_fields() -> None:
    """Session 16: after a full sign (`changed` None) the journal's tracker compares two
    signed nodes of an owner by their fields and takes the sum the signing worker's digest
    put on the map (else digests it): the same delta and digest as the incremental path."""
    from node.server.zonediff import Tracker

    signer = ZoneSigner(N("example."), SigningParams(), key_pair(13))
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    first = signer.sign(nodes, None, NOW)
    ZoneDigest().reset(first.nodes)
    trackers = [Tracker(), Tracker(), Tracker()]
    for t in trackers:
        t.reset(first.nodes)
    name = N("new0.example.")
    nodes[name] = {T.A: dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.9")}
    www = N("www.example.")
    del nodes[www]
    version = {k: dict(v) for k, v in nodes.items()}
    inc = signer.sign(version, frozenset({name, www}), NOW + 1)
    full = ZoneSigner(N("example."), SigningParams(), key_pair(13)).sign(version, None, NOW + 1)
    unknown = ZoneSigner(N("example."), SigningParams(), key_pair(13)).sign(version, None,
                                                                          NOW + 1)
    expected = ZoneDigest().reset(full.nodes)  # its sum now on `full.nodes`
    assert unknown.nodes.digest_sum is None  # type: ignore[attr-defined]
    deltas = [trackers[0].advance(first.nodes, inc.nodes, inc.changed),
              trackers[1].advance(first.nodes, full.nodes, None),
              trackers[2].advance(first.nodes, unknown.nodes, None)]
    assert deltas[0]  # the new name, the removed one, the chain records around them
    for delta in deltas[1:]:
        assert sorted(delta.added) == sorted(deltas[0].added)
        assert sorted(delta.deleted) == sorted(deltas[0].deleted)
    assert {t.digest.hex() for t in trackers} == {expected}
    assert {t.rrs for t in trackers} == {trackers[0].rrs}
    assert all(t.digest is None for t in unknown.nodes.values() if type(t) is SignedNode)
