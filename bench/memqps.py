"""The node tree's memory in the state `bench.qps --sign --flood` measures it in, without dnsperf.

`bench.qps` reads the node tree's PSS right after its last query run: the zone
was imported, queried unsigned (DO=0 and DO=1, the bench mix and a
random-subdomain flood), signed (`--nsec3` there), queried signed, and only
then measured. This replays that history with bounded query loops of its own
(`--queries` bench-mix questions and `--flood` random names per phase, a
window of questions outstanding on one UDP socket), then prints, per process
of the node's tree, PSS by what is mapped (`bench.membreak`'s groups), the
zone-image mappings each process holds (an old image still mapped shows
here), and the control process's `node/memdebug.py` dump.

    .venv/bin/python -m bench.memqps --names 100000 --nsec3 --flood 200000
"""

from __future__ import annotations

import argparse
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import wire, zonegen
from bench.flood import ALPHABET, LABEL_LENGTH
from bench.membreak import kind, table
from bench.procs import (
    ProcessSet,
    cpu_seconds,
    descendants,
    own_cpu_seconds,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_all_serving,
    wait_serial,
    wait_until,
    write_kek,
)
from bench.qps import import_zone, wait_node_signed
from bench.scratch import load_average
from bench.signing import positive_sample, sign_node

WINDOW = 64


