"""Three real nodes on a real 3-member etcd: member loss, lost quorum, a paused leader,
a member cut off from its peers.

One etcd cluster and three nodes for the module; node n<i> lists every member with
m<i> first. Each test leaves every member running and healthy and every node ready.
Recovery times are measured (never asserted) and, when `DNSCLUSTER_FAULT_TIMES`
names a file, written there as JSON (`bench/etcd_faults.py` prints them).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.rdatatype
import grpc
import pytest

from tests.support import partition
from tests.support.api import Api
from tests.support.etcd import EtcdCluster
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

SOA_TEXT = """$ORIGIN {zone}
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
"""
TIMES: dict[str, dict[str, float]] = {}  # scenario -> node id -> seconds to recover


@dataclass
class Members:
    etcd: EtcdCluster
    nodes: list[NodeProcess]

    def logs(self) -> str:
        return self.etcd.log_tails() + "".join(
            f"\n--- node {n.node_id}:\n{n.log_tail(25)}" for n in self.nodes)

    def heal(self) -> None:
        """Every member running, one leader, every node ready (the state each test leaves)."""
        for m in self.etcd.members:
            if not m.running:
                m.restart()
        self.etcd.wait_healthy(60)
        for n in self.nodes:
            n.wait_ready(60)


@pytest.fixture(scope="module")
def members() -> Iterator[Members]:
    etcd = EtcdCluster(3, own_groups=os.geteuid() == 0)
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-etcd3-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    ends = etcd.endpoints
    nodes = [NodeProcess(f"n{i + 1}", ends[i:] + ends[:i], prefix, workdir) for i in range(3)]
    setup = Members(etcd, nodes)
    try:
        etcd.start()
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(60)
    except BaseException as exc:
        for n in nodes:
            n.kill()
        etcd.close()
        raise AssertionError(f"3-member etcd cluster did not start: {exc}\n{setup.logs()}") from exc
    try:
        yield setup
    finally:
        for n in nodes:
            n.kill()
        etcd.close()
        out = os.environ.get("DNSCLUSTER_FAULT_TIMES")
        if out and TIMES:
            Path(out).write_text(json.dumps(TIMES, indent=2))


def new_zone(setup: Members, name: str) -> str:
    with Api(setup.nodes[0].api, timeout=30) as api:
        api.create_zone(name, SOA_TEXT.format(zone=name))
    for n in setup.nodes:
        wait_until(lambda n=n: n.serial(name) is not None, 20, message=f"{n.node_id} has {name}")
    return name


def answers(node: NodeProcess, name: str) -> set[str]:
    try:
        resp = node.query(name, "A", timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return set()
    return {rd.to_text() for rrset in resp.answer if rrset.rdtype == dns.rdatatype.A
            for rd in rrset}


def add(node: NodeProcess, zone: str, owner: str, address: str) -> int:
    with Api(node.api, timeout=20) as api:
        return api.add(zone, owner, 300, "A", address)


def add_when_possible(node: NodeProcess, zone: str, owner: str, address: str,
                      timeout: float) -> int:
    """Retry the write until it is acknowledged (the same record twice is one record)."""

    def attempt() -> int | None:
        try:
            return add(node, zone, owner, address)
        except grpc.RpcError:
            return None

    return int(wait_until(attempt, timeout, interval=0.1,
                          message=f"no write through {node.node_id} within {timeout}s"))


def served_everywhere(setup: Members, zone: str, wanted: dict[str, str], timeout: float,
                      ) -> dict[str, float]:
    """Wait until every node serves every `owner -> address`; seconds each node took."""
    started = time.monotonic()
    took = {}
    for n in setup.nodes:
        for owner, address in wanted.items():
            wait_until(lambda n=n, o=owner, a=address: answers(n, f"{o}.{zone}") == {a}, timeout,
                       interval=0.05,
                       message=f"{n.node_id} does not serve {owner}.{zone}\n{setup.logs()}")
        took[n.node_id] = round(time.monotonic() - started, 2)
    return took


def lease_losses(node: NodeProcess) -> int:
    try:
        return node.log_path.read_text(errors="replace").count('"LEASE_LOST"')
    except OSError:
        return 0


def test_a_watch_on_a_member_cut_off_from_its_peers_moves(members: Members) -> None:
    reason = partition.unusable()
    if reason:
        pytest.skip(reason)
    zone = new_zone(members, "cut.test.")
    a, b, _ = members.nodes
    cut = members.etcd.members[0]  # a's first endpoint, so a's watch stream is on it
    try:
        with partition.PeerPartition(cut, members.etcd.members):
            wait_until(lambda: (members.etcd.status(cut) or {}).get("leader") in ("", "0"), 30,
                       interval=0.1, message=f"etcd {cut.name} still has a leader")
            add_when_possible(b, zone, "www", "192.0.2.7", 30)
            acked = time.monotonic()
            wait_until(lambda: answers(a, f"www.{zone}") == {"192.0.2.7"} or not a.ready(), 20,
                       interval=0.1,
                       message=f"{a.node_id} neither got a change made through {b.node_id} "
                       f"within 20 s nor reported not-ready, while its etcd member "
                       f"{cut.name} was cut off from its peers\n{members.logs()}")
            TIMES.setdefault("member cut off from its peers", {})[a.node_id] = round(
                time.monotonic() - acked, 2)
    finally:
        members.heal()
    served_everywhere(members, zone, {"www": "192.0.2.7"}, 30)
