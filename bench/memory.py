"""Memory of one node's process tree while it serves the signed bench zone, per process.

Starts etcd and one `dns-node` (WORKERS serving workers), imports the
`bench.zonegen` zone, signs it (`clusterctl zone sign --nsec`), waits until
every worker serves the signed serial, then prints RSS and PSS (from
/proc/PID/smaps_rollup) of every process in the node's tree, with its
command line, and the sum. Nothing else runs: this is the figure the
issue's memory target is about, without the query load of `bench.qps`.

    .venv/bin/python -m bench.memory --names 100000 --workers 1
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from bench import wire, zonegen
from bench.procs import (
    descendants,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_all_serving,
    wait_serial,
    write_kek,
)
from bench.qps import import_zone, wait_node_signed
from bench.scratch import load_average, scratch_run
from bench.signing import positive_sample, sign_node


def rollup(pid: int) -> dict[str, int]:
    """The smaps_rollup fields of `pid`, in KiB ({} once it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in args if a)
    return text.replace(str(Path(sys.executable).parent) + "/", "")[:70]


def table(root: int, label: str) -> int:
    """Print one line per process of the tree under `root`; return the PSS sum in KiB."""
    print(f"-- {label}")
    print(f"{'pid':>7} {'RSS MiB':>8} {'PSS MiB':>8} {'anon MiB':>8} {'file MiB':>8}  command")
    total = 0
    for pid in descendants(root):
        r = rollup(pid)
        if not r:
            continue
        total += r.get("Pss", 0)
        print(f"{pid:7d} {r.get('Rss', 0) / 1024:8.1f} {r.get('Pss', 0) / 1024:8.1f} "
              f"{r.get('Pss_Anon', 0) / 1024:8.1f} {r.get('Pss_File', 0) / 1024:8.1f}  "
              f"{cmdline(pid)}")
    print(f"{'sum':>7} {'':>8} {total / 1024:8.1f}")
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=1, help="serving workers of the node")
    p.add_argument("--settle", type=float, default=10.0,
                   help="seconds to wait after the signed serial is served, before measuring")
    p.add_argument("--every", type=float, default=30.0,
                   help="seconds between measurements while settling")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    stop_on_sigterm()
    with scratch_run("bench-memory-") as ps:
        z = zonegen.generate(ps.workdir / "zone", args.names, "bench.test.", 2000)
        etcd = start_etcd(ps, cpus=None, nice=10)
        proc, addr = start_node(ps, "mem1", etcd, f"/mem-{uuid.uuid4().hex[:8]}/",
                                kek_file=write_kek(ps.workdir), workers=args.workers)
        table(proc.pid, "empty")
        t0 = time.monotonic()
        serial = import_zone(addr, z.origin, Path(z.zone_file).read_text(), args.timeout)
        wait_serial(proc, addr.host, addr.dns_port, z.origin, serial, args.timeout)
        wait_all_serving(proc, addr, z.origin, serial, args.timeout)
        print(f"imported {z.rrsets} RRsets, served after {time.monotonic() - t0:.1f} s")
        table(proc.pid, "unsigned zone served")
        t0 = time.monotonic()
        sign_node(addr, z.origin, args.timeout)
        serial = wait_node_signed(proc, addr, z.origin, positive_sample(Path(z.query_file)),
                                  args.timeout)
        print(f"signed serial {serial} served by every worker after "
              f"{time.monotonic() - t0:.1f} s")
        total = table(proc.pid, "signed zone served")
        waited = 0.0
        while waited < args.settle:  # later passes (key states moving on) show up here
            step = min(args.every, args.settle - waited)
            time.sleep(step)
            waited += step
            now = wire.serial_of(addr.host, addr.dns_port, z.origin, timeout=1.0)
            total = table(proc.pid, f"{waited:.0f} s later, serial {now}")
        print(f"PSS over the tree: {total / 1024:.1f} MiB; load average "
              f"{load_average()} (2 CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
