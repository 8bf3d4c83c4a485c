"""The pure parts of the parent/child duties: which cuts a parent polls and where, what a
poll's answers hold, which DS names a key, and when a double-DS rollover has a valid path."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import dns.dnssec
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.dnssec.ds import sep_keys
from node.dnssec.keys import DnssecKey, dnskey_rrset, new_key
from node.dnssec.rollover import Plan, Remove, Timing, cds_keys
from node.errors import Refused
from node.keymaster.cds_poll import delegations, glue_addresses, node_addresses, seen_from
from node.keymaster.double_ds import check_path, deadline, pending, status, unreachable_ksk
from node.keymaster.parent_ds import awaited, names_key
from node.nodes.membership import NodeInfo
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.model import snapshot_from_text

PARENT = dns.name.from_text("p.test.")
CHILD = dns.name.from_text("kid.p.test.")
NOW = 1_780_000_000.0
TIMING = Timing(dnskey_ttl=60, max_ttl=60, negative_ttl=60, propagation=100, ds_ttl=300,
                parent_propagation=200)
PARENT_TEXT = """
$TTL 60
@ SOA ns1 hostmaster 1 3600 600 604800 60
@ NS ns1
ns1 A 192.0.2.1
kid NS ns1.kid
kid NS ns2.kid
kid NS ns.elsewhere.example.
ns1.kid A 192.0.2.2
ns2.kid AAAA 2001:db8::2
deep.kid NS ns.deep.kid
ns.deep.kid A 192.0.2.9
other NS ns.other
ns.other A 192.0.2.3
"""


def key(role: str, state: str = "active", **kw: object) -> DnssecKey:
    k, _ = new_key(CHILD, 13, role, now=datetime.fromtimestamp(NOW, UTC))  # type: ignore[arg-type]
    return replace(k, state=state, **kw)  # type: ignore[arg-type]


def test_delegations_skip_occluded_cuts_and_glue_is_taken_from_the_zone() -> None:
    snap = snapshot_from_text(PARENT_TEXT, PARENT)
    assert delegations(snap) == [CHILD, dns.name.from_text("other.p.test.")]
    assert glue_addresses(snap, CHILD) == [("192.0.2.2", 53), ("2001:db8::2", 53)]
    assert glue_addresses(snap, CHILD, port=5300)[0] == ("192.0.2.2", 5300)


def test_delegations_skip_cuts_occluded_several_labels_up_and_keep_cuts_under_ents() -> None:
    text = PARENT_TEXT + """
