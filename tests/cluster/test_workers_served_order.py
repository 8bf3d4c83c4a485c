"""With serving workers, "served" means the workers answer it: NOTIFY follows the workers.

A secondary that gets a NOTIFY asks the primary's DNS port for the SOA and
transfers only if the serial moved on (RFC 1996 4.7). With `server.workers`
> 0 that SOA query is answered by a worker, from its zone image, so the node
must send the NOTIFY (and report the serial served) only once every worker
serves the version, as the in-process path (workers = 0) does by construction.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.message
import dns.opcode
import dns.query
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

ZONE = "notify-order.test."
CHANGES = 8


@pytest.fixture(scope="module")
def wcluster() -> Iterator[Cluster]:
    c = make_cluster(count=1, env={"DNSNODE_SERVER__WORKERS": "2"})
    try:
        yield c
    finally:
        c.close()


def _soa_after_notify(sock: socket.socket, node: NodeProcess) -> int:
    """Wait for a NOTIFY, ask the node's DNS port for the SOA at once (as a secondary
    does), then acknowledge the NOTIFY; the serial answered."""
    while True:
        data, addr = sock.recvfrom(65535)
        msg = dns.message.from_wire(data)
        if msg.opcode() == dns.opcode.NOTIFY:
            break
    soa = dns.query.udp(dns.message.make_query(ZONE, "SOA"), node.host,
                        port=node.dns_port, timeout=5)
    sock.sendto(dns.message.make_response(msg).to_wire(), addr)
    return next(int(r[0].serial) for r in soa.answer if r.rdtype == dns.rdatatype.SOA)


def test_soa_asked_right_after_notify_has_the_notified_serial(wcluster: Cluster) -> None:
    node = wcluster.nodes[0]
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(30)
    port = target.getsockname()[1]
    with Api(node.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
        wait_until(lambda: node.serial(ZONE) is not None, 30)
        res = node.ctl("zone", "update", ZONE, "--notify", f"127.0.0.1:{port}")
        assert res.returncode == 0, res.stderr
        # one NOTIFY per served serial, each sent once that serial is served: first for
        # the configuration change, then for each record added
        stale = []
        serial = api.get_zone(ZONE).serial
        for i in range(CHANGES + 1):
            if i:
                serial = api.add(ZONE, f"h{i}.{ZONE}", 300, "A", f"192.0.2.{i}")
            answered = _soa_after_notify(target, node)
            if answered < serial:
                stale.append((serial, answered))
    assert not stale, f"SOA asked right after a NOTIFY older than the serial: {stale}"
