"""Real `dns-node` processes for cluster tests: config on free ports, start, kill -9, SIGSTOP.

Each `NodeProcess` writes its own TOML (free loopback ports for DNS, gRPC and
metrics, from `tests/support/ports.py`), runs `dns-node` from this interpreter's
venv, and waits for the gRPC readiness service with a deadline. A first start
that fails because another process took one of its ports is retried on fresh
ports. Logs go to `<workdir>/<id>.log`; failures quote the log's tail.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from tests.support import proclog
from tests.support.ports import bind_clash, free_port
from tests.support.wait import wait_until

__all__ = ["BIN", "SERVING_WORKERS", "NodeProcess", "clusterctl", "free_port"]

BIN = Path(sys.executable).parent
# nodes answer DNS in their own process unless a test (env=) or the run's environment says
# otherwise: serving workers slow a 3-node cluster's start on 2 cores (median of 9 on a
# loaded machine: 4.1 s with workers=0, 6.3 s with 1, 6.4 s with 2) and test_replication
# 39 s -> 51-77 s; tests/cluster/test_serving_workers.py covers them, and the DNS tests
# pass with DNSNODE_SERVER__WORKERS=2 in the environment (it overrides this default)
_DEFAULT_ENV = {"DNSNODE_SERVER__WORKERS": "0"}
# what a node runs by default (one serving worker per core), for the test files that keep the
# worker path covered in every run: test_serving_workers, test_hostile_input's fuzz run,
# test_ixfr, test_bind_tsig_transfers (hand-overs: IXFR, TSIG-signed SOA/AXFR/IXFR, NOTIFY)
SERVING_WORKERS = {"DNSNODE_SERVER__WORKERS": "2"}


def clusterctl(endpoint: str, *args: str, timeout: float = 60, input: str | None = None,
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "clusterctl"), "--endpoint", endpoint, *args],
                          capture_output=True, text=True, timeout=timeout, input=input)


@dataclass
class NodeProcess:
    node_id: str
    etcd_endpoints: list[str]
    prefix: str
    workdir: Path
    host: str = "127.0.0.1"
    role: str = "writable"
    lease_ttl: int = 4
    extra_toml: str = ""
    env: dict[str, str] = field(default_factory=dict)  # extra environment (DNSNODE_* settings)
    dns_toml: str = ""  # extra lines of the [dns] section
    listen_host: str = ""  # DNS listen host if not `host` (a wildcard: only in a private netns)
    nofile: int = 0  # if set, the node starts with this soft RLIMIT_NOFILE
    dns_port: int = 0  # 0: a free port, chosen here (and changed if a first start clashes)
    api_port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _auto_ports: tuple[str, ...] = field(default=(), init=False, repr=False)
    _log_offset: int = field(default=0, init=False, repr=False)
    _was_ready: bool = field(default=False, init=False, repr=False)

    _PORTS = ("dns_port", "api_port", "metrics_port")
    _BIND_RETRIES = 5

    def __post_init__(self) -> None:
        self._auto_ports = tuple(p for p in self._PORTS if not getattr(self, p))
        self._new_ports()

    def _new_ports(self) -> None:
        for name in self._auto_ports:
            setattr(self, name, free_port(self.host))

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.node_id}.toml"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.node_id}.log"

    @property
    def api(self) -> str:
        return f"{self.host}:{self.api_port}"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f'node_id = "{self.node_id}"\nrole = "{self.role}"\n'
            f"[etcd]\nendpoints = {json.dumps(self.etcd_endpoints)}\n"
            f'prefix = "{self.prefix}"\ntimeout = 1.0\nlease_ttl = {self.lease_ttl}\n'
            f"keepalive_interval = 1.0\n"
            f'[dns]\nlisten = ["{self.listen_host or self.host}:{self.dns_port}"]\n'
            f"{self.dns_toml or 'tcp_idle_timeout = 5.0'}\n"
            f'[api]\nlisten = "{self.api}"\n'
            f'[metrics]\nlisten = "{self.host}:{self.metrics_port}"\n'
            f'[log]\nlevel = "INFO"\n{self.extra_toml.replace("{node_id}", self.node_id)}'
        )

    def start(self, wait: bool = True, timeout: float = 30) -> NodeProcess:
        self.write_config()
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        proclog.started(self.node_id, self.log_path)
        self.proc = subprocess.Popen([str(BIN / "dns-node"), "--config", str(self.config_path)],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env={**_DEFAULT_ENV, **os.environ, **self.env},
                                     preexec_fn=self._limits if self.nofile else None)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def _limits(self) -> None:
        """In the child before exec: the open-files limit a test asked for."""
        if self.nofile:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def ready(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.api) as channel:
            try:
                resp = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="readiness"), timeout=0.5)
            except grpc.RpcError:
                return False
            return resp.status == health_pb2.HealthCheckResponse.SERVING

    def _log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _retry_on_clash(self) -> bool:
        """After an exit at first start because a port was taken: restart on new ports."""
        if self._was_ready or not self._auto_ports or not bind_clash(self._log_since_start()):
            return False
        self._new_ports()
        self.start(wait=False)
        return True

    def wait_ready(self, timeout: float = 30) -> None:
        retries = self._BIND_RETRIES

        def ready() -> bool:
            nonlocal retries
            if self.proc is not None and self.proc.poll() is not None:
                if retries > 0 and self._retry_on_clash():
                    retries -= 1
                    return False
                raise AssertionError(f"node {self.node_id} exited with {self.proc.returncode}:\n"
                                     f"{self.log_tail()}")
            return self.ready()

        try:
            wait_until(ready, timeout, interval=0.05)
            self._was_ready = True
        except AssertionError as exc:
            if "exited with" in str(exc):
                raise
            raise AssertionError(f"node {self.node_id} not ready in {timeout}s:\n"
                                 f"{self.log_tail()}") from None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        # Longer than the node's own shutdown watchdog (20 s, node.daemon): a node whose
        # clean-up hangs is ended by the watchdog, which logs every thread's stack.
        if not self.alive:
            return self.proc.returncode if self.proc else 0
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            msg = f"node {self.node_id} ignored SIGTERM:\n{self.log_tail()}"
            raise AssertionError(msg) from None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def query(self, name: str, rdtype: str = "A", *, tcp: bool = False, timeout: float = 2.0,
              want_dnssec: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), want_dnssec=want_dnssec)
        fn = dns.query.tcp if tcp else dns.query.udp
        return fn(q, self.host, port=self.dns_port, timeout=timeout)

    def serial(self, zone: str) -> int | None:
        """The SOA serial this node serves for `zone`, or None if it does not answer it."""
        try:
            resp = self.query(zone, "SOA", timeout=1.0)
        except (dns.exception.Timeout, OSError):
            return None
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def ctl(self, *args: str, timeout: float = 60, input: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return clusterctl(self.api, *args, timeout=timeout, input=input)


def events(node: NodeProcess, event: int) -> list[dict]:  # type: ignore[type-arg]
    """The JSON events with id `event` in `node`'s log, oldest first."""
    out = []
    for line in node.log_path.read_text().splitlines():
        start = line.find('{"event": ')
        if start >= 0 and f'"event": {event},' in line:
            out.append(json.loads(line[start:]))
    return out
