"""The local development cluster: etcd and three writable nodes on loopback.

`deploy/local-cluster up|down|status [--purge]` (the bash wrapper makes the
venv first). etcd listens on 127.0.0.10:2379 with auth on, set up by the
deployment's own script (deploy/compose/etcd-auth.sh): the writable nodes are
etcd user `dnscluster`, the read-only node r1 is `dnscluster-ro`, which cannot
read private keys or update TSIG keys; passwords are in `.local-cluster/`.
Node N (1..3) has DNS on 127.0.0.1N:5300, gRPC on 127.0.0.1N:5301 and metrics
on 127.0.0.1N:9100; r1 the same on 127.0.0.14.
State, configs, PIDs and logs live in `.local-cluster/`; `down` stops exactly
the processes `up` started, by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local-cluster"
VENV_BIN = Path(sys.executable).parent
ETCD_HOST = "127.0.0.10"
NODES = [("n1", "127.0.0.11"), ("n2", "127.0.0.12"), ("n3", "127.0.0.13")]
READONLY = ("r1", "127.0.0.14")  # no KEK; signed zones come by transfer from n1..n3
ZONE = "example.test."


def out(msg: str) -> None:
    print(f"local-cluster: {msg}", flush=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def read_pid(name: str) -> int | None:
    path = STATE / f"{name}.pid"
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    return pid if pid_alive(pid) else None


def spawn(name: str, argv: list[str]) -> int:
    log = open(STATE / "logs" / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=STATE)
    (STATE / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def wait_for(what: str, pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"local-cluster: {what} did not come up within {timeout:.0f}s; "
                     f"see {STATE / 'logs'}")


def etcd_binary() -> str:
    local = VENV_BIN / "etcd"
    found = shutil.which("etcd") or (str(local) if local.exists() else None)
    if not found:
        raise SystemExit("local-cluster: no etcd found (PATH or .venv/bin/etcd)")
    return found


def etcd_healthy() -> bool:
    with urllib.request.urlopen(f"http://{ETCD_HOST}:2379/health", timeout=1) as resp:
        return json.loads(resp.read()).get("health") == "true"


ETCD_USERS = {"writable": "dnscluster", "readonly": "dnscluster-ro"}


def password_file(user: str) -> Path:
    """An etcd user's password (hex: etcdctl cuts at blanks), made once, mode 0600."""
    path = STATE / f"etcd-{user}-password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(16) + "\n")
    return path


def etcd_auth() -> None:
    """Users, roles and auth on (idempotent), by the script compose and Kubernetes run."""
    etcdctl_dir = Path(shutil.which("etcdctl") or VENV_BIN / "etcdctl").parent
    env = {**os.environ, "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": f"http://{ETCD_HOST}:2379",
           "PATH": f"{etcdctl_dir}:{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "ETCD_ROOT_PASSWORD_FILE": str(password_file("root")),
           "ETCD_NODE_USER": ETCD_USERS["writable"],
           "ETCD_NODE_PASSWORD_FILE": str(password_file(ETCD_USERS["writable"])),
           "ETCD_RO_USER": ETCD_USERS["readonly"],
           "ETCD_RO_PASSWORD_FILE": str(password_file(ETCD_USERS["readonly"])),
           "WAIT_SECONDS": "30"}
    res = subprocess.run(["sh", str(ROOT / "deploy" / "compose" / "etcd-auth.sh")], env=env,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"local-cluster: etcd auth setup failed: {res.stderr.strip()}")
    out("etcd auth on: users dnscluster (writable nodes) and dnscluster-ro (read-only node)")


def node_config(node_id: str, host: str, role: str = "writable") -> str:
    signing = f"""[signing]
kek_file = "{STATE / 'kek'}"
key_store = "{STATE / 'keys' / node_id}"
stagger_min = 2.0
stagger_max = 5.0
""" if role == "writable" else ""
    return f"""node_id = "{node_id}"
role = "{role}"
[etcd]
endpoints = ["http://{ETCD_HOST}:2379"]
username = "{ETCD_USERS[role]}"
password_file = "{password_file(ETCD_USERS[role])}"
timeout = 2.0
lease_ttl = 10
keepalive_interval = 2.0
[dns]
listen = ["{host}:5300"]
[api]
listen = "{host}:5301"
[metrics]
listen = "{host}:9100"
{signing}[log]
level = "INFO"
"""


