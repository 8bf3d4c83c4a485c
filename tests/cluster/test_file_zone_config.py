"""A file-backed zone's `zone update` (who may transfer it) takes effect on the owner at once,
not at the file's next serial. One real etcd and one real node owning the file; AXFRs from
127.0.0.77, an address no node has, are refused until `--allow-transfer` lists it.
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
    c = make_cluster(1)
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
