"""Replication through etcd between real node processes: serials, kill -9, etcd restarts,
compaction, concurrent writers. Each test uses a zone of its own on a shared cluster."""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import socket
import threading
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import grpc
import pytest

from tests.cluster.conftest import Cluster
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

SOA_TEXT = """$ORIGIN {zone}
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
"""


def new_zone(cluster: Cluster, name: str) -> str:
    with Api(cluster.nodes[0].api) as api:
        api.create_zone(name, SOA_TEXT.format(zone=name))
    for n in cluster.nodes:
        wait_until(lambda n=n: n.serial(name) is not None, 10, message=f"{n.node_id} has {name}")
    return name


def answers(node: NodeProcess, name: str, rdtype: str = "A") -> set[str]:
    try:
        resp = node.query(name, rdtype, timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return set()
    return {rd.to_text() for rrset in resp.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype)
            for rd in rrset}


def axfr(node: NodeProcess, zone: str) -> set[str]:
    z = dns.zone.from_xfr(dns.query.xfr(node.host, zone, port=node.dns_port, timeout=10,
                                        relativize=False),
                          relativize=False)
    return {line for line in z.to_text(relativize=False).splitlines() if line}


def test_write_through_one_node_is_served_by_all_at_the_same_serial(cluster: Cluster) -> None:
    zone = new_zone(cluster, "same.test.")
    n1, n2, n3 = cluster.nodes
    with Api(n1.api) as api:
        serial = api.add(zone, "www", 300, "A", "192.0.2.80")
    # The write is acknowledged once committed in etcd; every node, the one written
    # through included, serves it when its watch delivers it (asynchronously).
    for n in (n1, n2, n3):
        wait_until(lambda n=n: answers(n, "www.same.test.") == {"192.0.2.80"}, 5)
    resp = n2.query("www.same.test.", "A")
    assert resp.flags & dns.flags.AA
    assert [n.serial(zone) for n in cluster.nodes] == [serial] * 3


def test_concurrent_clients_through_three_nodes_lose_nothing(cluster: Cluster) -> None:
    zone = new_zone(cluster, "race.test.")
    with Api(cluster.nodes[0].api) as api:
        start = api.get_zone(zone).serial

    def client(i: int) -> None:
        with Api(cluster.nodes[i].api, timeout=30) as api:
            for j in range(500):
                api.add(zone, f"c{i}-{j}", 300, "A", f"10.{i}.{j // 256}.{j % 256}")

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(client, range(3)))
    with Api(cluster.nodes[2].api) as api:
        info = api.get_zone(zone)
    assert info.serial == start + 1500
    assert info.rrset_count == 3 + 1500
    for n in cluster.nodes:
        wait_until(lambda n=n: n.serial(zone) == start + 1500, 20)
    records = axfr(cluster.nodes[1], zone)
    assert sum(1 for line in records if " IN A 10." in line) == 1500


def test_kill_9_during_writes_then_restart_converges(cluster: Cluster) -> None:
    zone = new_zone(cluster, "kill.test.")
    n1, _, n3 = cluster.nodes
    done = threading.Event()
    errors: list[BaseException] = []
    serials: list[int] = []

    def writer() -> None:
        try:
            with Api(n1.api, timeout=30) as api:
                for j in range(2000):
                    serials.append(api.add(zone, f"k{j}", 300, "TXT", f'"{j}"'))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    wait_until(lambda: (n3.serial(zone) or 0) > 200, 30, message="writes under way")
    n3.kill()
    wait_until(lambda: (n1.serial(zone) or 0) > 800, 60, message="writes go on without n3")
    n3.start()
    thread.join(300)
    assert done.is_set() and not errors, errors
    final = serials[-1]
    assert serials == sorted(serials) and len(set(serials)) == 2000
    for n in cluster.nodes:
        wait_until(lambda n=n: n.serial(zone) == final, 20, message=f"{n.node_id} converges")
    reference = axfr(n1, zone)
    assert sum(1 for line in reference if " IN TXT " in line) == 2000
    assert axfr(n3, zone) == reference
    assert axfr(cluster.nodes[1], zone) == reference


