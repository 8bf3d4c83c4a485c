"""Rendering the Kubernetes manifests and reading the deploy files, for tests/deploy.

`render(overlay)` runs `kubectl kustomize k8s/overlays/<overlay>` (Debian's
`kubernetes-client` in CI; any kubectl with kustomize works) and returns the
objects; `find()` picks one by kind and name. `make_secrets()` runs
`k8s/make-secrets` and returns the Secrets' decoded data.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
API_TLS = "/etc/dnscluster/api-tls"
# The documented admin command (docs/deploy.md): kubectl exec dns-0 -- <this> ...
CLUSTERCTL = ["clusterctl", "--ca", f"{API_TLS}/ca.crt", "--cert", f"{API_TLS}/tls.crt",
              "--key", f"{API_TLS}/tls.key"]

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    return found


def render(overlay: str) -> list[Obj]:
    """The objects `kubectl kustomize k8s/overlays/<overlay>` renders."""
    proc = subprocess.run([kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    for obj in objs:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind}/{name} among {[o['metadata']['name'] for o in objs]}")


def find_prefixed(objs: list[Obj], kind: str, prefix: str) -> Obj:
    """A generated object (name + hash suffix)."""
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)]
    assert len(hits) == 1, f"expected one {kind} named {prefix}*, got {len(hits)}"
    return hits[0]


def pod_templates(objs: list[Obj]) -> list[tuple[Obj, Obj]]:
    """(owner, pod spec) for every StatefulSet, Deployment, DaemonSet and Job."""
    kinds = ("StatefulSet", "Deployment", "DaemonSet", "Job")
    return [(o, o["spec"]["template"]["spec"]) for o in objs if o["kind"] in kinds]


def container(pod_spec: Obj, name: str) -> Obj:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def make_secrets(namespace: str, workdir: Path) -> dict[str, dict[str, bytes]]:
    """Run k8s/make-secrets; {secret name: {key: bytes}}."""
    env_path = str(Path(kubectl()).parent)
    proc = subprocess.run([str(K8S / "make-secrets"), namespace, str(workdir)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": f"{env_path}:/usr/bin:/bin"})
    assert proc.returncode == 0, f"make-secrets failed:\n{proc.stderr}"
    out: dict[str, dict[str, bytes]] = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc:
            assert doc["kind"] == "Secret" and doc["metadata"]["namespace"] == namespace
            out[doc["metadata"]["name"]] = {k: base64.b64decode(v)
                                             for k, v in doc["data"].items()}
    return out


def dockerfile_copies() -> dict[str, Path]:
    """Image path -> repository file, for the Dockerfile's plain `COPY src dest` lines."""
    out: dict[str, Path] = {}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "COPY":
            out[words[2]] = ROOT / words[1]
    return out
