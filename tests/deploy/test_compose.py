"""deploy/compose.yaml (no container engine here): its shape, its node config as
the node reads it, and its two one-shot scripts run for real: the etcd auth setup
against a real etcd and the example zone against a real node."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.config import load_config
from tests.deploy.manifests import DEPLOY, find, render
from tests.deploy.pods import BIN
from tests.support.etcd import EtcdProcess, find_binary
from tests.support.nodes import NodeProcess

COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def secrets() -> Iterator[Path]:
    """make-secrets, run from a copy so the checkout's deploy/compose/secrets stays as it is."""
    work = Path(tempfile.mkdtemp(prefix="compose-secrets-"))
    shutil.copy(DEPLOY / "compose" / "make-secrets", work / "make-secrets")
    done = subprocess.run([str(work / "make-secrets")], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    try:
        yield work / "secrets"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dns_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The writable nodes (dns-ro, the read-only node, has its own test)."""
    return {n: s for n, s in compose["services"].items() if n.startswith("dns-")
            and s.get("environment", {}).get("DNSNODE_ROLE") != "readonly"}


def test_compose_read_only_node_has_its_own_etcd_user_and_no_kek(
        compose: dict[str, Any], secrets: Path, tmp_path: Path) -> None:
    services = compose["services"]
    ro = services["dns-ro"]
    auth = services["etcd-auth"]["environment"]
    assert ro["secrets"] == ["etcd-ro-password"]  # never the KEK nor the node password
    assert ro["depends_on"]["etcd-auth"]["condition"] == "service_completed_successfully"
    assert "etcd-ro-password" in services["etcd-auth"]["secrets"]
    text = (DEPLOY / "compose" / "node.toml").read_text()
    config_file = tmp_path / "node.toml"
    config_file.write_text(text.replace("/run/secrets/", f"{secrets}/"))
    env = {k: v.replace("/run/secrets/", f"{secrets}/") for k, v in ro["environment"].items()}
    config = load_config(config_file, env=env)
    assert (config.role, config.signing.kek_file) == ("readonly", "")
    assert config.etcd.username == auth["ETCD_RO_USER"] == "dnscluster-ro"
    assert Path(config.etcd.password_file).name == Path(auth["ETCD_RO_PASSWORD_FILE"]).name
    # it transfers with the key the example-zone service makes and allows on the zone
    assert config.readonly.transfer_key == services["example-zone"]["environment"][
        "RO_TRANSFER_KEY"]


def test_compose_has_etcd_with_auth_three_nodes_and_the_example_zone(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    etcd = [n for n in services if n.startswith("etcd-") and n != "etcd-auth"]
    assert len(etcd) == 3
    cluster = services["etcd-1"]["environment"]["ETCD_INITIAL_CLUSTER"]
    assert all(f"{n}=http://{n}:2380" in cluster for n in etcd)
    auth = services["etcd-auth"]
    assert auth["entrypoint"] == ["dnscluster-etcd-auth"]
    nodes = _dns_services(compose)
    assert len(nodes) == 3
    assert {s["environment"]["DNSNODE_NODE_ID"] for s in nodes.values()} == set(nodes)
    published = set()
    k8s = find(render("dev"), "StatefulSet", "dns")["spec"]["template"]["spec"]
    for name, svc in nodes.items():
        assert svc["depends_on"]["etcd-auth"]["condition"] == "service_completed_successfully"
        assert set(svc["secrets"]) == {"kek", "etcd-node-password"}, name
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        ports = svc["ports"]
        assert {p.rsplit(":", 1)[1] for p in ports} == {"5300/udp", "5300/tcp"}, name
        published |= {p.rsplit(":", 1)[0] for p in ports}
        grace = int(svc["stop_grace_period"].rstrip("s"))
        assert grace >= k8s["terminationGracePeriodSeconds"], "time for the Key Master hand-off"
    assert len(published) == 3, "each node's DNS on its own host port"
    zone = services["example-zone"]
    assert zone["network_mode"] == "service:dns-1"
    assert zone["depends_on"]["dns-1"]["condition"] == "service_healthy"
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./compose/secrets/")
    assert (DEPLOY / "compose" / "secrets" / ".gitignore").read_text().startswith("*")


def test_compose_node_config_loads_as_each_node(compose: dict[str, Any], secrets: Path,
                                                tmp_path: Path) -> None:
    text = (DEPLOY / "compose" / "node.toml").read_text()
    # compose mounts secret <name> at /run/secrets/<name>
    config_file = tmp_path / "node.toml"
    config_file.write_text(text.replace("/run/secrets/", f"{secrets}/"))
    services = compose["services"]
    for name, svc in _dns_services(compose).items():
        config = load_config(config_file, env=svc["environment"])
        assert config.node_id == name
        assert config.etcd.username == services["etcd-auth"]["environment"]["ETCD_NODE_USER"]
        assert config.etcd.endpoints == tuple(
            services["etcd-auth"]["environment"]["ETCDCTL_ENDPOINTS"].split(","))
        assert config.dns.listen == ("0.0.0.0:5300",)
        assert config.api.listen.startswith("127.0.0.1:")  # loopback: no TLS needed
        assert len(bytes.fromhex(Path(config.signing.kek_file).read_text())) == 32


def test_etcd_auth_script_limits_the_node_user(compose: dict[str, Any], secrets: Path,
                                               private_etcd: EtcdProcess) -> None:
    env = dict(compose["services"]["etcd-auth"]["environment"])
    env["ETCDCTL_ENDPOINTS"] = private_etcd.endpoint  # the compose Service names -> test etcd
    for key, value in env.items():
        env[key] = value.replace("/run/secrets/", f"{secrets}/")
    env["PATH"] = f"{Path(find_binary('etcdctl')).parent}:/usr/bin:/bin"
    script = DEPLOY / "compose" / "etcd-auth.sh"
    for _ in range(2):  # idempotent
        done = subprocess.run([str(script)], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    node = f"dnscluster:{(secrets / 'etcd-node-password').read_text()}"
    root = f"root:{(secrets / 'etcd-root-password').read_text()}"
    private_etcd.ctl("put", "/dnscluster/v1/probe", "1", user=node)
    assert private_etcd.ctl("put", "/elsewhere", "1", user=node, check=False) == ""
    assert "/elsewhere" not in private_etcd.ctl("get", "/elsewhere", user=root)  # was refused
    assert private_etcd.ctl("get", "/dnscluster/v1/probe", check=False) == ""  # no anonymous
    assert private_etcd.ctl("user", "list", user=node, check=False) == ""  # not an admin
    roles = private_etcd.ctl("role", "get", "dnscluster-readonly", user=root)
    assert "secrets/" not in roles and "/dnscluster/v1/zones/" in roles
    # the read-only user: zone data yes; private keys and update keys "permission denied"
    ro = f"dnscluster-ro:{(secrets / 'etcd-ro-password').read_text()}"
    private_etcd.ctl("get", "--prefix", "/dnscluster/v1/zones/", user=ro)
    for denied in ("/dnscluster/v1/secrets/", "/dnscluster/v1/tsig/update/"):
        with pytest.raises(RuntimeError, match="permission denied"):
            private_etcd.ctl("get", "--prefix", denied, user=ro)
    # a password with a blank would be cut by etcdctl: refused
    (secrets / "bad").write_text("two words")
    bad_env = {**env, "ETCD_NODE_PASSWORD_FILE": str(secrets / "bad")}
    bad = subprocess.run([str(script)], env=bad_env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 2 and "blanks" in bad.stderr


def test_example_zone_script_creates_the_zone_once(private_etcd: EtcdProcess,
                                                   tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    kek.write_text("ab" * 32)
    node = NodeProcess("dns-1", [private_etcd.endpoint], "/dnscluster/v1/", tmp_path,
                       extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_max = 1.0\n'
                                  'stagger_min = 0.5\n')
    node.start()
    try:
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
               "CLUSTERCTL_ENDPOINT": node.api, "ZONE": "example.test.",
               "ZONE_FILE": str(DEPLOY / "example.test.zone"), "RO_TRANSFER_KEY": "ro-xfr"}
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for _ in range(2):  # a second `compose up` finds the zone and leaves it
            done = subprocess.run(["/bin/sh", str(DEPLOY / "compose" / "example-zone.sh")],
                                  env=env, capture_output=True, text=True, timeout=60,
                                  check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "exists" in done.stdout and "signed already" in done.stdout
        assert node.serial("example.test.") is not None
    finally:
        node.kill()
