"""The serving loop's CPU per query, without dnsperf, etcd or a node: one UDP server, one client.

What it measures: the CPU a serving worker spends per answered UDP query on
the bench mix once every answer is cached, i.e. the datagram loop
(`node/server/mmsg.py`), `Responder.fast_udp` and the kernel's share
(utime and stime of the server process apart, from `/proc/PID/stat`).

Setup, once per (names, signing) and kept in `--dir` (default `/dev/shm`):
`bench.zonegen`'s zone and query file, the zone's image
(`node.image.build_image`; with `--sign nsec|nsec3`, signed in process with
fresh ECDSA P-256 keys), and the query wires (RD=1 as dnsperf sends them;
with `--do`, an OPT with a 4096-octet payload and DO=1, as `dnsperf -D`).

Each run starts the server as `python bench/udploop.py --serve IMAGE` pinned
to `--server-cpu` (0), with `PYTHONPATH=--tree` (default: this checkout) so
the same script measures another checkout's code (A/B: `--tree /tmp/main-copy`).
The server is the worker's: an `ImageTable` with the image installed, a
`DnsServer` (batched UDP, SO_REUSEPORT) on 127.0.0.1 under uvloop. The client
(this process, pinned to `--client-cpu`, 1) keeps `--window` queries
outstanding with `sendmmsg`/`recvmmsg` from a prebuilt header array (no
Python work per query), first `--warmup` queries (two passes over the query
file by default, so the NXDOMAIN names, asked once per pass, are admitted to
the answer cache), then `--rounds` timed rounds of `--queries` each. Every
loop is bounded: a round ends after its queries or `--timeout` seconds.
When nothing comes back for 0.2 s, what is in flight is counted lost and replaced.
`--knot` runs the same rounds against knotd (`bench/knot.py`, one UDP worker on the
server's CPU; with `--sign`, knotd signs the zone itself with the same denial).

Printed per round: answered, lost, queries/s, the server's CPU µs per answer
(user, system, total), its busy share of the wall time (and the client's), and the
load average. `--inproc` runs instead, in `--tree` pinned to `--server-cpu`,
`bench/inprocess.py --loop` (its signed zone, cached per mode; plain: DO=0 and 1,
nsec/nsec3: DO=1): `fast_udp`'s process CPU per cached answer and per flood answer
(new names), and `BatchedUdp._batch`'s per datagram over 32 queries left in its
receive slots with the system calls replaced by functions that return at once.

    .venv/bin/python bench/udploop.py --names 100000                     # unsigned, DO=0
    .venv/bin/python bench/udploop.py --names 100000 --sign nsec3 --do   # issue 10's case
    .venv/bin/python bench/udploop.py --tree /tmp/main-copy --names 100000   # another checkout

`--profile FILE` writes the server's cProfile stats (slower: compare only within
a profile).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from ctypes import Structure, addressof, c_int, c_size_t, c_uint, c_uint32, c_void_p, sizeof
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
SLOT = 4096  # receive slot of the client (answers are at most 1232 octets here)
RECV_BATCH = 64


class _IoVec(Structure):
    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


class _MsgHdr(Structure):
    _fields_ = [("msg_name", c_void_p), ("msg_namelen", c_uint32), ("msg_iov", c_void_p),
                ("msg_iovlen", c_size_t), ("msg_control", c_void_p),
                ("msg_controllen", c_size_t), ("msg_flags", c_int)]


class _MMsgHdr(Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", c_uint)]


# --- setup ---------------------------------------------------------------------------------


def _type_code(name: str) -> int:
    return {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}[name]


def query_wire(qid: int, name: str, qtype: int, do: bool) -> bytes:
    """A query as dnsperf sends it: RD=1, class IN; with `do`, OPT (4096 octets, DO=1)."""
    qname = b"".join(bytes((len(p),)) + p.encode() for p in name.rstrip(".").split(".") if p)
    question = qname + b"\x00" + struct.pack("!HH", qtype, 1)
    if not do:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    opt = b"\x00" + struct.pack("!HHIH", 41, 4096, 0x00008000, 0)
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + question + opt


def prepare(names: int, sign: str, directory: Path) -> tuple[Path, Path]:
    """The image and the query file for (names, sign), built once and kept in `directory`."""
    base = directory / f"udploop-{names}-{sign}"
    image = base.with_suffix(".img")
    queries = directory / f"udploop-{names}" / "bench.test.queries"
    if image.exists() and queries.exists():
        return image, queries
    sys.path.insert(0, str(HERE.parent))
    from bench.zonegen import generate
    from node.image import build_image
    from node.zones.model import snapshot_from_text

    t0 = time.monotonic()
    gen = generate(directory / f"udploop-{names}", names=names, origin="bench.test.")
    snap = snapshot_from_text(gen.zone_file.read_text(), "bench.test.", revision=1)
    print(f"setup: zone of {gen.rrsets} RRsets parsed in {time.monotonic() - t0:.1f} s",
          flush=True)
    if sign != "none":
        snap = _sign(snap, sign)
        print(f"setup: signed ({sign}) after {time.monotonic() - t0:.1f} s", flush=True)
    data = build_image(snap)
    tmp = image.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(image)
    print(f"setup: image of {len(data)} octets after {time.monotonic() - t0:.1f} s", flush=True)
    return image, queries


def _sign(snap: object, mode: str) -> object:
    import dataclasses
    from datetime import UTC, datetime

    import dns.name

    from node.dnssec.denial import DenialParams
    from node.dnssec.keys import load_private_key, new_key
    from node.dnssec.signer import SigningKey
    from node.dnssec.zonesigner import SigningParams, ZoneSigner

    origin = dns.name.from_text("bench.test.")
    now = int(time.time())
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(origin, 13, role, now=datetime.fromtimestamp(now, UTC))  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    params = SigningParams(denial=DenialParams(nsec3=mode == "nsec3"))
    res = ZoneSigner(origin, params, keys).sign(snap.nodes, None, now)  # type: ignore[attr-defined]
    return dataclasses.replace(snap, nodes=res.nodes, signed=True)  # type: ignore[call-overload]


def wires(query_file: Path, do: bool) -> list[bytes]:
    out = []
    for i, line in enumerate(query_file.read_text().splitlines()):
        name, rtype = line.split()
        out.append(query_wire(i & 0xFFFF, name, _type_code(rtype), do))
    return out


# --- server (runs with PYTHONPATH=--tree) -------------------------------------------------


def serve(image_path: str, profile: str | None) -> None:
    """The worker's serving stack on 127.0.0.1 until stdin closes; prints the port."""
    import asyncio
    import cProfile

    import uvloop

    from node import gcwatch
    from node.image import ImageTable, ZoneImage
    from node.priority import request_short_slice
    from node.server.listener import DnsServer

    gcwatch.install()  # as a serving worker (node/serving/worker.py main)
    request_short_slice()

    async def main() -> None:
        table = ImageTable()
        table.install(ZoneImage.open(Path(image_path)))
        gcwatch.settle()
        server = DnsServer(table, [("127.0.0.1", 0)], max_udp_payload=1232, reuse_port=True,
                           udp_batch=True)
        (_, port), = await server.start()
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), done.set)
        print(json.dumps({"port": port}), flush=True)
        prof = cProfile.Profile() if profile else None
        if prof is not None:
            prof.enable()
        await done.wait()
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)  # type: ignore[arg-type]
        batched = server._batched[0]
        print(json.dumps({"batches": getattr(batched, "batches", 0),
                          "dropped_sends": getattr(batched, "dropped_sends", 0),
                          "queries": server.stats.queries()}), flush=True)
        await server.stop()

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())


