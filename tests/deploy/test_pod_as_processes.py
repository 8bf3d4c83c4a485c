"""The dev overlay's pods run as local processes: etcd x3, the auth Job, dns x3.

`kubectl kustomize k8s/overlays/dev` renders the manifests; `k8s/make-secrets`
makes the Secrets. Each pod's container then runs with its own command,
arguments, environment and mounted files (`tests.deploy.pods`). Only what a pod
gets from Kubernetes is substituted, and every substitution is listed here:

1. pod names: `metadata.name` and `$(POD_NAME)` -> etcd-0..2, dns-0..2;
2. Service names: `etcd-N.etcd:2379` / `:2380` -> 127.0.0.1 and member N's free
   client / peer port (the test etcd's endpoints);
3. pod IPs: the wildcard listen addresses `0.0.0.0:<port>` (and the pod's own
   `127.0.0.1:5301`) -> 127.0.0.1 and a free port per pod, since the "pods"
   share one host: etcd 2379/2380/2381, dns 5300 (DNS), 5301 (API), 8853 (DNS over
   TLS), 9100 (metrics); `status.podIP` (dns.advertise) -> 127.0.0.1;
4. mounted volumes -> files in a temp dir: the Secrets from make-secrets, the
   ConfigMap node.toml (itself substituted by 2-4), empty dirs for the
   volumeClaimTemplates and emptyDirs;
5. the image: `dns-node` and `clusterctl` from this venv,
   /usr/local/bin/dnscluster-etcd-auth from the repository file deploy/Dockerfile
   copies there, etcd/etcdctl from PATH (Debian's 3.4; the manifests use 3.5).

Nothing else changes: TLS to etcd and to the API, etcd client-certificate auth,
etcd users and roles, the node config, all as deployed.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.deploy.manifests import (
    API_TLS,
    CLUSTERCTL,
    DEPLOY,
    Obj,
    container,
    find,
    make_secrets,
    render,
)
from tests.deploy.pods import PodProcess, Substitutions
from tests.support.nodes import free_port
from tests.support.wait import wait_until

ZONE = "example.test."


@dataclass
class Deployment:
    objs: list[Obj]
    etcd: list[PodProcess]
    auth_job: PodProcess
    nodes: list[PodProcess]
    api_ports: dict[str, int]
    dns_ports: dict[str, int]
    tls_ports: dict[str, int] = field(default_factory=dict)  # DNS over TLS
    dot_ca: Path | None = None  # the CA of the dnscluster-dns-tls Secret
    dot_name: str = ""  # the Service name its certificate is for

    def node(self, name: str) -> PodProcess:
        return next(p for p in self.nodes if p.name == name)

    def close(self) -> None:
        for pod in [*self.nodes, *self.etcd]:
            pod.kill()


def _etcd_names(sts: Obj, client: list[int], peer: list[int], subst: Substitutions) -> None:
    """Substitution 2: Service names of the etcd members -> the test etcd's endpoints."""
    for i in range(sts["spec"]["replicas"]):
        subst.add(f"https://etcd-{i}.etcd:2379", f"https://127.0.0.1:{client[i]}")
        subst.add(f"https://etcd-{i}.etcd:2380", f"https://127.0.0.1:{peer[i]}")


def _api_health(pod: PodProcess, port: int, service: str, *, client_cert: bool = True) -> int:
    tls = pod.mounts[API_TLS]
    creds = grpc.ssl_channel_credentials(
        root_certificates=(tls / "ca.crt").read_bytes(),
        private_key=(tls / "tls.key").read_bytes() if client_cert else None,
        certificate_chain=(tls / "tls.crt").read_bytes() if client_cert else None,
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        try:
            return int(health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2).status)
        except grpc.RpcError:
            return -1


