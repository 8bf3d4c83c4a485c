"""Changing a signed zone's settings while Unbound validates it (issue #11 parts 2, 5, 6).

The child zone's parent is served by the same nodes but plays an outside parent
(its DS is changed by hand, as at a registrar) and Unbound trusts only the
parent's DS, as in test_rollover_ksk. A watcher asks Unbound fresh names (NXDOMAIN
and wildcard answers, whose denial proofs change with NSEC/NSEC3) and repeated
ones the whole time; Unbound keeps its cache. Bogus (SERVFAIL or no AD): 0.

* an algorithm rollover ECDSAP256SHA256 -> ED25519 (RFC 6781 4.1.4): the new
  algorithm signs first with its DNSKEYs unpublished, then they are published,
  CDS names the new KSK, the DS is swapped and confirmed, the old DNSKEYs are
  withdrawn while the old keys still sign, and then the old keys go;
* NSEC -> NSEC3, then a new salt, then back to NSEC;
* `zone sign --new-keys` with every key reachable: a KSK and a ZSK rollover at once;
* `zone sign --like` another zone: an algorithm rollover back to ECDSAP256SHA256 with
  NSEC -> NSEC3, whose Key Master is killed (`kill -9`) mid-roll and seized by another
  node, which completes it.

Set DNSCLUSTER_ROLLOVER_TIMELINE=FILE to write the timelines (docs/rollover.md).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

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
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

PARENT = "parent.test."
CHILD = f"kroll.{PARENT}"
ECDSA, ED25519 = 13, 15
DPRP = 8  # the propagation delay from the algorithm roll on


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with parent_child_cluster(PARENT, CHILD, ("--nsec",)) as c:
        yield c


@pytest.fixture(scope="module")
def unbound(cluster: Cluster) -> Iterator[tuple[str, int]]:
    anchor = cluster.nodes[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    with validator(anchor, [PARENT, CHILD], cluster.nodes, f"www.{CHILD}") as server:
        yield server


def query(node: NodeProcess, name: str, rdtype: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype, want_dnssec=True), node.host,
                         port=node.dns_port, timeout=5)


def algorithms(node: NodeProcess, name: str, rdtype: str) -> tuple[set[int], set[int]]:
    """(algorithms in the child's DNSKEY RRset, algorithms of the RRSIGs over name/rdtype)."""
    keys = query(node, CHILD, "DNSKEY")
    r = query(node, name, rdtype)
    in_set = {rd.algorithm for rs in keys.answer if rs.rdtype == dns.rdatatype.DNSKEY
              for rd in rs}
    sigs = {rd.algorithm for rs in r.answer if rs.rdtype == dns.rdatatype.RRSIG for rd in rs}
    return in_set, sigs


def check_everywhere(c: Cluster, dnskeys: set[int], sigs: set[int]) -> None:
    assert_identical(SimpleNamespace(nodes=c.nodes), CHILD)  # type: ignore[arg-type]
    for n in c.nodes:
        for name, rdtype in ((f"www.{CHILD}", "A"), (CHILD, "DNSKEY"), (CHILD, "SOA")):
            assert algorithms(n, name, rdtype) == (dnskeys, sigs), (n.node_id, name, rdtype)


def by_alg(ks: dict[str, dict[str, Any]], alg: int, role: str = "") -> list[str]:
    return sorted(i for i, k in ks.items() if k["algorithm_number"] == alg
                  and (not role or k["role"] == role))


def confirm_new_ds(live: list[NodeProcess], via: NodeProcess, new_ksk: dict[str, Any],
                   old_ds: str) -> None:
    """The operator swaps the DS at the parent, then confirms it with `zone ds-seen`."""
    set_parent_ds(live, PARENT, CHILD, [child_ds(via, CHILD, new_ksk["tag"])], remove=(old_ds,))
    assert ctl_json(via, "zone", "ds-seen", CHILD, new_ksk["key_id"])["key"]["ds_seen"]


def test_algorithm_roll_ecdsa_to_ed25519(cluster: Cluster, unbound: tuple[str, int]) -> None:
    c, via = cluster, cluster.nodes[1]
    tl = Timeline("algorithm roll ECDSAP256SHA256 -> ED25519", CHILD)
    with Watcher(unbound, zone=CHILD) as w:
        old_ds = child_ds(via, CHILD)
        # a longer Dprp with it (a settings change too): each stage lasts long enough to
        # be seen by polling `zone dnssec` on a loaded machine
        out = ctl_json(via, "zone", "sign", CHILD, "--algorithm", "ED25519",
                       "--propagation-delay", f"{DPRP}s")
        assert out["state"] == "done" and "algorithm" in out["message"], out
        assert ctl_json(via, "zone", "dnssec", CHILD)["settings"]["propagation_delay"] == DPRP

        # 1. the new keys sign every RRset; their DNSKEYs are not published yet (the
        # stages are watched in DNS, quicker to ask than `zone dnssec` on a loaded machine)
        wait_until(lambda: algorithms(via, f"www.{CHILD}", "A") == ({ECDSA}, {ECDSA, ED25519}),
                   30, interval=0.1, message="signed with both algorithms, new keys unpublished")
        check_everywhere(c, {ECDSA}, {ECDSA, ED25519})
        ks = tl.poll(via)
        assert len(by_alg(ks, ED25519)) == 2
        assert {ks[i]["state"] for i in by_alg(ks, ED25519)} <= {"presigning", "active"}
        again = via.ctl("zone", "sign", CHILD, "--algorithm", "ECDSAP256SHA256")
        assert again.returncode != 0 and "under way" in again.stderr, again.stderr

        # 2. published after Dprp + max TTL; 3. ready after Dprp + DNSKEY TTL
        ks = tl.until(via, lambda k: all(k[i]["state"] == "active" and k[i]["ready"]
                                         for i in by_alg(k, ED25519)), "ED25519 keys ready")
        check_everywhere(c, {ECDSA, ED25519}, {ECDSA, ED25519})
        (new_ksk,) = (ks[i] for i in by_alg(ks, ED25519, "ksk"))
        cds = query(via, CHILD, "CDS")
        assert {rd.algorithm for rs in cds.answer if rs.rdtype == dns.rdatatype.CDS
                for rd in rs} == {ED25519}

        # 4. it waits for the DS, and never goes on by itself
        st = ctl_json(via, "zone", "dnssec", CHILD)
        assert st["next_step"] == "algorithm-withdraw" and "ds-seen" in st["waiting_for"], st
        deadline = time.monotonic() + 3 * (TTL + TTL)
        while time.monotonic() < deadline:
            assert len(by_alg(tl.poll(via), ECDSA)) == 2
        confirm_new_ds(c.nodes, via, new_ksk, old_ds)

        # 5. the old DNSKEYs are withdrawn after the old DS's life; the old keys still sign
        wait_until(lambda: algorithms(via, f"www.{CHILD}", "A") == ({ED25519}, {ECDSA, ED25519}),
                   30, interval=0.1, message="old DNSKEYs withdrawn, old keys still signing")
        check_everywhere(c, {ED25519}, {ECDSA, ED25519})
        tl.poll(via)

        # 6. then the old keys go
        tl.until(via, lambda k: not by_alg(k, ECDSA), "old keys removed")
        wait_until(lambda: algorithms(via, f"www.{CHILD}", "A")[1] == {ED25519}, 30,
                   interval=0.2, message="signed with ED25519 only")
        check_everywhere(c, {ED25519}, {ED25519})
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    tl.write()
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])


