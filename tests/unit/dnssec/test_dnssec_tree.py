"""ZoneTree: delegations, glue, empty non-terminals, incremental updates."""

from __future__ import annotations

import dns.name
import dns.rrset
from dnssec_support import ORIGIN, example_nodes

from node.dnssec.denial import canonical_key
from node.dnssec.tree import ZoneTree

N = dns.name.from_text


def K(text: str) -> tuple[bytes, ...]:
    return canonical_key(N(text))


def _tree() -> ZoneTree:
    tree = ZoneTree(ORIGIN)
    tree.rebuild((canonical_key(n), n, t) for n, t in example_nodes().items())
    return tree


def test_cuts_glue_and_ents() -> None:
    tree = _tree()
    assert tree.cuts == {K("secure.example."), K("insecure.example."), K("deep.x.y.example.")}
    assert tree.below_cut(K("ns.secure.example.")) and tree.below_cut(K("ns.deep.x.y.example."))
    assert not tree.below_cut(K("secure.example.")) and not tree.below_cut(K("www.example."))
    assert set(tree.ents()) == {K("c.ent.example."), K("b.c.ent.example."), K("ent.example."),
                                K("x.y.example."), K("y.example."), K("wild.example.")}
    assert tree.is_ent(K("b.c.ent.example.")) and not tree.is_ent(K("a.b.c.ent.example."))
    assert not tree.is_ent(K("example."))
    assert tree.descendants(K("secure.example.")) == [K("ns.secure.example.")]
    assert list(tree.ancestors(K("a.b.example."))) == [K("b.example."), K("example.")]


def test_update_reports_descendants_of_new_and_removed_cuts() -> None:
    tree = _tree()
    nodes = dict(example_nodes())
    web = N("web.example.")
    host = N("host.web.example.")
    nodes[host] = {1: dns.rrset.from_text(host, 60, "IN", "A", "192.0.2.7")}
    assert set(tree.update([host], nodes)) == {K("host.web.example.")}
    nodes[web] = {**nodes[web], 2: dns.rrset.from_text(web, 60, "IN", "NS", "ns.other.")}
    assert set(tree.update([web], nodes)) == {K("web.example."), K("host.web.example.")}
    assert tree.below_cut(K("host.web.example."))
    del nodes[web]
    assert set(tree.update([web], nodes)) == {K("web.example."), K("host.web.example.")}
    assert not tree.below_cut(K("host.web.example.")) and tree.is_ent(K("web.example."))
