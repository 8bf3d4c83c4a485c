"""A node listening on a wildcard tells others its advertised address, never `0.0.0.0`.

The bug: a node wrote its configured listen addresses into its membership record, so
in Kubernetes (every pod listens on `0.0.0.0:5300`) a read-only pod transferred signed
zones from, and forwarded UPDATEs to, "0.0.0.0:5300": itself.

A wildcard may only be bound where it exposes nothing, so the real tests run inside a
private network namespace (`unshare -rn`: a user namespace with its own loopback and
no other interface), where etcd, a writable node listening on `0.0.0.0` and a
read-only node run as usual. The outer test starts pytest there on the inner tests.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.etcd import EtcdProcess
from tests.support.netns import inner, outer, run_inner_tests
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

ZONE = "advertised.test."
W_HOST, RO_HOST = "127.0.0.2", "127.0.0.3"  # API and metrics; DNS: w1 on the wildcard
# w1's advertised DNS address: not 127.0.0.1, the address the kernel would pick as the
# source of a wildcard socket's answers, so answers must come from the address asked
W_ADVERTISE = W_HOST


@outer
def test_in_a_private_network_namespace() -> None:
    run_inner_tests(__file__, timeout=600)


@pytest.fixture(scope="module")
def wildcard_cluster() -> Iterator[tuple[EtcdProcess, NodeProcess, NodeProcess]]:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-adv-"))
    etcd = EtcdProcess("adv")
    etcd.start()
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    kek = kek_file(workdir)
    w = NodeProcess("w1", [etcd.endpoint], prefix, workdir, host=W_HOST, listen_host="0.0.0.0",
                    dns_toml=f'tcp_idle_timeout = 5.0\nadvertise = "{W_ADVERTISE}"',
                    extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\n'
                               'stagger_max = 0.5\n')
    ro = NodeProcess("ro", [etcd.endpoint], prefix, workdir, host=RO_HOST, role="readonly")
    try:
        w.start(timeout=60)
        ro.start(timeout=60)
        yield etcd, w, ro
    finally:
        for n in (ro, w):
            n.kill()
        etcd.close()


@inner
def test_inner_a_wildcard_is_never_advertised(tmp_path: Path) -> None:
    """Without `dns.advertise`, a wildcard listener either advertises this host's address
    (its name resolves to one that is not loopback) or refuses to start naming the setting."""
    etcd = EtcdProcess("adv-none")
    etcd.start()
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    n = NodeProcess("wild", [etcd.endpoint], prefix, tmp_path, host=W_HOST,
                    listen_host="0.0.0.0")
    try:
        n.start(wait=False)
        wait_until(lambda: not n.alive or n.ready(), 60, interval=0.2)
        if not n.alive:
            assert n.proc is not None and n.proc.returncode == 2, n.log_tail()
            assert "dns.advertise" in n.log_tail(), n.log_tail()
            return
        res = n.ctl("--json", "nodes")
        assert res.returncode == 0, res.stderr
        record = next(x for x in json.loads(res.stdout) if x["id"] == "wild")
        assert not any(a.startswith(("0.0.0.0:", "[::]:")) for a in record["dns_addresses"]), (
            f"the node advertises its wildcard listen address: {record['dns_addresses']}")
    finally:
        n.kill()
        etcd.close()


@inner
def test_inner_readonly_node_transfers_from_the_advertised_address(
        wildcard_cluster: tuple[EtcdProcess, NodeProcess, NodeProcess], tmp_path: Path) -> None:
    _, w, ro = wildcard_cluster
    advertised = f"{W_ADVERTISE}:{w.dns_port}"
    res = w.ctl("--json", "nodes")
    assert res.returncode == 0, res.stderr
    record = next(x for x in json.loads(res.stdout) if x["id"] == "w1")
    assert record["dns_addresses"] == [advertised]

    with Api(w.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE), allow_transfer=("127.0.0.0/8",))
    res = w.ctl("zone", "sign", ZONE, timeout=120)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: any(e["zone"] == ZONE for e in events(ro, 1304)), 60, interval=0.2,
               message=f"the read-only node never transferred {ZONE}:\n{ro.log_tail()}\n"
                       f"{w.log_tail()}")
    sources = {e["source"] for e in events(ro, 1304) if e["zone"] == ZONE}
    assert sources == {f"w1 {advertised}"}
    anchors = [line.split(" DNSKEY ", 1)[1] for line in w.ctl(
        "trust-anchors", "export", ZONE, "--format", "dnskey").stdout.splitlines()
        if " DNSKEY " in line]
    ta = judge.anchor_file(tmp_path / "ta", ZONE, anchors)
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, ZONE, f"www.{ZONE}"))

    # an UPDATE sent to the read-only node reaches the writable node at its advertised address
    key = json.loads(w.ctl("--json", "tsig", "add", "adv-key").stdout)
    name = dns.name.from_text(key["name"])
    u = dns.update.UpdateMessage(ZONE, keyring={name: dns.tsig.Key(name, key["secret"],
                                                                   key["algorithm"])})
    u.add("fwd", 300, "A", "192.0.2.77")
    answer = dns.query.tcp(u, ro.host, port=ro.dns_port, timeout=15)
    assert answer.rcode() == dns.rcode.NOERROR
    assert [e["to"] for e in events(ro, 1334)] == [advertised]
    fwd = dns.message.make_query(f"fwd.{ZONE}", "A")
    wait_until(lambda: any(rr.rdtype == dns.rdatatype.A for rr in dns.query.udp(
        fwd, W_ADVERTISE, port=w.dns_port, timeout=5).answer), 30, interval=0.2)


@inner
def test_inner_a_wildcard_udp_listener_answers_from_the_address_asked(
        wildcard_cluster: tuple[EtcdProcess, NodeProcess, NodeProcess]) -> None:
    """dnspython rejects an answer from another address than the one asked (node/server/pktinfo)."""
    _, w, _ = wildcard_cluster
    q = dns.message.make_query(ZONE, "SOA")
    for host in (W_HOST, RO_HOST, "127.0.0.1"):
        assert dns.query.udp(q, host, port=w.dns_port, timeout=5).id == q.id
