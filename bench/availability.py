"""Availability while the cluster works: do nodes keep answering during zone-sized operations.

etcd and N nodes (3 by default, all signing, no stagger) on loopback, one
key prefix for the run. A small zone (`avail.test.`, with `www`) is created
first; then a prober (tests/support/prober.py) asks nodes 1 and 2 for
`www.avail.test. A` every 20 ms while, one after the other, through
`clusterctl` as an operator would:

1. `zone import` of an N-name generated zone (`bench.test.`, 100k names by
   default), until every node answers its serial;
2. `zone sign` (ECDSA P-256 KSK+ZSK, NSEC), until every node answers signed;
3. `zone rollover --zsk` (a re-key: a successor ZSK is published), until every
   node serves the new DNSKEY RRset;
4. `zone update --allow-transfer 127.0.0.0/8` (a settings change), until every
   node answers the new serial.

Printed: per probed node the unanswered questions (no answer within
`--probe-timeout`, 1 s by default, no retry), the longest gap between two
answers, p50/p99/max latency and answers slower than 100 ms; how long each
step took; LEASE_LOST events (1103) in the nodes' logs; every node's RSS at
the end, and (bench/memtrack.py, sampled every second) the peak PSS of each
node's process tree, of etcd and of their sum during each step, with the
lowest MemAvailable (the series in WORKDIR/memory.csv). `--stagger-step S`
makes node i wait (i - 1) * S seconds before its first signing, so the nodes
sign one after the other. No CPU pinning: etcd, the nodes, the CLI and the prober share the
machine, as on a small host.

    .venv/bin/python -m bench.availability                 # 100k names
    .venv/bin/python -m bench.availability --names 10000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import wire, zonegen
from bench.memtrack import MemTracker
from bench.memtrack import report as mem_report
from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    binary,
    rss_bytes,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_serial,
    wait_until,
    write_kek,
)
from bench.schedtrace import SchedTrace
from bench.signing import positive_sample, wait_signed
from tests.support.prober import Prober  # shared with the suite test

PROBE_ZONE = "avail.test."
PROBE_TEXT = f"""$ORIGIN {PROBE_ZONE}
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
"""
TYPE_DNSKEY = 48
LEASE_LOST = '"event": 1103'


def clusterctl(addr: NodeAddr, *args: str, timeout: float) -> float:
    """Run `clusterctl ARGS --endpoint addr --timeout T`; seconds it took. BenchError if not 0."""
    cmd = [binary("clusterctl"), *args, "--endpoint", addr.api, "--timeout", str(int(timeout))]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, check=False)
    if res.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {res.returncode}: "
                         f"{res.stderr.strip() or res.stdout.strip()}")
    return time.monotonic() - t0


def dnskey_count(a: NodeAddr, zone: str) -> int:
    ans = wire.query_once(a.host, a.dns_port, zone, TYPE_DNSKEY, timeout=1.0)
    return 0 if ans is None else sum(1 for t, _ in ans.records if t == TYPE_DNSKEY)


def wait_all_serial(nodes: list[tuple[Proc, NodeAddr]], zone: str, above: int,
                    timeout: float) -> int:
    """Wait until every node answers the same serial for `zone`, greater than `above`."""
    seen: list[int] = []

    def same() -> bool:
        serials = set()
        for proc, a in nodes:
            proc.check()
            serials.add(wire.serial_of(a.host, a.dns_port, zone, timeout=1.0))
        ok = len(serials) == 1 and None not in serials and max(serials) > above
        if ok:
            seen.append(serials.pop())
        return ok

    wait_until(f"every node serving {zone} above serial {above}", same, timeout, 0.2)
    return seen[-1]


def run(args: argparse.Namespace, ps: ProcessSet) -> dict[str, object]:
    etcd = start_etcd(ps, cpus=None, nice=0)
    prefix = f"/bench-avail-{uuid.uuid4().hex[:8]}/"
    kek = write_kek(ps.workdir)
    nodes = [start_node(ps, f"n{i}", etcd, prefix, kek_file=kek, stagger=_stagger(args, i),
                        realtime=args.realtime_workers)
             for i in range(1, args.nodes + 1)]
    writer = nodes[0][1]
    mem = MemTracker({"etcd": ps.procs[0].pid, **{a.node_id: p.pid for p, a in nodes}},
                     csv=ps.workdir / "memory.csv").start()
    args.mem = mem
    print(f"etcd {etcd}, prefix {prefix}; nodes "
          + ", ".join(f"{a.node_id} dns {a.dns_port} api {a.api_port}" for _, a in nodes))
    probe_file = ps.workdir / "avail.zone"
    probe_file.write_text(PROBE_TEXT)
    clusterctl(writer, "zone", "create", PROBE_ZONE, "--file", str(probe_file), timeout=60)
    for proc, a in nodes:
        wait_serial(proc, a.host, a.dns_port, PROBE_ZONE, None, 60)
    gen = zonegen.generate(ps.workdir / "zone", args.names)
    zone = gen.origin
    print(f"{gen.zone_file}: {gen.names} names, {gen.rrsets} RRsets")

    probed = {a.node_id: (a.host, a.dns_port) for _, a in nodes[:2]}
    prober = Prober(probed, f"www.{PROBE_ZONE}", interval=args.interval,
                    retry_after=args.probe_timeout * 10, timeout=args.probe_timeout,
                    realtime=args.realtime_prober).start()
    print(f"prober thread SCHED_FIFO: {prober.realtime}")
    trace = None
    if args.sched_trace:
        tid = prober.thread_id
        trace = SchedTrace({p.name: p.pid for p, _ in nodes},
                           extra={"prober": tid} if tid else None).start()
    steps: dict[str, float] = {}
    t_all = time.monotonic()
    try:
        mem.step("import")
        t0 = time.monotonic()
        print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC: zone import", flush=True)
        clusterctl(writer, "zone", "import", zone, str(gen.zone_file), timeout=args.step_timeout)
        serial = wait_all_serial(nodes, zone, 0, args.step_timeout)
        steps["import"] = time.monotonic() - t0
        print(f"import answered on every node after {steps['import']:.1f} s", flush=True)

        if "sign" not in args.steps:
            return _done(args, nodes, probed, prober, steps, t_all, gen, trace)
        mem.step("sign")
        t0 = time.monotonic()
        print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC: zone sign", flush=True)
        deadline = t0 + args.step_timeout
        try:
            clusterctl(writer, "zone", "sign", zone, "--nsec3" if args.nsec3 else "--nsec",
                       "--algorithm", "ECDSAP256SHA256", timeout=args.step_timeout)
            steps["sign_command"] = time.monotonic() - t0
            print(f"zone sign returned after {steps['sign_command']:.1f} s", flush=True)
            sample = positive_sample(gen.query_file, 10)
            for proc, a in nodes:
                wait_signed(proc, a.host, a.dns_port, sample, deadline - time.monotonic())
                print(f"{a.node_id} answers signed after {time.monotonic() - t0:.1f} s",
                      flush=True)
            wait_all_serial(nodes, zone, serial, deadline - time.monotonic())
        except BenchError:
            _show(writer, zone)  # how far the sign got
            raise
        steps["sign"] = time.monotonic() - t0
        print(f"signed serial served on every node after {steps['sign']:.1f} s", flush=True)

        mem.step("after sign")
        if "rekey" not in args.steps:
            return _done(args, nodes, probed, prober, steps, t_all, gen, trace)
        t0 = time.monotonic()
        keys = dnskey_count(writer, zone)
        clusterctl(writer, "zone", "rollover", zone, "--zsk", timeout=args.step_timeout)
        wait_until("every node serving the successor ZSK",
                   lambda: all(dnskey_count(a, zone) > keys for _, a in nodes),
                   args.step_timeout, 0.2)
        steps["rekey"] = time.monotonic() - t0

        if "settings" not in args.steps:
            return _done(args, nodes, probed, prober, steps, t_all, gen, trace)
        t0 = time.monotonic()
        serial = wait_all_serial(nodes, zone, 0, args.step_timeout)
        clusterctl(writer, "zone", "update", zone, "--allow-transfer", "127.0.0.0/8",
                   timeout=args.step_timeout)
        wait_all_serial(nodes, zone, serial, args.step_timeout)
        steps["settings"] = time.monotonic() - t0
    except BaseException:
        prober.stop()
        mem_report(mem.stop())
        if trace is not None:
            trace.stop()
        raise
    return _done(args, nodes, probed, prober, steps, t_all, gen, trace)


def _stagger(args: argparse.Namespace, i: int) -> tuple[float, float]:
    """Node i's (stagger_min, stagger_max): --stagger, or with --stagger-step a fixed
    (i - 1) * step, so that the nodes sign one after the other (n1 is the Key Master)."""
    if args.stagger_step:
        return (args.stagger_step * (i - 1),) * 2
    return args.stagger


def _done(args: argparse.Namespace, nodes: list[tuple[Proc, NodeAddr]],
          probed: dict[str, tuple[str, int]], prober: Prober, steps: dict[str, float],
          t_all: float, gen: zonegen.GeneratedZone,
          trace: SchedTrace | None = None) -> dict[str, object]:
    time.sleep(args.settle)  # the tail of the work (signing, compiling) after the answers
    probes = prober.stop()
    memory = args.mem.stop()
    if trace is not None:
        trace.stop()
    total = time.monotonic() - t_all
    lease_lost = {p.name: p.log.read_text(errors="replace").count(LEASE_LOST) for p, _ in nodes}
    rss = {p.name: rss_bytes(p.pid) for p, _ in nodes}

    print(f"\nprobing www.{PROBE_ZONE} A every {args.interval * 1000:.0f} ms on "
          f"{', '.join(probed)} for {total:.1f} s ({args.probe_timeout:.0f} s timeout, no retry)")
    for name, s in probes.items():
        print(f"{name}: answered {s['answered']}, unanswered {s['unanswered']}, longest gap "
              f"{s['longest_gap_s'] * 1000:.0f} ms, p50 {s['p50_s'] * 1000:.1f} ms, "
              f"p99 {s['p99_s'] * 1000:.1f} ms, max {s['max_s'] * 1000:.0f} ms, "
              f"{s['over_100ms']} answers > 100 ms")
        if "arrival_p99_s" in s:  # kernel receive timestamps: without the prober's own delays
            print(f"{name}: to arrival in the prober's socket: p99 "
                  f"{s['arrival_p99_s'] * 1000:.1f} ms, max {s['arrival_max_s'] * 1000:.0f} ms, "
                  f"{s['arrival_over_100ms']} answers > 100 ms")
    _print_slow(probes, trace)
    print("steps (until every node answers): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    print("LEASE_LOST events: " + ", ".join(f"{k} {v}" for k, v in lease_lost.items()))
    print("RSS: " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items()))
    mem_report(memory)
    return {"names": gen.names, "rrsets": gen.rrsets, "probes": probes, "steps": steps,
            "lease_lost": lease_lost, "rss_bytes": rss, "seconds": total, "memory": memory}


def _show(addr: NodeAddr, zone: str) -> None:
    """Print `clusterctl zone show ZONE` and `zone dnssec ZONE` (its per-node signing table):
    a failed step's progress; never raises."""
    for what in ("show", "dnssec"):
        cmd = [binary("clusterctl"), "zone", what, zone, "--endpoint", addr.api,
               "--timeout", "30"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
            print(f"$ clusterctl zone {what} {zone}\n{res.stdout}{res.stderr}", flush=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"clusterctl zone {what} {zone}: {exc}", flush=True)


def _print_slow(probes: dict[str, dict[str, object]], trace: SchedTrace | None) -> None:
    """Every answer over 100 ms: node, wall-clock send time (UTC, to line up with the nodes'
    logs), latency; with `--sched-trace`, what the node's workers and the CPUs did meanwhile."""
    wall = time.time() - time.monotonic()
    for name, s in probes.items():
        for sent, latency in s.get("slow", []):  # type: ignore[union-attr]
            if latency <= 0.1:
                continue
            stamp = time.strftime("%H:%M:%S", time.gmtime(sent + wall))
            print(f"slow: {name} sent {stamp}.{int((sent + wall) % 1 * 1000):03d} "
                  f"latency {latency * 1000:.0f} ms")
            if trace is not None:
                print(trace.explain(name, sent, latency))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.availability", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000, help="generated names (100000)")
    p.add_argument("--nodes", type=int, default=3, help="nodes to start (3); 1 and 2 are probed")
    p.add_argument("--interval", type=float, default=0.02, help="seconds between probes (0.02)")
    p.add_argument("--probe-timeout", type=float, default=1.0,
                   help="seconds after which a probe counts as unanswered (1)")
    p.add_argument("--step-timeout", type=float, default=900.0, help="bound on each step")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds of probing after the last step")
    p.add_argument("--steps", default="import,sign,rekey,settings",
                   help="the steps to run, in this order, stopping at the first left out")
    p.add_argument("--nsec3", action="store_true",
                   help="sign with NSEC3 (no salt, 0 iterations) instead of NSEC")
    p.add_argument("--stagger", default="0,0",
                   help="signing.stagger_min,stagger_max of the nodes in seconds (0,0: every "
                        "node signs at once; the Key Master always does)")
    p.add_argument("--stagger-step", type=float, default=0.0,
                   help="node i waits (i - 1) * this many seconds before its first signing "
                        "(the nodes sign one after the other; overrides --stagger)")
    p.add_argument("--no-realtime-workers", dest="realtime_workers", action="store_false",
                   help="server.realtime_workers = false: workers stay in the normal class")
    p.add_argument("--no-realtime-prober", dest="realtime_prober", action="store_false",
                   help="the prober's thread stays in the normal class (by default it runs "
                        "SCHED_FIFO where permitted, as the nodes' answerers do, so that its "
                        "own waits for a CPU are not counted as the nodes' latency)")
    p.add_argument("--sched-trace", action="store_true",
                   help="sample the nodes' scheduler stats; explain each answer over 100 ms")
    p.add_argument("--workdir", type=Path, help="keep configs and logs here")
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
    args.steps = set(args.steps.split(","))
    lo, hi = (float(x) for x in args.stagger.split(","))
    args.stagger = (lo, hi)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-avail-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    ps = ProcessSet(workdir)
    stop_on_sigterm()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); "
          f"server.realtime_workers = {str(args.realtime_workers).lower()}")
    try:
        result = run(args, ps)
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"bench.availability: {exc}\n(work dir kept: {workdir})\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench.availability: interrupted\n")
        return 1
    finally:
        ps.close()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
