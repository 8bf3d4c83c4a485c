"""Queries per second, latency, CPU per query and memory: our node and Knot DNS, one run.

Both servers load the same generated zone and get the same dnsperf run
(query file, duration, clients, outstanding queries). CPU placement on a
2-core machine: the server under test (node process and its children, or
knotd) on CPU 0, dnsperf on CPU 1, etcd on CPU 1 at nice 10 (it is idle
while queries run: the node answers from memory). Only one server is
queried at a time; the other idles.

    .venv/bin/python -m bench.qps                     # 100k names, 20 s per server
    .venv/bin/python -m bench.qps --duration 10 --dnssec --json out.json
    .venv/bin/python -m bench.qps --dnssec --sign      # and signed zones, DO=1

Exit status 0 on success, 1 with a message on any failure; every process
started here is stopped by PID on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import zonegen
from bench.compare import compare
from bench.dnsperf import PerfResult, run_dnsperf
from bench.knot import KnotServer, start_knot
from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    cpu_seconds,
    rss_bytes,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_serial,
    write_kek,
)
from bench.signing import positive_sample, sign_node, wait_signed

SERVER_CPU = "0"
CLIENT_CPU = "1"
MAX_MESSAGE = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One dnsperf run against one server, with the server's CPU time over the run."""

    server: str
    do_bit: bool
    signed: bool
    perf: PerfResult
    cpu_seconds: float

    @property
    def cpu_us_per_query(self) -> float:
        return self.cpu_seconds / max(self.perf.completed, 1) * 1e6

    @property
    def server_busy(self) -> float:
        """Share of one core the server used during the run (1.0: saturated)."""
        return self.cpu_seconds / max(self.perf.run_time, 1e-9)

    @property
    def capacity_qps(self) -> float:
        """Queries/s one core could serve at this CPU cost per query (1 / CPU per query)."""
        return 1e6 / max(self.cpu_us_per_query, 1e-9)


@dataclass(frozen=True, slots=True)
class Memory:
    """RSS of a server with the zone loaded (and, for our node, without it)."""

    server: str
    rss_empty: int | None
    rss_loaded: int
    rss_after_runs: int
    rrsets: int
    load_seconds: float

    @property
    def bytes_per_rrset(self) -> float | None:
        if self.rss_empty is None or self.rrsets <= 0:
            return None  # no baseline, or --zone-file without --rrsets
        return (self.rss_loaded - self.rss_empty) / self.rrsets


def import_zone(addr: NodeAddr, origin: str, text: str, timeout: float) -> int:
    """ImportZone through the gRPC stub (create if missing); return the new serial."""
    import grpc

    from node.api._gen.dnscluster.v1 import zone_pb2, zone_pb2_grpc

    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(addr.api, options=options) as channel:
        stub = zone_pb2_grpc.ZoneServiceStub(channel)
        try:
            resp = stub.ImportZone(
                zone_pb2.ImportZoneRequest(name=origin, text=text, create_if_missing=True),
                timeout=timeout,
            )
        except grpc.RpcError as exc:
            raise BenchError(f"ImportZone {origin} on {addr.api}: {exc.code().name}: "
                             f"{exc.details()}") from exc
    return int(resp.zone.serial)


def knot_baseline(ps: ProcessSet, origin: str, args: argparse.Namespace) -> int:
    """RSS of knotd serving only the apex of `origin` (the 'empty zone' baseline)."""
    empty = ps.workdir / "empty.zone"
    empty.write_text("\n".join(zonegen.apex_lines(origin)) + "\n")  # serial 1
    knot = start_knot(ps, origin, empty, 1, cpus=SERVER_CPU, workers=args.knot_workers)
    rss = rss_bytes(knot.proc.pid)
    ps.stop(knot.proc)
    return rss


