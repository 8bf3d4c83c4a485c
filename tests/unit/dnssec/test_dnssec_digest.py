"""The signed-copy digest: order-independent, incremental equals full, sensitive to any byte."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
from dnssec_support import NOW, example_nodes, key_pair

from node.dnssec.digest import ZoneDigest
from node.dnssec.params import SigningParams
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