def denial(node: NodeProcess) -> tuple[set[int], str]:
    """(denial record types in an NXDOMAIN answer, the NSEC3PARAM salt or "")."""
    r = query(node, f"nope-{time.time_ns()}.{CHILD}", "A")
    types = {rs.rdtype for rs in r.authority} & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}
    p = query(node, CHILD, "NSEC3PARAM")
    salts = [rd.salt.hex() for rs in p.answer if rs.rdtype == dns.rdatatype.NSEC3PARAM
             for rd in rs]
    return types, salts[0] if salts else ""


def test_nsec_to_nsec3_a_new_salt_and_back_to_nsec(cluster: Cluster,
                                                   unbound: tuple[str, int]) -> None:
    c, via = cluster, cluster.nodes[0]
    assert ctl_json(via, "zone", "dnssec", CHILD)["settings"]["denial"] == "nsec"
    with Watcher(unbound, zone=CHILD) as w:
        w.observe(2 * TTL)  # the validator caches NSEC proofs first
        out = ctl_json(via, "zone", "sign", CHILD, "--nsec3", "--salt", "aabbccdd")
        assert out["state"] == "done" and "nsec3" in out["message"], out
        for n in c.nodes:
            wait_until(lambda n=n: denial(n) == ({dns.rdatatype.NSEC3}, "aabbccdd"), 30,
                       interval=0.2, message=f"{n.node_id} serves NSEC3")
        assert_identical(SimpleNamespace(nodes=c.nodes), CHILD)  # type: ignore[arg-type]
        w.observe(2 * TTL)  # observation window: the validator asks with NSEC3 proofs cached
        out = ctl_json(via, "zone", "sign", CHILD, "--salt", "random:8")
        st = ctl_json(via, "zone", "dnssec", CHILD)["settings"]
        assert st["denial"] == "nsec3" and len(st["salt"]) == 16 and st["salt"] != "aabbccdd"
        for n in c.nodes:
            wait_until(lambda n=n: denial(n) == ({dns.rdatatype.NSEC3}, st["salt"]), 30,
                       interval=0.2, message=f"{n.node_id} serves the new salt")
        same = ctl_json(via, "zone", "sign", CHILD)  # the same settings again: no change
        assert same["state"] == "done" and "nothing" in same["message"], same
        w.observe(2 * TTL)  # observation window: the old salt's proofs expire in its cache
        ctl_json(via, "zone", "sign", CHILD, "--nsec", "--cds-ttl", "5")  # NSEC3 -> NSEC
        for n in c.nodes:
            wait_until(lambda n=n: denial(n) == ({dns.rdatatype.NSEC}, ""), 30,
                       interval=0.2, message=f"{n.node_id} serves NSEC")
            assert {rs.ttl for rs in query(n, CHILD, "CDS").answer} == {5}
        assert_identical(SimpleNamespace(nodes=c.nodes), CHILD)  # type: ignore[arg-type]
        w.observe(2 * TTL)  # observation window: the cached NSEC3 proofs expire under NSEC
    assert w.asked > 20 and not w.bogus, (w.asked, w.bogus[:5])


