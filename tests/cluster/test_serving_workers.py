"""Serving workers (`server.workers`, node/serving/): a real node with 2 worker processes.

Shows: both workers answer on the node's one port (two distinct worker pids,
through the test-only `id.server. CH TXT` answer); a zone change reaches
every worker; `kill -9` of a worker while a probe asks every 20 ms leaves no
probe unanswered and the worker comes back; a hung worker (SIGSTOP) is killed and
replaced; AXFR, IXFR, UPDATE and NOTIFY
work through a worker-owned port (handed to the control process); metrics
cover the workers; SIGTERM stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT
from tests.support.api import Api
from tests.support.nodes import NodeProcess, events
from tests.support.realtime import realtime_granted
from tests.support.wait import async_wait_until, wait_until

ZONE = "workers.test."
WORKERS = 2
STARTED, LISTENING, EXITED = 1820, 1821, 1822
HUNG = 1880


@pytest.fixture(scope="module")
def wcluster() -> Iterator[Cluster]:
    c = make_cluster(count=1, env={"DNSNODE_SERVER__WORKERS": str(WORKERS),
                                   "DNSNODE_TESTING__WORKER_IDENTITY": "true"})
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
        wait_until(lambda: c.nodes[0].serial(ZONE) is not None, 30)
        yield c
    finally:
        c.close()


def ask(node: NodeProcess, sock: socket.socket, name: str, rdtype: str = "A",
        rdclass: str = "IN", timeout: float = 2.0) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, rdclass)
    sock.settimeout(timeout)
    sock.sendto(q.to_wire(), (node.host, node.dns_port))
    while True:
        data = sock.recv(65535)
        resp = dns.message.from_wire(data)
        if resp.id == q.id:
            return resp


def worker_pid(node: NodeProcess, sock: socket.socket) -> int:
    """The pid of the worker that answers datagrams from `sock` (its 4-tuple's hash)."""
    resp = ask(node, sock, "id.server.", "TXT", "CH")
    text = resp.answer[0][0].strings[0].decode()
    return int(text.split()[1])


def by_worker(node: NodeProcess, tries: int = 200) -> dict[int, socket.socket]:
    """One UDP socket per worker pid, found by trying source ports."""
    found: dict[int, socket.socket] = {}
    for _ in range(tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((node.host, 0))
        pid = worker_pid(node, sock)
        if pid in found:
            sock.close()
        else:
            found[pid] = sock
        if len(found) == WORKERS:
            break
    return found


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0


def test_two_workers_answer_on_one_port(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    socks = by_worker(node)
    try:
        assert len(socks) == WORKERS, f"answers came from {sorted(socks)} only"
        assert node.proc is not None
        for pid, sock in socks.items():
            assert pid != node.proc.pid and parent_of(pid) == node.proc.pid
            resp = ask(node, sock, f"www.{ZONE}")
            assert resp.rcode() == dns.rcode.NOERROR and resp.answer, resp
    finally:
        for sock in socks.values():
            sock.close()


def test_zone_change_served_by_every_worker(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    with Api(node.api) as api:
        api.add(ZONE, f"change.{ZONE}", 300, "A", "192.0.2.99")
    socks = by_worker(node)
    try:
        assert len(socks) == WORKERS

        def everywhere() -> bool:
            return all(any(rd.to_text() == "192.0.2.99" for rrset in
                           ask(node, sock, f"change.{ZONE}").answer for rd in rrset)
                       for sock in socks.values())

        wait_until(everywhere, 30, message="a worker does not serve the new record")
    finally:
        for sock in socks.values():
            sock.close()


def test_axfr_ixfr_update_notify_through_a_worker_port(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    soa = node.query(ZONE, "SOA").answer[0][0]
    zone = dns.zone.from_xfr(dns.query.xfr(node.host, ZONE, port=node.dns_port, timeout=10))
    assert zone.get_rdataset("www", "A") is not None
    with Api(node.api) as api:
        api.add(ZONE, f"ixfr.{ZONE}", 300, "A", "192.0.2.44")
    wait_until(lambda: (node.serial(ZONE) or 0) > soa.serial, 30)
    msgs = list(dns.query.xfr(node.host, ZONE, rdtype=dns.rdatatype.IXFR, serial=soa.serial,
                              port=node.dns_port, timeout=10))
    texts = " ".join(rrset.to_text() for m in msgs for rrset in m.answer)
    assert "192.0.2.44" in texts, texts
    # IXFR over UDP: forwarded to the control process, answered from the worker's socket
    q = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", soa.to_text()))
    resp = dns.query.udp(q, node.host, port=node.dns_port, timeout=5)
    assert resp.rcode() == dns.rcode.NOERROR and resp.answer, resp
    res = node.ctl("zone", "update", ZONE, "--dynamic-update", "nonsecure_and_secure",
                   "--allow-update", "127.0.0.0/8")
    assert res.returncode == 0, res.stderr
    for tcp, addr in ((False, "192.0.2.61"), (True, "192.0.2.62")):
        upd = dns.update.UpdateMessage(ZONE)
        upd.add(f"upd{int(tcp)}", 300, "A", addr)

        def applied(upd: dns.update.UpdateMessage = upd, tcp: bool = tcp) -> bool:
            fn = dns.query.tcp if tcp else dns.query.udp
            return fn(upd, node.host, port=node.dns_port, timeout=10).rcode() == \
                dns.rcode.NOERROR

        wait_until(applied, 30, interval=0.5, message="UPDATE not applied")
        wait_until(lambda n=f"upd{int(tcp)}.{ZONE}": node.query(n).answer, 30)
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    resp = dns.query.udp(notify, node.host, port=node.dns_port, timeout=5)
    assert resp.opcode() == dns.opcode.NOTIFY


def _frames(*messages: dns.message.Message) -> bytes:
    return b"".join(len(w).to_bytes(2, "big") + w for w in (m.to_wire() for m in messages))


def _read_message(sock: socket.socket) -> dns.message.Message:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed early"
            data += chunk
        return data

    return dns.message.from_wire(exactly(int.from_bytes(exactly(2), "big")),
                                 one_rr_per_rrset=True)


def test_pipelined_queries_around_an_axfr_are_answered_in_order(wcluster: Cluster) -> None:
    """Queries before and after an AXFR on one connection: the worker answers the first,
    hands the connection over at the AXFR with the part of a frame it has read, and the
    control process answers the rest."""
    node = wcluster.nodes[0]
    first, last = (dns.message.make_query(f"www.{ZONE}", "A") for _ in range(2))
    axfr = dns.message.make_query(ZONE, "AXFR")
    with socket.create_connection((node.host, node.dns_port), timeout=10) as sock:
        tail = _frames(last)
        sock.sendall(_frames(first, axfr) + tail[:5])  # and a part of the last frame
        resp = _read_message(sock)
        assert resp.id == first.id and resp.answer, resp
        soas = 0
        while soas < 2:  # the transfer, in order, ends with the SOA again
            resp = _read_message(sock)
            assert resp.id == axfr.id, resp
            soas += sum(1 for rrset in resp.answer if rrset.rdtype == dns.rdatatype.SOA)
        sock.sendall(tail[5:])
        resp = _read_message(sock)
        assert resp.id == last.id and resp.answer, resp


def test_an_adopted_connection_is_answered_from_the_current_image(wcluster: Cluster) -> None:
    """After an AXFR the control process serves the connection to its end; it answers the
    queries that follow from the images the workers map (no compiled zone of its own)."""
    node = wcluster.nodes[0]
    with Api(node.api) as api:
        api.add(ZONE, f"adopted.{ZONE}", 300, "A", "192.0.2.77")
    wait_until(lambda: node.query(f"adopted.{ZONE}").answer, 30)
    with socket.create_connection((node.host, node.dns_port), timeout=10) as sock:
        dns.query.send_tcp(sock, dns.message.make_query(ZONE, "AXFR"))
        soas = 0
        while soas < 2:  # the transfer ends with the second SOA
            msg, _ = dns.query.receive_tcp(sock, expiration=time.time() + 10,
                                           one_rr_per_rrset=True)
            soas += sum(1 for rrset in msg.answer if rrset.rdtype == dns.rdatatype.SOA)
        for name, rcode, data in ((f"adopted.{ZONE}", dns.rcode.NOERROR, "192.0.2.77"),
                                  (f"nowhere.{ZONE}", dns.rcode.NXDOMAIN, "")):
            q = dns.message.make_query(name, "A")
            dns.query.send_tcp(sock, q)
            resp, _ = dns.query.receive_tcp(sock, expiration=time.time() + 10)
            assert resp.id == q.id and resp.rcode() == rcode, resp
            assert resp.flags & dns.flags.AA, resp
            assert data in " ".join(r.to_text() for r in resp.answer), resp


def test_metrics_cover_every_worker(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    text = urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                  timeout=10).read().decode()
    for i in range(WORKERS):
        assert f'dnscluster_serving_worker_up{{worker="{i}"}} 1.0' in text, text

    def counted() -> bool:  # workers report about once a second
        body = urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                      timeout=10).read().decode()
        return all(
            float(next(line.split()[-1] for line in body.splitlines() if line.startswith(
                f'dnscluster_serving_worker_queries_total{{worker="{i}"}}'))) > 0
            for i in range(WORKERS))

    wait_until(counted, 20)


def test_metrics_give_each_workers_scheduling_class(wcluster: Cluster) -> None:
    """Each worker's class is in the metrics (node/serving/fleetmetrics.py): 1 once an idle
    worker runs SCHED_FIFO where the kernel grants it, -1 where it refuses; the demotion
    and overrun counters per worker beside it. Before, none of this was exported."""
    node = wcluster.nodes[0]
    expected = 1.0 if realtime_granted() else -1.0

    def values(name: str) -> list[float | None]:
        body = urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                      timeout=10).read().decode()
        found = {line.split("{")[0] + line.split("}")[0].split("=")[1]: float(line.split()[-1])
                 for line in body.splitlines() if line.startswith(name + "{")}
        return [found.get(f'{name}"{i}"') for i in range(WORKERS)]

    wait_until(lambda: values("dnscluster_serving_worker_realtime") == [expected] * WORKERS,
               60)  # idle workers are promoted within ~1 s of quiet
    for counter in ("demotions", "overruns"):
        got = values(f"dnscluster_serving_worker_realtime_{counter}_total")
        assert all(v is not None and v >= 0 for v in got), (counter, got)


class Probe(threading.Thread):
    """Asks `www` A every 20 ms; a probe is unanswered if no try answers within its deadline
    (a try times out after 0.25 s and is sent again from a new socket: UDP retries)."""

    def __init__(self, node: NodeProcess, deadline: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.deadline = deadline
        self.stop = threading.Event()
        self.sent = self.answered = self.retried = 0
        self.unanswered: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.sent += 1
            if self._one(started):
                self.answered += 1
            else:
                self.unanswered.append(started)
            self.stop.wait(max(0.0, 0.02 - (time.monotonic() - started)))

    def _one(self, started: float) -> bool:
        while time.monotonic() - started < self.deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                try:
                    resp = ask(self.node, sock, f"www.{ZONE}", timeout=0.25)
                    if resp.rcode() == dns.rcode.NOERROR and resp.answer:
                        return True
                except (dns.exception.DNSException, OSError):
                    pass
            self.retried += 1
        return False


def worker_pids(node: NodeProcess) -> list[int]:
    """The pids of `node`'s serving workers (`by_worker`, its connections closed)."""
    socks = by_worker(node)
    for sock in socks.values():
        sock.close()
    return sorted(socks)


def test_kill_9_of_a_worker_leaves_no_probe_unanswered(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    socks = worker_pids(node)
    assert len(socks) == WORKERS
    victim = sorted(socks)[0]
    before = len(events(node, LISTENING))
    probe = Probe(node)
    probe.start()
    try:
        wait_until(lambda: probe.answered >= 10, 10)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(events(node, LISTENING)) > before, 60,
                   message="the killed worker was not started again")
        answered = probe.answered
        wait_until(lambda: probe.answered >= answered + 25, 20)  # and it keeps answering
    finally:
        probe.stop.set()
        probe.join(10)
    assert not probe.unanswered, (f"{len(probe.unanswered)} of {probe.sent} probes "
                                  f"unanswered ({probe.retried} retries)")
    assert any(e.get("pid") == victim for e in events(node, EXITED))
    socks = worker_pids(node)
    assert len(socks) == WORKERS and victim not in socks
    assert node.ready()


def test_a_hung_worker_is_killed_and_replaced(wcluster: Cluster) -> None:
    """A worker that stops (SIGSTOP: alive, its socket still takes its share of clients)
    stops reporting; the control process kills it and starts another."""
    node = wcluster.nodes[0]
    socks = worker_pids(node)
    assert len(socks) == WORKERS
    victim = sorted(socks)[0]
    before = len(events(node, LISTENING))
    os.kill(victim, signal.SIGSTOP)
    try:
        wait_until(lambda: len(events(node, LISTENING)) > before, 90,
                   message="a stopped worker was not replaced")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    assert any(e.get("pid") == victim for e in events(node, HUNG))
    socks = worker_pids(node)
    assert len(socks) == WORKERS and victim not in socks
    wait_until(node.ready, 30)


def test_sigterm_stops_every_worker(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    socks = worker_pids(node)
    assert node.terminate() == 0
    for pid in socks:
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text(), f"worker {pid} outlived the node"


def _tcp_worker_pid(sock: socket.socket) -> int | None:
    """The pid of the worker serving TCP connection `sock`; None if it was refused."""
    try:
        sock.sendall(_frames(dns.message.make_query("id.server.", "TXT", "CH")))
        resp = _read_message(sock)
    except (OSError, AssertionError):
        return None
    return int(resp.answer[0][0].strings[0].decode().split()[1])


def test_the_tcp_connection_cap_is_the_nodes_not_a_workers_share() -> None:
    """`dns.max_tcp_connections` counts the node's connections, whichever worker holds them:
    more than cap/workers on one worker are served while the node is under its cap."""
    cap = 8
    c = make_cluster(count=1, env={"DNSNODE_SERVER__WORKERS": str(WORKERS),
                                   "DNSNODE_TESTING__WORKER_IDENTITY": "true"},
                     dns_toml=f"tcp_idle_timeout = 60.0\nmax_tcp_connections = {cap}")
    held: dict[int, list[socket.socket]] = {}
    try:
        node = c.nodes[0]
        target = None
        for _ in range(400):  # one worker gathers more than cap/workers; others are let go
            sock = socket.create_connection((node.host, node.dns_port), timeout=10)
            pid = _tcp_worker_pid(sock)
            assert pid is not None, f"refused with {sum(map(len, held.values()))} open"
            target = pid if target is None else target
            if pid != target:
                sock.close()  # an even spread would reach the cap with no worker over its share
                continue
            held.setdefault(pid, []).append(sock)
            if len(held[pid]) > cap // WORKERS:
                break
        assert target is not None and len(held[target]) > cap // WORKERS, held

        def one_more() -> bool:  # connections let go above may take a moment to be counted out
            sock = socket.create_connection((node.host, node.dns_port), timeout=10)
            pid = _tcp_worker_pid(sock)
            if pid is None:
                sock.close()
                return False
            held.setdefault(pid, []).append(sock)
            return True

        while sum(map(len, held.values())) < cap:  # up to the cap: still served
            wait_until(one_more, 10,
                       message=f"refused with {sum(map(len, held.values()))} open")
        with socket.create_connection((node.host, node.dns_port), timeout=10) as sock:
            assert _tcp_worker_pid(sock) is None, "a connection past the cap was served"
    finally:
        for socks in held.values():
            for sock in socks:
                sock.close()
        c.close()


def test_kill_9_of_the_node_ends_its_workers() -> None:
    """Workers never outlive their control process (they would hold the port)."""
    c = make_cluster(count=1, env={"DNSNODE_SERVER__WORKERS": str(WORKERS),
                                   "DNSNODE_TESTING__WORKER_IDENTITY": "true"})
    try:
        node = c.nodes[0]
        socks = by_worker(node)
        for sock in socks.values():
            sock.close()
        assert len(socks) == WORKERS
        node.kill()

        def gone(pid: int) -> bool:
            try:
                return "zombie" in Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return True

        wait_until(lambda: all(gone(pid) for pid in socks), 20,
                   message="a worker outlived its node")
    finally:
        c.close()

# --- the image publisher on its own (no processes) -------------------------------------------


def test_publisher_orders_operations_and_deletes_superseded_images(tmp_path: Path) -> None:
    from dataclasses import replace

    from node.server.answer import name_wire
    from node.serving import protocol
    from node.serving.images import ImagePublisher
    from node.zones.model import snapshot_from_text
    from tests.support.zones import EXAMPLE

    sent: list[tuple[bytes, bytes]] = []

    def broadcast(kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        sent.append((kind, payload))
        return len(sent), {0}

    base = snapshot_from_text(EXAMPLE, "example.com.")
    origin = name_wire(base.origin)

    def version(n: int) -> object:
        return replace(base, serial=n, revision=n)

    async def run() -> None:
        pub = ImagePublisher(str(tmp_path / "images"), broadcast)
        pub.open()
        pub.publish(version(1))  # type: ignore[arg-type]
        pub.hold(origin)  # while version 1 is being built: it must never be sent
        await async_wait_until(pub.idle, 10)
        assert sent == [(protocol.HOLD, origin)]
        assert pub.files() == []
        pub.publish(version(2))  # type: ignore[arg-type]
        await async_wait_until(pub.idle, 10)
        assert sent[-1][0] == protocol.INSTALL and pub.current()[0][0] == protocol.INSTALL
        first = Path(sent[-1][1].decode())
        pub.publish(version(3))  # type: ignore[arg-type]
        await async_wait_until(pub.idle, 10)
        second = Path(sent[-1][1].decode())
        assert pub.files() == sorted([first, second])  # worker 0 may still map the first
        pub.acked(0, len(sent))
        assert pub.files() == [second]
        www = dns.name.from_text("www.example.com.")
        pub.publish(replace(version(4), changed=frozenset({www})))  # type: ignore[arg-type]
        await async_wait_until(pub.idle, 10)
        overlay, _, on = sent[-1][1].decode().partition("\n")  # a small overlay on the second
        assert overlay.endswith(".ovl") and Path(on) == second
        assert pub.files() == sorted([second, Path(overlay)])
        pub.acked(0, len(sent))
        pub.remove(origin)
        assert sent[-1] == (protocol.REMOVE, origin)
        assert pub.files() == sorted([second, Path(overlay)])
        pub.gone(0)
        assert pub.files() == []
        pub.close()

    asyncio.run(run())

