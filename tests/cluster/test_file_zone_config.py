"""File-backed zones as an operator meets them through another node.

`zone update` (who may transfer) takes effect on the owner at once, not at the
file's next serial: AXFRs from 127.0.0.77, an address no node has, are refused
until `--allow-transfer` lists it. A `record` change sent through n2 while the
owner n1 is down but its lease not yet expired names the owner that did not
answer, not the endpoint the operator gave (which did answer). Real etcd, two
real nodes (lease 60 s, so a killed n1 still counts as alive).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.query
import dns.xfr
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.wait import wait_until

ZONE = "fzc.test."
MASTER = f"""$ORIGIN {ZONE}
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
"""
OUTSIDE = "127.0.0.77"


@pytest.fixture(scope="module")
def owner() -> Iterator[Cluster]:
    c = make_cluster(2, lease_ttl=60)
    try:
        yield c
    finally:
        c.close()


def axfr_from_outside(c: Cluster) -> bool:
    n1 = c.nodes[0]
    try:
        zone = dns.zone.Zone(ZONE)
        dns.query.inbound_xfr(n1.host, zone, port=n1.dns_port, timeout=5, source=OUTSIDE)
    except (dns.xfr.TransferError, dns.exception.DNSException, OSError):
        return False
    return zone.get_rdataset("@", "SOA") is not None


def test_allow_transfer_applies_without_a_new_serial(owner: Cluster, tmp_path: Path) -> None:
    n1 = owner.nodes[0]
    path = tmp_path / "fzc.test.zone"
    path.write_text(MASTER)
    res = n1.ctl("zone", "create", ZONE, "--file-backed", "--node", "n1", "--file", str(path))
    assert res.returncode == 0, res.stderr
    wait_until(lambda: n1.query(ZONE, "SOA").answer, 30, message="the owner serves the zone")
    assert not axfr_from_outside(owner)
    res = n1.ctl("zone", "update", ZONE, "--allow-transfer", f"{OUTSIDE}/32")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: axfr_from_outside(owner), 20,
               message="the owner allows the new address without a new serial")
    assert path.read_text() == MASTER  # no new version was made for it


def test_a_change_for_a_down_owner_names_the_owner(owner: Cluster, tmp_path: Path) -> None:
    n1, n2 = owner.nodes
    path = tmp_path / "down.test.zone"
    path.write_text(MASTER.replace(ZONE, "down.test."))
    res = n2.ctl("zone", "create", "down.test.", "--file-backed", "--node", "n1",
                 "--file", str(path))
    assert res.returncode == 0, res.stderr
    wait_until(lambda: n1.query("down.test.", "SOA").answer, 30)
    n1.kill()  # its lease lives on for up to 60 s: n2 still takes it for alive
    try:
        res = n2.ctl("record", "add", "down.test.", "x", "300", "A", "192.0.2.9")
        assert res.returncode == 1
        assert "owning node n1" in res.stderr and n1.api in res.stderr, res.stderr
        assert "--endpoint" not in res.stderr, res.stderr  # n2, the endpoint given, answered
    finally:
        n1.start()
