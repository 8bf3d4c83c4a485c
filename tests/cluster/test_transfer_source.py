"""Outbound transfers and NOTIFY come from the node's own address (`server.transfer_source`,
`server.notify_source`), not from whatever address the kernel picks.

Real processes on distinct loopback addresses: writable n1 on 127.0.0.2, writable
n2 on 127.0.0.4 with `server.notify_source = "127.0.0.5"`, read-only `ro` on
127.0.0.3. For a destination on 127.0.0.0/8 the kernel picks 127.0.0.1, so
before these settings a zone that allows transfers to 127.0.0.3/32 only was
never transferred to `ro`, every NOTIFY came from 127.0.0.1, and so did every
node's SOA query and AXFR of a secondary zone (to an outside primary that this
test runs on 127.0.0.1: real sockets, answers built with dnspython).
"""

from __future__ import annotations

import socket
import socketserver
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_readonly import sign, signed_answer
from tests.cluster.test_signing import kek_file
from tests.support import proclog
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess
from tests.support.ports import free_port
from tests.support.wait import wait_until

ZONE = "source.test."
OUTSIDE = "outside.test."
OUTSIDE_RRSETS = [
    dns.rrset.from_text(OUTSIDE, 300, "IN", "SOA", "ns1.outside.test. h.outside.test. 5 60 "
                        "30 604800 300"),
    dns.rrset.from_text(OUTSIDE, 300, "IN", "NS", "ns1.outside.test."),
    dns.rrset.from_text(f"www.{OUTSIDE}", 300, "IN", "A", "192.0.2.80"),
]


class OutsidePrimary:
    """A primary outside the cluster on 127.0.0.1 (UDP and TCP on one port): answers the
    SOA and an AXFR of `OUTSIDE`, and records (source address, query type) of each query."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        primary = self

        def answer(wire: bytes, client: str) -> bytes:
            query = dns.message.from_wire(wire)
            rdtype = query.question[0].rdtype
            primary.seen.append((client, dns.rdatatype.to_text(rdtype)))
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            reply.answer = ([*OUTSIDE_RRSETS, OUTSIDE_RRSETS[0]] if rdtype == dns.rdatatype.AXFR
                            else [OUTSIDE_RRSETS[0]])
            return reply.to_wire()

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(answer(data, self.client_address[0]), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(self.rfile.read(2), "big")
                wire = answer(self.rfile.read(size), self.client_address[0])
                self.wfile.write(len(wire).to_bytes(2, "big") + wire)

        self.port = free_port("127.0.0.1")
        self._servers: list[socketserver.BaseServer] = [
            socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp),
            socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Cluster, NodeProcess]]:
    mark = proclog.mark()
    kek = kek_file(Path(tempfile.mkdtemp(prefix="kek-")))
    signing = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
    etcd = EtcdProcess("xsource")
    etcd.start()
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-source-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    n1 = NodeProcess("n1", [etcd.endpoint], prefix, workdir, host="127.0.0.2",
                     extra_toml=signing)
    n2 = NodeProcess("n2", [etcd.endpoint], prefix, workdir, host="127.0.0.4",
                     extra_toml=signing + '[server]\nnotify_source = "127.0.0.5"\n')
    ro = NodeProcess("ro", [etcd.endpoint], prefix, workdir, host="127.0.0.3", role="readonly")
    cluster = Cluster(etcd, [n1, n2, ro], prefix, workdir)
    try:
        for n in cluster.nodes:
            n.start(wait=False)
        for n in cluster.nodes:
            n.wait_ready()
    except BaseException:
        cluster.close()
        proclog.dump_since(mark)
        raise
    try:
        yield Cluster(etcd, [n1, n2], prefix, workdir), ro
    finally:
        cluster.close()


def test_a_readonly_node_transfers_from_its_own_address(
        hosts: tuple[Cluster, NodeProcess]) -> None:
    c, ro = hosts
    sign(c, ZONE, ("127.0.0.3/32",))  # transfers to the read-only node's address only
    wait_until(lambda: signed_answer(ro, f"www.{ZONE}"), 60, interval=0.2)


def test_notify_comes_from_the_listen_address_or_notify_source(
        hosts: tuple[Cluster, NodeProcess]) -> None:
    c, _ = hosts
    port = free_port("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.settimeout(0.5)
        res = c.nodes[0].ctl("zone", "update", ZONE, "--notify", f"127.0.0.1:{port}")
        assert res.returncode == 0, res.stderr
        sources: set[str] = set()
        deadline = time.monotonic() + 60
        while sources != {"127.0.0.2", "127.0.0.5"} and time.monotonic() < deadline:
            try:
                data, (host, peer_port) = sock.recvfrom(65535)
            except TimeoutError:
                continue
            msg = dns.message.from_wire(data)
            assert msg.opcode() == dns.opcode.NOTIFY
            sources.add(host)
            reply = dns.message.make_response(msg)
            sock.sendto(reply.to_wire(), (host, peer_port))
        assert sources == {"127.0.0.2", "127.0.0.5"}  # n1's listen address, n2's notify_source


def test_secondary_zone_refreshes_come_from_each_nodes_address(
        hosts: tuple[Cluster, NodeProcess]) -> None:
    c, _ = hosts
    primary = OutsidePrimary()
    try:
        res = c.nodes[0].ctl("zone", "create", OUTSIDE, "--secondary", "--primary",
                             f"127.0.0.1:{primary.port}")
        assert res.returncode == 0, res.stderr
        wait_until(lambda: {"127.0.0.2", "127.0.0.4", "127.0.0.3"} <= {
            host for host, rdtype in primary.seen if rdtype == "AXFR"}, 60, interval=0.2)
        # the SOA queries and transfers of n1, n2 and ro: from their own addresses only
        assert {host for host, _ in primary.seen} == {"127.0.0.2", "127.0.0.4", "127.0.0.3"}
        wait_until(lambda: c.nodes[0].query(f"www.{OUTSIDE}").answer != [], 30, interval=0.2)
    finally:
        primary.close()
