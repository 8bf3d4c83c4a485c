"""How late does a UDP answerer wake up under the machine's current load, per scheduling variant.

Starts one trivial answerer process per variant (each in its own session, as a
serving worker), all at once, and probes each every 20 ms for `--seconds`;
the variants are measured side by side, under the same load. Each answer
carries the kernel's receive time of the question (SO_TIMESTAMPNS) and the
answerer's own clock when it read it, so a probe's latency splits into: to
the answerer's socket, **the answerer's wake-up** (socket to user space: the
scheduler), and back. Nothing here is specific to the node: it isolates what
the kernel does to a process that sleeps until a query arrives.

Variants (comma-separated; combine with "-"): `plain` (nice 0), `short`
(the 0.1 ms slice of node.priority), `nice` (nice -5), `agN` / `agmN` (the
session's autogroup nice N / -N), `fifo` (SCHED_FIFO 1: what node/serving/realtime.py
gives an idle worker).

    .venv/bin/python -m bench.wakeup plain,short,fifo --seconds 60
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
STAMPS = struct.Struct("!QQ")  # kernel receive time, answerer's read time (ns, realtime)


def _kernel_ns(anc: list[tuple[int, int, bytes]]) -> int:
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("@qq", value[:16])
            return sec * 1_000_000_000 + nsec
    return 0


def _setup(variant: str) -> None:
    from node.priority import request_short_slice

    for part in variant.split("-"):
        if part == "short":
            request_short_slice()
        elif part == "nice":
            os.setpriority(os.PRIO_PROCESS, 0, -5)
        elif part.startswith("agm") or part.startswith("ag"):
            value = "-" + part[3:] if part.startswith("agm") else part[2:]
            Path("/proc/self/autogroup").write_text(value)
        elif part == "fifo":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))


def serve(variant: str, port_file: str) -> None:
    """The answerer: echo each datagram with its receive and read times; b"q" ends it."""
    _setup(variant)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    Path(port_file).write_text(str(s.getsockname()[1]))
    while True:
        data, anc, _, addr = s.recvmsg(512, socket.CMSG_SPACE(16))
        now = time.time_ns()
        if data == b"q":
            return
        s.sendto(data + STAMPS.pack(_kernel_ns(anc), now), addr)


def probe(variants: list[str], seconds: float, interval: float = 0.02) -> dict[str, list[tuple]]:
    """Per variant: (to socket, wake-up, back, total) in ms, per answered probe."""
    tmp = Path(tempfile.mkdtemp(prefix="wakeup-"))
    procs, socks = [], {}
    for v in variants:
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.wakeup", "--serve", v,
                                       str(tmp / v)], start_new_session=True))
    try:
        for v in variants:
            deadline = time.monotonic() + 30
            while not (tmp / v).exists() or not (tmp / v).read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"answerer {v} did not start")
                time.sleep(0.05)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", int((tmp / v).read_text())))
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
            socks[s.fileno()] = (s, v)
        out: dict[str, list[tuple]] = {v: [] for v in variants}
        end = time.monotonic() + seconds
        next_send = time.monotonic()
        while time.monotonic() < end:
            if time.monotonic() >= next_send:
                next_send += interval
                for s, _ in socks.values():
                    s.send(struct.pack("!Q", time.time_ns()))
            ready, _, _ = select.select([s for s, _ in socks.values()], [], [], 0.005)
            for s in ready:
                _drain(s, out[socks[s.fileno()][1]])
        for s, _ in socks.values():
            s.send(b"q")
        return out
    finally:
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def _drain(s: socket.socket, rows: list[tuple]) -> None:
    while True:
        try:
            data, anc, _, _ = s.recvmsg(512, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        arrived = _kernel_ns(anc)
        (sent,) = struct.unpack("!Q", data[:8])
        rx, read = STAMPS.unpack(data[8:24])
        rows.append(((rx - sent) / 1e6, (read - rx) / 1e6, (arrived - read) / 1e6,
                     (arrived - sent) / 1e6, sent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.wakeup", description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="?", default="plain,short,fifo",
                   help="comma-separated (plain,short,fifo)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT_FILE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    load0 = os.getloadavg()[0]
    steal0 = int(Path("/proc/stat").read_text().split()[8])
    out = probe(args.variants.split(","), args.seconds)
    steal = int(Path("/proc/stat").read_text().split()[8]) - steal0
    print(f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}, steal {steal} ticks, "
          f"{args.seconds:.0f} s, probe every 20 ms")
    slow_slots = []
    for v, rows in out.items():
        total = sorted(r[3] for r in rows)
        wake = sorted(r[1] for r in rows)
        n = len(total)
        if not n:
            print(f"{v:>14}: no answers")
            continue
        print(f"{v:>14}: n {n}  total p50 {total[n // 2]:.2f} p99 {total[int(n * 0.99)]:.1f} "
              f"max {total[-1]:.1f} ms, > 20 ms {sum(x > 20 for x in total)}, > 100 ms "
              f"{sum(x > 100 for x in total)} | wake-up p99 {wake[int(n * 0.99)]:.1f} "
              f"max {wake[-1]:.1f} ms")
        slow_slots.append({r[4] // 20_000_000 for r in rows if r[3] > 50})
    if len(slow_slots) > 1:
        print(f"probe rounds with an answer > 50 ms: {len(set.union(*slow_slots))}, "
              f"in every variant at once: {len(set.intersection(*slow_slots))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
