"""A child zone outside the cluster: Knot DNS (`knotd`) signs `ext.kp.test.` and rolls its KSK;
the parent `kp.test.` is in the cluster, whose Key Master polls the child's CDS/CDNSKEY at the
addresses of the delegation (its glue) and keeps the DS current (issue #11 part 7).

Knot checks the parent for the new DS itself (`ksk-submission`), so the whole roll runs with
no operator: Knot introduces a KSK and publishes its CDS once it is ready; the parent's poll
validates that CDS against the current DS (RFC 7344) and replaces the DS; Knot sees the DS at
the parent and retires the old KSK. The glue says 127.0.0.1, and the test-only setting
`testing.cds_glue_port` points the poll at knotd's port instead of 53. Unbound trusts only
the parent's DS, keeps its cache and asks fresh and repeated names of the child the whole
time: no answer may be SERVFAIL or lack AD.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ctl_json, wait_published
from tests.support.api import Api
from tests.support.knot import KNOTC, KNOTD, KnotProcess
from tests.support.nodes import events, free_port
from tests.support.rollover import TTL, Watcher, leaf_text, parent_text, served_ds, signing_cluster
from tests.support.unbound import running, server_conf, stub_zones
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(
    KNOTD is None or KNOTC is None or shutil.which("unbound") is None,
    reason="Knot DNS (knotd, knotc) and unbound are needed")

PARENT = "kp.test."
CHILD = f"ext.{PARENT}"
CDS_ACCEPTED = 1670
PARENT_TEXT = parent_text(PARENT, {"ext": "127.0.0.1"})
CHILD_TEXT = leaf_text(CHILD, "127.0.0.1")
KNOT_CONF = """server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
remote:
  - id: parent
    address: 127.0.0.1@{parent_port}
submission:
  - id: to-parent
    parent: parent
    check-interval: 1s
policy:
  - id: roll
    algorithm: ecdsap256sha256
    nsec3: off
    dnskey-ttl: {ttl}
    zone-max-ttl: {ttl}
    propagation-delay: 1s
    ksk-lifetime: 0
    zsk-lifetime: 0
    ksk-submission: to-parent
    cds-cdnskey-publish: rollover
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
zone:
  - domain: {zone}
    file: "{file}"
    dnssec-signing: on
    dnssec-policy: roll
"""


@dataclass
class Knot(KnotProcess):

    def start(self, parent_port: int) -> None:
        (self.dir / "child.zone").write_text(CHILD_TEXT)
        self.launch(KNOT_CONF.format(
            d=self.dir, port=self.port, parent_port=parent_port, ttl=TTL, zone=CHILD,
            file=self.dir / "child.zone"))
        wait_until(lambda: bool(self.ksks()), 30,
                   message=f"knotd did not sign {CHILD}: {self.log.read_text()[-2000:]}")

    def ksks(self) -> set[int]:
        try:
            r = dns.query.tcp(dns.message.make_query(CHILD, "DNSKEY"), "127.0.0.1",
                              port=self.port, timeout=2)
        except (dns.exception.DNSException, OSError):
            return set()
        return {dns.dnssec.key_id(rd) for rrset in r.answer
                if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset if rd.flags & 1}  # type: ignore[attr-defined]

    def knotc(self, *args: str) -> str:
        res = self.ctl(*args)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout


@dataclass
class Setup:
    cluster: Cluster
    knot: Knot


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    knot = Knot(Path(tempfile.mkdtemp(prefix="knot-child-")), free_port())
    c = signing_cluster(f"cds_poll_interval = 1.0\n[testing]\ncds_glue_port = {knot.port}\n")
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(PARENT, PARENT_TEXT)
        out = ctl_json(c.nodes[0], "zone", "sign", PARENT, "--dnskey-ttl", str(TTL),
                       "--propagation-delay", f"{TTL}s")
        assert out["state"] == "done", out
        wait_published(c, PARENT)
        knot.start(parent_port=c.nodes[0].dns_port)
        (ksk,) = knot.ksks()
        # the first DS is the operator's (an insecure delegation is never bootstrapped)
        dnskey = dns.query.tcp(dns.message.make_query(CHILD, "DNSKEY"), "127.0.0.1",
                               port=knot.port, timeout=5)
        key = next(rd for rrset in dnskey.answer if rrset.rdtype == dns.rdatatype.DNSKEY
                   for rd in rrset if dns.dnssec.key_id(rd) == ksk)
        with Api(c.nodes[0].api) as api:
            api.add(PARENT, "ext", TTL, "DS",
                    dns.dnssec.make_ds(CHILD, key, "SHA256").to_text())
        yield Setup(c, knot)
    finally:
        knot.stop()
        c.close()


@pytest.fixture
def unbound(setup: Setup) -> Iterator[tuple[str, int]]:
    c, knot = setup.cluster, setup.knot
    anchor = c.nodes[0].ctl("trust-anchors", "export", PARENT, "--format", "ds").stdout
    work = Path(tempfile.mkdtemp(prefix="unbound-"))
    (work / "anchor").write_text(anchor)
    port = free_port()
    conf = (server_conf(work, port) + '  access-control: 127.0.0.0/8 allow\n'
            '  local-zone: "test." nodefault\n' + stub_zones([PARENT], c.nodes)
            + f'stub-zone:\n  name: "{CHILD}"\n  stub-addr: 127.0.0.1@{knot.port}\n')
    with running(work, port, conf, f"www.{CHILD}", interval=0.3,
                 message="unbound validates the Knot child") as server:
        yield server


def test_knot_child_ksk_roll_completes_by_cds_polling(setup: Setup,
                                                      unbound: tuple[str, int]) -> None:
    c, knot = setup.cluster, setup.knot
    (old,) = knot.ksks()
    for n in c.nodes:
        wait_until(lambda n=n: served_ds(n, CHILD) == {old}, 30, interval=0.2,
                   message=f"{n.node_id} serves the first DS")
    with Watcher(unbound, zone=CHILD) as w:
        knot.knotc("zone-key-rollover", CHILD, "ksk")
        wait_until(lambda: len(knot.ksks()) == 2, 30, interval=0.2,
                   message="knotd introduced a second KSK")
        (new,) = knot.ksks() - {old}
        # the parent's poll, at the glue address, replaces the DS once Knot's CDS names it
        for n in c.nodes:
            wait_until(lambda n=n: served_ds(n, CHILD) == {new}, 90, interval=0.3,
                       message=f"{n.node_id} serves Knot's new DS")
        # Knot sees the DS at the parent and finishes: the old KSK leaves its DNSKEY set
        wait_until(lambda: knot.ksks() == {new}, 90, interval=0.5,
                   message=f"knotd finished the roll: {knot.log.read_text()[-1500:]}")
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    accepted = [e for n in c.nodes for e in events(n, CDS_ACCEPTED) if e["child"] == CHILD]
    assert len(accepted) == 1 and accepted[0]["action"] == "replace", accepted
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])