def _timed(fn: object) -> float:
    t0 = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t0


# --- client --------------------------------------------------------------------------------


class Client:
    """Keeps `window` queries outstanding on one connected socket; no Python per query."""

    def __init__(self, port: int, queries: list[bytes], window: int) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.recvmmsg, self.sendmmsg = libc.recvmmsg, libc.sendmmsg
        self.recvmmsg.argtypes = [c_int, c_void_p, c_uint, c_int, c_void_p]
        self.sendmmsg.argtypes = [c_int, c_void_p, c_uint, c_int]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.window = window
        n = len(queries)
        self.n = n
        self._qbuf = ctypes.create_string_buffer(b"".join(queries))
        self._qiov = (_IoVec * n)()
        self._qmsg = (_MMsgHdr * n)()
        pos = addressof(self._qbuf)
        for i, q in enumerate(queries):
            self._qiov[i].iov_base = pos
            self._qiov[i].iov_len = len(q)
            self._qmsg[i].msg_hdr.msg_iov = addressof(self._qiov) + i * sizeof(_IoVec)
            self._qmsg[i].msg_hdr.msg_iovlen = 1
            pos += len(q)
        self._rbuf = ctypes.create_string_buffer(RECV_BATCH * SLOT)
        self._riov = (_IoVec * RECV_BATCH)()
        self._rmsg = (_MMsgHdr * RECV_BATCH)()
        for i in range(RECV_BATCH):
            self._riov[i].iov_base = addressof(self._rbuf) + i * SLOT
            self._riov[i].iov_len = SLOT
            self._rmsg[i].msg_hdr.msg_iov = addressof(self._riov) + i * sizeof(_IoVec)
            self._rmsg[i].msg_hdr.msg_iovlen = 1
        self.next = 0

    def _send(self, count: int) -> int:
        sent = 0
        while sent < count:
            k = min(count - sent, self.n - self.next, 1024)
            r = self.sendmmsg(self.fd, addressof(self._qmsg) + self.next * sizeof(_MMsgHdr), k,
                              socket.MSG_DONTWAIT)
            if r <= 0:
                break  # socket buffer full: fewer in flight until answers come back
            sent += r
            self.next = (self.next + r) % self.n
        return sent

    def run(self, total: int, timeout: float) -> tuple[int, int]:
        """Send `total` queries, `window` at most in flight; (answered, lost)."""
        deadline = time.monotonic() + timeout
        sent = self._send(min(self.window, total))
        inflight, answered, lost = sent, 0, 0
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while (answered + lost < total) and time.monotonic() < deadline:
            if not poller.poll(200):
                lost += inflight  # nothing for 0.2 s: what is in flight is lost
                inflight = 0
            else:
                while True:
                    r = self.recvmmsg(self.fd, addressof(self._rmsg), RECV_BATCH,
                                      socket.MSG_DONTWAIT, None)
                    if r <= 0:
                        break
                    answered += r
                    inflight -= r
            want = min(self.window - inflight, total - answered - lost - inflight)
            if want > 0:
                inflight += self._send(want)
        return answered, lost


