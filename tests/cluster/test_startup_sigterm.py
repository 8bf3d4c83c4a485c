"""SIGTERM during start-up: a node whose etcd does not answer stops promptly.

Kubernetes sends SIGTERM and waits for the grace period; a node stuck in its
initial zone load (etcd down, or refusing its credentials) must still exit, with
the exit code of a normal stop, well within it.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

_NODE_STARTED = 1001
_DEADLINE = 15.0  # generous: the node should be gone in about a second


def test_sigterm_while_etcd_is_unreachable_stops_the_node() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    node = NodeProcess("n1", ["127.0.0.1:1"], prefix, workdir)  # nothing listens on port 1
    node.start(wait=False)
    assert node.proc is not None
    try:
        # the start-up event follows the signal handlers: SIGTERM now reaches the node's loop
        wait_until(lambda: events(node, _NODE_STARTED) if node.log_path.exists() else [],
                   30, message=f"node never started:\n{node.log_tail()}")
        node.proc.send_signal(15)
        try:
            code = node.proc.wait(_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"node still running {_DEADLINE}s after SIGTERM during "
                                 f"start-up:\n{node.log_tail()}") from None
        assert code == 0, node.log_tail()
    finally:
        node.kill()