def measure(server: str, proc: Proc, host: str, port: int, args: argparse.Namespace,
            query_file: Path, do_bit: bool, signed: bool = False) -> ServerRun:
    out = proc.log.parent / f"dnsperf-{server}-do{int(do_bit)}{'-signed' * signed}.txt"
    if args.warmup > 0:  # both servers: answers built on first use are built before timing
        run_dnsperf(host, port, query_file, out.with_suffix(".warmup.txt"),
                    duration=args.warmup, clients=args.clients, outstanding=args.outstanding,
                    cpus=CLIENT_CPU, do_bit=do_bit, per_query=False)
    before = cpu_seconds(proc.pid)
    perf = run_dnsperf(host, port, query_file, out, duration=args.duration,
                       clients=args.clients, outstanding=args.outstanding, cpus=CLIENT_CPU,
                       do_bit=do_bit, per_query=not args.no_percentiles)
    after = cpu_seconds(proc.pid)
    proc.check()
    return ServerRun(server, do_bit, signed, perf, after - before)


def warn_log_lines(proc: Proc, limit: int = 5) -> None:
    """Print the first WARNING/ERROR lines of a server's log: they may explain a figure."""
    lines = [ln for ln in proc.log.read_text(errors="replace").splitlines()
             if " WARNING " in ln or " ERROR " in ln]
    if lines:
        print(f"{proc.name} logged {len(lines)} warning/error line(s), first {limit}:")
        for ln in lines[:limit]:
            print(f"  {ln[:300]}")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.3f}"


def report(runs: list[ServerRun], mems: list[Memory]) -> None:
    print("\nserver  zone      DO  queries/s   avg ms  sd ms  p50 ms  p99 ms  lost     CPU us/q  "
          "busy  1-core q/s  rcodes")
    for r in runs:
        p = r.perf
        print(f"{r.server:7} {'signed' if r.signed else 'unsigned':8} {int(r.do_bit):2}  "
              f"{p.qps:9.0f}  {_ms(p.avg_latency):>7} "
              f"{_ms(p.stddev_latency):>6} {_ms(p.p50):>7} {_ms(p.p99):>7}  {p.lost:<7}  "
              f"{r.cpu_us_per_query:8.2f}  {r.server_busy:4.0%}  {r.capacity_qps:10.0f}  "
              f"{p.rcodes}")
    if any(r.server_busy < 0.9 for r in runs):
        print("note: a server used < 90% of its core, so its queries/s is bound by the client "
              "or other load,\n      not by the server: compare CPU us/q (and 1-core q/s = "
              "1e6 / CPU us/q) instead.")
    for signed, do_bit in ((False, False), (False, True), (True, True)):
        ours = [r for r in runs if r.server == "node" and (r.signed, r.do_bit) == (signed, do_bit)]
        knot = [r for r in runs if r.server == "knot" and (r.signed, r.do_bit) == (signed, do_bit)]
        if ours and knot and knot[0].perf.qps > 0:
            o, k = ours[0], knot[0]
            what = f"{'signed' if signed else 'unsigned'}, DO={int(do_bit)}"
            print(f"ratio ours/Knot ({what}): queries/s {o.perf.qps / k.perf.qps:.3f}, "
                  f"1-core capacity {o.capacity_qps / k.capacity_qps:.3f}, "
                  f"CPU per query {o.cpu_us_per_query / max(k.cpu_us_per_query, 1e-9):.2f}x")
    print("\nserver  RSS empty MiB  RSS loaded MiB  after runs MiB  bytes/RRset  load s")
    for m in mems:
        empty = "-" if m.rss_empty is None else f"{m.rss_empty / 2**20:.1f}"
        per = m.bytes_per_rrset
        print(f"{m.server:7} {empty:>13}  {m.rss_loaded / 2**20:14.1f}  "
              f"{m.rss_after_runs / 2**20:14.1f}  {'-' if per is None else f'{per:.0f}':>11}  "
              f"{m.load_seconds:6.1f}")