def _wait_pod(pod: PodProcess, pred: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until `pred()`; fail at once, with the pod's log, if the process exits."""

    def check() -> bool:
        if not pod.alive:
            pytest.fail(f"{pod.name} exited before it was {what}:\n{pod.log_tail()}")
        return pred()

    wait_until(check, timeout, interval=0.1,
               message=f"{pod.name} not {what} within {timeout}s:\n{pod.log_tail()}")


def _assert_all_used(pod: PodProcess, exempt: set[str]) -> None:
    """Every Kubernetes value we meant to replace was there (the manifests did not drift)."""
    unused = {k for k, _ in pod.subst.pairs} - pod.subst.used - exempt - set(pod.mounts)
    assert not unused, f"{pod.name}: substitutions never applied: {sorted(unused)}"


def _etcd_healthy(path: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _start(objs: list[Obj], workdir: Path) -> Deployment:
    namespace = find(objs, "StatefulSet", "dns")["metadata"]["namespace"]
    secrets = make_secrets(namespace, workdir / "secrets")
    configmaps = {o["metadata"]["name"]: o["data"] for o in objs if o["kind"] == "ConfigMap"}

    # -- etcd: three members from the etcd StatefulSet
    etcd_sts = find(objs, "StatefulSet", "etcd")
    members = etcd_sts["spec"]["replicas"]
    client = [free_port() for _ in range(members)]
    peer = [free_port() for _ in range(members)]
    metrics = [free_port() for _ in range(members)]
    etcd_spec = etcd_sts["spec"]["template"]["spec"]
    etcd: list[PodProcess] = []
    for i in range(members):
        subst = Substitutions()
        _etcd_names(etcd_sts, client, peer, subst)
        subst.add("https://0.0.0.0:2379", f"https://127.0.0.1:{client[i]}")
        subst.add("https://0.0.0.0:2380", f"https://127.0.0.1:{peer[i]}")
        subst.add("http://0.0.0.0:2381", f"http://127.0.0.1:{metrics[i]}")
        etcd.append(PodProcess(f"etcd-{i}", etcd_spec, container(etcd_spec, "etcd"),
                               workdir / f"etcd-{i}", secrets, configmaps, subst))
    dep = Deployment(objs, etcd, etcd[0], [], {}, {}, dot_ca=workdir / "dns-tls-ca.crt",
                     dot_name=f"dns.{namespace}.svc")
    dep.dot_ca.write_bytes(secrets["dnscluster-dns-tls"]["ca.crt"])  # type: ignore[union-attr]
    try:
        for pod in etcd:
            pod.start()
        probe = container(etcd_spec, "etcd")["readinessProbe"]["httpGet"]["path"]
        for i, pod in enumerate(etcd):
            _wait_pod(pod, lambda i=i: _etcd_healthy(probe, metrics[i]), "healthy")

        # -- the etcd-auth Job
        job = find(objs, "Job", "etcd-auth")
        job_spec = job["spec"]["template"]["spec"]
        subst = Substitutions()
        _etcd_names(etcd_sts, client, peer, subst)
        dep.auth_job = PodProcess("etcd-auth-x1y2z", job_spec, container(job_spec, "etcd-auth"),
                                  workdir / "etcd-auth", secrets, configmaps, subst)
        done = dep.auth_job.run(dep.auth_job.container["command"], timeout=120)
        assert done.returncode == 0, f"etcd-auth failed:\n{done.stdout}\n{done.stderr}"

        # -- the dns StatefulSet
        dns_sts = find(objs, "StatefulSet", "dns")
        dns_spec = dns_sts["spec"]["template"]["spec"]
        for i in range(dns_sts["spec"]["replicas"]):
            name = f"dns-{i}"
            dep.dns_ports[name], dep.api_ports[name] = free_port(), free_port()
            subst = Substitutions()
            _etcd_names(etcd_sts, client, peer, subst)
            subst.add("0.0.0.0:5300", f"127.0.0.1:{dep.dns_ports[name]}")
            subst.add("0.0.0.0:5301", f"127.0.0.1:{dep.api_ports[name]}")
            subst.add("127.0.0.1:5301", f"127.0.0.1:{dep.api_ports[name]}")
            subst.add("0.0.0.0:9100", f"127.0.0.1:{free_port()}")
            dep.tls_ports[name] = free_port()
            subst.add("0.0.0.0:8853", f"127.0.0.1:{dep.tls_ports[name]}")
            dep.nodes.append(PodProcess(name, dns_spec, container(dns_spec, "dns-node"),
                                        workdir / name, secrets, configmaps, subst))
        for pod in dep.nodes:
            pod.start()
        for pod in dep.nodes:
            port = dep.api_ports[pod.name]
            _wait_pod(pod, lambda pod=pod, port=port: _api_health(pod, port, "readiness")
                      == health_pb2.HealthCheckResponse.SERVING, "ready")
        # every Kubernetes value we meant to replace was found (the manifests did not drift)
        peers = {f"https://etcd-{i}.etcd:2380" for i in range(members)}
        for i, pod in enumerate(dep.etcd):  # a member advertises its own client URL only
            others = {f"https://etcd-{j}.etcd:2379" for j in range(members) if j != i}
            _assert_all_used(pod, others)
        for pod in [dep.auth_job, *dep.nodes]:
            _assert_all_used(pod, peers)
    except BaseException:
        dep.close()
        raise
    return dep


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    objs = render("dev")
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-pods-"))
    try:
        dep = _start(objs, workdir)
        try:
            yield dep
        finally:
            dep.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _exec(dep: Deployment, pod: str, *args: str, input: str | None = None,
          ) -> subprocess.CompletedProcess[str]:
    """kubectl exec <pod> -- clusterctl <TLS flags> args..."""
    return dep.node(pod).run([*CLUSTERCTL, *args], input=input)


def _serial(port: int) -> int | None:
    q = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    try:
        resp = dns.query.udp(q, "127.0.0.1", port=port, timeout=1)
    except (dns.exception.Timeout, OSError):
        return None
    return next((int(r[0].serial) for r in resp.answer if r.rdtype == dns.rdatatype.SOA), None)


def test_pods_form_a_cluster_that_answers(deployment: Deployment) -> None:
    zone_text = (DEPLOY / "example.test.zone").read_text()
    done = _exec(deployment, "dns-0", "zone", "create", ZONE, "--file", "-", input=zone_text)
    assert done.returncode == 0, done.stderr
    serials = wait_until(
        lambda: (s := {p: _serial(port) for p, port in deployment.dns_ports.items()})
        and None not in s.values() and len(set(s.values())) == 1 and s,
        30, interval=0.1, message="not every pod serves the zone at one serial")
    assert set(serials) == {"dns-0", "dns-1", "dns-2"}
    for port in deployment.dns_ports.values():
        q = dns.message.make_query(f"www.{ZONE}", dns.rdatatype.A)
        resp = dns.query.tcp(q, "127.0.0.1", port=port, timeout=2)
        assert [r.to_text() for rr in resp.answer for r in rr] == ["192.0.2.80"]
    # DNS over TLS with the Secret's certificate, verified for the Service name
    ctx = ssl.create_default_context(cafile=str(deployment.dot_ca))
    for port in deployment.tls_ports.values():
        q = dns.message.make_query(f"www.{ZONE}", dns.rdatatype.A)
        resp = dns.query.tls(q, "127.0.0.1", port=port, timeout=5, ssl_context=ctx,
                             server_hostname=deployment.dot_name)
        assert [r.to_text() for rr in resp.answer for r in rr] == ["192.0.2.80"]
    # node id = pod name, seen from another pod
    listed = _exec(deployment, "dns-2", "--json", "nodes")
    assert listed.returncode == 0, listed.stderr
    nodes = {n["id"]: n for n in json.loads(listed.stdout)}
    assert set(nodes) == {"dns-0", "dns-1", "dns-2"}
    assert all(n["alive"] and n["role"] == "writable" for n in nodes.values())


def test_api_refuses_clients_without_a_certificate(deployment: Deployment) -> None:
    pod = deployment.node("dns-1")
    port = deployment.api_ports["dns-1"]
    assert _api_health(pod, port, "liveness") == health_pb2.HealthCheckResponse.SERVING
    assert _api_health(pod, port, "liveness", client_cert=False) == -1
    no_cert = subprocess.run(
        pod.argv(["clusterctl", "--ca", f"{API_TLS}/ca.crt", "zone", "list"]),
        env={k: v for k, v in pod.env().items() if k not in ("CLUSTERCTL_CERT", "CLUSTERCTL_KEY")},
        capture_output=True, text=True, timeout=60, cwd=pod.workdir, check=False)
    assert no_cert.returncode != 0


def test_etcd_users_are_limited(deployment: Deployment) -> None:
    job = deployment.auth_job
    node_pw = (job.mounts["/etc/dnscluster/etcd-users"] / "node-password").read_text().strip()

    def etcdctl(*args: str) -> subprocess.CompletedProcess[str]:
        return job.run(["etcdctl", "--dial-timeout=3s", *args], timeout=30)

    as_node = f"--user=dnscluster:{node_pw}"
    assert etcdctl(as_node, "get", "--prefix", "--keys-only", "/dnscluster/v1/zones/"
                   ).stdout.strip(), "the node user cannot read the cluster's keys"
    denied = etcdctl(as_node, "get", "/other")
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    anonymous = etcdctl("get", "/dnscluster/v1/nodes/dns-0")
    assert anonymous.returncode != 0
    # the Job is idempotent: applying it again changes nothing and succeeds
    again = job.run(job.container["command"], timeout=60)
    assert again.returncode == 0, again.stderr


def _health_available() -> bool:
    """Whether this build has the probes' command (`dns-node health`, requested of node/)."""
    from tests.deploy.pods import BIN
    done = subprocess.run([str(BIN / "dns-node"), "--help"], capture_output=True, text=True,
                          timeout=30, check=False)
    return "health" in done.stdout


@pytest.mark.skipif(not _health_available(), reason="`dns-node health` is not implemented yet")
def test_probe_commands_pass(deployment: Deployment) -> None:
    ctr = deployment.node("dns-0").container
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = ctr[probe]["exec"]["command"]
        done = deployment.node("dns-0").run(command, timeout=ctr[probe]["timeoutSeconds"])
        assert done.returncode == 0, f"{probe}: {done.stdout}{done.stderr}"


def _channel(dep: Deployment, pod: str) -> grpc.Channel:
    """A TLS channel to a pod's API with the pod's own client certificate."""
    tls = dep.node(pod).mounts[API_TLS]
    creds = grpc.ssl_channel_credentials(
        root_certificates=(tls / "ca.crt").read_bytes(),
        private_key=(tls / "tls.key").read_bytes(),
        certificate_chain=(tls / "tls.crt").read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{dep.api_ports[pod]}", creds)


def _ensure_zone(dep: Deployment) -> None:
    if _serial(dep.dns_ports["dns-0"]) is None:
        zone_text = (DEPLOY / "example.test.zone").read_text()
        assert _exec(dep, "dns-0", "zone", "create", ZONE, "--file", "-",
                     input=zone_text).returncode == 0


def _sign(dep: Deployment) -> None:
    """Sign the zone through dns-0 (the gRPC API: `clusterctl zone sign` comes with #3)."""
    from node.api._gen.dnscluster.v1 import dnssec_pb2, dnssec_pb2_grpc

    _ensure_zone(dep)
    with _channel(dep, "dns-0") as channel:
        dnssec_pb2_grpc.DnssecServiceStub(channel).SignZone(
            dnssec_pb2.SignZoneRequest(zone=ZONE), timeout=60)


def _signed(port: int) -> bool:
    q = dns.message.make_query(ZONE, dns.rdatatype.SOA, want_dnssec=True)
    try:
        resp = dns.query.tcp(q, "127.0.0.1", port=port, timeout=2)
    except (dns.exception.Timeout, OSError):
        return False
    return any(rr.rdtype == dns.rdatatype.RRSIG for rr in resp.answer)


def test_pods_sign_the_zone(deployment: Deployment) -> None:
    _sign(deployment)
    # non-Key-Masters sign after the dev overlay's stagger (DNSNODE_SIGNING__STAGGER_MAX)
    ctr = deployment.node("dns-0").container
    stagger = float(next(e["value"] for e in ctr["env"]
                         if e["name"] == "DNSNODE_SIGNING__STAGGER_MAX"))
    for pod, port in deployment.dns_ports.items():
        wait_until(lambda port=port: _signed(port), stagger + 30, interval=0.2,
                   message=f"{pod} does not serve {ZONE} signed")


def test_sigterm_hands_the_key_master_role_over(deployment: Deployment) -> None:
    from node.api._gen.dnscluster.v1 import keymaster_pb2, keymaster_pb2_grpc

    grace = find(deployment.objs, "StatefulSet", "dns")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    if not _signed(deployment.dns_ports["dns-0"]):
        _sign(deployment)

    def holder(asked: str) -> str:
        with _channel(deployment, asked) as channel:
            km = keymaster_pb2_grpc.KeyMasterServiceStub(channel).GetKeyMaster(
                keymaster_pb2.GetKeyMasterRequest(zone=ZONE), timeout=10).keymaster
        return km.role.node if km.has_role and km.acquired else ""

    old = wait_until(lambda: holder("dns-0"), 60, message="no Key Master")
    survivor = next(p for p in deployment.dns_ports if p != old)
    pod = deployment.node(old)
    assert pod.proc is not None
    started = time.monotonic()
    pod.terminate()  # what the kubelet sends; it kills after terminationGracePeriodSeconds
    pod.proc.wait(grace)
    new = wait_until(lambda: (h := holder(survivor)) not in ("", old) and h,
                     max(1.0, grace - (time.monotonic() - started)), interval=0.2,
                     message=f"the role did not leave {old} within {grace}s")
    assert new in deployment.dns_ports and new != old
    assert time.monotonic() - started <= grace