def ask(host: str, port: int, questions: list[tuple[str, int]], do_bit: bool,
        timeout: float = 120.0) -> int:
    """Send every question (a window outstanding); return how many were answered.
    Bounded: lost datagrams are given up after 0.2 s of silence, all after `timeout`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect((host, port))
    sent = answered = outstanding = 0
    deadline = time.monotonic() + timeout
    try:
        while (sent < len(questions) or outstanding) and time.monotonic() < deadline:
            while outstanding < WINDOW and sent < len(questions):
                name, qtype = questions[sent]
                sock.send(wire.build_query(sent & 0xFFFF, name, qtype, do_bit))
                sent += 1
                outstanding += 1
            if not select.select([sock], [], [], 0.2)[0]:
                outstanding = 0  # lost: give up on what is in flight
                continue
            while True:
                try:
                    sock.recv(65535)
                except BlockingIOError:
                    break
                answered += 1
                outstanding = max(0, outstanding - 1)
    finally:
        sock.close()
    return answered


def mix(query_file: Path, count: int) -> list[tuple[str, int]]:
    """`count` questions from the bench query file, in order, wrapping."""
    lines = [ln.split() for ln in query_file.read_text().splitlines() if ln.strip()]
    qs = [(ln[0], wire.TYPE_A if ln[1] == "A" else _qtype(ln[1])) for ln in lines]
    return [qs[i % len(qs)] for i in range(count)]


def _qtype(name: str) -> int:
    import dns.rdatatype
    return int(dns.rdatatype.from_text(name))


def flood(origin: str, count: int, seed: int) -> list[tuple[str, int]]:
    rnd = random.Random(seed)
    return [("".join(rnd.choices(ALPHABET, k=LABEL_LENGTH)) + "." + origin, wire.TYPE_A)
            for _ in range(count)]


def cpu(root: int) -> str:
    """The node's CPU seconds so far: the control process alone, and its whole tree (reaped
    children included: the image child, a stopped signing pool)."""
    return f"CPU s: control {own_cpu_seconds(root):.2f}, tree {cpu_seconds(root):.2f}"


def heaps(root: int) -> None:
    """Per process, the anonymous PSS split: brk heap (glibc's main arena), anonymous mappings
    of 1 MiB or less (pymalloc arenas), larger ones (glibc mmaps, jemalloc extents)."""
    for pid in descendants(root):
        pss: Counter[str] = Counter()
        group = ""
        try:
            with open(f"/proc/{pid}/smaps") as fh:
                for line in fh:
                    parts = line.split()
                    if parts and "-" in parts[0] and not parts[0].endswith(":"):
                        lo, hi = (int(x, 16) for x in parts[0].split("-"))
                        name = " ".join(parts[5:]) if len(parts) > 5 else ""
                        group = ("brk" if name == "[heap]" else
                                 "anon<=1M" if hi - lo <= 1 << 20 else "anon>1M") \
                            if kind(name) == "anon heap" else ""
                    elif parts and parts[0] == "Pss:" and group:
                        pss[group] += int(parts[1])
        except OSError:
            continue
        print(f"{pid:7d} anon PSS: " + ", ".join(f"{g} {v / 1024:.1f}"
                                                for g, v in sorted(pss.items())) + " MiB")


def gdb_trim(root: int) -> None:
    """Call malloc_trim(0) in every process but the root (`--gdb-trim`, a diagnosis)."""
    for pid in descendants(root)[1:]:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
                       capture_output=True, timeout=120, check=False)


def gdb_probe(root: int, script: str) -> None:
    """Run the Python file `script` in every child by gdb (`--gdb-probe`, a diagnosis)."""
    for pid in descendants(root)[1:]:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)PyGILState_Ensure()",
                        "-ex", f"call (int)PyRun_SimpleString(\"exec(open('{script}').read())\")",
                        "-ex", "call (void)PyGILState_Release($1)"],
                       capture_output=True, timeout=300, check=False)


def images(root: int) -> None:
    """Per process, the zone-image mappings (name, RSS KiB, PSS KiB, deleted or not)."""
    for pid in descendants(root):
        rows: Counter[str] = Counter()
        pss: Counter[str] = Counter()
        name = ""
        try:
            with open(f"/proc/{pid}/smaps") as fh:
                for line in fh:
                    parts = line.split()
                    if parts and "-" in parts[0] and not parts[0].endswith(":"):
                        name = " ".join(parts[5:]) if len(parts) > 5 else ""
                    elif parts and parts[0] == "Rss:" and kind(name) == "images":
                        rows[name] += int(parts[1])
                    elif parts and parts[0] == "Pss:" and kind(name) == "images":
                        pss[name] += int(parts[1])
        except OSError:
            continue
        for n, r in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"{pid:7d} image RSS {r / 1024:7.1f} PSS {pss[n] / 1024:7.1f} MiB  "
                  f"{n[-90:]}")


def phase(addr_host: str, port: int, origin: str, query_file: Path, args: argparse.Namespace,
          do_bits: tuple[bool, ...], seed: int) -> str:
    out = []
    for do_bit in do_bits:
        t0 = time.monotonic()
        a = ask(addr_host, port, mix(query_file, args.queries), do_bit)
        b = ask(addr_host, port, flood(origin, args.flood, seed + do_bit), do_bit)
        out.append(f"DO={int(do_bit)}: mix {a}/{args.queries}, flood {b}/{args.flood} in "
                   f"{time.monotonic() - t0:.1f} s")
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--nsec3", action="store_true")
    p.add_argument("--queries", type=int, default=100_000, help="bench-mix questions per phase")
    p.add_argument("--flood", type=int, default=200_000, help="random names per phase")
    p.add_argument("--settle", type=float, default=60.0,
                   help="seconds after the signed queries before the last table")
    p.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    p.add_argument("--gdb-probe", default="", help="a Python file to run in the children")
    p.add_argument("--gdb-trim", action="store_true",
                   help="then call malloc_trim(0) in the children with gdb, and measure again")
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-memqps-")))
    dump = ps.workdir / "memdebug.txt"
    os.environ["DNSCLUSTER_MEMDEBUG"] = str(dump)
    os.environ["DNSCLUSTER_TRACEMALLOC"] = str(args.trace)
    try:
        z = zonegen.generate(ps.workdir / "zone", args.names, "bench.test.", None)
        qf = Path(z.query_file)
        etcd = start_etcd(ps, cpus=None, nice=10)
        proc, addr = start_node(ps, "mq1", etcd, f"/mq-{uuid.uuid4().hex[:8]}/",
                                kek_file=write_kek(ps.workdir), workers=args.workers)
        serial = import_zone(addr, z.origin, Path(z.zone_file).read_text(), args.timeout)
        wait_serial(proc, addr.host, addr.dns_port, z.origin, serial, args.timeout)
        wait_all_serving(proc, addr, z.origin, serial, args.timeout)
        print(f"-- unsigned zone served ({z.rrsets} RRsets); {cpu(proc.pid)}")
        table(proc.pid, z.rrsets)
        print("-- unsigned queries:", phase(addr.host, addr.dns_port, z.origin, qf, args,
                                            (False, True), 1))
        table(proc.pid, z.rrsets)
        t0 = time.monotonic()
        sign_node(addr, z.origin, args.timeout, nsec3=args.nsec3)
        wait_node_signed(proc, addr, z.origin, positive_sample(qf), args.timeout)
        print(f"-- signed ({'NSEC3' if args.nsec3 else 'NSEC'}) zone served after "
              f"{time.monotonic() - t0:.1f} s; {cpu(proc.pid)}")
        table(proc.pid, z.rrsets)
        print("-- signed queries:", phase(addr.host, addr.dns_port, z.origin, qf, args,
                                          (True,), 3))
        print(f"-- {time.monotonic() - t0:.0f} s after signing, right after the queries "
              f"(bench.qps's moment); load {load_average()}; {cpu(proc.pid)}")
        table(proc.pid, z.rrsets)
        images(proc.pid)
        heaps(proc.pid)
        if args.gdb_probe:
            gdb_probe(proc.pid, args.gdb_probe)
        time.sleep(args.settle)
        print(f"-- {args.settle:.0f} s later; {cpu(proc.pid)}")
        table(proc.pid, z.rrsets)
        images(proc.pid)
        heaps(proc.pid)
        if args.gdb_trim:
            gdb_trim(proc.pid)
            print("-- after malloc_trim(0) by gdb in every child")
            table(proc.pid, z.rrsets)
            heaps(proc.pid)
        os.kill(proc.pid, signal.SIGUSR2)
        wait_until("memdebug dump", dump.exists, args.timeout, 0.5)
        print(f"-- control process (pid {proc.pid}), node/memdebug.py:")
        print(dump.read_text())
        print("-- after the dump (gc + malloc_trim in the control process)")
        table(proc.pid, z.rrsets)
    finally:
        ps.close()
        shutil.rmtree(ps.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