def clusterctl(*args: str, host: str = NODES[0][1], check: bool = True) -> subprocess.CompletedProcess:  # noqa: E501
    return subprocess.run([str(VENV_BIN / "clusterctl"), "--endpoint", f"{host}:5301", *args],
                          capture_output=True, text=True, check=check)


def node_ready(host: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:5301") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=1)
        return resp.status == health_pb2.HealthCheckResponse.SERVING


def make_kek() -> None:
    """The cluster's key-encryption key (Kubernetes mounts a Secret instead)."""
    path = STATE / "kek"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")


def ctl_json(*args: str) -> dict:  # type: ignore[type-arg]
    res = clusterctl("--json", *args, check=False)
    if res.returncode != 0:
        raise SystemExit(f"local-cluster: clusterctl {' '.join(args)} failed: {res.stderr.strip()}")
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def sign_example() -> None:
    status = clusterctl("--json", "zone", "dnssec", ZONE, check=False)
    if status.returncode != 0 or not json.loads(status.stdout).get("keys"):
        out("signing example.test. (KSK + ZSK ECDSAP256SHA256, NSEC3); the other nodes "
            "sign after a 2-5 s stagger")
        ctl_json("zone", "sign", ZONE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = ctl_json("zone", "dnssec", ZONE)
        if st.get("published"):
            break
        time.sleep(0.5)
    else:
        raise SystemExit("local-cluster: example.test. was not signed by every node in 60 s; "
                         f"see {STATE / 'logs'}")
    anchor = STATE / "example.test.anchor"
    res = clusterctl("trust-anchors", "export", ZONE, "--format", "bind", check=False)
    anchor.write_text(res.stdout)
    out(f"example.test. is signed by all {st.get('signed_nodes')} nodes and published; DS for "
        "the parent:")
    for ds in st.get("ds", []):
        print(f"  {ds}")


def show_answer(host: str) -> None:
    """Ask one node for www.example.test A with DNSSEC, as dig would, and print the answer."""
    import dns.flags
    import dns.message
    import dns.query

    query = dns.message.make_query(f"www.{ZONE}", "A", want_dnssec=True)
    resp = dns.query.udp(query, host, port=5300, timeout=2)
    flags = dns.flags.to_text(resp.flags).lower()
    out(f"{host}:5300 answers www.{ZONE} A ({flags}):")
    for rrset in resp.answer:
        for line in rrset.to_text().splitlines():
            print(f"  {line[:110]}")


def up() -> None:
    for sub in ("logs", "etcd", "keys"):
        (STATE / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(STATE / "keys", 0o700)
    make_kek()
    if read_pid("etcd") is None:
        out(f"starting etcd on {ETCD_HOST}:2379")
        spawn("etcd", [
            etcd_binary(), "--name", "local", "--data-dir", str(STATE / "etcd"),
            "--listen-client-urls", f"http://{ETCD_HOST}:2379",
            "--advertise-client-urls", f"http://{ETCD_HOST}:2379",
            "--listen-peer-urls", f"http://{ETCD_HOST}:2380",
            "--initial-advertise-peer-urls", f"http://{ETCD_HOST}:2380",
            "--initial-cluster", f"local=http://{ETCD_HOST}:2380",
            # large zones (docs/large-zones.md): room for two generations of a 1M-name
            # zone plus history, and the history of old generations compacted hourly
            "--quota-backend-bytes", str(8 * 1024**3),
            "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h",
            # an import's batches of 1000 puts: less CPU per put for etcd and the nodes
            "--max-txn-ops", "1000",
        ])
    wait_for("etcd", etcd_healthy, 30)
    etcd_auth()
    for node_id, host in [*NODES, READONLY]:
        if read_pid(node_id) is None:
            role = "readonly" if (node_id, host) == READONLY else "writable"
            conf = STATE / f"{node_id}.toml"
            conf.write_text(node_config(node_id, host, role))
            out(f"starting {role} node {node_id}: DNS {host}:5300, gRPC {host}:5301")
            spawn(node_id, [str(VENV_BIN / "dns-node"), "--config", str(conf)])
    for node_id, host in NODES:
        wait_for(f"node {node_id}", lambda h=host: node_ready(h), 60)
    if clusterctl("zone", "show", ZONE, check=False).returncode != 0:
        zone_file = str(ROOT / "deploy" / "example.test.zone")
        res = clusterctl("zone", "create", ZONE, "--file", zone_file,
                         "--allow-transfer", "127.0.0.0/8", check=False)
        if res.returncode != 0:
            raise SystemExit(f"local-cluster: creating {ZONE} failed: {res.stderr.strip()}")
        out(f"created zone {ZONE}")
    sign_example()
    wait_for("read-only node r1 (signed zone by transfer)", lambda: node_ready(READONLY[1]), 60)
    show_answer(NODES[1][1])
    print(f"""
The cluster is up: etcd on {ETCD_HOST}:2379, writable nodes n1..n3 on 127.0.0.11..13,
read-only node r1 on 127.0.0.14 (no keys; signed zones transferred from a writable node;
etcd user dnscluster-ro, which etcd refuses the private keys:
  ETCDCTL_API=3 etcdctl --endpoints {ETCD_HOST}:2379 \\
      --user dnscluster-ro:$(cat .local-cluster/etcd-dnscluster-ro-password) \\
      get --prefix /dnscluster/v1/secrets/            # "permission denied").

  dig @127.0.0.12 -p 5300 www.example.test A +dnssec  # any node answers, with AA and RRSIGs
  delv @127.0.0.13 -p 5300 -a .local-cluster/example.test.anchor +root=example.test \\
       www.example.test A                              # validates: "; fully validated"
  .venv/bin/clusterctl zone dnssec example.test       # keys, Key Master, who signed what
  dig @127.0.0.13 -p 5300 example.test AXFR           # transfers allowed from 127.0.0.0/8
  .venv/bin/clusterctl record add example.test new 300 A 192.0.2.9
  dig @127.0.0.13 -p 5300 new.example.test A          # replicated through etcd
  dig @127.0.0.14 -p 5300 new.example.test A +dnssec  # the read-only node, by transfer
  .venv/bin/clusterctl nodes                          # --endpoint 127.0.0.12:5301 for node 2
  .venv/bin/clusterctl zone show example.test

Logs: .local-cluster/logs/   Stop: deploy/local-cluster down   Status: deploy/local-cluster status
""", flush=True)


def stop_pid(name: str, timeout: float = 15.0) -> None:
    pid = read_pid(name)
    if pid is None:
        (STATE / f"{name}.pid").unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (STATE / f"{name}.pid").unlink(missing_ok=True)
    out(f"stopped {name} (pid {pid})")


def down(purge: bool) -> None:
    for node_id, _ in [*NODES, READONLY]:
        stop_pid(node_id)
    stop_pid("etcd")
    if purge and STATE.exists():
        shutil.rmtree(STATE)
        out("removed .local-cluster/")


def status() -> int:
    code = 0
    for name in ["etcd", *[n for n, _ in [*NODES, READONLY]]]:
        pid = read_pid(name)
        print(f"{name:5} {'running pid ' + str(pid) if pid else 'stopped'}")
        code |= pid is None
    if read_pid("n1"):
        res = clusterctl("nodes", check=False)
        print(res.stdout or res.stderr, end="")
    return int(code)


def main() -> int:
    parser = argparse.ArgumentParser(prog="local-cluster")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--purge", action="store_true", help="with down: also delete state")
    args = parser.parse_args()
    if args.command == "up":
        up()
        return 0
    if args.command == "down":
        down(args.purge)
        return 0
    return status()


if __name__ == "__main__":
    sys.exit(main())
