"""A KSK roll by double-KSK whose parent is outside the Key Master's reach, finished by
`zone ds-seen`, while Unbound validates from the parent's trust anchor (issue #11 part 3).

The parent zone is served by the same nodes but plays an outside parent: its DS
for the child is changed by hand, as an operator would at a registrar. Unbound
trusts only the parent's DS and reaches the child through it, so a child DNSKEY
set that no DS matches would show as SERVFAIL. Steps checked: both KSKs sign the
DNSKEY set at once; CDS names the old KSK until the new one is ready, then the new
one only; the roll waits for the DS (and says so) and never goes on by itself;
after `ds-seen` the old KSK goes once the old DS has left caches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import dns.dnssec
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_identical_copies import assert_identical
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

PARENT = "parent.test."
CHILD = f"kroll.{PARENT}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with parent_child_cluster(PARENT, CHILD) as c:
        yield c


def apex(node: NodeProcess, rdtype: str) -> tuple[set[int], set[int]]:
    """(key tags in the apex RRset of `rdtype`, tags of the RRSIGs over it) as `node` serves."""
    r = dns.query.udp(dns.message.make_query(CHILD, rdtype, want_dnssec=True), node.host,
                      port=node.dns_port, timeout=5)
    t = dns.rdatatype.from_text(rdtype)
    tags = {rd.key_tag if t == dns.rdatatype.CDS else dns.dnssec.key_id(rd)  # type: ignore[attr-defined]
            for rrset in r.answer if rrset.rdtype == t for rd in rrset}
    sigs = {rd.key_tag for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG  # type: ignore[attr-defined]
            for rd in rrset}
    return tags, sigs


def ksks(ks: dict, state: str = "active") -> list[str]:  # type: ignore[type-arg]
    return [i for i, k in ks.items() if k["role"] == "ksk" and k["state"] == state]


def test_ksk_roll_waits_for_the_ds_and_keeps_a_validator_happy(cluster: Cluster) -> None:
    c = cluster
    via = c.nodes[1]
    anchor = c.nodes[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    view = SimpleNamespace(nodes=c.nodes)
    tl = Timeline("KSK double-KSK roll, DS changed by hand, ds-seen", CHILD)
    with validator(anchor, [PARENT, CHILD], c.nodes, f"www.{CHILD}") as server, \
            Watcher(server, zone=CHILD) as w:
        (old,) = ksks(tl.poll(via))
        old_ds = child_ds(via, CHILD)
        ctl_json(via, "zone", "rollover", CHILD, "--ksk")

        # 1. introduce: both KSKs sign the DNSKEY set; CDS still names the old one
        ks = tl.until(via, lambda k: len(ksks(k)) == 2, "a second KSK")
        (new,) = [i for i in ksks(ks) if i != old]
        old_tag, new_tag = ks[old]["tag"], ks[new]["tag"]
        assert ks[new]["predecessor"] == old and not ks[new]["ready"]
        assert_identical(view, CHILD)  # type: ignore[arg-type]
        for n in c.nodes:
            tags, sigs = apex(n, "DNSKEY")
            assert {old_tag, new_tag} <= tags and {old_tag, new_tag} <= sigs, (tags, sigs)
            assert apex(n, "CDS")[0] == {old_tag}

        # 2. ready after Ipub: CDS names the new KSK only; the roll waits for its DS
        ks = tl.until(via, lambda k: bool(k[new]["ready"]), "the new KSK ready")
        assert_identical(view, CHILD)  # type: ignore[arg-type]
        for n in c.nodes:
            assert apex(n, "CDS")[0] == {new_tag}
        st = ctl_json(via, "zone", "dnssec", CHILD)
        assert st["next_step"] == f"remove KSK {old_tag}" and "ds-seen" in st["waiting_for"]
        # it never goes on by itself: after several times Iret the old KSK is still there
        deadline = time.monotonic() + 4 * (TTL + TTL)
        while time.monotonic() < deadline:
            assert old in tl.poll(via), "the old KSK went before its successor's DS was seen"

        # 3. the operator swaps the DS at the parent, then confirms it
        set_parent_ds(c.nodes, PARENT, CHILD, [child_ds(via, CHILD, new_tag)], remove=[old_ds])
        out = ctl_json(via, "zone", "ds-seen", CHILD, new)
        assert out["key"]["ds_seen"], out
        st = ctl_json(via, "zone", "dnssec", CHILD)  # Iret is seconds: it may be done
        assert "Iret" in st["waiting_for"] or old not in {k["key_id"] for k in st["keys"]}, st

        # 4. after Iret (the old DS's life in caches) the old KSK is removed
        ks = tl.until(via, lambda k: old not in k, "the old KSK removed")
        assert ksks(ks) == [new]
        assert_identical(view, CHILD)  # type: ignore[arg-type]
        for n in c.nodes:
            tags, sigs = apex(n, "DNSKEY")
            assert old_tag not in tags and new_tag in sigs and old_tag not in sigs
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    tl.write()
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])
