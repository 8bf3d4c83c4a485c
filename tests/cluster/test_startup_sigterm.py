"""SIGTERM during start-up: a node whose etcd does not answer (or refuses it) stops promptly.

Kubernetes sends SIGTERM and waits for the grace period; a node stuck in its
initial zone load (etcd down, or refusing the node's user access to its prefix)
must still exit, with the exit code of a normal stop, well within it.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

_NODE_STARTED = 1001
_DEADLINE = 15.0  # generous: the node should be gone in about a second


def _sigterm_stops(node: NodeProcess) -> None:
    node.start(wait=False)
    assert node.proc is not None
    try:
        # the start-up event follows the signal handlers: SIGTERM now reaches the node's loop
        wait_until(lambda: events(node, _NODE_STARTED) if node.log_path.exists() else [],
                   30, message=f"node never started:\n{node.log_tail()}")
        wait_until(lambda: '"during": "load"' in node.log_path.read_text(), 30,
                   message=f"node is not retrying its initial load:\n{node.log_tail()}")
        node.proc.send_signal(15)
        try:
            code = node.proc.wait(_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"node still running {_DEADLINE}s after SIGTERM during "
                                 f"start-up:\n{node.log_tail()}") from None
        assert code == 0, node.log_tail()
    finally:
        node.kill()


def _prefix() -> str:
    return f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"


def test_sigterm_while_etcd_is_unreachable_stops_the_node() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-"))
    _sigterm_stops(NodeProcess("n1", ["127.0.0.1:1"], _prefix(), workdir))  # nothing on port 1


def test_sigterm_while_etcd_refuses_the_node_stops_it() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-auth-"))
    with EtcdProcess("noperm") as etcd:  # started by the context manager
        etcd.ctl("user", "add", "root:rootpw")
        etcd.ctl("user", "add", "dns:dnspw")  # a user without any role: every read is denied
        etcd.ctl("auth", "enable")
        env = {"DNSNODE_ETCD__USERNAME": "dns", "DNSNODE_ETCD__PASSWORD": "dnspw"}
        _sigterm_stops(NodeProcess("n1", [etcd.endpoint], _prefix(), workdir, env=env))
