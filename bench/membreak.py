"""Where one node's memory goes while it serves the signed bench zone: per process, per mapping.

As `bench.memory` (etcd, one `dns-node`, the `bench.zonegen` zone imported
and signed with NSEC), then, for every process of the node's tree, PSS
split by what is mapped (from /proc/PID/smaps): the anonymous heap, zone
images (files and memfds: shared, so PSS counts them once over the tree),
shared libraries and everything else; and, in the control process, the
breakdown `node/memdebug.py` writes on SIGUSR2 (objects by type; with
`--trace N`, traced bytes by owner module, which slows the node down).

    .venv/bin/python -m bench.membreak --names 100000 [--trace 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import zonegen
from bench.memory import cmdline
from bench.procs import (
    ProcessSet,
    descendants,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_all_serving,
    wait_serial,
    wait_until,
    write_kek,
)
from bench.qps import import_zone, wait_node_signed
from bench.signing import positive_sample, sign_node


def kind(name: str) -> str:
    """The group of one mapping (its smaps name)."""
    if name in ("", "[heap]") or name.startswith("[anon"):
        return "anon heap"
    if name.startswith("/memfd:") or "dnscluster-images" in name or name.endswith((".img", ".ovl")):
        return "images"
    if name.startswith("/dev/shm") or name.startswith("/SYSV"):
        return "shm"
    if ".so" in name:
        return "libraries"
    return "other"


def breakdown(pid: int) -> dict[str, tuple[int, int]]:
    """{group: (RSS KiB, PSS KiB)} of `pid`'s mappings."""
    rss: Counter[str] = Counter()
    pss: Counter[str] = Counter()
    group = "other"
    try:
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                parts = line.split()
                if not parts:
                    continue
                if "-" in parts[0] and not parts[0].endswith(":"):  # a mapping's header
                    group = kind(" ".join(parts[5:]) if len(parts) > 5 else "")
                elif parts[0] == "Rss:":
                    rss[group] += int(parts[1])
                elif parts[0] == "Pss:":
                    pss[group] += int(parts[1])
    except OSError:
        return {}
    return {g: (rss[g], pss[g]) for g in rss}


GROUPS = ("anon heap", "images", "shm", "libraries", "other")


def table(root: int, rrsets: int) -> None:
    print(f"{'pid':>7} {'PSS':>7} " + " ".join(f"{g:>10}" for g in GROUPS) + "  (MiB PSS)  command")
    total: Counter[str] = Counter()
    for pid in descendants(root):
        b = breakdown(pid)
        if not b:
            continue
        for g, (_, p) in b.items():
            total[g] += p
        print(f"{pid:7d} {sum(p for _, p in b.values()) / 1024:7.1f} "
              + " ".join(f"{b.get(g, (0, 0))[1] / 1024:10.1f}" for g in GROUPS)
              + f"  {cmdline(pid)}")
    s = sum(total.values())
    print(f"{'sum':>7} {s / 1024:7.1f} " + " ".join(f"{total[g] / 1024:10.1f}" for g in GROUPS)
          + f"  {s * 1024 / rrsets:.0f} bytes/RRset")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    p.add_argument("--settle", type=float, default=15.0)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--heap-profile", type=Path, default=None,
                   help="keep the control process's jemalloc heap profile here (the node "
                        "started with MALLOC_CONF=...,prof:true; see node/memdebug.py)")
    args = p.parse_args(argv)
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-membreak-")))
    dump = ps.workdir / "memdebug.txt"
    os.environ["DNSCLUSTER_MEMDEBUG"] = str(dump)
    os.environ["DNSCLUSTER_TRACEMALLOC"] = str(args.trace)
    try:
        z = zonegen.generate(ps.workdir / "zone", args.names, "bench.test.", 2000)
        etcd = start_etcd(ps, cpus=None, nice=10)
        proc, addr = start_node(ps, "mb1", etcd, f"/mb-{uuid.uuid4().hex[:8]}/",
                                kek_file=write_kek(ps.workdir), workers=args.workers)
        serial = import_zone(addr, z.origin, Path(z.zone_file).read_text(), args.timeout)
        wait_serial(proc, addr.host, addr.dns_port, z.origin, serial, args.timeout)
        wait_all_serving(proc, addr, z.origin, serial, args.timeout)
        print(f"-- unsigned zone served ({z.rrsets} RRsets)")
        table(proc.pid, z.rrsets)
        t0 = time.monotonic()
        sign_node(addr, z.origin, args.timeout)
        wait_node_signed(proc, addr, z.origin, positive_sample(Path(z.query_file)), args.timeout)
        print(f"-- signed zone served after {time.monotonic() - t0:.1f} s; "
              f"{args.settle:.0f} s later:")
        time.sleep(args.settle)
        table(proc.pid, z.rrsets)
        os.kill(proc.pid, signal.SIGUSR2)
        wait_until("memdebug dump", dump.exists, args.timeout, 0.5)
        print(f"-- control process (pid {proc.pid}), node/memdebug.py:")
        print(dump.read_text())
        heap = dump.with_name(dump.name + ".heap")
        if args.heap_profile is not None and heap.exists():
            shutil.copyfile(heap, args.heap_profile)
    finally:
        ps.close()
        shutil.rmtree(ps.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
