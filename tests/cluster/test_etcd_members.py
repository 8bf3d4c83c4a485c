"""Three real nodes on a real 3-member etcd: member loss, lost quorum, a paused leader,
a member cut off from its peers.

One etcd cluster and three nodes for the module; node n<i> lists every member with
m<i> first. Each test leaves every member running and healthy and every node ready.
Recovery times are measured (never asserted) and, when `DNSCLUSTER_FAULT_TIMES`
names a file, written there as JSON (`bench/etcd_faults.py` prints them).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
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
        shutil.rmtree(workdir, ignore_errors=True)  # failures quoted the logs already
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


def writes_from_every_node(setup: Members, zone: str, owner: str, first: int, since: float,
                           timeout: float) -> tuple[dict[str, str], dict[str, float]]:
    """Each node retries its own write at once, in parallel; returns the records and the
    seconds from `since` until each node's write was acknowledged."""

    def one(i: int, n: NodeProcess) -> float:
        add_when_possible(n, zone, f"{owner}{i}", f"192.0.2.{first + i}", timeout)
        return round(time.monotonic() - since, 2)

    with concurrent.futures.ThreadPoolExecutor(len(setup.nodes)) as pool:
        futures = {n.node_id: pool.submit(one, i, n) for i, n in enumerate(setup.nodes)}
        took = {node_id: f.result() for node_id, f in futures.items()}
    return {f"{owner}{i}": f"192.0.2.{first + i}" for i in range(len(setup.nodes))}, took


def alive(setup: Members) -> set[str]:
    """The node ids `clusterctl nodes` lists as alive (asked through n1)."""
    out = setup.nodes[0].ctl("nodes", "--json", timeout=20)
    if out.returncode:
        return set()
    return {n["id"] for n in json.loads(out.stdout) if n.get("alive")}


def test_a_watch_on_a_member_cut_off_from_its_peers_moves(members: Members) -> None:
    reason = partition.unusable()
    if reason:
        pytest.skip(reason)
    zone = new_zone(members, "cut.test.")
    a, b, _ = members.nodes
    # the first test of the module: n1 has not left its first endpoint m1, so its watch is there
    cut = members.etcd.members[0]
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


def wait_quorum(etcd: EtcdCluster) -> float:
    """Wait until the members agree on a leader; the monotonic time they did."""
    wait_until(lambda: etcd.leader() is not None, 60, interval=0.02,
               message="the etcd members do not agree on a leader")
    return time.monotonic()


def keep_answering(setup: Members, zone: str, wanted: dict[str, str], seconds: float) -> None:
    """Every node answers every `owner -> address` for `seconds` (the fault's span); a lost
    UDP datagram on this loaded machine is asked again, a wrong answer fails at once."""
    end = time.monotonic() + seconds
    while True:
        for n in setup.nodes:
            for owner, address in wanted.items():
                got: set[str] = set()
                for _ in range(3):
                    got = answers(n, f"{owner}.{zone}")
                    if got:
                        break
                assert got == {address}, f"{n.node_id} answered {owner}.{zone} with {got}\n" \
                    f"{setup.logs()}"
        if time.monotonic() >= end:
            return


def test_losing_one_member_changes_neither_answers_nor_writes(members: Members) -> None:
    zone = new_zone(members, "one.test.")
    leader = members.etcd.leader()
    lost = next(m for m in members.etcd.members if m is not leader)  # some node's first endpoint
    lost.kill()
    killed = time.monotonic()
    try:
        keep_answering(members, zone, {"ns1": "192.0.2.1"}, 0)
        took = {}
        for i, n in enumerate(members.nodes):
            add(n, zone, f"w{i}", f"192.0.2.{10 + i}")  # the first try works: no retry
            took[n.node_id] = round(time.monotonic() - killed, 2)
        served_everywhere(members, zone, {f"w{i}": f"192.0.2.{10 + i}" for i in range(3)}, 20)
        TIMES["one member killed (kill -9): writes acknowledged, one node after another"] = took
    finally:
        members.heal()


def test_losing_two_members_keeps_answers_refuses_writes_and_recovers(members: Members) -> None:
    zone = new_zone(members, "two.test.")
    acked = {"before": "192.0.2.20"}
    add(members.nodes[0], zone, "before", acked["before"])
    served_everywhere(members, zone, acked, 20)
    lost = members.etcd.members[1:]  # m1 survives
    try:
        for m in lost:
            m.kill()
        for n in members.nodes:
            with pytest.raises(grpc.RpcError) as refused:
                add(n, zone, f"refused-{n.node_id}", "192.0.2.99")
            assert "etcd" in (refused.value.details() or ""), refused.value.details()
        # longer than the nodes' lease TTL (4 s): losing the lease must not stop answers
        keep_answering(members, zone, acked, 6)
        for m in lost:
            m.start(wait=False)
        restarted = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            quorum = pool.submit(wait_quorum, members.etcd)
            after, took = writes_from_every_node(members, zone, "after", 30, restarted, 60)
            took["etcd quorum (for comparison)"] = round(quorum.result() - restarted, 2)
        acked |= after
        TIMES["two members killed (quorum lost), then restarted: from the restart"] = took
        served_everywhere(members, zone, acked, 30)
        # each node's session kept or took back its lease by itself: all listed alive
        wait_until(lambda: alive(members) == {n.node_id for n in members.nodes}, 30,
                   interval=0.2, message=f"not every node is alive again\n{members.logs()}")
    finally:
        members.heal()


def test_pausing_the_leader_longer_than_an_election(members: Members) -> None:
    zone = new_zone(members, "pause.test.")
    acked = {"before": "192.0.2.40"}
    add(members.nodes[0], zone, "before", acked["before"])
    served_everywhere(members, zone, acked, 20)
    leader = members.etcd.leader()
    assert leader is not None
    old_id = (members.etcd.status(leader) or {}).get("member_id")
    leader.pause()
    paused = time.monotonic()
    try:
        others = [m for m in members.etcd.members if m is not leader]
        wait_until(lambda: len({(members.etcd.status(m) or {}).get("leader") for m in others}
                               - {None, "", "0", old_id}) == 1, 30, interval=0.02,
                   message=f"no new leader while etcd {leader.name} is paused")
        elected = time.monotonic()
        keep_answering(members, zone, acked, 0)
        during, took = writes_from_every_node(members, zone, "during", 50, paused, 60)
        acked |= during
        keep_answering(members, zone, {"before": acked["before"]}, 0)
        took["new etcd leader (for comparison)"] = round(elected - paused, 2)
        TIMES["etcd leader paused (SIGSTOP): from the pause"] = took
    finally:
        leader.resume()
        members.heal()
    served_everywhere(members, zone, acked, 30)
