"""A secondary zone of an outside primary: Knot DNS (`knotd`) as the primary, with TSIG.

Three nodes (two writable, one read-only) each transfer the zone `sec.test.`
from a real knotd that allows transfers only with the transfer TSIG key and
NOTIFYs every node's DNS port. The SOA refresh is long (300 s), so only
NOTIFY can make the nodes follow ten changes of the primary's zone file
(serial bumped, `knotc zone-reload`; knotd keeps the differences in its
journal, so it can answer IXFR). Each node must take the first copy by AXFR
and every change by IXFR (our ZONE_TRANSFERRED_IN events, `zone show`, the
metrics). NOTIFY from an address that is not the primary is REFUSED, and an
UPDATE is REFUSED with an event. Then the SOA is changed to refresh 2, retry
1, expire 10, knotd is stopped, and every node stops serving the zone
(SERVFAIL, ZONE_EXPIRED) about 10 s after its last successful refresh.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import dns.xfr
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.knot import KNOTC, KNOTD, KnotProcess
from tests.support.nodes import NodeProcess, events, free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(KNOTD is None or KNOTC is None,
                                reason="Knot DNS (apt package knot: knotd, knotc) is needed")

ZONE = "sec.test."
LONG = (300, 2, 600)  # refresh, retry, expire: only NOTIFY makes the nodes follow quickly
SHORT = (2, 1, 10)  # for the expire test
ZONE_TRANSFERRED_IN, ZONE_EXPIRED, NOTIFY_REFUSED, UPDATE_SECONDARY_REFUSED = (
    1370, 1372, 1374, 1376)


def zone_text(serial: int, changes: int, timers: tuple[int, int, int]) -> str:
    refresh, retry, expire = timers
    hosts = "".join(f"h{i} 300 IN A 192.0.2.{i}\n" for i in range(1, changes + 1))
    return (f"$ORIGIN {ZONE}\n$TTL 300\n"
            f"@ 300 IN SOA ns1 hostmaster {serial} {refresh} {retry} {expire} 60\n"
            f"@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n{hosts}")


SIGNED = "signed.test."
SIGNED_TEXT = f"""$ORIGIN {SIGNED}
$TTL 300
@ 300 IN SOA ns1 hostmaster 1 300 2 600 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
www 300 IN A 192.0.2.80
"""

KNOT_CONF = """policy:
  - id: signer
    algorithm: ecdsap256sha256
    nsec3: off

server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{d}"

key:
  - id: {key}
    algorithm: hmac-sha256
    secret: {secret}

remote:
{remotes}
acl:
  - id: xfr
    key: {key}
    action: transfer

log:
  - target: stderr
    any: info

template:
  - id: default
    storage: "{d}"
    zonefile-load: difference
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off

zone:
  - domain: {zone}
    file: "{file}"
    notify: [{notify}]
    acl: xfr
  - domain: {signed}
    file: "{signed_file}"
    notify: [{notify}]
    acl: xfr
    dnssec-signing: on
    dnssec-policy: signer
