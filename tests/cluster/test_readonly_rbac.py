"""Read-only nodes under etcd RBAC: the read-only user cannot read private keys or update
TSIG keys, and the read-only node still serves signed zones and forwards UPDATEs.

etcd runs with auth on, set up by the deployment's own script
(`deploy/compose/etcd-auth.sh`, the image's `dnscluster-etcd-auth`): writable nodes as
`dnscluster` (the whole prefix), the read-only node as `dnscluster-ro` (role
`dnscluster-readonly`: zones/ read, nodes/ and alive/ read-write, tsig/transfer/ read).
The read-only node is pinned to n2 (`[readonly] primaries`) and signs its transfers
with a transfer TSIG key, the only kind it can read; the zone allows transfers by that
key alone, from no address.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.store.client import EtcdClient, EtcdPermissionDenied
from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ZONE_TEXT, anchors, kek_file, wait_published
from tests.support import dnssec as judge
from tests.support.etcd import EtcdProcess, find_binary
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
AUTH_SCRIPT = ROOT / "deploy" / "compose" / "etcd-auth.sh"
ZONE = "rbac.test."
PW = {"root": "rootpw0", "dnscluster": "nodepw0", "dnscluster-ro": "ropw0"}


def _password_file(workdir: Path, user: str) -> Path:
    path = workdir / f"{user}-password"
    path.write_text(PW[user] + "\n")
    return path


def _auth_setup(etcd: EtcdProcess, prefix: str, workdir: Path) -> str:
    env = {**os.environ, "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": etcd.endpoint,
           "PATH": f"{Path(find_binary('etcdctl')).parent}:{os.environ.get('PATH', '')}",
           "ETCD_ROOT_PASSWORD_FILE": str(_password_file(workdir, "root")),
           "ETCD_NODE_PASSWORD_FILE": str(_password_file(workdir, "dnscluster")),
           "ETCD_RO_PASSWORD_FILE": str(_password_file(workdir, "dnscluster-ro")),
           "DNSCLUSTER_PREFIX": prefix, "WAIT_SECONDS": "60"}
    res = subprocess.run(["sh", str(AUTH_SCRIPT)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _as(user: str) -> dict[str, str]:
    return {"DNSNODE_ETCD__USERNAME": user, "DNSNODE_ETCD__PASSWORD": PW[user]}


@pytest.fixture(scope="module")
def rbac() -> Iterator[tuple[Cluster, NodeProcess]]:
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-rbac-"))
    etcd = EtcdProcess("rbac")
    etcd.start()
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    kek = kek_file(workdir)
    extra = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
    nodes = [NodeProcess(f"n{i}", [etcd.endpoint], prefix, workdir, lease_ttl=8,
                         extra_toml=extra, env=_as("dnscluster")) for i in (1, 2)]
    cluster = Cluster(etcd, nodes, prefix, workdir)
    ro = NodeProcess("ro", [etcd.endpoint], prefix, workdir, role="readonly", lease_ttl=8,
                     env=_as("dnscluster-ro"),
                     extra_toml='[readonly]\nprimaries = ["n2"]\ntransfer_key = "ro-xfr"\n')
    try:
        _auth_setup(etcd, prefix, workdir)
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(60)
        n1 = nodes[0]
        for args in (("tsig", "add", "ro-xfr", "--use", "transfer"),
                     ("tsig", "add", "upd-key"),  # an update key: encrypted, never for ro
                     ):
            res = n1.ctl(*args)
            assert res.returncode == 0, res.stderr
        zone_file = workdir / "rbac.zone"
        zone_file.write_text(ZONE_TEXT.format(zone=ZONE))
        for args in (("zone", "create", ZONE, "--file", str(zone_file)),  # no address ACL
                     ("zone", "update", ZONE, "--allow-transfer-key", "ro-xfr"),
                     ("zone", "sign", ZONE)):
            res = n1.ctl(*args, timeout=120)
            assert res.returncode == 0, res.stderr
        wait_published(cluster, ZONE, timeout=60)
        ro.start(wait=False)
        ro.wait_ready(90)  # ready: the signed zone is served, taken by transfer
        yield cluster, ro
    finally:
        ro.kill()
        cluster.close()


def _etcdctl_as_ro(etcd: EtcdProcess, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [find_binary("etcdctl"), f"--endpoints={etcd.endpoint}", "--dial-timeout=3s",
           f"--user=dnscluster-ro:{PW['dnscluster-ro']}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "ETCDCTL_API": "3"})


async def _node_client_reads(endpoint: str, keys: list[str]) -> list[str]:
    """What the node's own etcd client gets as the read-only user, per key prefix."""
    client = EtcdClient([endpoint], username="dnscluster-ro", password=PW["dnscluster-ro"],
                        timeout=5.0)
    await client.connect()
    out = []
    try:
        for key in keys:
            try:
                kvs, _ = await client.range_all(key)
            except EtcdPermissionDenied as exc:
                out.append(f"denied: {exc}")
            else:
                out.append(f"read {len(kvs)}")
    finally:
        await client.close()
    return out


