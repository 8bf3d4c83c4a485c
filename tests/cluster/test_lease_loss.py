"""A node that lost its etcd lease says so, with the reason (issue #8, "found as a new user
would"): `clusterctl nodes` shows when and why, and a `zone sign --keymaster` refused
because that node is offline names it. The loss is made real: SIGSTOP of the node past its
lease TTL, then SIGCONT (as a node busy for longer than the TTL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

LEASE = 4


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    c = make_cluster(count=2, lease_ttl=LEASE)
    try:
        yield c
    finally:
        c.close()


def row(via: NodeProcess, node_id: str) -> dict:  # type: ignore[type-arg]
    res = via.ctl("--json", "nodes")
    assert res.returncode == 0, res.stderr
    return next(n for n in json.loads(res.stdout) if n["id"] == node_id)  # type: ignore[no-any-return]


def test_a_node_that_lost_its_lease_says_so(two_nodes: Cluster) -> None:
    n1, n2 = two_nodes.nodes
    n1.pause()
    try:
        wait_until(lambda: not row(n2, "n1")["alive"], LEASE * 4, interval=0.3,
                   message="n1's lease did not expire while it was stopped")
    finally:
        n1.resume()
    wait_until(lambda: row(n2, "n1")["alive"], 30, interval=0.3, message="n1 did not return")
    lost = wait_until(lambda: row(n2, "n1").get("lease_lost"), 10, interval=0.3,
                      message="clusterctl nodes does not say that n1 lost its lease")
    assert lost.startswith("lease lost at ") and "keepalive failed for" in lost, lost
    table = n2.ctl("nodes").stdout
    assert "n1: lease lost at" in table, table
    # offline now: the refusal of `zone sign --keymaster n1` names what is known
    n1.kill()
    wait_until(lambda: not row(n2, "n1")["alive"], LEASE * 4, interval=0.3)
    with Api(n2.api) as api:
        api.create_zone("lost.test.", "$ORIGIN lost.test.\n@ 3600 IN SOA ns1 h 1 3600 600 "
                                      "604800 300\n@ 3600 IN NS ns1\nns1 300 IN A 192.0.2.1\n")
    res = n2.ctl("zone", "sign", "lost.test.", "--keymaster", "n1")
    assert res.returncode != 0 and "offline" in res.stderr, res
    assert "lease lost at" in res.stderr, res.stderr
