"""IXFR from a real node whose journal keeps a large step only on disk (issue 10, session 7).

One node with serving workers (transfers are handed over to the control process)
and no `server.journal_dir`: the journal files go to the node's private
temporary directory. A change of one RRset of 200 TXT records (~8 KiB, larger
than `journalfile.RESIDENT_MAX`) is kept only as an index entry in memory; an
IXFR over TCP from the serial before must still be incremental (read back from
the file) and, applied by dnspython's IXFR client, give the node's AXFR. The
private directory is gone once the node has stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.query
import dns.rdatatype
import pytest

from node.server.journalfile import RESIDENT_MAX
from node.server.journalstore import TEMP, temp_bases
from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_ixfr import ORIGIN, ZONE, axfr, canonical, ixfr, serial_of
from tests.cluster.test_signing import ZONE_TEXT
from tests.support.api import Api
from tests.support.nodes import SERVING_WORKERS
from tests.support.wait import wait_until

TXT = [f'"record {i:03d} of a change too large to be kept in memory"' for i in range(200)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = make_cluster(1, env=SERVING_WORKERS)
    try:
        yield c
    finally:
        c.close()


def _incremental(c: Cluster, serial: int) -> bool:
    n = c.nodes[0]
    msgs = list(dns.query.xfr(n.host, ORIGIN, rdtype=dns.rdatatype.IXFR, serial=serial,
                              port=n.dns_port, timeout=20, relativize=False))
    first = msgs[0].answer
    return len(first) > 1 and first[1].rdtype == dns.rdatatype.SOA


def test_a_step_kept_on_disk_answers_incrementally(cluster: Cluster) -> None:
    n = cluster.nodes[0]
    assert sum(len(t) for t in TXT) > RESIDENT_MAX
    with Api(n.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
    wait_until(lambda: n.serial(ZONE) is not None, 30)
    copy = axfr(n)
    old = serial_of(copy)
    with Api(n.api) as api:
        serial = api.add(ZONE, "big", 300, "TXT", *TXT)
    wait_until(lambda: n.serial(ZONE) == serial, 30)
    # the journal records the step while the version is served; then IXFR is incremental
    wait_until(lambda: _incremental(cluster, old), 30, message=n.log_tail())
    assert ixfr(n, copy), "answered in AXFR form"
    assert serial_of(copy) == serial
    assert canonical(copy) == canonical(axfr(n))
    assert "read from the journal file" in n.log_tail(200)
    assert n.proc is not None
    private = list(temp_bases()[0].glob(f"{TEMP}{n.proc.pid}-*"))
    assert len(private) == 1 and any(private[0].iterdir()), "the journal file is there"
    n.terminate()
    assert not private[0].exists(), "the private journal directory goes with the node"