def run(args: argparse.Namespace, ps: ProcessSet) -> tuple[list[ServerRun], list[Memory]]:
    if args.zone_file:
        zone_file, query_file, origin = args.zone_file, args.query_file, args.zone
        rrsets = args.rrsets or 0
        if query_file is None:
            raise BenchError("--zone-file needs --query-file")
    else:
        t0 = time.monotonic()
        z = zonegen.generate(ps.workdir / "zone", args.names, args.zone, args.queries)
        zone_file, query_file, origin, rrsets = z.zone_file, z.query_file, z.origin, z.rrsets
        print(f"zone {origin}: {z.names} names, {z.rrsets} RRsets, {z.records} records, "
              f"{z.queries} queries (generated in {time.monotonic() - t0:.1f} s)")
    text = Path(zone_file).read_text()
    runs: list[ServerRun] = []
    mems: list[Memory] = []
    variants = [False, True] if args.dnssec else [False]
    knot = None
    if not args.skip_knot:
        knot_empty = knot_baseline(ps, origin, args)
        t0 = time.monotonic()
        knot = start_knot(ps, origin, Path(zone_file), args.serial, cpus=SERVER_CPU,
                          workers=args.knot_workers)
        load = time.monotonic() - t0
        print(f"{knot.version}: serving {origin} on {knot.host}:{knot.port} "
              f"(pid {knot.proc.pid}, {args.knot_workers} UDP worker(s), loaded in {load:.1f} s)")
        mems.append(Memory("knot", knot_empty, rss_bytes(knot.proc.pid), 0, rrsets, load))
    node = None
    if not args.skip_node:
        etcd = start_etcd(ps, cpus=CLIENT_CPU, nice=10)
        prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
        kek = write_kek(ps.workdir) if args.sign else None
        proc, addr = start_node(ps, "bench1", etcd, prefix, cpus=SERVER_CPU, kek_file=kek)
        empty = rss_bytes(proc.pid)
        t0 = time.monotonic()
        serial = import_zone(addr, origin, text, args.load_timeout)
        rpc = time.monotonic() - t0
        wait_serial(proc, addr.host, addr.dns_port, origin, serial, args.load_timeout)
        load = time.monotonic() - t0
        print(f"node: serving {origin} serial {serial} on {addr.host}:{addr.dns_port} "
              f"(pid {proc.pid}, etcd {etcd}, prefix {prefix}, loaded in {load:.1f} s, "
              f"of which the ImportZone RPC {rpc:.1f} s)")
        mems.append(Memory("node", empty, rss_bytes(proc.pid), 0, rrsets, load))
        node = (proc, addr)
    if knot is not None and node is not None:
        check_answers(Path(query_file), knot, node[1], args)
    for do_bit in variants:
        if knot is not None:
            runs.append(measure("knot", knot.proc, knot.host, knot.port, args, query_file,
                                do_bit))
        if node is not None:
            runs.append(measure("node", node[0], node[1].host, node[1].dns_port, args,
                                query_file, do_bit))
    if args.sign:
        signed, knot = signed_runs(args, ps, knot, node, origin, Path(zone_file),
                                   Path(query_file), rrsets)
        runs += signed
    final = {"knot": knot.proc.pid if knot else None, "node": node[0].pid if node else None}
    mems = [Memory(m.server, m.rss_empty, m.rss_loaded, rss_bytes(final[m.server] or 0),
                   m.rrsets, m.load_seconds) for m in mems]
    if node is not None:
        warn_log_lines(node[0])
    return runs, mems


def signed_runs(args: argparse.Namespace, ps: ProcessSet, knot: KnotServer | None,
                node: tuple[Proc, NodeAddr] | None, origin: str, zone_file: Path,
                query_file: Path, rrsets: int) -> tuple[list[ServerRun], KnotServer | None]:
    """Sign the zone on both servers (timed), print what signing cost, run DO=1.

    Knot is restarted with signing on: the new KnotServer is returned.
    """
    sample = positive_sample(query_file)
    runs: list[ServerRun] = []
    if knot is not None:
        before = rss_bytes(knot.proc.pid)
        ps.stop(knot.proc)
        t0 = time.monotonic()
        knot = start_knot(ps, origin, zone_file, None, cpus=SERVER_CPU,
                          workers=args.knot_workers, timeout=args.load_timeout, sign=True)
        wait_signed(knot.proc, knot.host, knot.port, sample, args.sign_timeout)
        _signing_line("knot", time.monotonic() - t0, before, rss_bytes(knot.proc.pid), rrsets,
                      "restart with automatic signing")
    if node is not None:
        proc, addr = node
        before = rss_bytes(proc.pid)
        t0 = time.monotonic()
        sign_node(addr, origin, args.sign_timeout)
        wait_signed(proc, addr.host, addr.dns_port, sample, args.sign_timeout)
        _signing_line("node", time.monotonic() - t0, before, rss_bytes(proc.pid), rrsets,
                      "clusterctl zone sign --nsec")
    if knot is not None and node is not None:
        check_answers(query_file, knot, node[1], args, do_bit=True)
    if knot is not None:
        runs.append(measure("knot", knot.proc, knot.host, knot.port, args, query_file, True,
                            signed=True))
    if node is not None:
        runs.append(measure("node", node[0], node[1].host, node[1].dns_port, args, query_file,
                            True, signed=True))
    return runs, knot