def test_etcd_down_reads_go_on_writes_fail_clearly_and_recover(cluster: Cluster) -> None:
    zone = new_zone(cluster, "outage.test.")
    n1, n2, _ = cluster.nodes
    with Api(n1.api) as api:
        api.add(zone, "before", 300, "A", "192.0.2.1")
    for n in cluster.nodes:  # every node serves it before etcd goes (not only n2)
        wait_until(lambda n=n: answers(n, "before.outage.test.") == {"192.0.2.1"}, 10)
    cluster.etcd.stop()
    try:
        for n in cluster.nodes:  # reads keep being answered from the replica
            assert answers(n, "before.outage.test.") == {"192.0.2.1"}
        res = n1.ctl("record", "add", zone, "during", "300", "A", "192.0.2.2", timeout=60)
        assert res.returncode == 1
        assert "etcd" in res.stderr.lower()
        assert answers(n2, "during.outage.test.") == set()
    finally:
        cluster.etcd.start()
    # the nodes recover without a restart
    def write_after() -> bool:
        try:
            with Api(n1.api, timeout=3) as api:
                api.add(zone, "after", 300, "A", "192.0.2.3")
            return True
        except grpc.RpcError:
            return False

    wait_until(write_after, 30, message="writes work again after etcd is back")
    for n in cluster.nodes:
        wait_until(lambda n=n: answers(n, "after.outage.test.") == {"192.0.2.3"}, 15)
        assert n.alive
    for n in cluster.nodes:
        n.wait_ready(30)


def test_compaction_forces_a_full_resync(cluster: Cluster) -> None:
    zone = new_zone(cluster, "compact.test.")
    n1, n2, _ = cluster.nodes
    n2.pause()
    try:
        cluster.etcd.restart()  # breaks n2's watch stream while it cannot resume

        def retried(call: Callable[[], object]) -> None:
            # right after the restart a write may fail with a clear "etcd unavailable"
            # while the node's client reconnects; adding the same record twice is harmless
            def attempt() -> bool:
                try:
                    call()
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                    return False
                return True

            wait_until(attempt, 30, interval=0.2)

        with Api(n1.api) as api:
            for j in range(20):
                retried(lambda j=j: api.add(zone, f"c{j}", 300, "A", "192.0.2.4"))
            retried(lambda: api.delete(zone, "c0", "A"))
        status = cluster.etcd.ctl("endpoint", "status", "-w", "json")
        revision = json.loads(status)[0]["Status"]["header"]["revision"]
        cluster.etcd.ctl("compaction", str(revision))
    finally:
        n2.resume()
    with Api(n1.api) as api:
        final = api.get_zone(zone).serial
    wait_until(lambda: n2.serial(zone) == final, 30, message="n2 resynchronises")
    for n in cluster.nodes:  # the others resume their watches after the etcd restart
        wait_until(lambda n=n: n.serial(zone) == final, 30, message=f"{n.node_id} catches up")
    assert axfr(n2, zone) == axfr(n1, zone)
    assert answers(n2, "c0.compact.test.") == set()
    wait_until(lambda: "WATCH_COMPACTED_RESYNC" in n2.log_path.read_text(), 10)
    n2.wait_ready(30)


def test_garbage_never_stops_a_node(cluster: Cluster) -> None:
    zone = new_zone(cluster, "garbage.test.")
    node = cluster.nodes[2]
    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(3000):
            n = rng.choice([0, 1, 5, 11, 12, 17, 30, 100, 600])
            payload = bytearray(os.urandom(n)) if n else bytearray()
            if i % 3 == 0 and len(payload) >= 12:
                payload[2] &= 0x7F  # QR=0 so it is treated as a query
                payload[4:6] = b"\xff\xff"  # absurd QDCOUNT
            if i % 5 == 0:
                payload = bytearray(b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"
                                    b"\x00\x01\x00\x01")  # compression pointer loop
            sock.sendto(bytes(payload), (node.host, node.dns_port))
    resp = node.query(zone, "SOA")
    assert resp.rcode() == dns.rcode.NOERROR and resp.answer
    assert node.alive


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_refused_outside_our_zones(cluster: Cluster, transport: str) -> None:
    resp = cluster.nodes[0].query("www.not-ours.example.", "A", tcp=transport == "tcp")
    assert resp.rcode() == dns.rcode.REFUSED
