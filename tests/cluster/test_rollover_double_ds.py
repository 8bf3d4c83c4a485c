"""`zone sign --new-keys` after a seize without the KSK, with the parent in the cluster: a
double-DS rollover that completes by itself, while Unbound validates (issue #11 part 5).

The child keeps its KSK private key in n1's key store only (`--no-replicate-ksk-private-key`).
n1 is killed with `kill -9`; n2 seizes the role with `--accept-missing-keys`; nobody can
sign the child's DNSKEY RRset again, and the nodes serve the RRSIGs n1 published until they
expire. `--new-keys` then: makes a new KSK that is not in the DNSKEY RRset; the parent's
CDS poll (n3 holds the parent's role) adds its DS next to the old one; once that DS set is
in every cache the child swaps in the new KSK and drops the unreachable one, and renews the
ZSK by pre-publication; the parent's poll drops the old DS. No `ds-seen`, no DS by hand.
Unbound trusts only the parent's DS and asks n2 and n3 the whole time: 0 bogus answers.
A second case: an insecure delegation (no DS at the parent, so the child's trust anchor is
its own KSK) is refused before anything is written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_identical_copies import assert_identical
from tests.cluster.test_signing import ctl_json, wait_published
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.rollover import (
    TIMING,
    TTL,
    Timeline,
    Watcher,
    add_parent_ds,
    child_ds_all,
    key_ids,
    leaf_text,
    parent_text,
    served_ds,
    signing_cluster,
)
from tests.support.unbound import validator
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

PARENT = "pc.test."
CHILD = f"kid.{PARENT}"
ORPHAN = f"orphan.{PARENT}"  # delegated with no DS: its trust anchor is its own KSK
PARENT_TEXT = parent_text(PARENT, {"kid": "192.0.2.2", "orphan": "192.0.2.3"})
# the child's: a DS TTL setting above the parent's real one (2 s) is only more cautious, and
# keeps the phase with both DS at the parent long enough (Iret = 10 s) for the test to see
CHILD_TIMING = (*TIMING[:4], "--parent-ds-ttl", "8s", *TIMING[6:])
LOCAL_KSK = ("--no-replicate-ksk-private-key", "--failover", "manual", "--keymaster", "n1")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = signing_cluster('cds_poll_interval = 1.0\nkey_store = "{keydir}/store-{{node_id}}"\n',
                        lease_ttl=4)
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(PARENT, PARENT_TEXT)
            for zone in (CHILD, ORPHAN):
                api.create_zone(zone, leaf_text(zone))
        out = ctl_json(c.nodes[0], "zone", "sign", PARENT, *TIMING, "--keymaster", "n3")
        assert out["state"] == "done", out
        for zone in (CHILD, ORPHAN):
            out = ctl_json(c.nodes[0], "zone", "sign", zone, *CHILD_TIMING, *LOCAL_KSK)
            assert out["state"] == "done", out
        for zone in (PARENT, CHILD, ORPHAN):
            wait_published(c, zone)
        add_parent_ds(c.nodes[0], PARENT, CHILD, child_ds_all(c.nodes[0], CHILD))
        yield c
    finally:
        c.close()


def seize(via: NodeProcess, zone: str) -> None:
    wait_until(lambda: not ctl_json(via, "zone", "dnssec", zone)["keymaster"]["online"], 30,
               interval=0.3, message="the Key Master's lease is gone")
    res = via.ctl("--json", "seize-keymaster", zone, "--to", via.node_id,
                  "--accept-missing-keys", timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr


def test_new_keys_after_seize_without_ksk_is_a_double_ds_roll(cluster: Cluster) -> None:
    c = cluster
    n1, n2, n3 = c.nodes
    live = [n2, n3]
    view = SimpleNamespace(nodes=live)
    anchor = n2.ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    tl = Timeline("--new-keys after a seize without the KSK (double-DS), parent in the "
                  "cluster", CHILD)
    before = tl.poll(n2)
    (old_ksk,) = key_ids(before, "ksk", "active")
    (old_zsk,) = key_ids(before, "zsk", "active")
    old_tag = before[old_ksk]["tag"]
    for n in live:
        wait_until(lambda n=n: served_ds(n, CHILD) == {old_tag}, 30, interval=0.2,
                   message=f"{n.node_id} serves the first DS")
    with validator(anchor, [PARENT, CHILD], live, f"www.{CHILD}") as server, \
            Watcher(server, zone=CHILD) as w:
        n1.kill()
        seize(n2, CHILD)
        assert ctl_json(n2, "zone", "dnssec", CHILD)["missing_keys"]
        out = ctl_json(n2, "zone", "sign", CHILD, "--new-keys")
        assert out["state"] == "done", out
        assert any("double-DS" in x and "before" in x for x in out["warnings"]), out

        # 1. a new KSK, not in the DNSKEY RRset; CDS names both; the parent adds its DS
        ks = tl.until(n2, lambda k: bool(key_ids(k, "ksk", "created")), "a created KSK")
        (new_ksk,) = key_ids(ks, "ksk", "created")
        new_tag = ks[new_ksk]["tag"]
        st = ctl_json(n2, "zone", "dnssec", CHILD)
        assert any(f"{new_tag} 13 2" in d for d in st["ds"]), st["ds"]
        for n in live:
            wait_until(lambda n=n: served_ds(n, CHILD) >= {old_tag, new_tag}, 60, interval=0.2,
                       message=f"{n.node_id} serves both DS")

        # 2. swap at ds_seen + Iret: the new KSK signs, the unreachable one is gone
        ks = tl.until(n2, lambda k: old_ksk not in k, "the unreachable KSK swapped out")
        assert key_ids(ks, "ksk", "active") == [new_ksk] and ks[new_ksk]["ds_seen"]
        assert ks[new_ksk]["published"] and ks[new_ksk]["active"]

        # 3. the ZSK is renewed by pre-publication; the parent drops the old DS
        ks = tl.until(n2, lambda k: old_zsk not in k, "the old ZSK removed")
        assert len(key_ids(ks, "zsk", "active")) == 1
        for n in live:
            wait_until(lambda n=n: served_ds(n, CHILD) == {new_tag}, 60, interval=0.2,
                       message=f"{n.node_id} serves only the new DS")
        st = ctl_json(n2, "zone", "dnssec", CHILD)
        assert not st["missing_keys"] and "swap" not in st["next_step"], st
        assert_identical(view, CHILD)  # type: ignore[arg-type]
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    tl.write()
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])


def test_new_keys_without_ksk_and_no_ds_at_the_parent_is_refused(cluster: Cluster) -> None:
    c = cluster
    n2 = c.nodes[1]
    c.nodes[0].kill()  # n1, the holder with the KSK (killed already by the test before)
    if ctl_json(n2, "zone", "dnssec", ORPHAN)["keymaster"]["node"] != n2.node_id:
        seize(n2, ORPHAN)
    tags = {k["tag"] for k in ctl_json(n2, "zone", "dnssec", ORPHAN)["keys"]}
    res = n2.ctl("zone", "sign", ORPHAN, "--new-keys", timeout=60)
    assert res.returncode != 0 and "no valid path" in res.stderr, res.stdout + res.stderr
    assert "holds no DS" in res.stderr
    st = ctl_json(n2, "zone", "dnssec", ORPHAN)
    assert {k["tag"] for k in st["keys"]} == tags and not st["settings"].get("new_keys"), st
