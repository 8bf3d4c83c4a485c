"""SIGTERM of a node (issue #8, finding 10): once its lease is revoked its liveness key is
gone for good; the node must not grant a new lease and re-register as alive while it stops
(that delayed failover by a lease TTL). etcd's history is read directly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.etcd import find_binary
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def one_node() -> Iterator[Cluster]:
    # test-only fault injection: the node lingers after its revoke (a slow DNS stop or pool
    # drain), long enough for a session loop that still runs to grant a new lease
    c = make_cluster(count=1, lease_ttl=4, extra_toml="[testing]\nshutdown_pause = 2.5\n")
    try:
        yield c
    finally:
        c.close()


def history(c: Cluster, key: str, since: int) -> list[str]:
    """PUT/DELETE events of `key` from revision `since` on, as etcd recorded them."""
    cmd = [find_binary("etcdctl"), f"--endpoints={c.etcd.endpoint}", "watch", "--rev",
           str(since), key]
    try:  # a watch from an old revision replays the history, then blocks: cut it off
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3,
                             env={"ETCDCTL_API": "3"}).stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return [line for line in out.splitlines() if line in ("PUT", "DELETE")]


def test_sigterm_removes_the_liveness_key_for_good(one_node: Cluster) -> None:
    c = one_node
    node = c.nodes[0]
    key = c.prefix + "alive/" + node.node_id
    wait_until(lambda: c.etcd.ctl("get", key, "--print-value-only").strip(), 10)
    since = json.loads(c.etcd.ctl("get", key, "-w", "json"))["header"]["revision"]
    assert node.terminate(timeout=30) == 0
    events = history(c, key, since + 1)
    assert "DELETE" in events, (events, node.log_tail())
    after = events[events.index("DELETE"):]
    assert after == ["DELETE"], (
        f"the stopping node re-registered as alive after revoking its lease: {events}\n"
        f"{node.log_tail()}")
    assert not c.etcd.ctl("get", key, "--print-value-only").strip()
