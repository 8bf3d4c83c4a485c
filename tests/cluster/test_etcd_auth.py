"""Nodes under etcd auth with JWT tokens: a role change while they run (every token they
hold becomes stale: "revision of auth store is old") neither stops a node nor its writes
(issue #8, finding 4).

Two writable nodes (one KEK) serve an unsigned and a signed zone, so the replica, the
membership, the signing and the Key Master loops all talk to etcd when the role changes.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.rdatatype
import grpc
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support.api import Api
from tests.support.etcd import EtcdProcess, jwt_auth_args
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def auth_cluster() -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-auth-"))
    etcd = EtcdProcess("jwt", extra_args=jwt_auth_args(workdir))
    etcd.start()
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    ctl = etcd.ctl
    ctl("user", "add", "root:rootpw")
    ctl("role", "add", "dns")
    ctl("role", "grant-permission", "dns", "--prefix=true", "readwrite", prefix)
    ctl("user", "add", "dns:dnspw")
    ctl("user", "grant-role", "dns", "dns")
    ctl("auth", "enable")
    kek = kek_file(workdir)
    env = {"DNSNODE_ETCD__USERNAME": "dns", "DNSNODE_ETCD__PASSWORD": "dnspw"}
    extra = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
    nodes = [NodeProcess(f"n{i}", [etcd.endpoint], prefix, workdir, lease_ttl=8,
                         extra_toml=extra, env=env) for i in (1, 2)]
    cluster = Cluster(etcd, nodes, prefix, workdir)
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(60)
        yield cluster
    finally:
        cluster.close()


def _alive(node: NodeProcess) -> bool:
    if not node.alive:
        code = node.proc.returncode if node.proc is not None else None
        raise AssertionError(f"node {node.node_id} exited ({code}):\n{node.log_tail(60)}")
    return True


def _write(node: NodeProcess, zone: str, owner: str, address: str,
           last: dict[str, str]) -> bool:
    _alive(node)
    try:
        with Api(node.api, timeout=10) as api:
            api.add(zone, owner, 300, "A", address)
    except grpc.RpcError as exc:
        last["error"] = f"{exc.code().name}: {exc.details()}"
        return False
    return True


def _answers(node: NodeProcess, name: str, rdtype: str = "A", dnssec: bool = False
             ) -> set[str]:
    try:
        resp = node.query(name, rdtype, timeout=1.0, want_dnssec=dnssec)
    except (dns.exception.Timeout, OSError):
        return set()
    return {f"{dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}"
            for rrset in resp.answer for rd in rrset}


def test_a_role_change_neither_stops_nodes_nor_their_writes(auth_cluster: Cluster) -> None:
    c = auth_cluster
    n1 = c.nodes[0]
    plain, signed = "plain-auth.test.", "signed-auth.test."
    with Api(n1.api, timeout=30) as api:
        api.create_zone(plain, ZONE_TEXT.format(zone=plain))
        api.create_zone(signed, ZONE_TEXT.format(zone=signed))
    res = n1.ctl("zone", "sign", signed, timeout=120)
    assert res.returncode == 0, res.stderr
    for n in c.nodes:  # both sign it: the Key Master and signing loops are running
        wait_until(lambda n=n: any(a.startswith("RRSIG ") for a in _answers(
            n, signed, "SOA", dnssec=True)), 60, interval=0.2,
            message=f"{n.node_id} serves {signed} signed")

    for step, change in enumerate((
        ("grant-permission", "dns", "read", "/harmless/"),
        ("revoke-permission", "dns", "/harmless/"),
    )):
        c.etcd.ctl("role", *change, user="root:rootpw")  # every node's token is stale now
        for i, n in enumerate(c.nodes):
            for zone in (plain, signed):
                owner, address = f"w{step}{i}", f"192.0.2.{100 + 10 * step + i}"
                last: dict[str, str] = {}
                try:
                    wait_until(lambda n=n, zone=zone, owner=owner, address=address, last=last:
                               _write(n, zone, owner, address, last), 30, interval=0.5)
                except AssertionError:
                    _alive(n)
                    raise AssertionError(f"{n.node_id} refuses writes to {zone} after the "
                                         f"role change: {last.get('error')}") from None
                for m in c.nodes:
                    wait_until(lambda m=m, name=f"{owner}.{zone}", address=address:
                               f"A {address}" in _answers(m, name), 30,
                               message=f"{m.node_id} does not serve {owner}.{zone}")
    # the Key Master loop ticks every 0.5 s: by now each node has listed the nodes with a
    # stale token at least once, and a crashed task would have stopped the process
    for n in c.nodes:
        wait_until(lambda n=n: "ETCD_TOKEN_REFRESHED" in n.log_path.read_text(), 30,
                   message=f"{n.node_id} never refreshed its token")
        assert _alive(n)
        n.wait_ready(30)


def test_a_permission_revoked_for_a_moment_stops_no_node(auth_cluster: Cluster) -> None:
    """Any etcd error, not only "unavailable", is retried by every loop: with the nodes'
    permission gone for a moment they log it, keep serving, and write again once it is back."""
    c = auth_cluster
    signed = "revoked-auth.test."
    with Api(c.nodes[0].api, timeout=30) as api:
        api.create_zone(signed, ZONE_TEXT.format(zone=signed))
    res = c.nodes[0].ctl("zone", "sign", signed, timeout=120)
    assert res.returncode == 0, res.stderr
    for n in c.nodes:
        wait_until(lambda n=n: any(a.startswith("RRSIG ") for a in _answers(
            n, signed, "SOA", dnssec=True)), 60, interval=0.2,
            message=f"{n.node_id} serves {signed} signed")
    since = {n.node_id: n.log_path.stat().st_size for n in c.nodes}

    def refused(n: NodeProcess) -> bool:
        _alive(n)
        with open(n.log_path, "rb") as f:
            f.seek(since[n.node_id])
            return b"permission denied" in f.read()

    c.etcd.ctl("role", "revoke-permission", "dns", "--prefix=true", c.prefix, user="root:rootpw")
    try:
        for n in c.nodes:  # the Key Master loop lists the nodes every 0.5 s
            wait_until(lambda n=n: refused(n), 30, interval=0.2,
                       message=f"{n.node_id} never met the revoked permission")
        for n in c.nodes:
            assert "A 192.0.2.80" in _answers(n, f"www.{signed}")
    finally:
        c.etcd.ctl("role", "grant-permission", "dns", "--prefix=true", "readwrite", c.prefix,
                   user="root:rootpw")
    for i, n in enumerate(c.nodes):
        last: dict[str, str] = {}
        try:
            wait_until(lambda n=n, i=i, last=last: _write(n, signed, f"back{i}",
                                                          f"192.0.2.{200 + i}", last),
                       30, interval=0.5)
        except AssertionError:
            _alive(n)
            raise AssertionError(f"{n.node_id} refuses writes once the permission is back: "
                                 f"{last.get('error')}") from None
    for m in c.nodes:
        wait_until(lambda m=m: "A 192.0.2.201" in _answers(m, f"back1.{signed}"), 30,
                   message=f"{m.node_id} does not serve the write made after the outage")
        assert _alive(m)
