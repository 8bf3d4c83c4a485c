"""The Kubernetes manifests: they render (kubectl kustomize), validate against the
schema of current Kubernetes releases, pass a security linter (checkov) with every
skipped check justified, and keep the contracts DESIGN.md and issue #5 set."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.deploy.manifests import (
    OVERLAYS,
    Obj,
    container,
    find,
    find_prefixed,
    make_secrets,
    pod_templates,
    render,
)

# The release the project targets and the oldest one it still supports.
KUBERNETES_VERSIONS = ("1.34.0", "1.37.0")
HEALTH = ["dns-node", "health", "--config", "/etc/dnscluster/node.toml", "--service"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def _dns(objs: list[Obj]) -> tuple[Obj, Obj, Obj]:
    sts = find(objs, "StatefulSet", "dns")
    spec = sts["spec"]["template"]["spec"]
    return sts, spec, container(spec, "dns-node")


def _node_toml(objs: list[Obj]) -> dict[str, object]:
    return tomllib.loads(find_prefixed(objs, "ConfigMap", "dns-node-config-")["data"]["node.toml"])


def test_manifests_pass_the_kubernetes_schema(rendered: dict[str, list[Obj]]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for overlay, objs in rendered.items():
        assert len(objs) >= 12, overlay
        for obj in objs:
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']} "
                                f"is invalid for Kubernetes {version}: {exc.message}")


def _checkov() -> str:
    found = shutil.which("checkov", path=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin")
    if found is None:
        pytest.skip("checkov is not installed (pip install checkov; see docs/deploy.md)")
    return found


def test_security_linter_finds_nothing_unjustified(rendered: dict[str, list[Obj]],
                                                   tmp_path: Path) -> None:
    checkov = _checkov()
    for overlay, objs in rendered.items():
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(objs))
    proc = subprocess.run(
        [checkov, "--directory", str(tmp_path), "--framework", "kubernetes", "--output", "json",
         "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["resource"]) for r in reports
              for c in r["results"]["failed_checks"]]
    assert not failed, f"checkov findings: {failed}"
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    for check in skipped:  # each skip carries its reason (checkov.io/skipN annotations)
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 20, f"{check['check_id']} on {check['resource']}: no justification"
    assert sum(r["summary"]["passed"] for r in reports) > 100


def test_pods_are_locked_down(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        templates = pod_templates(objs)
        assert {o["metadata"]["name"] for o, _ in templates} >= {"dns", "etcd", "etcd-auth"}
        for owner, spec in templates:
            where = f"{overlay}: {owner['kind']}/{owner['metadata']['name']}"
            pod_sc = spec["securityContext"]
            assert pod_sc["runAsNonRoot"] is True, where
            assert pod_sc["runAsUser"] >= 10000, where
            assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert spec["automountServiceAccountToken"] is False, where
            assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
            for ctr in [*spec.get("initContainers", []), *spec["containers"]]:
                sc = ctr["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["capabilities"]["drop"] == ["ALL"], where
                assert "add" not in sc["capabilities"], where
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(ctr["resources"][kind]), where
                assert ":" in ctr["image"] and not ctr["image"].endswith(":latest"), where
                assert all("hostPort" not in p for p in ctr.get("ports", [])), where


def test_dns_statefulset_keeps_the_contract(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        sts, spec, ctr = _dns(objs)
        env = {e["name"]: e for e in ctr["env"]}
        # node id = pod name, stable across restarts
        assert env["DNSNODE_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["CLUSTERCTL_ENDPOINT"]["value"] == "127.0.0.1:5301"
        assert ctr["args"] == ["--config", "/etc/dnscluster/node.toml"]
        # SIGTERM hands the Key Master role over: time enough for it
        assert spec["terminationGracePeriodSeconds"] >= 60
        assert ctr["readinessProbe"]["exec"]["command"] == [*HEALTH, "readiness"]
        assert ctr["livenessProbe"]["exec"]["command"] == [*HEALTH, "liveness"]
        startup = ctr["startupProbe"]
        assert startup["exec"]["command"] == [*HEALTH, "liveness"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # large zones
        ports = {(p["containerPort"], p.get("protocol", "TCP")) for p in ctr["ports"]}
        assert {(5300, "UDP"), (5300, "TCP"), (5301, "TCP"), (9100, "TCP")} <= ports
        # the headless Service and the DNS Service
        headless = find(objs, "Service", sts["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"
        service = find(objs, "Service", "dns")
        named = {p["name"]: p["containerPort"] for p in ctr["ports"]}
        assert {(p["port"], p["protocol"], named[p["targetPort"]])
                for p in service["spec"]["ports"]} == {(53, "UDP", 5300), (53, "TCP", 5300),
                                                       (853, "TCP", 8853)}
        labels = sts["spec"]["template"]["metadata"]["labels"]
        for svc in (headless, service):
            assert svc["spec"]["selector"].items() <= labels.items()
        pdb = find(objs, "PodDisruptionBudget", "dns")
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        affinity = spec["affinity"]["podAntiAffinity"]
        assert affinity, overlay
        if overlay == "prod":
            assert affinity["requiredDuringSchedulingIgnoredDuringExecution"]
        # the config's files are mounted where it says
        config = _node_toml(objs)
        mounts = [m["mountPath"] for m in ctr["volumeMounts"]]
        for section, key in (("etcd", "password_file"), ("etcd", "ca_file"),
                             ("etcd", "cert_file"), ("etcd", "key_file"), ("api", "ca_file"),
                             ("api", "cert_file"), ("api", "key_file"),
                             ("dns", "tls_cert_file"), ("dns", "tls_key_file"),
                             ("signing", "kek_file"), ("signing", "key_store")):
            path = config[section][key]  # type: ignore[index]
            assert any(path == m or path.startswith(m + "/") for m in mounts), (section, key)
        env = {e["name"]: e.get("value") for e in ctr["env"]}
        journal = env["DNSNODE_SERVER__JOURNAL_DIR"]  # IXFR journals: on a volume
        assert any(journal == m or journal.startswith(m + "/") for m in mounts), journal
        # DNS over TLS on the unprivileged port the Service's 853 maps to, open to all
        assert config["dns"]["tls_listen"] == ["0.0.0.0:8853"]  # type: ignore[index]
        dns_policy = find(objs, "NetworkPolicy", "dns")["spec"]
        assert any({"port": 8853, "protocol": "TCP"} in r["ports"] and "from" not in r
                   for r in dns_policy["ingress"]), overlay
        claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
        keys_mount = next(m for m in ctr["volumeMounts"]
                          if m["mountPath"] == config["signing"]["key_store"])  # type: ignore[index]
        assert keys_mount["name"] in claims
        # file-backed zones' master files on a persistent volume (the root fs is read-only)
        zones_mount = next(m for m in ctr["volumeMounts"]
                           if m["mountPath"] == "/var/lib/dnscluster/zones")
        assert zones_mount["name"] in claims and not zones_mount.get("readOnly")
        # the nodes never see etcd's root password
        users = next(v for v in spec["volumes"] if v["name"] == "etcd-users")
        assert [i["key"] for i in users["secret"]["items"]] == ["node-password"]


def test_admin_api_is_never_open(rendered: dict[str, list[Obj]]) -> None:
    from node.api.server import ApiTls, check_access
    for objs in rendered.values():
        api = _node_toml(objs)["api"]
        assert isinstance(api, dict)
        tls = ApiTls(api["ca_file"], api["cert_file"], api["key_file"])
        assert all(getattr(tls, f) for f in ("ca_file", "cert_file", "key_file"))
        check_access(api["listen"], tls)  # a routable address: TLS with client certs


def test_etcd_is_three_tls_members_reachable_only_by_nodes(
        rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        sts = find(objs, "StatefulSet", "etcd")
        assert sts["spec"]["replicas"] == 3
        assert sts["spec"]["podManagementPolicy"] == "Parallel"
        ctr = container(sts["spec"]["template"]["spec"], "etcd")
        tag = ctr["image"].rsplit(":v", 1)[1]
        assert tuple(int(x) for x in tag.split(".")) >= (3, 5, 3)  # DESIGN.md: not 3.5.0-3.5.2
        args = ctr["args"]
        for flag in ("--client-cert-auth=true", "--peer-client-cert-auth=true",
                     "--listen-client-urls=https://0.0.0.0:2379"):
            assert flag in args, (overlay, flag)
        assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        assert find(objs, "PodDisruptionBudget", "etcd")["spec"]["maxUnavailable"] == 1
        policy = find(objs, "NetworkPolicy", "etcd")["spec"]
        client_rule = next(r for r in policy["ingress"]
                           if [p["port"] for p in r["ports"]] == [2379])
        allowed = client_rule["from"][0]["podSelector"]["matchLabels"]
        # the pods allowed to reach etcd are the DNS nodes and the auth Job, nothing else
        may_reach = {o["metadata"]["name"] for o in objs if o["kind"] in ("StatefulSet", "Job")
                     and allowed.items() <= o["spec"]["template"]["metadata"]["labels"].items()}
        expected = {"dns", "etcd-auth"} | ({"dns-ro"} if overlay == "prod" else set())
        assert may_reach == expected, overlay
        # every pod has a NetworkPolicy
        selectors = [p["spec"]["podSelector"]["matchLabels"] for p in objs
                     if p["kind"] == "NetworkPolicy"]
        for owner, _ in pod_templates(objs):
            labels = owner["spec"]["template"]["metadata"]["labels"]
            assert any(s.items() <= labels.items() for s in selectors), owner["metadata"]["name"]


def test_prod_has_a_read_only_statefulset_without_the_kek(
        rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["prod"]
    ro = find(objs, "StatefulSet", "dns-ro")
    assert ro["spec"]["replicas"] >= 2
    assert find(objs, "PodDisruptionBudget", "dns-ro")["spec"]["maxUnavailable"] == 1
    spec = ro["spec"]["template"]["spec"]
    ctr = container(spec, "dns-node")
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    assert env["DNSNODE_ROLE"] == "readonly"
    assert env["DNSNODE_SIGNING__KEK_FILE"] == ""
    assert env["DNSNODE_ETCD__USERNAME"] == "dnscluster-ro"
    assert env["DNSNODE_ETCD__PASSWORD_FILE"].endswith("/ro-password")
    for sts in (ro, find(objs, "StatefulSet", "dns")):  # they advertise the pod IP
        ctr_env = container(sts["spec"]["template"]["spec"], "dns-node")["env"]
        adv = next(e for e in ctr_env if e["name"] == "DNSNODE_DNS__ADVERTISE")
        assert adv["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= ctr.keys()
    assert not any(v.get("secret", {}).get("secretName") == "dnscluster-kek"
                   for v in spec["volumes"])
    # the config the read-only pod gets is one the node accepts for that role
    from node.config import Config, DnsSettings, EtcdSettings, SigningSettings
    from node.config_checks import check
    toml = _node_toml(objs)
    # no DNS-over-TLS listener (its key is not mounted there): the env turns it off
    assert (env["DNSNODE_DNS__TLS_LISTEN"], env["DNSNODE_DNS__TLS_CERT_FILE"],
            env["DNSNODE_DNS__TLS_KEY_FILE"]) == ("", "", "")
    assert not any(v.get("secret", {}).get("secretName") == "dnscluster-dns-tls"
                   for v in spec["volumes"])
    check(Config(node_id="dns-ro-0", role=env["DNSNODE_ROLE"],
                 etcd=EtcdSettings(endpoints=tuple(toml["etcd"]["endpoints"])),  # type: ignore[index]
                 dns=DnsSettings(listen=tuple(toml["dns"]["listen"])),  # type: ignore[index]
                 signing=SigningSettings(kek_file=env["DNSNODE_SIGNING__KEK_FILE"])))


def test_make_secrets_makes_every_secret_the_manifests_mount(
        rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    secrets = make_secrets("dnscluster", tmp_path / "s")
    for objs in rendered.values():
        for _, spec in pod_templates(objs):
            for vol in spec.get("volumes", []):
                if "secret" in vol:
                    name = vol["secret"]["secretName"]
                    assert name in secrets, name
                    for item in vol["secret"].get("items", []):
                        assert item["key"] in secrets[name], (name, item["key"])
    assert len(bytes.fromhex(secrets["dnscluster-kek"]["kek"].decode())) == 32
    api = secrets["dnscluster-api-tls"]
    cert = x509.load_pem_x509_certificate(api["tls.crt"])
    ca = x509.load_pem_x509_certificate(api["ca.crt"])
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "*.dns-headless.dnscluster.svc" in sans.get_values_for_type(x509.DNSName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(eku)
    dot = secrets["dnscluster-dns-tls"]  # DNS over TLS: the Service name, signed by the CA
    dot_cert = x509.load_pem_x509_certificate(dot["tls.crt"])
    dot_cert.verify_directly_issued_by(x509.load_pem_x509_certificate(dot["ca.crt"]))
    dot_names = dot_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"dns.dnscluster.svc", "*.dns-headless.dnscluster.svc"} <= set(dot_names)
    etcd = x509.load_pem_x509_certificate(secrets["dnscluster-etcd-tls"]["tls.crt"])
    etcd_names = etcd.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {f"etcd-{i}.etcd" for i in range(3)} <= set(etcd_names)
    # running it again keeps the keys (a re-apply must not rotate the KEK)
    again = make_secrets("dnscluster", tmp_path / "s")
    assert again["dnscluster-kek"] == secrets["dnscluster-kek"]


def _doc_block(doc: str, first_line: str) -> str:
    """The fenced code block of docs/deploy.md that starts with `first_line`."""
    start = doc.index(f"```yaml\n{first_line}\n") + len("```yaml\n")
    return doc[start:doc.index("```", start)]


def test_documented_external_etcd_overlay_renders(tmp_path: Path) -> None:
    from tests.deploy.manifests import K8S, ROOT, kubectl

    doc = (ROOT / "docs" / "deploy.md").read_text()
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / "overlays" / "external-etcd"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        _doc_block(doc, "# k8s/overlays/external-etcd/kustomization.yaml"))
    (overlay / "external.yaml").write_text(_doc_block(doc, "# external.yaml"))
    proc = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    objs = [o for o in yaml.safe_load_all(proc.stdout) if o]
    assert all("kind" in o for o in objs)
    assert find(objs, "StatefulSet", "etcd")["spec"]["replicas"] == 0
    env = {e["name"]: e.get("value") for e in _dns(objs)[2]["env"]}
    assert env["DNSNODE_ETCD__ENDPOINTS"].startswith("https://")
    assert env["DNSNODE_NODE_ID"] is None  # still from the downward API


def test_documented_exec_command_is_the_tested_one() -> None:
    from tests.deploy.manifests import CLUSTERCTL, ROOT

    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert "exec dns-0 -- clusterctl transfer-keymaster" in doc
    assert "-- clusterctl seize-keymaster" in doc
    # the pod's environment carries exactly the TLS files the tested command uses
    ctr = find(render("dev"), "StatefulSet", "dns")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    flags = dict(zip(CLUSTERCTL[1::2], CLUSTERCTL[2::2], strict=False))
    assert env["CLUSTERCTL_CA"] == flags["--ca"]
    assert env["CLUSTERCTL_CERT"] == flags["--cert"]
    assert env["CLUSTERCTL_KEY"] == flags["--key"]
