"""Read-only nodes never serve a stale copy silently (issue #8, finding 6).

Each test has its own etcd, two writable nodes and a read-only node. In the
lagging set-up `n1` carries the test-only fault `signing.test_publish_delay`:
it serves every re-signed version late, so it lags behind the zone's current
serial while it keeps answering (and is the read-only node's first source,
by node id).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import kek_file
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.etcd import EtcdProcess, find_binary
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(not judge.have("ldns-verify-zone") or not judge.have("delv"),
                                reason="ldnsutils and bind9-dnsutils are needed")

LAG = 120.0  # n1 serves each re-signed version this late (far past every wait below)

# SOA refresh 2 s, retry 1 s, expire 10 s; TTLs 30 s: with a 60 s refresh margin the
# zone passes the signing policy (refresh >= expire + largest TTL) without --force.
SHORT_ZONE = """$ORIGIN {zone}
$TTL 30
@ IN SOA ns1 hostmaster 1 2 1 10 30
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
"""


def start(lag: float) -> tuple[Cluster, NodeProcess]:
    """etcd, writable n1 (serving re-signed versions `lag` seconds late) and n2, read-only ro."""
    etcd = EtcdProcess("rofresh")
    etcd.start()
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    kek = kek_file(workdir)
    signing = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
    nodes = [NodeProcess("n1", [etcd.endpoint], prefix, workdir,
                         extra_toml=signing + f"test_publish_delay = {lag}\n"),
             NodeProcess("n2", [etcd.endpoint], prefix, workdir, extra_toml=signing)]
    c = Cluster(etcd, nodes, prefix, workdir)
    ro = NodeProcess("ro", [etcd.endpoint], prefix, workdir, role="readonly")
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready()
        ro.start()
    except BaseException:
        ro.kill()
        c.close()
        raise
    return c, ro


@pytest.fixture
def lagging() -> Iterator[tuple[Cluster, NodeProcess]]:
    c, ro = start(LAG)
    try:
        yield c, ro
    finally:
        ro.kill()
        c.close()


@pytest.fixture
def healthy() -> Iterator[tuple[Cluster, NodeProcess]]:
    c, ro = start(0.0)
    try:
        yield c, ro
    finally:
        ro.kill()
        c.close()


def sign(c: Cluster, zone: str, text: str, *options: str) -> None:
    with Api(c.nodes[-1].api) as api:
        api.create_zone(zone, text.format(zone=zone), allow_transfer=("127.0.0.0/8",))
    res = c.nodes[-1].ctl("zone", "sign", zone, *options)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: '"published": true' in c.nodes[-1].ctl("--json", "zone", "dnssec",
                                                               zone).stdout, 60, interval=0.2)


def answer(node: NodeProcess, name: str, rdtype: str = "A") -> dns.message.Message | None:
    try:
        return node.query(name, rdtype, want_dnssec=True, timeout=1.0)
    except Exception:
        return None


def signed(node: NodeProcess, name: str) -> bool:
    resp = answer(node, name)
    return resp is not None and resp.rcode() == dns.rcode.NOERROR and any(
        r.rdtype == dns.rdatatype.RRSIG for r in resp.answer)


def servfail(node: NodeProcess, name: str) -> bool:
    resp = answer(node, name)
    return resp is not None and resp.rcode() == dns.rcode.SERVFAIL


def earliest_rrsig_expiry(node: NodeProcess, zone: str) -> int:
    """The earliest expiration of the RRSIGs `node` answers with for a few RRsets."""
    expirations = []
    for name, rdtype in ((zone, "SOA"), (zone, "DNSKEY"), (zone, "NS"), (f"www.{zone}", "A")):
        resp = answer(node, name, rdtype)
        assert resp is not None and resp.rcode() == dns.rcode.NOERROR, (name, rdtype)
        expirations += [rd.expiration for rrset in resp.answer
                        if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset]
    assert expirations
    return min(expirations)


def test_readonly_node_stops_serving_before_its_signatures_expire(
        healthy: tuple[Cluster, NodeProcess]) -> None:
    c, ro = healthy
    zone = "expire.test."
    # validity must exceed the fixed 1 h inception offset; the 10 s SOA expire is what
    # runs out here (the refresh-margin rule is covered by tests/unit/signing)
    sign(c, zone, SHORT_ZONE, "--validity", "2h", "--refresh", "1h", "--jitter", "60s")
    wait_until(lambda: signed(ro, f"www.{zone}"), 30, interval=0.2)
    assert ro.ready()
    expiry = earliest_rrsig_expiry(ro, zone)
    for n in c.nodes:  # no writable node signs, answers or refreshes any more
        n.pause()
    try:
        left = expiry - time.time()
        assert left > 600, f"only {left:.0f}s of validity left at the start"
        # expected about 10 s (the SOA expire) after the last refresh; 90 s is the margin
        wait_until(lambda: servfail(ro, f"www.{zone}") and not ro.ready(), 90,
                   interval=0.5, message="the read-only node kept serving a copy that no "
                                         "writable node refreshes any more")
        assert time.time() < expiry
        log = ro.log_path.read_text()
        assert "SECONDARY_EXPIRED" in log and zone in log
        nodes = json.loads(ro.ctl("--json", "nodes").stdout)
        me = next(n for n in nodes if n["id"] == "ro")
        assert "expire" in me["problems"].get(zone, ""), nodes
        assert zone not in me["served_serials"], "a held zone is not reported as served"
    finally:
        for n in c.nodes:
            n.resume()
    # the writable nodes are back: the read-only node serves the zone again
    wait_until(lambda: signed(ro, f"www.{zone}") and ro.ready(), 90, interval=0.5)


def test_a_source_behind_the_current_serial_is_passed_over(
        lagging: tuple[Cluster, NodeProcess]) -> None:
    c, ro = lagging
    n1, n2 = c.nodes
    zone = "behind.test."
    sign(c, zone, SHORT_ZONE)
    wait_until(lambda: signed(ro, f"www.{zone}"), 30, interval=0.2)
    with Api(n2.api) as api:
        serial = api.add(zone, "later", 30, "A", "192.0.2.44")
    wait_until(lambda: n2.serial(zone) == serial and signed(n2, f"later.{zone}"), 30,
               interval=0.2)
    # n1 (the first source by node id) serves an older serial, signed; n2 the current one
    before = n1.serial(zone)
    assert before is not None and before != serial and signed(n1, f"www.{zone}")
    wait_until(lambda: ro.serial(zone) == serial, 30, interval=0.2,
               message=f"the read-only node stayed at {ro.serial(zone)}, the current serial "
                       f"{serial} is on n2 (n1, its first source, lags at {before})")
    assert signed(ro, f"later.{zone}")
    assert n1.serial(zone) == before, "n1 caught up: the test did not show what it means to"
    # `clusterctl nodes` reports the serial the read-only node serves
    wait_until(lambda: next(n for n in json.loads(ro.ctl("--json", "nodes").stdout)
                            if n["id"] == "ro")["served_serials"].get(zone) == serial, 10)


def test_readonly_node_works_with_the_etcd_role_the_auth_script_makes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/compose/etcd-auth.sh (the Kubernetes auth Job's script) makes the read-only
    user `dnscluster-ro`: it reads zones/ and writes nodes/ and alive/ only. A read-only node
    with that user serves a signed zone by transfer and reports ready."""
    etcd = EtcdProcess("roauth")
    etcd.start()
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    passwords = {}
    for name in ("root", "node", "ro"):
        passwords[name] = uuid.uuid4().hex
        (tmp_path / name).write_text(passwords[name])
    env = {"PATH": f"{Path(find_binary('etcdctl')).parent}:/usr/bin:/bin",
           "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": etcd.endpoint,
           "ETCD_ROOT_PASSWORD_FILE": str(tmp_path / "root"),
           "ETCD_NODE_PASSWORD_FILE": str(tmp_path / "node"),
           "ETCD_RO_PASSWORD_FILE": str(tmp_path / "ro"), "DNSCLUSTER_PREFIX": prefix}
    script = Path(__file__).parents[2] / "deploy" / "compose" / "etcd-auth.sh"
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    kek = kek_file(tmp_path)
    signing = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
    n1 = NodeProcess("n1", [etcd.endpoint], prefix, tmp_path, extra_toml=signing)
    ro = NodeProcess("ro", [etcd.endpoint], prefix, tmp_path, role="readonly")
    c = Cluster(etcd, [n1], prefix, tmp_path)
    try:
        monkeypatch.setenv("DNSNODE_ETCD__USERNAME", "dnscluster")
        monkeypatch.setenv("DNSNODE_ETCD__PASSWORD", passwords["node"])
        n1.start()
        monkeypatch.setenv("DNSNODE_ETCD__USERNAME", "dnscluster-ro")
        monkeypatch.setenv("DNSNODE_ETCD__PASSWORD", passwords["ro"])
        ro.start()
        zone = "auth.test."
        sign(c, zone, SHORT_ZONE)
        wait_until(lambda: signed(ro, f"www.{zone}") and ro.ready(), 30, interval=0.2)
        nodes = json.loads(ro.ctl("--json", "nodes").stdout)
        assert next(n for n in nodes if n["id"] == "ro")["problems"] == {}
        assert "ERROR" not in ro.log_path.read_text(), ro.log_tail()
    finally:
        ro.kill()
        c.close()
