"""The zone's KEK decides who may hold its Key Master role (issue #8, finding 5).

n1 and n3 hold the KEK the zone's keys are wrapped under, n2 another one. A node with
another KEK cannot unwrap the keys, so it must never win an election (a later
`--new-keys` would wrap new keys under its KEK and every correct node would stop
signing), and a holder restarted with another KEK must not take its role back.
Lease TTL 4 s; the "never" windows are several times the failover delay.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_keymaster import LEASE, ctl, events, holder, signed_zone
from tests.cluster.test_signing import kek_file
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

FAILOVER_AFTER = 1


def signing_toml(kek: Path, keydir: Path) -> str:
    return (f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.1\nstagger_max = 0.3\n'
            f'key_store = "{keydir}/store-{{node_id}}"\n')


@pytest.fixture
def kek_cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    right, wrong = kek_file(keydir, "right"), kek_file(keydir, "wrong")
    etcd = EtcdProcess("kek")
    etcd.start()
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-"))
    prefix = "/kek/dnscluster/v1/"
    nodes = [NodeProcess(node_id, [etcd.endpoint], prefix, workdir, lease_ttl=LEASE,
                         extra_toml=signing_toml(kek, keydir))
             for node_id, kek in (("n1", right), ("n2", wrong), ("n3", right))]
    c = Cluster(etcd, nodes, prefix, workdir)
    c.keks = (right, wrong, keydir)  # type: ignore[attr-defined]
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(60)
        yield c
    finally:
        c.close()


def offline(c: Cluster, zone: str, via: NodeProcess) -> bool:
    return not holder(c, zone, via)["online"]


def test_a_node_with_another_kek_is_never_elected(kek_cluster: Cluster) -> None:
    c = kek_cluster
    n1, n2, n3 = c.nodes
    zone = "kek-election.test."
    signed_zone(c, zone, "--failover", "auto", "--failover-after", f"{FAILOVER_AFTER}s")
    assert holder(c, zone)["node"] == "n1"
    n3.kill()  # only the holder and the wrong-KEK node are left
    n1.kill()
    wait_until(lambda: offline(c, zone, n2), LEASE * 3, interval=0.3)
    with pytest.raises(AssertionError):  # failover is due after 1 s: give it many times that
        wait_until(lambda: holder(c, zone, n2)["node"] != "n1", FAILOVER_AFTER + 3 * LEASE,
                   interval=0.3)
    assert not events(n2, "KEYMASTER_ELECTED", zone), n2.log_tail()
    # a node with the zone's KEK is elected as soon as it is back
    n3.start()
    wait_until(lambda: holder(c, zone, n2)["node"] == "n3" and holder(c, zone, n2)["acquired"],
               FAILOVER_AFTER + 3 * LEASE + 10, interval=0.3,
               message="the node with the zone's KEK was not elected")
    assert holder(c, zone, n2)["node"] == "n3"


def test_a_holder_restarted_with_another_kek_does_not_take_the_role_back(
        kek_cluster: Cluster) -> None:
    c = kek_cluster
    n1, n2, _ = c.nodes
    _right, wrong, keydir = c.keks  # type: ignore[attr-defined]
    zone = "kek-restart.test."
    signed_zone(c, zone, "--failover", "manual")
    n1.kill()
    wait_until(lambda: offline(c, zone, n2), LEASE * 3, interval=0.3)
    acquired_before = events(n1, "KEYMASTER_ACQUIRED", zone)
    n1.extra_toml = signing_toml(wrong, keydir)
    n1.start(wait=False)
    wait_until(lambda: holder(c, zone, n2)["online"], 60, interval=0.3,
               message="n1 did not come back")  # alive, though it cannot sign the zone
    with pytest.raises(AssertionError):
        wait_until(lambda: events(n1, "KEYMASTER_ACQUIRED", zone) > acquired_before,
                   3 * LEASE, interval=0.3)
    code, out = ctl(n2, "zone", "dnssec", zone)
    assert code == 0 and out["keymaster"]["node"] == "n1", out
