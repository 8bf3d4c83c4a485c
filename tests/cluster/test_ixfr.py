"""IXFR from real nodes, applied by dnspython's IXFR client to a secondary's copy.

Three signing nodes keep their journals in `[server] journal_dir`. A secondary's
copy (a `dns.versioned.Zone`) taken by AXFR from n1 follows changes made through
the gRPC API on different nodes, by IXFR from a different node each round: every
answer must be incremental (the old SOA second) and, applied by `dns.xfr.Inbound`,
give exactly that node's AXFR (canonical RR sets). Then n1 restarts: its journal
file is loaded (event 1350) and a client still at the first serial is brought up
to date incrementally.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.versioned
import dns.xfr
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, ctl_json, kek_file, wait_published
from tests.support.api import Api
from tests.support.nodes import SERVING_WORKERS, NodeProcess
from tests.support.wait import wait_until

ZONE = "ixfr.test."
ORIGIN = dns.name.from_text(ZONE)
Canonical = frozenset[tuple[bytes, int, int, bytes]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    extra = (f'[signing]\nkek_file = "{kek}"\nkey_store = "{keydir}/store-{{node_id}}"\n'
             "stagger_min = 0.5\nstagger_max = 1.0\n"
             f'[server]\njournal_dir = "{keydir}/journal-{{node_id}}"\n')
    c = make_cluster(extra_toml=extra, env=SERVING_WORKERS)  # transfers handed over
    try:
        yield c
    finally:
        c.close()


def canonical(zone: dns.zone.Zone) -> Canonical:
    return frozenset((n.canonicalize().to_digestable(), rds.rdtype, rds.ttl,
                      rd.to_digestable(ORIGIN))
                     for n, rds in zone.iterate_rdatasets() for rd in rds)


def axfr(node: NodeProcess) -> dns.versioned.Zone:
    zone = dns.versioned.Zone(ORIGIN, relativize=False)
    dns.query.inbound_xfr(node.host, zone, port=node.dns_port, timeout=20)
    return zone


def serial_of(zone: dns.zone.Zone) -> int:
    return int(zone.find_rdataset(ORIGIN, dns.rdatatype.SOA)[0].serial)  # type: ignore[attr-defined]


def ixfr(node: NodeProcess, zone: dns.versioned.Zone) -> bool:
    """Bring `zone` up to date from `node` by IXFR; True if the answer was incremental."""
    serial = serial_of(zone)
    msgs = list(dns.query.xfr(node.host, ORIGIN, rdtype=dns.rdatatype.IXFR, serial=serial,
                              port=node.dns_port, timeout=20, relativize=False))
    first = msgs[0].answer
    incremental = len(first) > 1 and first[1].rdtype == dns.rdatatype.SOA \
        and first[1][0].serial == serial
    with dns.xfr.Inbound(zone, dns.rdatatype.IXFR, serial=serial) as inbound:
        for m in msgs:
            inbound.process_message(m)
    return incremental


def test_ixfr_from_any_node_and_after_a_restart(cluster: Cluster) -> None:
    c = cluster
    with Api(c.nodes[0].api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
    assert ctl_json(c.nodes[0], "zone", "sign", ZONE)["state"] == "done"
    wait_published(c, ZONE)
    first_serial = wait_until(lambda: c.nodes[0].serial(ZONE), 30)
    copy = axfr(c.nodes[0])
    old_copy = axfr(c.nodes[0])  # a client that stays at the first serial
    assert serial_of(copy) == first_serial == serial_of(old_copy)
    changes = [("add", "r1", "192.0.2.11"), ("add", "r2", "192.0.2.12"),
               ("delete", "www", ""), ("add", "r1", "192.0.2.13")]
    for i, (op, owner, addr) in enumerate(changes):
        writer, source = c.nodes[i % 3], c.nodes[(i + 1) % 3]
        with Api(writer.api) as api:
            serial = api.add(ZONE, owner, 300, "A", addr) if op == "add" \
                else api.delete(ZONE, owner, "AAAA")
        wait_until(lambda s=source, want=serial: s.serial(ZONE) == want, 30,
                   message=f"{source.node_id} at serial {serial}")
        assert ixfr(source, copy), f"round {i}: {source.node_id} answered in AXFR form"
        assert serial_of(copy) == serial
        assert canonical(copy) == canonical(axfr(source)), f"round {i} from {source.node_id}"
        assert f"IXFR of {ZONE} from serial" in source.log_tail(200)

    n1 = c.nodes[0]
    n1.terminate()
    n1.start()
    wait_until(lambda: n1.serial(ZONE) == serial_of(copy), 60, message="n1 serves again")
    wait_until(lambda: "JOURNAL_LOADED" in n1.log_tail(400), 30, message=n1.log_tail())
    assert ixfr(n1, old_copy), "the journal kept on disk answers incrementally"
    assert canonical(old_copy) == canonical(copy) == canonical(axfr(n1))