"""


@dataclass
class Knot(KnotProcess):
    @property
    def zone_file(self) -> Path:
        return self.dir / "sec.test.zone"

    def start(self, conf: str) -> None:
        self.launch(conf)
        wait_until(lambda: self.serial() is not None, 30,
                   message=f"knotd did not serve {ZONE}: {self.log.read_text()[-2000:]}")

    def serial(self) -> int | None:
        try:
            resp = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1",
                                 port=self.port, timeout=1.0)
        except (dns.exception.Timeout, OSError):
            return None
        return next((int(r[0].serial) for r in resp.answer if r.rdtype == dns.rdatatype.SOA),
                    None)

    def publish(self, serial: int, changes: int, timers: tuple[int, int, int]) -> None:
        """Write the zone file and make knotd load it (the difference goes to its journal)."""
        self.zone_file.write_text(zone_text(serial, changes, timers))
        res = self.ctl("zone-reload", ZONE)
        assert res.returncode == 0, res.stdout + res.stderr
        wait_until(lambda: self.serial() == serial, 30, interval=0.1,
                   message=f"knotd did not load serial {serial}")


@dataclass
class Setup:
    cluster: Cluster
    nodes: list[NodeProcess]
    knot: Knot


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    # a served RRSIG that expires within 30 days is reported (Knot signs for 14 days)
    warn = "[signing]\nexpiry_warning = 2592000\n"
    c = make_cluster(count=2, extra_toml=warn)
    ro = NodeProcess("ro", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly",
                     extra_toml=warn)
    knot = Knot(Path(tempfile.mkdtemp(prefix="knot-")), free_port())
    try:
        ro.start()
        nodes = [*c.nodes, ro]
        res = c.nodes[0].ctl("--json", "tsig", "add", "xfr-key", "--use", "transfer")
        assert res.returncode == 0, res.stderr
        secret = json.loads(res.stdout)["secret"]
        remotes = "".join(f"  - id: {n.node_id}\n    address: 127.0.0.1@{n.dns_port}\n"
                          for n in nodes)
        knot.zone_file.write_text(zone_text(1, 0, LONG))
        (knot.dir / "signed.zone").write_text(SIGNED_TEXT)
        knot.start(KNOT_CONF.format(d=knot.dir, port=knot.port, key="xfr-key", secret=secret,
                                    remotes=remotes, zone=ZONE, file=knot.zone_file,
                                    notify=", ".join(n.node_id for n in nodes),
                                    signed=SIGNED, signed_file=knot.dir / "signed.zone"))
        yield Setup(c, nodes, knot)
    finally:
        knot.stop()
        ro.kill()
        c.close()


def rcode(node: NodeProcess, name: str, rdtype: str = "A") -> int | None:
    try:
        return node.query(name, rdtype, timeout=1.0).rcode()
    except Exception:
        return None


def signed_answer(host: str, port: int, name: str, rdtype: str) -> dns.message.Message:
    return dns.query.tcp(dns.message.make_query(name, rdtype, want_dnssec=True), host,
                         port=port, timeout=5)


def sigs(msg: dns.message.Message) -> set[str]:
    return {rd.to_text() for section in (msg.answer, msg.authority) for r in section
            if r.rdtype == dns.rdatatype.RRSIG for rd in r}


def test_signed_zone_is_served_as_received(setup: Setup) -> None:
    """Knot signs the zone; every node serves Knot's RRSIGs and NSEC records byte for byte,
    and watches their expiry (the signature-expiring event of our own signed zones)."""
    c, nodes, knot = setup.cluster, setup.nodes, setup.knot
    # knotd allows transfers only with the TSIG key: the nodes' transfers below are signed
    with pytest.raises(dns.xfr.TransferError):
        dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=knot.port, timeout=5))
    wait_until(lambda: sigs(signed_answer("127.0.0.1", knot.port, f"www.{SIGNED}", "A")), 30,
               message="knotd did not sign the zone")
    res = c.nodes[0].ctl("zone", "create", SIGNED, "--secondary", "--primary",
                         f"127.0.0.1:{knot.port}", "--tsig", "xfr-key")
    assert res.returncode == 0, res.stderr
    for name, rdtype in ((f"www.{SIGNED}", "A"), (f"nope.{SIGNED}", "A"), (SIGNED, "DNSKEY")):
        want = signed_answer("127.0.0.1", knot.port, name, rdtype)
        assert sigs(want), (name, rdtype)
        for n in nodes:
            wait_until(lambda n=n, name=name, rdtype=rdtype, want=want: (
                (got := signed_answer(n.host, n.dns_port, name, rdtype)).rcode() == want.rcode()
                and sigs(got) == sigs(want)), 30, interval=0.2,
                message=f"{n.node_id} does not serve {name} {rdtype} as Knot signed it")
    for n in nodes:
        wait_until(lambda n=n: any(e.get("zone") == SIGNED for e in events(n, 1525)), 10,
                   message=f"{n.node_id}: no expiry warning for the served RRSIGs")


def test_secondary_zone_follows_notify_by_ixfr_then_expires(setup: Setup) -> None:
    c, nodes, knot = setup.cluster, setup.nodes, setup.knot
    primary = f"127.0.0.1:{knot.port}"
    res = c.nodes[0].ctl("zone", "create", ZONE, "--secondary", "--primary", primary,
                         "--tsig", "xfr-key")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: all(n.serial(ZONE) == 1 for n in nodes), 30, interval=0.1,
               message="the first transfer did not reach every node")

    for i in range(1, 11):  # ten changes, each announced by knotd's NOTIFY only
        knot.publish(1 + i, i, LONG)
        wait_until(lambda i=i: all(n.serial(ZONE) == 1 + i for n in nodes), 30, interval=0.1,
                   message=f"serial {1 + i} did not reach every node by NOTIFY")
    for n in nodes:
        resp = n.query(f"h10.{ZONE}", "A")
        assert [rd.to_text() for r in resp.answer for rd in r] == ["192.0.2.10"], n.node_id
        methods = [e["method"] for e in events(n, ZONE_TRANSFERRED_IN) if e["zone"] == ZONE]
        assert methods == ["AXFR"] + ["IXFR"] * 10, (n.node_id, methods)
    # knotd's side: it sent the ten changes by IXFR to every node
    ixfr = [line for line in knot.log.read_text().splitlines()
            if "IXFR, outgoing" in line and "started, serial" in line]
    assert len(ixfr) >= 10 * len(nodes), knot.log.read_text()[-3000:]

    # zone show: which node transferred which serial from which primary, how
    show = json.loads(c.nodes[0].ctl("--json", "zone", "show", ZONE).stdout)
    assert show["kind"] == "secondary" and show["primaries"] == [primary]
    assert {t["node"]: (t["serial"], t["primary"], t["method"], t["serving"])
            for t in show["transfers"]} == {n.node_id: (11, primary, "IXFR", True)
                                            for n in nodes}
    with urllib.request.urlopen(f"http://127.0.0.1:{nodes[2].metrics_port}/metrics",
                                timeout=5) as resp:
        metrics = resp.read().decode()
    assert (f'dnscluster_secondary_zone_transfers_total{{method="IXFR",primary="{primary}",'
            f'zone="{ZONE}"}} 10.0') in metrics, metrics
    assert f'dnscluster_secondary_zone_serial{{primary="{primary}",zone="{ZONE}"}} 11.0' \
        in metrics

    # NOTIFY from an address that is not a listed primary: REFUSED, with an event
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    for n in nodes:
        reply = dns.query.udp(notify, n.host, port=n.dns_port, timeout=2, source="127.0.0.2")
        assert reply.rcode() == dns.rcode.REFUSED, n.node_id
        assert events(n, NOTIFY_REFUSED), n.node_id
    # UPDATE: REFUSED with an event (the read-only node forwards it to a writable node)
    for n in nodes:
        upd = dns.update.UpdateMessage(ZONE)
        upd.add("x", 300, "A", "192.0.2.99")
        assert dns.query.tcp(upd, n.host, port=n.dns_port, timeout=5).rcode() == \
            dns.rcode.REFUSED, n.node_id
    assert sum(len(events(n, UPDATE_SECONDARY_REFUSED)) for n in c.nodes) == len(nodes)

    # expire: short timers, then the primary goes away
    knot.publish(12, 10, SHORT)
    wait_until(lambda: all(n.serial(ZONE) == 12 for n in nodes), 30, interval=0.1)
    knot.stop()
    stopped = time.monotonic()
    wait_until(lambda: all(rcode(n, f"h1.{ZONE}") == dns.rcode.SERVFAIL for n in nodes), 40,
               interval=0.2, message="the zone was still served long after its expire")
    elapsed = time.monotonic() - stopped
    # expire 10 s after the last successful refresh (refresh 2 s: at most 2 s before the stop)
    assert elapsed >= 10 - 2 - 0.5, f"stopped serving {elapsed:.1f} s after the primary went"
    for n in nodes:
        expired = [e for e in events(n, ZONE_EXPIRED) if e["zone"] == ZONE]
        assert expired and expired[-1]["expire"] == 10, n.node_id
    show = json.loads(c.nodes[0].ctl("--json", "zone", "show", ZONE).stdout)
    assert all(not t["serving"] and t["error"] for t in show["transfers"]), show["transfers"]
    # the signed zone's copy is younger than its expire (600 s): still served
    assert all(rcode(n, f"www.{SIGNED}") == dns.rcode.NOERROR for n in nodes)


def test_deleted_secondary_zone_is_no_longer_served(setup: Setup) -> None:
    c, nodes = setup.cluster, setup.nodes
    wait_until(lambda: all(rcode(n, f"www.{SIGNED}") == dns.rcode.NOERROR for n in nodes), 30)
    res = c.nodes[0].ctl("zone", "delete", SIGNED)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: all(rcode(n, f"www.{SIGNED}") == dns.rcode.REFUSED for n in nodes), 30,
               interval=0.1, message="a deleted secondary zone is still served")
    assert c.nodes[0].ctl("zone", "show", SIGNED).returncode != 0