def test_new_keys_is_a_ksk_and_zsk_rollover(cluster: Cluster, unbound: tuple[str, int]) -> None:
    c, via = cluster, cluster.nodes[2]
    tl = Timeline("zone sign --new-keys: KSK and ZSK rolled at once", CHILD)
    with Watcher(unbound, zone=CHILD) as w:
        before = tl.poll(via)
        old_ds = child_ds(via, CHILD)
        out = ctl_json(via, "zone", "sign", CHILD, "--new-keys")
        assert out["state"] == "done" and "rollover" in out["message"], out
        # both successors come; the old keys stay until their rollovers end
        ks = tl.until(via, lambda k: len(k) == 4, "a successor of each key")
        assert set(before) <= set(ks)
        def new_ksks(k: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
            return [x for i, x in k.items() if x["role"] == "ksk" and i not in before]

        ks = tl.until(via, lambda k: any(x["ready"] for x in new_ksks(k)), "new KSK ready")
        (new_ksk,) = new_ksks(ks)
        assert new_ksk["predecessor"] in before
        confirm_new_ds(c.nodes, via, new_ksk, old_ds)
        ks = tl.until(via, lambda k: not set(before) & set(k), "old keys removed")
        assert len(ks) == 2 and {x["state"] for x in ks.values()} == {"active"}
        assert_identical(SimpleNamespace(nodes=c.nodes), CHILD)  # type: ignore[arg-type]
        w.observe(2 * TTL)
    tl.write()
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])


def test_algorithm_roll_resumes_after_the_keymaster_is_killed_and_seized(
        cluster: Cluster, unbound: tuple[str, int]) -> None:
    """`zone sign CHILD --like PARENT`: the parent's settings (ECDSAP256SHA256, NSEC3, a
    2 s Dprp) start a roll back from ED25519 and switch NSEC -> NSEC3 at once; the Key
    Master dies (`kill -9`) once the new keys exist; `seize-keymaster` moves the role and
    the new holder finishes the roll from the key states in etcd."""
    c = cluster
    holder = ctl_json(c.nodes[0], "zone", "dnssec", CHILD)["keymaster"]["node"]
    km = c.node(holder)
    others = [n for n in c.nodes if n is not km]
    via = others[0]
    tl = Timeline("algorithm roll ED25519 -> ECDSAP256SHA256, Key Master killed, seized",
                  CHILD)
    with Watcher(unbound, zone=CHILD) as w:
        old_ds = child_ds(via, CHILD)
        out = ctl_json(via, "zone", "sign", CHILD, "--like", PARENT)
        assert "algorithm" in out["message"] and "nsec3" in out["message"], out
        mine = ctl_json(via, "zone", "dnssec", CHILD)["settings"]
        theirs = ctl_json(via, "zone", "dnssec", PARENT)["settings"]
        for name in ("algorithm", "denial", "salt", "iterations", "validity", "dnskey_ttl",
                     "propagation_delay"):
            assert mine[name] == theirs[name], name
        tl.until(via, lambda k: len(by_alg(k, ECDSA)) == 2, "ECDSA keys")
        km.kill()
        wait_until(lambda: not ctl_json(via, "zone", "dnssec", CHILD)["keymaster"]["online"],
                   30, interval=0.3, message="the Key Master's lease is gone")
        res = via.ctl("--json", "seize-keymaster", CHILD, "--to", others[1].node_id,
                      timeout=90)
        assert res.returncode == 0, res.stdout + res.stderr
        ks = tl.until(via, lambda k: all(k[i]["ready"] for i in by_alg(k, ECDSA)),
                      "ECDSA keys ready")
        (new_ksk,) = (ks[i] for i in by_alg(ks, ECDSA, "ksk"))
        confirm_new_ds(others, via, new_ksk, old_ds)
        tl.until(via, lambda k: not by_alg(k, ED25519), "ED25519 keys removed")
        assert ctl_json(via, "zone", "dnssec", CHILD)["keymaster"]["node"] == \
            others[1].node_id
        w.observe(2 * TTL)
    tl.write()
    assert w.asked > 30 and not w.bogus, (w.asked, w.bogus[:5])