def _stat(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def _measure(args: argparse.Namespace, pid: int, port: int, queries: list[bytes]
             ) -> list[dict[str, object]]:
    """The warm-up, then the timed rounds against the server `pid` on `port`."""
    client = Client(port, queries, args.window)
    warm = args.warmup if args.warmup is not None else 2 * len(queries)
    client.run(warm, args.timeout)
    rounds: list[dict[str, object]] = []
    for _ in range(args.rounds):
        load = os.getloadavg()[0]
        u0, s0 = _stat(pid)
        c0 = time.process_time()
        t0 = time.monotonic()
        answered, lost = client.run(args.queries, args.timeout)
        wall = time.monotonic() - t0
        u1, s1 = _stat(pid)
        client_cpu = time.process_time() - c0
        user = (u1 - u0) / CLK_TCK
        system = (s1 - s0) / CLK_TCK
        n = max(answered, 1)
        r = {"answered": answered, "lost": lost, "qps": round(answered / wall),
             "user_us": round(user / n * 1e6, 2), "sys_us": round(system / n * 1e6, 2),
             "cpu_us": round((user + system) / n * 1e6, 2),
             "busy": round((user + system) / wall, 3), "load": round(load, 2),
             "client_busy": round(client_cpu / wall, 3)}
        rounds.append(r)
        print(f"  answered {answered:8d} lost {lost:5d}  {r['qps']:7d} q/s  "
              f"CPU us/q user {r['user_us']:.2f} sys {r['sys_us']:.2f} total "
              f"{r['cpu_us']:.2f}  busy {r['busy']:.0%} (client {r['client_busy']:.0%})  "
              f"load {r['load']:.2f}", flush=True)
    return rounds


def run(args: argparse.Namespace) -> dict[str, object]:
    image, qfile = prepare(args.names, args.sign, Path(args.dir))
    queries = wires(qfile, args.do)
    os.sched_setaffinity(0, {args.client_cpu})
    if args.knot:
        return {"server": "knot", "names": args.names, "sign": args.sign, "do": args.do,
                "rounds": _run_knot(args, qfile.parent / "bench.test.zone", queries)}
    tree = str(Path(args.tree).resolve())
    env = dict(os.environ, PYTHONPATH=tree)
    argv = ["taskset", "-c", str(args.server_cpu), sys.executable, str(Path(__file__).resolve()),
            "--serve", str(image)]
    if args.profile:
        argv += ["--profile", args.profile]
    proc = subprocess.Popen(argv, env=env, cwd=tree, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the server did not start (exit {proc.wait()})")
        rounds = _measure(args, proc.pid, json.loads(line)["port"], queries)
        proc.stdin.close()
        tail = proc.stdout.readline()
        server = json.loads(tail) if tail else {}
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"server": "node", "tree": tree, "names": args.names, "sign": args.sign,
            "do": args.do, "rounds": rounds, "loop": server}


def _run_knot(args: argparse.Namespace, zone_file: Path, queries: list[bytes]
              ) -> list[dict[str, object]]:
    """The same rounds against knotd (`bench/knot.py`: one UDP worker, pinned like ours);
    with `--sign`, knotd signs the zone itself (same denial) and is asked once it has."""
    sys.path.insert(0, str(HERE.parent))
    from bench import wire
    from bench.knot import start_knot
    from bench.procs import wait_until
    from bench.scratch import scratch_run

    with scratch_run("udploop-knot-") as ps:
        sign = args.sign != "none"
        knot = start_knot(ps, "bench.test.", zone_file, None if sign else 1,
                          cpus=str(args.server_cpu), sign=sign, nsec3=args.sign == "nsec3",
                          timeout=600)
        if sign:
            def signed() -> bool:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(1)
                    s.sendto(wire.build_query(7, "bench.test.", wire.TYPE_SOA, True),
                             ("127.0.0.1", knot.port))
                    got = wire.parse_answer(s.recv(4096))
                return got is not None and any(t == wire.TYPE_RRSIG for t, _ in got.records)
            wait_until("knotd signing bench.test.", signed, 600, 0.5)
        print(f"knot: {knot.version}", flush=True)
        return _measure(args, knot.proc.pid, knot.port, queries)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/udploop.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100000)
    p.add_argument("--sign", choices=("none", "nsec", "nsec3"), default="none")
    p.add_argument("--do", action="store_true", help="queries with EDNS and DO=1")
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else "/tmp")
    p.add_argument("--tree", default=str(HERE.parent), help="checkout whose node/ is served")
    p.add_argument("--window", type=int, default=100, help="queries outstanding")
    p.add_argument("--warmup", type=int, default=None, help="queries (2 passes of the file)")
    p.add_argument("--queries", type=int, default=300000, help="queries per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per round at most")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--profile", help="write the server's cProfile stats here")
    p.add_argument("--knot", action="store_true", help="measure knotd instead (bench/knot.py)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--inproc", action="store_true",
                   help="only the in-process figures (bench/inprocess.py --loop)")
    p.add_argument("--repeat", type=int, default=5, help="in process: best of this many")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.profile)
        return 0
    if args.inproc:
        tree = str(Path(args.tree).resolve())
        mode = {"none": "plain", "nsec": "nsec", "nsec3": "nsec3"}[args.sign]
        argv2 = ["taskset", "-c", str(args.server_cpu), sys.executable, "-m", "bench.inprocess",
                 "--names", str(args.names), "--modes", mode, "--repeat", str(args.repeat),
                 "--loop"]
        print(f"udploop in process: bench.inprocess, {args.names} names, {mode}, tree {tree}, "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        return subprocess.run(argv2, env=dict(os.environ, PYTHONPATH=tree), cwd=tree).returncode
    print(f"udploop: {args.names} names, sign {args.sign}, DO={int(args.do)}, tree {args.tree}, "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    out = run(args)
    print(f"server: {out['server']} {out.get('loop', '')}, load after "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
