"""`dns.max_tcp_connections` is the node's cap, counted together by its serving workers.

Each worker has its own listener. With the whole cap each, a node with 2
workers accepted 2x the configured connections; with an equal share each, a
worker refused clients while the node was far below the cap (the kernel
spreads connections by a hash, not evenly). Each worker now gets the whole
cap and counts against the sum of every worker's open connections
(`node/serving/tcpcount.py`, one shared memfd page).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.config import load_config
from node.serving.supervisor import Fleet
from node.serving.tcpcount import TcpCounts


@pytest.mark.parametrize(("workers", "cap"), [(1, 1000), (2, 1000), (3, 1000), (4, 2)])
def test_each_worker_is_given_the_nodes_cap(tmp_path: Path, workers: int, cap: int) -> None:
    config = load_config(None, env={"DNSNODE_NODE_ID": "n1",
                                    "DNSNODE_SERVER__WORKERS": str(workers),
                                    "DNSNODE_DNS__MAX_TCP_CONNECTIONS": str(cap),
                                    "DNSNODE_SERVER__IMAGE_DIR": str(tmp_path)})
    fleet = Fleet.from_config(config)
    try:
        assert fleet.settings["max_tcp_connections"] == cap
        assert fleet.tcp_counts.slots == workers
    finally:
        fleet.tcp_counts.close()
        fleet.images.close()


def test_workers_count_against_the_sum_of_every_slot() -> None:
    counts = TcpCounts.create(3)
    # a worker maps the same memfd through its own descriptor (pass_fds in the supervisor)
    other = TcpCounts(os.dup(counts.fd), 3)
    try:
        first, second = counts.counter(0), other.counter(2)
        assert first(4) == 4
        assert second(5) == 9  # its own 5 and the first worker's 4
        assert first(3) == 8
        counts.set(2, 0)  # the second worker ended: the supervisor zeroes its slot
        assert first(3) == 3 and other.total() == 3
    finally:
        other.close()
        counts.close()
