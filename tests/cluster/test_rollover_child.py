"""KSK rolls of a child zone whose parent is in the cluster (issue #11 part 7): the parent's
Key Master polls the child's CDS/CDNSKEY and keeps its DS current, and the child's Key Master
sees the new DS at the parent, so a roll completes with no operator action.

Unbound trusts only the parent's DS and reaches the child through it, keeps its cache and
asks fresh and repeated names the whole time; an answer that is SERVFAIL or lacks AD is
bogus, and there must be none. The second roll loses the child's Key Master to `kill -9`
right after the successor KSK is introduced; `seize-keymaster` moves every role that node
held, and the roll completes from the state in etcd. TTLs, Dprp, DprpP and TTLds are 2 s
and the parent polls every second. Set DNSCLUSTER_ROLLOVER_TIMELINE=FILE for the timelines.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_identical_copies import assert_identical
from tests.cluster.test_signing import ctl_json
from tests.support.nodes import NodeProcess
from tests.support.rollover import (
    TTL,
    Timeline,
    Watcher,
    parent_child_cluster,
    served_ds,
)
from tests.support.unbound import validator
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

PARENT = "pc.test."
CHILD = f"kid.{PARENT}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # the first DS is the operator's (an insecure delegation is never bootstrapped)
    with parent_child_cluster(PARENT, CHILD, extra_toml="cds_poll_interval = 1.0\n",
                              wait_for_ds=False) as c:
        yield c


def ksks(ks: dict[str, dict[str, Any]], state: str = "active") -> list[str]:
    return [i for i, k in ks.items() if k["role"] == "ksk" and k["state"] == state]


def holder(node: NodeProcess, zone: str) -> str:
    return str(ctl_json(node, "zone", "dnssec", zone)["keymaster"]["node"])


def roll_ksk(c: Cluster, via: NodeProcess, live: list[NodeProcess], tl: Timeline,
             *, kill: NodeProcess | None = None) -> None:
    """One KSK roll of the child, checked at each step; no `ds-seen`, no DS by hand."""
    view = SimpleNamespace(nodes=live)
    (old,) = ksks(tl.poll(via))
    for n in live:
        wait_until(lambda n=n: served_ds(n, CHILD) == {tl.seen[old]["tag"]}, 30, interval=0.2,
                   message=f"{n.node_id} serves the current DS")
    ctl_json(via, "zone", "rollover", CHILD, "--ksk")
    ks = tl.until(via, lambda k: len(ksks(k)) == 2, "a second KSK")
    (new,) = [i for i in ksks(ks) if i != old]
    old_tag, new_tag = ks[old]["tag"], ks[new]["tag"]

    if kill is not None:  # the Key Master dies mid-roll; every role it held is seized
        held = [z for z in (PARENT, CHILD) if holder(via, z) == kill.node_id]
        assert CHILD in held
        kill.kill()
        for zone in held:
            wait_until(lambda z=zone: not ctl_json(via, "zone", "dnssec", z)["keymaster"]
                       ["online"], 30, interval=0.3, message="the Key Master's lease is gone")
            res = via.ctl("--json", "seize-keymaster", zone, "--to", via.node_id, timeout=90)
            assert res.returncode == 0, res.stdout + res.stderr
            assert json.loads(res.stdout)["state"] == "done"

    # the parent keeps the old DS until the new KSK is ready (CDS names the old one)
    ks = tl.until(via, lambda k: bool(k[new]["ready"]), "the new KSK ready")
    # the parent's poll replaces the DS; the child sees it there and records ds_seen itself
    for n in live:
        wait_until(lambda n=n: served_ds(n, CHILD) == {new_tag}, 60, interval=0.2,
                   message=f"{n.node_id} serves the new DS")
    ks = tl.until(via, lambda k: old not in k or bool(k[new]["ds_seen"]), "ds_seen recorded")
    ks = tl.until(via, lambda k: old not in k, "the old KSK removed")
    assert ksks(ks) == [new] and tl.seen[new]["ds_seen"], tl.seen[new]
    assert_identical(view, CHILD)  # type: ignore[arg-type]
    assert_identical(view, PARENT)  # type: ignore[arg-type]
    for n in live:
        assert served_ds(n, CHILD) == {new_tag} and old_tag != new_tag
    st = ctl_json(via, "zone", "dnssec", CHILD)
    assert "ds-seen" not in st["waiting_for"], st
    tl.write()


def test_child_ksk_roll_completes_by_cds_polling(cluster: Cluster) -> None:
    c = cluster
    anchor = c.nodes[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    tl = Timeline("KSK roll, parent in the cluster (CDS polling)", CHILD)
    with validator(anchor, [PARENT, CHILD], c.nodes, f"www.{CHILD}") as server, \
            Watcher(server, zone=CHILD) as w:
        roll_ksk(c, c.nodes[1], c.nodes, tl)
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])


def test_keymaster_killed_mid_ksk_roll_then_seized_completes_it(cluster: Cluster) -> None:
    c = cluster
    km = c.node(holder(c.nodes[0], CHILD))
    others = [n for n in c.nodes if n is not km]
    anchor = others[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    tl = Timeline("KSK roll, parent in the cluster, Key Master killed and seized", CHILD)
    with validator(anchor, [PARENT, CHILD], others, f"www.{CHILD}") as server, \
            Watcher(server, zone=CHILD) as w:
        roll_ksk(c, others[0], others, tl, kill=km)
        w.observe(2 * TTL)
    assert holder(others[0], CHILD) == others[0].node_id
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])