x.y.deep2 NS ns.x.y.deep2
a.b.c.kid NS ns.a.b.c.kid
ent1.ent2 NS ns.ent
"""
    snap = snapshot_from_text(text, PARENT)
    assert delegations(snap) == sorted(dns.name.from_text(n, PARENT) for n in
                                       ("kid", "other", "x.y.deep2", "ent1.ent2"))


def test_node_addresses_only_live_nodes() -> None:
    def node(i: str, alive: bool) -> NodeInfo:
        return NodeInfo(id=i, role="writable", dns_addresses=(f"127.0.0.{i}:53",),
                        api_address="", metrics_address="", alive=alive)

    assert node_addresses([node("1", True), node("2", False)]) == [("127.0.0.1", 53)]


def test_seen_from_picks_each_rrset_and_its_rrsigs() -> None:
    k = key("ksk")
    answers = {}
    for t in (dns.rdatatype.DNSKEY, dns.rdatatype.CDS, dns.rdatatype.CDNSKEY):
        r = dns.message.make_response(dns.message.make_query(CHILD, t))
        answers[t] = r
    answers[dns.rdatatype.DNSKEY].answer.append(dns.rrset.from_rdata(CHILD, 60, k.dnskey()))
    s = seen_from(CHILD, answers)
    assert s.dnskey is not None and s.cds is None and s.dnskey_sigs is None


def test_names_key_and_the_awaited_successor() -> None:
    old, new = key("ksk"), key("ksk")
    new = replace(new, predecessor=old.key_id,
                  times=new.times.at(ready=NOW))
    ds = [dns.dnssec.make_ds(CHILD, new.dnskey(), "SHA256")]
    assert names_key(ds, CHILD, new) and not names_key(ds, CHILD, old)
    step = Plan(Remove(old.key_id), NOW, "ds-seen", blocked=True)
    assert awaited(step, (old, new)) == new
    assert awaited(Plan(Remove(old.key_id), NOW), (old, new)) is None  # not waiting
    assert awaited(step, (old, replace(new, ds_seen=NOW))) is None  # already seen


def dnskeyset(expiration: float) -> bytes:
    return json.dumps({"keyset": "x", "expiration": int(expiration), "rrsigs": []}).encode()


def test_double_ds_valid_paths() -> None:
    ksk, zsk = key("ksk"), key("zsk")
    keys = (ksk, zsk)
    args = {"keys": keys, "missing": (ksk.key_id,), "dnskeyset": dnskeyset(NOW + 86400),
            "timing": TIMING, "now": NOW}
    assert unreachable_ksk(keys, (ksk.key_id,)) == ksk
    assert unreachable_ksk(keys, (zsk.key_id,)) is None
    notes = check_path(CHILD, parent=PARENT, parent_has_ds=True, **args)  # type: ignore[arg-type]
    assert "double-DS" in notes[0] and "CDS poll" in notes[0]
    notes = check_path(CHILD, parent=None, parent_has_ds=False, **args)  # type: ignore[arg-type]
    assert "zone ds-seen" in notes[0]
    with pytest.raises(Refused, match="holds no DS"):  # its trust anchor is its own KSK
        check_path(CHILD, parent=PARENT, parent_has_ds=False, **args)  # type: ignore[arg-type]
    late = {**args, "dnskeyset": dnskeyset(NOW + 500)}  # DprpP + TTLds + Dprp = 600 s
    with pytest.raises(Refused, match="no valid path in time"):
        check_path(CHILD, parent=PARENT, parent_has_ds=True, **late)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="no DNSKEY-set signatures"):
        check_path(CHILD, parent=PARENT, parent_has_ds=True,  # type: ignore[arg-type]
                   **{**args, "dnskeyset": b""})
    with pytest.raises(Refused, match="ZSK"):
        check_path(CHILD, parent=PARENT, parent_has_ds=True,  # type: ignore[arg-type]
                   **{**args, "missing": (ksk.key_id, zsk.key_id)})


def test_double_ds_status_names_the_ds_and_the_deadline() -> None:
    ksk, zsk = key("ksk"), key("zsk")
    new = key("ksk", "created", predecessor=ksk.key_id)
    cfg = DnssecConfig(status="signed")
    state = DnssecState(config=cfg, keys=(ksk, zsk, new), dnskeyset=dnskeyset(NOW + 86400))
    assert pending(state.keys) == new and deadline(state.dnskeyset) == NOW + 86400
    assert "created" not in state.keyset_id and new.key_id not in state.keyset_id
    got = status(state, TIMING)
    assert got is not None
    step, at, why = got
    assert step == f"swap in KSK {new.tag}" and at is None
    assert f"DS {new.tag} 13 2 " in why and new.key_id in why and "before" in why
    seen = replace(new, ds_seen=NOW)
    got = status(DnssecState(config=cfg, keys=(ksk, zsk, seen)), TIMING)
    assert got is not None and got[1] == NOW + TIMING.iret_ksk


def test_a_created_ksk_is_named_by_cds_and_ds_but_not_in_the_dnskey_rrset() -> None:
    ksk, zsk = key("ksk"), key("zsk")
    new = key("ksk", "created", predecessor=ksk.key_id)
    assert cds_keys((ksk, zsk, new)) == [ksk, new]
    assert {k.key_id for k in sep_keys((ksk, zsk, new))} == {ksk.key_id, new.key_id}
    tags = {dns.dnssec.key_id(rd) for rd in dnskey_rrset(CHILD, (ksk, zsk, new), 60)}
    assert tags == {ksk.tag, zsk.tag}
