"""The processes a benchmark starts (etcd, dns-node, knotd) and what they cost (CPU, RSS).

Every process is started in its own session, recorded in a `ProcessSet`,
and stopped by PID (SIGTERM, then SIGKILL after a deadline) when the set is
closed, whatever happened. CPU time and RSS come from /proc and cover the
process and its live descendants (a node's signing pool, for instance).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import wire

VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark cannot go on; the message says why and what to look at."""


def stop_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so `finally` blocks stop our processes."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def wait_until(what: str, pred: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    """Poll `pred` until true; BenchError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except BenchError:
            raise  # a process we wait on died: no point waiting longer
        except Exception:  # not ready yet (connection refused, timeout...)
            pass
        time.sleep(step)
    raise BenchError(f"{what}: not reached within {timeout:.0f} s")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host` right now (small race, fine for benchmarks)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
            return port
    raise BenchError(f"no free port on {host}")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """`pid` and every live descendant."""
    tree = _children()
    out, todo = [], [pid]
    while todo and len(out) < 10_000:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of the process tree under `pid`, in seconds.

    utime+stime of `pid` and every live descendant (serving workers, signing
    pool), plus cutime+cstime of each, which holds the CPU time of
    descendants that have already exited and been reaped (a restarted
    worker, a finished pool process); live children are not in cutime, so
    nothing is counted twice.
    """
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def own_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` alone (utime+stime), in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_idle(pid: int, *, window: float = 3.0, busy: float = 0.03,
              timeout: float = 600.0) -> float:
    """Wait until the process tree under `pid` uses less than `busy` of a core over a
    `window` (the node has finished signing, building images, compacting); the seconds
    waited. Figures are measured "when the node has finished its work" (DESIGN/issue 10):
    BenchError after `timeout`."""
    t0 = time.monotonic()
    last = cpu_seconds(pid)
    while True:
        time.sleep(window)  # a sampling interval, not synchronisation
        now = cpu_seconds(pid)
        if now - last < busy * window:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"process {pid} still busy after {timeout:.0f} s "
                             f"({(now - last) / window:.0%} of a core)")
        last = now


def pss_bytes(pid: int) -> int:
    """PSS of `pid` and its live descendants, summed, in bytes (from smaps_rollup).

    Pages shared between the processes (a zone image mapped by every serving
    worker, the interpreter's text) are divided among them, so the sum counts
    each page once: this is what the process tree costs the machine.
    """
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def process_count(pid: int) -> int:
    """How many live processes the tree under `pid` has (the process itself included)."""
    return sum(1 for p in descendants(pid) if alive(p))


def rss_bytes(pid: int) -> int:
    """VmRSS of `pid` and its live descendants, summed, in bytes.

    Shared pages count once per process here: for a tree, `pss_bytes` is the
    figure to compare.
    """
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass(slots=True)
class Proc:
    """One started process: its name, PID, log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(
                f"{self.name} (pid {self.pid}) exited with {self.popen.returncode}; "
                f"log {self.log}:\n{tail}"
            )


@dataclass(slots=True)
class ProcessSet:
    """The processes of one benchmark run; `close()` stops each by PID, newest first."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], cpus: str | None = None,
              nice: int = 0, env: dict[str, str] | None = None) -> Proc:
        """Start `argv`, pinned to `cpus` (taskset list) and reniced by `nice` if given."""
        cmd = list(argv)
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        log = self.workdir / f"{name}.log"
        fh = open(log, "ab")
        try:
            popen = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=self.workdir, env=env)
        finally:
            fh.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                sys.stderr.write(f"bench: stopping {proc.name} (pid {proc.pid}): {exc}\n")


def binary(name: str) -> str:
    found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if found is None:
        raise BenchError(f"{name}: not found on PATH or in {VENV_BIN}")
    return found


def start_etcd(ps: ProcessSet, host: str = "127.0.0.1", cpus: str | None = "1",
               nice: int = 10) -> str:
    """Start a private etcd (data under the work dir); return its client URL once healthy."""
    client, peer = free_port(host), free_port(host)
    url = f"http://{host}:{client}"
    data = ps.workdir / "etcd-data"
    proc = ps.start("etcd", [
        binary("etcd"), "--name", "bench", "--data-dir", str(data),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", f"http://{host}:{peer}",
        "--initial-advertise-peer-urls", f"http://{host}:{peer}",
        "--initial-cluster", f"bench=http://{host}:{peer}",
        "--quota-backend-bytes", str(4 * 1024**3),
        "--max-txn-ops", "1000",  # as deploy/ runs it (docs/large-zones.md)
    ], cpus=cpus, nice=nice)

    def healthy() -> bool:
        proc.check()
        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
            return b'"true"' in resp.read()

    wait_until(f"etcd at {url}", healthy, 30)
    return url