def check_answers(query_file: Path, knot: KnotServer, node: NodeAddr,
                  args: argparse.Namespace, do_bit: bool = False) -> None:
    """Compare the shape of both servers' answers to sampled questions; print differences."""
    diffs = compare(query_file, (knot.host, knot.port), (node.host, node.dns_port),
                    args.check_sample, do_bit=do_bit)
    print(f"answer check{' (DO=1)' if do_bit else ''}: {args.check_sample} sampled queries, "
          f"{len(diffs)} differ (Knot | node)")
    for d in diffs[:10]:
        print(f"  {d.question}: {d.left} | {d.right}")
    if diffs and args.strict:
        raise BenchError(f"{len(diffs)} answers differ between Knot and the node")


def _signing_line(server: str, seconds: float, before: int, after: int, rrsets: int,
                  how: str) -> None:
    per = f", {(after - before) / rrsets:.0f} B/RRset" if rrsets > 0 else ""
    print(f"{server}: zone signed and served in {seconds:.1f} s ({how}); RSS "
          f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB{per}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.qps", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=zonegen.DEFAULT_NAMES)
    p.add_argument("--zone", default=zonegen.DEFAULT_ZONE)
    p.add_argument("--queries", type=int, default=None, help="query file lines")
    p.add_argument("--zone-file", type=Path, help="use this master file instead of generating")
    p.add_argument("--query-file", type=Path, help="dnsperf query file for --zone-file")
    p.add_argument("--rrsets", type=int, help="RRset count of --zone-file (for bytes/RRset)")
    p.add_argument("--serial", type=int, default=1, help="SOA serial of the zone file (1)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per dnsperf run")
    p.add_argument("--warmup", type=float, default=10.0,
        help="seconds of untimed queries before each timed run (default 10)")
    p.add_argument("--clients", type=int, default=10, help="dnsperf -c")
    p.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    p.add_argument("--dnssec", action="store_true", help="also run with DO=1 (dnsperf -D)")
    p.add_argument("--sign", action="store_true",
                   help="then sign the zone on both servers (ECDSA P-256 KSK+ZSK, NSEC) and "
                        "run DO=1 again")
    p.add_argument("--no-percentiles", action="store_true",
                   help="no per-query output (-v): no p50/p99, slightly less client load")
    p.add_argument("--check-sample", type=int, default=300,
                   help="queries asked of both servers to compare answers first")
    p.add_argument("--strict", action="store_true", help="fail when any sampled answer differs")
    p.add_argument("--knot-workers", type=int, default=1, help="knotd udp-workers")
    p.add_argument("--load-timeout", type=float, default=900.0)
    p.add_argument("--sign-timeout", type=float, default=300.0,
                   help="seconds for a server to serve the zone signed")
    p.add_argument("--skip-knot", action="store_true")
    p.add_argument("--skip-node", action="store_true")
    p.add_argument("--workdir", type=Path, help="keep configs/logs/outputs here")
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-qps-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    ps = ProcessSet(workdir)
    stop_on_sigterm()
    load_before = os.getloadavg()
    try:
        runs, mems = run(args, ps)
    except (BenchError, OSError) as exc:
        sys.stderr.write(f"bench.qps: {exc}\n(work dir kept: {workdir})\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench.qps: interrupted\n")
        return 1
    finally:
        ps.close()
    report(runs, mems)
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs; above ~1 means something else ran during the benchmark)")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": [{**asdict(r), "cpu_us_per_query": r.cpu_us_per_query,
                      "server_busy": r.server_busy, "capacity_qps": r.capacity_qps}
                     for r in runs],
            "memory": [{**asdict(m), "bytes_per_rrset": m.bytes_per_rrset} for m in mems],
            "args": {k: str(v) for k, v in vars(args).items()},
        }, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
