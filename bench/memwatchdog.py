"""A memory watchdog for whole-machine runs (1M names): kill the run before the machine runs out.

Polls /proc/meminfo every second; when MemAvailable drops below `--limit`
(3 GiB), logs RSS and PSS of every process in the tree under ROOT (the
benchmark's PID: its etcd and nodes are its children) and SIGKILLs them, by
PID, children first; nothing outside that tree is touched. Every tenth
second it logs MemAvailable and the tree's PSS. Exits when ROOT is gone.

    python -m bench.memwatchdog BENCH_PID /tmp/run/watchdog.log
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from bench.memory import cmdline, rollup
from bench.memtrack import mem_available
from bench.procs import descendants


def kill_tree(root: int, log: object) -> None:
    pids = descendants(root)
    for pid in pids:
        r = rollup(pid)
        print(f"  pid {pid} RSS {r.get('Rss', 0) / 1024:.0f} MiB PSS {r.get('Pss', 0) / 1024:.0f}"
              f" MiB  {cmdline(pid)}", file=log)  # type: ignore[arg-type]
    for pid in reversed(pids):  # children first, the benchmark itself last
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.memwatchdog", description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=int, help="PID of the benchmark")
    p.add_argument("log", type=Path)
    p.add_argument("--limit", type=float, default=3.0, help="GiB of MemAvailable (3)")
    args = p.parse_args(argv)
    with args.log.open("a", buffering=1) as log:
        n = 0
        while os.path.exists(f"/proc/{args.root}"):
            avail = mem_available()
            stamp = time.strftime("%H:%M:%S")
            if avail < args.limit * 2**30:
                print(f"{stamp} MemAvailable {avail / 2**30:.2f} GiB < {args.limit} GiB: "
                      "killing", file=log)
                kill_tree(args.root, log)
                return 1
            if n % 10 == 0:
                pss = sum(rollup(pid).get("Pss", 0) for pid in descendants(args.root))
                print(f"{stamp} avail {avail / 2**30:.2f} GiB tree PSS {pss / 2**20:.2f} GiB",
                      file=log)
            n += 1
            time.sleep(1)  # a polling interval, not synchronisation
        print(f"{time.strftime('%H:%M:%S')} root {args.root} gone", file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
