"""The process fixtures themselves: ports never handed out twice, bind clashes retried,
and a fixture that fails shows every process's log.

The flake these guard against: `free_port()` closed its probe socket before
returning, so the kernel could hand the same port to the next call (or to an
outgoing connection) and two processes of one cluster collided
(`OSError: [Errno 98] Address already in use` in a node's log, every test of
the module erroring in its fixture).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cluster.conftest import make_cluster
from tests.support import etcd as etcd_support
from tests.support import nodes as node_support
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


@pytest.mark.parametrize("free_port", [node_support.free_port, etcd_support.free_port],
                         ids=["nodes", "etcd"])
def test_free_port_never_hands_out_a_port_twice(free_port) -> None:  # type: ignore[no-untyped-def]
    ports = [free_port() for _ in range(3000)]
    repeated = len(ports) - len(set(ports))
    assert repeated == 0, f"{repeated} ports handed out twice"


def test_free_ports_stay_out_of_the_kernels_ephemeral_range() -> None:
    # outgoing connections (a node to etcd, clusterctl to a node) take ephemeral ports
    low, high = _ephemeral_range()
    if low <= 1100 and high >= 65000:
        pytest.skip("the ephemeral range covers every port")
    inside = [p for p in (node_support.free_port() for _ in range(200)) if low <= p <= high]
    assert not inside, f"{len(inside)} of 200 ports in the ephemeral range {low}-{high}"


def test_a_node_whose_port_is_taken_starts_on_other_ports(etcd: EtcdProcess, key_prefix: str,
                                                          tmp_path: Path) -> None:
    node = NodeProcess("clash", [etcd.endpoint], key_prefix, tmp_path)
    taken = node.metrics_port
    with socket.socket() as squatter:
        squatter.bind((node.host, taken))
        squatter.listen()
        try:
            node.start(timeout=60)
            assert node.ready()
            assert node.metrics_port != taken
        finally:
            node.kill()


def test_a_failed_cluster_fixture_prints_every_log(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AssertionError):
        make_cluster(count=2, extra_toml="[bogus]\nsetting = 1\n")
    err = capsys.readouterr().err
    for name in ("n1", "n2", "etcd-cluster"):
        assert f"---- {name} log" in err, err[-3000:]
    assert "bogus: unknown setting" in err