def write_kek(workdir: Path) -> Path:
    """A fresh key-encryption key (64 hex characters, mode 0600) for benchmark nodes."""
    path = workdir / "kek.hex"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class NodeAddr:
    """Where a started node listens."""

    node_id: str
    host: str
    dns_port: int
    api_port: int

    @property
    def api(self) -> str:
        return f"{self.host}:{self.api_port}"


def start_node(ps: ProcessSet, node_id: str, etcd_url: str, prefix: str,
               host: str = "127.0.0.1", cpus: str | None = None,
               kek_file: Path | None = None, lease_ttl: int = 20,
               extra_signing: str = "", workers: int | None = None,
               log_level: str = "WARNING", stagger: tuple[float, float] = (0.0, 0.0),
               realtime: bool = True) -> tuple[Proc, NodeAddr]:
    """Start `dns-node` with a generated config; return once its readiness check serves.

    With `kek_file` the node may sign (it holds the key-encryption key), with no stagger
    unless `stagger` (signing.stagger_min, stagger_max) says otherwise.
    `workers` sets `server.workers` (serving processes; 0: answer in the node
    process); None keeps the node's default (one per core). `realtime` False sets
    `server.realtime_workers = false` (workers stay in the normal scheduling class).
    """
    addr = NodeAddr(node_id, host, free_port(host), free_port(host))
    signing = ""
    if kek_file is not None:  # no stagger by default: every node signing at once
        signing = (f'[signing]\nkek_file = "{kek_file}"\nstagger_min = {stagger[0]}\n'
                   f'stagger_max = {stagger[1]}\n{extra_signing}')
    keepalive = max(1.0, lease_ttl / 4)
    call_timeout = max(1.0, (lease_ttl - keepalive) / 2)

    server = "" if workers is None else f"workers = {workers}\n"
    server += "" if realtime else "realtime_workers = false\n"
    server = f"[server]\n{server}" if server else ""
    conf = ps.workdir / f"{node_id}.toml"
    conf.write_text(f"""node_id = "{node_id}"
role = "writable"
[etcd]
endpoints = ["{etcd_url}"]
prefix = "{prefix}"
timeout = {call_timeout}
lease_ttl = {lease_ttl}
keepalive_interval = {keepalive}
[dns]
listen = ["{host}:{addr.dns_port}"]
[api]
listen = "{host}:{addr.api_port}"
[metrics]
listen = ""
[log]
level = "{log_level}"
{server}{signing}""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNSNODE_")}
    proc = ps.start(node_id, [binary("dns-node"), "--config", str(conf)], cpus=cpus, env=env)
    wait_until(f"node {node_id} readiness", lambda: _node_ready(proc, addr), 120, 0.1)
    return proc, addr


def _node_ready(proc: Proc, addr: NodeAddr) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    proc.check()
    with grpc.insecure_channel(addr.api) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=1)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serial(proc: Proc, host: str, port: int, zone: str, serial: int | None,
                timeout: float) -> int:
    """Wait until host:port answers `zone` SOA (with `serial` if given); return the serial."""
    seen: list[int] = []

    def ok() -> bool:
        proc.check()
        got = wire.serial_of(host, port, zone, timeout=0.5)
        if got is None or (serial is not None and got != serial):
            return False
        seen.append(got)
        return True

    wait_until(f"{proc.name} serving {zone} serial {serial}", ok, timeout, 0.1)
    return seen[-1]


def wait_all_serving(proc: Proc, addr: NodeAddr, zone: str, serial: int, timeout: float,
                     probes: int = 32) -> None:
    """Wait until every serving worker of the node serves `zone` at `serial` or later.

    Two conditions, both required: the readiness check is SERVING (it holds
    only once every worker has applied every zone operation sent to it, so
    the image with `serial` is installed everywhere), and `probes` SOA
    queries, each from a fresh socket (a new source port, so the kernel's
    SO_REUSEPORT hash spreads them over the workers), all carry `serial` or later.
    """

    def ok() -> bool:
        if not _node_ready(proc, addr):
            return False
        # or later: a node that moved on (a publication step after the first signing
        # pass) would otherwise be waited for until the timeout
        return all((wire.serial_of(addr.host, addr.dns_port, zone, timeout=0.5) or 0) >= serial
                   for _ in range(probes))

    wait_until(f"{proc.name}: every worker serving {zone} serial {serial}", ok, timeout, 0.2)
