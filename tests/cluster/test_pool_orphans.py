"""A node killed with SIGKILL leaves no worker process behind (issue 10: work in niced
worker processes). Its parsing/signing pool processes used to live on as orphans for
good, each holding tens of MiB (one CI run left 130 of them): a spawned pool worker
holds its own copy of the job queue's write end, so it never sees the queue close."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.cluster.conftest import make_cluster
from tests.support.pids import ended, pool_children
from tests.support.wait import wait_until

ZONE = "orphans.test."
TEXT = f"""$TTL 300
@ IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 7200 3600 1209600 300
@ IN NS ns1.{ZONE}
ns1 IN A 192.0.2.1
www IN A 192.0.2.2
"""


def test_kill_9_of_a_node_ends_its_pool_processes(tmp_path: Path) -> None:
    c = make_cluster(count=1)
    try:
        node = c.nodes[0]
        zone_file = tmp_path / "zone"
        zone_file.write_text(TEXT)
        res = node.ctl("zone", "import", ZONE, str(zone_file), timeout=90)
        assert res.returncode == 0, res.stderr
        pool = wait_until(lambda: pool_children(node.proc.pid), 30,
                          message="the import started no pool process")
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=30)
        wait_until(lambda: all(ended(p) for p in pool), 20,
                   message=f"pool processes {pool} outlived their node")
    finally:
        c.close()
