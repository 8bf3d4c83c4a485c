"""One serial is one zone: every writable node's signed copy at a serial is the same RR set.

Three real nodes sign independently (no node copies another's signatures); node n3's
clock runs three hours behind (a test-only offset), which must change nothing, because
signature times come from the zone version recorded in etcd. After each step that can
move a zone (signing, changes through different nodes, an import, signature refreshes,
a restart that re-signs from scratch, a Key Master transfer) the AXFRs of all nodes are
compared as canonical RR sets at one serial, and `zone dnssec` shows equal digests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, ctl_json, kek_file, verify_axfr, wait_published
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(not judge.have("ldns-verify-zone"),
                                reason="ldnsutils is needed")

Canonical = frozenset[tuple[bytes, int, int, bytes]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    extra = (f'[signing]\nkek_file = "{kek}"\nkey_store = "{keydir}/store-{{node_id}}"\n'
             "stagger_min = 0.5\nstagger_max = 1.5\n")
    c = make_cluster(extra_toml=extra)
    # n3 runs with its clock three hours behind: it must sign the same bytes
    n3 = c.node("n3")
    n3.kill()
    n3.extra_toml = extra + "[testing]\nclock_offset = -10800\n"
    n3.start()
    try:
        yield c
    finally:
        c.close()


def canonical(node: NodeProcess, zone: str) -> tuple[int, Canonical]:
    """The node's AXFR as (serial, canonical RR set): owner and rdata in canonical form."""
    xfr = dns.query.xfr(node.host, zone, port=node.dns_port, timeout=20, relativize=False)
    z = dns.zone.from_xfr(xfr, relativize=False, check_origin=False)
    origin = dns.name.from_text(zone)
    soa = z.find_rdataset(origin, dns.rdatatype.SOA)[0]
    rrs = frozenset(
        (name.canonicalize().to_digestable(), rds.rdtype, rds.ttl, rd.to_digestable(origin))
        for name, rds in z.iterate_rdatasets() for rd in rds)
    return soa.serial, rrs  # type: ignore[attr-defined]


def assert_identical(c: Cluster, zone: str, timeout: float = 60, serial: int | None = None,
                     ) -> int:
    """Wait until every node serves one serial (`serial`, if given: all nodes can agree
    on an earlier one while the last change still spreads); then their copies must be
    equal."""
    def same_serial() -> dict[str, tuple[int, Canonical]] | None:
        copies = {n.node_id: canonical(n, zone) for n in c.nodes}
        serials = {s for s, _ in copies.values()}
        return copies if len(serials) == 1 and serial in (None, *serials) else None

    copies = wait_until(same_serial, timeout, interval=0.2, message=f"{zone}: one serial")
    (ref_id, (serial, ref)), *others = copies.items()
    for node_id, (_, rrs) in others:
        assert rrs == ref, (f"{zone} serial {serial}: {node_id} differs from {ref_id}: "
                            f"{len(rrs - ref)} RRs only on {node_id}, "
                            f"{len(ref - rrs)} only on {ref_id}")
    assert any(t == dns.rdatatype.RRSIG for _, t, _, _ in ref), "the copies are signed"
    return serial


def assert_digests_agree(c: Cluster, zone: str) -> None:
    def agreed() -> dict | None:  # type: ignore[type-arg]
        st = ctl_json(c.nodes[0], "zone", "dnssec", zone)
        rows = st["nodes"]
        ok = len({(r["serial"], r["digest"]) for r in rows}) == 1 and rows[0]["digest"]
        return st if ok else None

    st = wait_until(agreed, 30, interval=0.3, message=f"{zone}: equal digests in zone dnssec")
    assert not any(r["digest_mismatch"] for r in st["nodes"])


def test_copies_are_identical_through_a_zone_life(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    zone = "same.test."
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    assert ctl_json(c.nodes[0], "zone", "sign", zone)["state"] == "done"
    wait_published(c, zone)
    assert_identical(c, zone)
    assert_digests_agree(c, zone)

    # single-record changes through different nodes (n3, whose clock is behind, too)
    last = 0
    for i in range(12):
        with Api(c.nodes[i % 3].api) as api:
            last = api.add(zone, f"h{i}", 300, "A", f"192.0.2.{i + 1}")
    assert assert_identical(c, zone, serial=last) == last

    # an import (a new generation)
    text = ZONE_TEXT.format(zone=zone) + "".join(f"imp{i} IN A 198.51.100.{i}\n"
                                                 for i in range(1, 40))
    res = c.nodes[1].ctl("zone", "import", zone, "-", input=text)
    assert res.returncode == 0, res.stderr
    assert_identical(c, zone)

    # a restart: n2 re-signs from scratch and must compute the incremental nodes' bytes
    c.node("n2").kill()
    with Api(c.nodes[0].api) as api:
        api.add(zone, "while-down", 300, "A", "192.0.2.200")
    c.node("n2").start()
    assert_identical(c, zone)

    # a Key Master transfer
    res = c.nodes[0].ctl("transfer-keymaster", zone, "--to", "n2")
    assert res.returncode == 0, res.stdout + res.stderr
    with Api(c.nodes[2].api) as api:
        api.add(zone, "after-transfer", 300, "A", "192.0.2.201")
    assert_identical(c, zone)
    assert_digests_agree(c, zone)
    for n in c.nodes:
        verify_axfr(n, zone, tmp_path)


def test_copies_are_identical_across_signature_refreshes(cluster: Cluster) -> None:
    """A short validity makes epoch boundaries pass every few seconds: refresh bumps
    (by any node, n3's late clock included) re-sign a few RRsets at a time, identically."""
    c = cluster
    zone = "refresh.test."
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    out = ctl_json(c.nodes[0], "zone", "sign", zone, "--validity", "3640s", "--refresh", "3600s",
                   "--jitter", "1s", "--force")
    assert out["state"] == "done"
    wait_published(c, zone)
    first = assert_identical(c, zone)
    # no writes from here on: only refresh bumps move the serial
    wait_until(lambda: (c.nodes[0].serial(zone) or 0) >= first + 2, 120, interval=0.5,
               message="two signature refreshes")
    assert_identical(c, zone)
    assert_digests_agree(c, zone)


def test_copies_are_identical_with_an_unreplicated_ksk(cluster: Cluster) -> None:
    """The KSK stays in the Key Master's store: every node, the Key Master included,
    serves the DNSKEY RRSIGs the Key Master published, so the copies stay equal."""
    c = cluster
    zone = "localksk.test."
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    out = ctl_json(c.nodes[0], "zone", "sign", zone, "--no-replicate-ksk-private-key",
                   "--failover", "manual")
    assert out["state"] == "done"
    wait_published(c, zone)
    assert_identical(c, zone)
    with Api(c.nodes[1].api) as api:
        api.add(zone, "later", 300, "A", "192.0.2.77")
    assert_identical(c, zone)
    assert_digests_agree(c, zone)