def test_the_readonly_user_is_denied_private_keys_and_update_keys(
        rbac: tuple[Cluster, NodeProcess]) -> None:
    c, _ = rbac
    root = f"root:{PW['root']}"
    secret, update = f"{c.prefix}secrets/", f"{c.prefix}tsig/update/"
    # the denied prefixes hold something: the zone's private keys and the update key
    assert c.etcd.ctl("get", "--prefix", "--keys-only", secret, user=root).strip()
    assert "upd-key" in c.etcd.ctl("get", "--prefix", "--keys-only", update, user=root)
    for prefix in (secret, update, f"{c.prefix}tsig/", c.prefix):
        res = _etcdctl_as_ro(c.etcd, "get", "--prefix", prefix)
        assert res.returncode != 0 and "permission denied" in res.stderr, (prefix, res)
    res = _etcdctl_as_ro(c.etcd, "put", f"{c.prefix}zones/{ZONE}config", "{}")
    assert res.returncode != 0 and "permission denied" in res.stderr
    # what it may read: zone data and transfer keys
    res = _etcdctl_as_ro(c.etcd, "get", "--prefix", "--keys-only", f"{c.prefix}zones/")
    assert res.returncode == 0 and f"{c.prefix}zones/" in res.stdout, res.stderr
    res = _etcdctl_as_ro(c.etcd, "get", "--prefix", "--keys-only", f"{c.prefix}tsig/transfer/")
    assert res.returncode == 0 and "ro-xfr" in res.stdout, res.stderr
    # the node's own client, as the read-only node would use it
    got = asyncio.run(_node_client_reads(c.etcd.endpoint, [
        secret, update, f"{c.prefix}tsig/transfer/", f"{c.prefix}zones/"]))
    assert [g.split(":")[0] for g in got[:2]] == ["denied", "denied"], got
    assert "permission denied" in got[0]
    assert got[2] == "read 1" and got[3].startswith("read ") and got[3] != "read 0", got


def test_the_readonly_node_serves_the_signed_zone_validated_by_delv(
        rbac: tuple[Cluster, NodeProcess], tmp_path: Path) -> None:
    c, ro = rbac
    ta = anchors(c, ZONE, tmp_path)
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, ZONE, f"www.{ZONE}"))
    assert judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, ZONE, f"nope.{ZONE}"))
    # pinned to n2, at its advertised address; every transfer signed with the transfer key
    n2 = c.node("n2")
    sources = {e["source"] for e in events(ro, 1304) if e["zone"] == ZONE}
    assert sources == {f"n2 {n2.host}:{n2.dns_port}"}
    assert not events(ro, 1305)  # no XFR_FAILED
    res = ro.ctl("--json", "nodes")
    assert res.returncode == 0, res.stderr
    me = next(n for n in json.loads(res.stdout) if n["id"] == "ro")
    assert me["ready"] and not me.get("problems"), me


def test_the_readonly_node_forwards_an_update_and_serves_it_signed(
        rbac: tuple[Cluster, NodeProcess], tmp_path: Path) -> None:
    c, ro = rbac
    res = c.nodes[0].ctl("--json", "tsig", "show", "upd-key")
    assert res.returncode == 0, res.stderr
    key = json.loads(res.stdout)
    script = "\n".join([f"server {ro.host} {ro.dns_port}", f"zone {ZONE}",
                        f"update add fwd.{ZONE} 300 A 192.0.2.91", "send", ""])
    y = f"{key['algorithm']}:{key['name']}:{key['secret']}"
    res = subprocess.run(["nsupdate", "-y", y], input=script, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    forwarded = events(ro, 1334)
    assert forwarded and forwarded[-1]["rcode"] == "NOERROR"
    assert forwarded[-1]["to"] in {f"{n.host}:{n.dns_port}" for n in c.nodes}
    assert not events(ro, 1330)  # never applied by the read-only node itself
    ta = anchors(c, ZONE, tmp_path)
    wait_until(lambda: judge.fully_validated(judge.delv(ro.host, ro.dns_port, ta, ZONE,
                                                        f"fwd.{ZONE}")), 60, interval=0.5,
               message="the forwarded change never reached the read-only node, signed")


def test_an_update_key_cannot_sign_a_readonly_nodes_transfers(
        rbac: tuple[Cluster, NodeProcess]) -> None:
    """Its keyring holds transfer keys only (tsig/transfer/); naming an update key gets no
    transfer, and says so."""
    c, _ = rbac
    bad = NodeProcess("ro-bad", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly",
                      lease_ttl=8, env=_as("dnscluster-ro"),
                      extra_toml='[readonly]\ntransfer_key = "upd-key"\n')
    try:
        bad.start(wait=False)
        wait_until(lambda: any(e["zone"] == ZONE for e in events(bad, 1305)), 60, interval=0.5,
                   message=f"no XFR_FAILED:\n{bad.log_tail()}")
        reason = next(e["reason"] for e in events(bad, 1305) if e["zone"] == ZONE)
        assert "transfer key upd-key. ([readonly] transfer_key) is not in etcd" in reason
        assert not events(bad, 1304)
    finally:
        bad.kill()


def test_a_change_through_the_read_only_node_names_the_writable_ones(
        rbac: tuple[Cluster, NodeProcess]) -> None:
    """An operator who points clusterctl at the read-only node is told where to go, not to
    grant its etcd user the range; nothing is written."""
    cluster, ro = rbac
    for args in (("record", "add", ZONE, "ro-made", "300", "A", "192.0.2.99"),
                 ("zone", "create", "ro-made.test")):
        res = ro.ctl(*args)
        assert res.returncode == 1, res.stdout
        assert "read-only" in res.stderr and "grant" not in res.stderr, res.stderr
        assert all(n.api in res.stderr for n in cluster.nodes), res.stderr
    n1 = cluster.nodes[0]
    assert n1.ctl("zone", "show", "ro-made.test").returncode == 1
    listed = json.loads(n1.ctl("--json", "record", "list", ZONE, "--name", "ro-made").stdout)
    assert listed == []
