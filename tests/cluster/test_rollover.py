"""Key rollovers with real nodes and a real validator watching (issue #11).

Three writable nodes sign a zone whose TTLs and propagation delay are seconds,
so RFC 7583's waits are seconds too. Unbound validates the zone from its DS
(the KSK is not rolled here) and keeps its cache; a watcher asks it fresh names
(NXDOMAIN and wildcard answers, never cached) and repeated ones the whole time.
An answer is bogus when it is SERVFAIL or lacks AD; there must be none.

At each step of a ZSK roll by pre-publication the nodes' copies are compared at
one serial (`assert_identical`), and the served DNSKEY set and RRSIGs are checked:
a published or retired ZSK is in the DNSKEY set but signs nothing, a removed one
is gone. The second roll loses its Key Master to `kill -9` after the successor
is published; `seize-keymaster` moves the role and the new holder completes the
roll from the state in etcd. Set DNSCLUSTER_ROLLOVER_TIMELINE=FILE to write each
roll's timeline (docs/rollover.md shows one).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import dns.dnssec
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_identical_copies import assert_identical
from tests.cluster.test_signing import ctl_json, wait_published
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.rollover import TTL, Timeline, Watcher, leaf_text, signing_cluster
from tests.support.unbound import validator
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

ZONE = "roll.test."
ZONE_TEXT = leaf_text(ZONE, "192.0.2.1")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = signing_cluster()
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(ZONE, ZONE_TEXT)
        out = ctl_json(c.nodes[0], "zone", "sign", ZONE, "--dnskey-ttl", str(TTL),
                       "--propagation-delay", f"{TTL}s")
        assert out["state"] == "done", out
        wait_published(c, ZONE)
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def unbound(cluster: Cluster) -> Iterator[tuple[str, int]]:
    res = cluster.nodes[0].ctl("trust-anchors", "export", ZONE, "--format", "ds")
    assert res.returncode == 0 and " DS " in res.stdout, res.stderr
    with validator(res.stdout, [ZONE], cluster.nodes, f"www.{ZONE}") as server:
        yield server


def served(node: NodeProcess) -> tuple[set[int], set[int]]:
    """(tags in the DNSKEY RRset, tags that sign www A) as `node` serves them."""
    dnskey = dns.query.udp(dns.message.make_query(ZONE, "DNSKEY", want_dnssec=True),
                           node.host, port=node.dns_port, timeout=5)
    www = dns.query.udp(dns.message.make_query(f"www.{ZONE}", "A", want_dnssec=True),
                        node.host, port=node.dns_port, timeout=5)
    tags = {dns.dnssec.key_id(rd) for rrset in dnskey.answer
            if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset}
    signers = {rd.key_tag for rrset in www.answer  # type: ignore[attr-defined]
               if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}
    return tags, signers


def zsk_ids(ks: dict[str, dict[str, Any]], state: str) -> list[str]:
    return [i for i, k in ks.items() if k["role"] == "zsk" and k["state"] == state]


def _activated(tl: Timeline, via: NodeProcess, key_id: str) -> bool:
    """Whether the roll has moved past step 1: `key_id` is active (or already retired)."""
    key = tl.poll(via).get(key_id)
    return key is not None and key["state"] in ("active", "retired")


def _gone(tl: Timeline, via: NodeProcess, key_id: str) -> bool:
    """Whether the roll has removed `key_id` (step 3) by now."""
    return key_id not in tl.poll(via)


def roll_zsk(c: Cluster, via: NodeProcess, live: list[NodeProcess], tl: Timeline,
             *, kill_keymaster: NodeProcess | None = None, seize_to: str = "") -> None:
    """One ZSK roll, checked at each step; optionally the Key Master dies after step 1."""
    view = SimpleNamespace(nodes=live)
    before = tl.poll(via)
    (old,) = zsk_ids(before, "active")
    old_tag = before[old]["tag"]
    out = ctl_json(via, "zone", "rollover", ZONE, "--zsk")
    assert out["key"]["key_id"] == old and out["key"]["roll_requested"], out

    # 1. the successor is published: in the DNSKEY set, signing nothing yet
    ks = tl.until(via, lambda k: bool(zsk_ids(k, "published")), "successor published")
    (new,) = zsk_ids(ks, "published")
    new_tag = ks[new]["tag"]
    assert ks[new]["predecessor"] == old and ks[new]["published"] and not ks[new]["active"]
    again = via.ctl("zone", "rollover", ZONE, "--zsk")  # one roll of a role at a time
    assert again.returncode != 0 and "under way" in again.stderr, again.stderr
    assert_identical(view, ZONE)  # type: ignore[arg-type]
    for n in live:
        tags, signers = served(n)
        assert new_tag in tags and (old_tag in tags or _gone(tl, via, old)), (n.node_id, tags)
        if signers != {old_tag} and _activated(tl, via, new):
            # Ipub is seconds here: on a loaded machine the roll can reach step 2 while
            # these reads go on; then the successor may sign, but only once it is active
            assert signers <= {old_tag, new_tag}, (n.node_id, old_tag, new_tag, signers)
            continue
        assert signers == {old_tag}, (n.node_id, old_tag, new_tag, tags, signers)
    st = ctl_json(via, "zone", "dnssec", ZONE)
    if not _activated(tl, via, new):
        assert st["next_step"].startswith("activate") and st["next_at"], st
        assert "Ipub" in st["waiting_for"] or "sign" in st["waiting_for"], st

    if kill_keymaster is not None:
        kill_keymaster.kill()
        wait_until(lambda: not ctl_json(via, "zone", "dnssec", ZONE)["keymaster"]["online"],
                   30, interval=0.3, message="the Key Master's lease is gone")
        res = via.ctl("--json", "seize-keymaster", ZONE, "--to", seize_to, timeout=90)
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["state"] == "done"

    # 2. after Ipub: the successor signs, the old one is retired (still published)
    # (Iret is seconds too: a slow machine, or the kill and seize above, can find the
    # predecessor removed already; then step 3's checks below are what is left to see)
    ks = tl.until(via, lambda k: bool(zsk_ids(k, "retired")) or old not in k,
                  "predecessor retired")
    assert zsk_ids(ks, "active") == [new] and zsk_ids(ks, "retired") in ([old], []), ks
    assert_identical(view, ZONE)  # type: ignore[arg-type]
    for n in live:
        tags, signers = served(n)
        assert new_tag in tags and signers == {new_tag}, (n.node_id, tags, signers)
        assert old_tag in tags or _gone(tl, via, old), (n.node_id, old_tag, tags)

    # 3. after Iret: the old ZSK is removed
    ks = tl.until(via, lambda k: old not in k, "predecessor removed")
    assert zsk_ids(ks, "active") == [new] and not zsk_ids(ks, "retired")
    assert_identical(view, ZONE)  # type: ignore[arg-type]
    for n in live:
        tags, signers = served(n)
        assert old_tag not in tags and new_tag in tags and signers == {new_tag}
    st = ctl_json(via, "zone", "dnssec", ZONE)
    assert st["next_step"].startswith("introduce"), st  # the next scheduled roll, 90 days on
    tl.write()


def test_zsk_roll_keeps_a_validator_happy(cluster: Cluster,
                                          unbound: tuple[str, int]) -> None:
    c = cluster
    tl = Timeline("ZSK pre-publication roll", ZONE)
    with Watcher(unbound, ZONE) as w:
        roll_zsk(c, c.nodes[1], c.nodes, tl)
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])


def test_keymaster_killed_mid_roll_then_seized_completes_it(
        cluster: Cluster, unbound: tuple[str, int]) -> None:
    c = cluster
    holder = ctl_json(c.nodes[1], "zone", "dnssec", ZONE)["keymaster"]["node"]
    km = c.node(holder)
    others = [n for n in c.nodes if n is not km]
    tl = Timeline("ZSK roll, Key Master killed after step 1, seized", ZONE)
    with Watcher(unbound, ZONE) as w:
        roll_zsk(c, others[0], others, tl, kill_keymaster=km, seize_to=others[1].node_id)
    assert ctl_json(others[0], "zone", "dnssec", ZONE)["keymaster"]["node"] == \
        others[1].node_id
    assert w.asked > 20 and not w.bogus, (w.asked, w.bogus[:5])


def test_automatic_rollover_follows_each_keys_policy(cluster: Cluster,
                                                     unbound: tuple[str, int]) -> None:
    """No rollover command: a ZSK whose policy says every 12 s is rolled by the Key Master
    on its own; its successor inherits the policy until an operator turns it off."""
    c = cluster
    via = c.nodes[2]
    tl = Timeline("automatic ZSK roll (every 12 s)", ZONE)
    (old,) = zsk_ids(tl.poll(via), "active")
    with Watcher(unbound, ZONE) as w:
        out = ctl_json(via, "zone", "key", "enable-rollover", ZONE, old, "--every", "12s",
                       "--offset", "0")
        assert out["key"]["rollover"] == {"auto": True, "every": 12, "offset": 0}, out
        st = ctl_json(via, "zone", "dnssec", ZONE)
        # The step is due at once (the key is older than every - Ipub), so a Key Master
        # may have taken it before this read: then the successor is already there.
        assert st["next_step"].startswith("introduce successor of ZSK") or any(
            x["predecessor"] == old for x in tl.poll(via).values()), st
        ks = tl.until(via, lambda k: any(x["predecessor"] == old for x in k.values()),
                      "an automatic successor")
        assert ks[old]["roll_requested"] is None  # nobody asked: the policy did
        (new,) = [i for i, k in ks.items() if k["predecessor"] == old]
        assert ks[new]["rollover"]["every"] == 12  # inherited
        out = ctl_json(via, "zone", "key", "disable-rollover", ZONE, new)
        assert out["key"]["rollover"]["auto"] is False
        tl.until(via, lambda k: old not in k, "the old ZSK removed")
        st = ctl_json(via, "zone", "dnssec", ZONE)
        assert "ZSK" not in st["next_step"] and "KSK" in st["next_step"], st  # KSK in 755 d
    tl.write()
    assert w.asked > 20 and not w.bogus, (w.asked, w.bogus[:5])
