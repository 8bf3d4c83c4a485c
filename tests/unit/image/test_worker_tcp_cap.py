"""`dns.max_tcp_connections` is the node's cap, shared out among its serving workers.

Each worker has its own listener and counts its own connections; with the
whole cap each, a node with 2 workers accepted 2x the configured
connections (tests/cluster/test_hostile_input.py with workers = 2: 1100 of
1100 answered, cap 1000). Each worker gets an equal share (at least 1), so
the node never holds more than the cap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import load_config
from node.serving.supervisor import Fleet


@pytest.mark.parametrize(("workers", "cap", "share"), [(1, 1000, 1000), (2, 1000, 500),
                                                        (3, 1000, 333), (4, 2, 1)])
def test_each_worker_gets_its_share_of_the_cap(tmp_path: Path, workers: int, cap: int,
                                               share: int) -> None:
    config = load_config(None, env={"DNSNODE_NODE_ID": "n1",
                                    "DNSNODE_SERVER__WORKERS": str(workers),
                                    "DNSNODE_DNS__MAX_TCP_CONNECTIONS": str(cap),
                                    "DNSNODE_SERVER__IMAGE_DIR": str(tmp_path)})
    fleet = Fleet.from_config(config)
    assert fleet.settings["max_tcp_connections"] == share
    assert share * workers <= cap or share == 1
