"""A CSK roll by double signature, finished by `zone ds-seen`, while Unbound validates
the child from the parent's trust anchor (issue #11 part 2, "CSK as an option").

The child is signed with `--csk` (one SEP key signs everything). Its parent is
served by the same nodes but plays an outside parent: its DS for the child is
changed by hand. Steps checked on every node: at once both CSKs sign the DNSKEY
set and the zone data; CDS names the old CSK until the new one is ready, then the
new one only; the roll waits for the DS; after `ds-seen` the old CSK goes once the
old DS and its own signatures have left caches. Unbound keeps its cache and is
asked fresh and repeated names the whole time: 0 bogus answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dns.dnssec
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ctl_json
from tests.support.nodes import NodeProcess
from tests.support.rollover import (
    TTL,
    Timeline,
    Watcher,
    child_ds,
    parent_child_cluster,
    set_parent_ds,
)
from tests.support.unbound import validator
from tests.support.wait import wait_until

PARENT = "cparent.test."
CHILD = f"csk.{PARENT}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with parent_child_cluster(PARENT, CHILD, ("--csk",)) as c:
        yield c


def signers(node: NodeProcess, name: str, rdtype: str) -> tuple[set[int], set[int]]:
    """(key tags of the answer when it is DNSKEY/CDS, tags of the RRSIGs over it)."""
    r = dns.query.udp(dns.message.make_query(name, rdtype, want_dnssec=True), node.host,
                      port=node.dns_port, timeout=5)
    t = dns.rdatatype.from_text(rdtype)
    tags = {rd.key_tag if t == dns.rdatatype.CDS else dns.dnssec.key_id(rd)  # type: ignore[attr-defined]
            for rrset in r.answer if rrset.rdtype == t
            and t in (dns.rdatatype.CDS, dns.rdatatype.DNSKEY) for rd in rrset}
    sigs = {rd.key_tag for rrset in r.answer  # type: ignore[attr-defined]
            if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}
    return tags, sigs


def csks(ks: dict, state: str = "active") -> list[str]:  # type: ignore[type-arg]
    return [i for i, k in ks.items() if k["role"] == "csk" and k["state"] == state]


def test_csk_roll_by_double_signature_keeps_a_validator_happy(cluster: Cluster) -> None:
    c = cluster
    via = c.nodes[1]
    anchor = c.nodes[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    tl = Timeline("CSK double-signature roll, DS changed by hand, ds-seen", CHILD)
    with validator(anchor, [PARENT, CHILD], c.nodes, f"www.{CHILD}") as server, \
            Watcher(server, zone=CHILD) as w:
        (old,) = csks(tl.poll(via))
        old_ds = child_ds(via, CHILD)
        ctl_json(via, "zone", "rollover", CHILD, "--ksk")

        # 1. introduce: both CSKs sign everything; CDS still names the old one
        ks = tl.until(via, lambda k: len(csks(k)) == 2, "a second CSK")
        (new,) = [i for i in csks(ks) if i != old]
        old_tag, new_tag = ks[old]["tag"], ks[new]["tag"]
        for n in c.nodes:
            tags, sigs = signers(n, CHILD, "DNSKEY")
            assert {old_tag, new_tag} <= tags and {old_tag, new_tag} <= sigs, (tags, sigs)
            assert signers(n, f"www.{CHILD}", "A")[1] == {old_tag, new_tag}
            assert signers(n, CHILD, "CDS")[0] == {old_tag}

        # 2. ready after Ipub: CDS names the new CSK only; the roll waits for its DS
        tl.until(via, lambda k: bool(k[new]["ready"]), "the new CSK ready")
        for n in c.nodes:
            wait_until(lambda n=n: signers(n, CHILD, "CDS")[0] == {new_tag}, 30,
                       interval=0.2, message="CDS names the new CSK")
        st = ctl_json(via, "zone", "dnssec", CHILD)
        assert st["next_step"] == f"remove CSK {old_tag}" and "ds-seen" in st["waiting_for"]
        deadline = time.monotonic() + 4 * TTL
        while time.monotonic() < deadline:
            assert old in tl.poll(via), "the old CSK went before its successor's DS was seen"

        # 3. the operator swaps the DS at the parent, then confirms it
        set_parent_ds(c.nodes, PARENT, CHILD, [child_ds(via, CHILD, new_tag)], remove=(old_ds,))
        ctl_json(via, "zone", "ds-seen", CHILD, new)

        # 4. the old CSK goes: the DNSKEY set and the data are signed by the new one only
        ks = tl.until(via, lambda k: old not in k, "the old CSK removed")
        assert csks(ks) == [new]
        for n in c.nodes:
            tags, sigs = signers(n, CHILD, "DNSKEY")
            assert old_tag not in tags and sigs == {new_tag}
            assert signers(n, f"www.{CHILD}", "A")[1] == {new_tag}
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    tl.write()
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])
