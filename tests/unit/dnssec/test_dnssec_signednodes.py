"""The signer's result map (`signednodes.SignedNodes`, issue 10, session 16): a hashed
NSEC3 owner held by its hash label, no Name, yet read by Name like any owner; an input
owner whose name is a hash owner's kept once, under its Name, through changes."""

from __future__ import annotations

from types import MappingProxyType

import dns.name
import dns.rdatatype
import dns.rrset
from dnssec_support import NOW, example_nodes, key_pair, validate_all

from node.dnssec.denial import DenialParams, nsec3_hash
from node.dnssec.signednodes import SignedNodes
from node.dnssec.sigstore import SignedNode
from node.dnssec.zonesigner import SigningParams, ZoneSigner

T = dns.rdatatype
ORIGIN = dns.name.from_text("example.")
PARAMS = SigningParams(denial=DenialParams(nsec3=True))


def _text(nodes) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every owner's RRsets as sorted text lines (RRSIGs included), by lowercase name."""
    return {name.to_text().lower(): sorted(line for rs in types.values()
                                           for line in rs.to_text().splitlines())
            for name, types in nodes.items()}


def _check_map(nodes: SignedNodes) -> None:
    """Every owner read by iteration is found by Name (any case), once, as the same node."""
    names = list(nodes)
    assert len(names) == len(set(names)) == len(nodes)
    assert [id(t) for t in nodes.values()] == [id(nodes[n]) for n in names]
    for name, types in nodes.items():
        assert nodes[name] is types and nodes.get(name) is types and name in nodes
        upper = dns.name.from_text(name.to_text().upper())
        assert nodes.get(upper) is types
        if type(types) is SignedNode:
            assert types.owner == name


def test_hashed_owners_are_held_by_their_chain_label() -> None:
    signer = ZoneSigner(ORIGIN, PARAMS, key_pair())
    res = signer.sign(example_nodes(), None, NOW)
    nodes = res.nodes
    assert isinstance(nodes, SignedNodes)
    chain_labels = {id(label) for label in signer._chain._keys}  # type: ignore[union-attr]
    hashed = [t for t in nodes.values() if type(t) is SignedNode and T.NSEC3 in t
              and not any(k not in (T.NSEC3, T.RRSIG) for k in t)]
    assert len(hashed) == len(signer._chain)  # type: ignore[arg-type]
    for node in hashed:
        assert node.hashed_label is not None and id(node.hashed_label) in chain_labels
        assert node.owner == dns.name.Name((node.hashed_label, *ORIGIN.labels))
        assert node[T.NSEC3].name == node.owner == node[T.RRSIG].name
    www = nodes[dns.name.from_text("www.example.")]
    assert type(www) is SignedNode and www.hashed_label is None
    _check_map(nodes)
    assert validate_all(nodes) > 0
    assert dns.name.from_text(f"{'0' * 32}.example.") not in nodes


def test_an_input_owner_at_a_hash_owners_name_through_changes() -> None:
    """The owner `<hash of www>.example.` gains data, loses it and gains it again: each
    incremental result reads as a full sign of the same version, the owner once."""
    base = dict(example_nodes())
    clash = dns.name.from_text(nsec3_hash(dns.name.from_text("www.example."),
                                          PARAMS.denial), ORIGIN)
    signer = ZoneSigner(ORIGIN, PARAMS, key_pair())
    res = signer.sign(MappingProxyType(base), None, NOW)
    assert type(res.nodes[clash]) is SignedNode and res.nodes[clash].hashed_label is not None
    soa = base[ORIGIN][T.SOA]
    for step in range(4):
        has_data = step % 2 == 0
        name = clash
        if has_data:  # the upper-case form: the owner keeps the input's case
            name = dns.name.from_text(clash.to_text().upper())
            base[name] = MappingProxyType(
                {T.A: dns.rrset.from_text(name, 300, "IN", "A", f"192.0.2.{50 + step}")})
        else:
            del base[clash]
        apex = dict(base[ORIGIN])
        apex[T.SOA] = dns.rrset.from_rdata(ORIGIN, soa.ttl,
                                           soa[0].replace(serial=soa[0].serial + step + 1))
        base[ORIGIN] = MappingProxyType(apex)
        now = NOW + 10 * (step + 1)
        res = signer.sign(MappingProxyType(base), frozenset({name, ORIGIN}), now)
        nodes = res.nodes
        _check_map(nodes)
        node = nodes[clash]
        assert (T.A in node) == has_data and T.NSEC3 in node
        assert (node.hashed_label is None) == has_data
        if has_data:
            assert node.owner.labels[0] == clash.labels[0].upper()  # type: ignore[union-attr]
        fresh = ZoneSigner(ORIGIN, PARAMS, key_pair()).sign(MappingProxyType(dict(base)),
                                                          None, now)
        assert _text(nodes) == _text(fresh.nodes)
        assert len(nodes) == len(fresh.nodes)
        validate_all(nodes, now=now)
