"""Read-only nodes (the model's RODC): no KEK, signed zones pulled by transfer from a writable
node; with transfers not allowed, an error event and SERVFAIL, never unsigned data."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def rodc() -> Iterator[tuple[Cluster, NodeProcess]]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(count=2, extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\n'
                                         'stagger_max = 0.5\n')
    ro = NodeProcess("ro", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly")
    try:
        ro.start()
        yield c, ro
    finally:
        ro.kill()
        c.close()


def sign(c: Cluster, zone: str, allow_transfer: tuple[str, ...]) -> None:
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone), allow_transfer=allow_transfer)
    res = c.nodes[0].ctl("zone", "sign", zone)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: '"published": true' in c.nodes[0].ctl("--json", "zone", "dnssec",
                                                               zone).stdout, 30, interval=0.2)


def signed_answer(node: NodeProcess, name: str) -> bool:
    try:
        resp = node.query(name, "A", want_dnssec=True, timeout=1.0)
    except Exception:
        return False
    return resp.rcode() == dns.rcode.NOERROR and any(
        r.rdtype == dns.rdatatype.RRSIG for r in resp.answer)


def test_readonly_node_serves_the_signed_zone_by_transfer(rodc: tuple[Cluster, NodeProcess],
                                                         tmp_path: Path) -> None:
    c, ro = rodc
    zone = "rodc.test."
    sign(c, zone, ("127.0.0.0/8",))
    wait_until(lambda: signed_answer(ro, f"www.{zone}"), 30, interval=0.2)
    anchors = [line.split(" DNSKEY ", 1)[1] for line in c.nodes[0].ctl(
        "trust-anchors", "export", zone, "--format", "dnskey").stdout.splitlines()
        if " DNSKEY " in line]
    ta = judge.anchor_file(tmp_path / "ta", zone, anchors)
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, zone, f"www.{zone}"))
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, zone, f"nope.{zone}"))
    # a change through a writable node reaches the read-only node, signed
    with Api(c.nodes[1].api) as api:
        serial = api.add(zone, "later", 300, "A", "192.0.2.44")
    wait_until(lambda: ro.serial(zone) == serial, 30, interval=0.2)
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, zone, f"later.{zone}"))
    # the read-only node holds no private key and cannot be Key Master
    res = c.nodes[0].ctl("transfer-keymaster", zone, "--to", "ro")
    assert res.returncode == 1 and "readonly" in res.stderr


def test_without_transfers_the_readonly_node_serves_nothing_and_says_why(
        rodc: tuple[Cluster, NodeProcess]) -> None:
    c, ro = rodc
    zone = "noxfr.test."
    sign(c, zone, ())
    wait_until(lambda: "XFR_FAILED" in ro.log_path.read_text()
               and zone in ro.log_path.read_text(), 40, interval=0.5)
    assert "allows zone transfers" in ro.log_path.read_text()
    # and `clusterctl nodes` says why
    wait_until(lambda: "allows zone transfers" in str(json.loads(
        c.nodes[0].ctl("--json", "nodes").stdout)[-1].get("problems", {}).get(zone, "")), 10)
    resp = ro.query(f"www.{zone}", "A", want_dnssec=True)
    assert resp.rcode() == dns.rcode.SERVFAIL  # never the unsigned zone
    assert not ro.ready()
