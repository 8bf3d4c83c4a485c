"""Cluster fixtures: a private etcd and three real `dns-node` processes, shared per module.

A cluster that fails to start writes every one of its processes' logs to
stderr (`tests/support/proclog.py`) before the error propagates.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import proclog
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess


@dataclass
class Cluster:
    etcd: EtcdProcess
    nodes: list[NodeProcess]
    prefix: str
    workdir: Path

    def node(self, node_id: str) -> NodeProcess:
        return next(n for n in self.nodes if n.node_id == node_id)

    def close(self) -> None:
        for n in self.nodes:
            n.kill()
        self.etcd.close()


def make_cluster(count: int = 3, **node_kwargs: object) -> Cluster:
    mark = proclog.mark()
    etcd = EtcdProcess("cluster")
    try:
        etcd.start()
    except BaseException:
        proclog.dump_since(mark)
        etcd.close()
        raise
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    nodes = [
        NodeProcess(f"n{i + 1}", [etcd.endpoint], prefix, workdir, **node_kwargs)  # type: ignore[arg-type]
        for i in range(count)
    ]
    cluster = Cluster(etcd, nodes, prefix, workdir)
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready()
    except BaseException:
        cluster.close()
        proclog.dump_since(mark)
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = make_cluster()
    try:
        yield c
    finally:
        c.close()
