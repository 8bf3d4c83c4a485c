"""Queries per second, latency, CPU per query and memory: our node and Knot DNS, one run.

Both servers load the same generated zone and get the same dnsperf run
(query file, duration, clients, outstanding queries). CPU placement on a
2-core machine: the server under test (node process and its children, or
knotd) on CPU 0, dnsperf on CPU 1, etcd on CPU 1 at nice 10 (it is idle
while queries run: the node answers from memory). Only one server is
queried at a time; the other idles, and is waited idle first (it shares CPU 0).

    .venv/bin/python -m bench.qps                     # 100k names, 20 s per server
    .venv/bin/python -m bench.qps --duration 10 --dnssec --json out.json
    .venv/bin/python -m bench.qps --dnssec --sign      # and signed zones, DO=1
    .venv/bin/python -m bench.qps --dnssec --sign --flood --workers 2  # + random-subdomain flood

The node answers from `--workers` serving processes (`server.workers`); its
CPU time and PSS are summed over the node process and all its descendants.

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

from bench import flood, zonegen
from bench.compare import compare
from bench.dnsperf import run_dnsperf
from bench.knot import KnotServer, start_knot
from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    cpu_seconds,
    own_cpu_seconds,
    process_count,
    pss_bytes,
    rss_bytes,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_all_serving,
    wait_idle,
    wait_serial,
    write_kek,
)
from bench.qps_report import Memory, ServerRun, report, warn_log_lines
from bench.signing import positive_sample, sign_node, wait_signed

SERVER_CPU = "0"
CLIENT_CPU = "1"
MAX_MESSAGE = 256 * 1024 * 1024


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
    knot = start_knot(ps, origin, empty, 1, cpus=args.server_cpus, workers=args.knot_workers)
    rss = rss_bytes(knot.proc.pid)
    ps.stop(knot.proc)
    return rss


@dataclass(frozen=True, slots=True)
class Mix:
    """A query mix: its timed query file and the file its warm-up reads."""

    name: str
    queries: Path
    warmup: Path
    lines: int = 0  # flood: lines in `queries`, to tell whether dnsperf wrapped


def mixes(args: argparse.Namespace, ps: ProcessSet, origin: str, query_file: Path) -> list[Mix]:
    """The bench mix and, with --flood, the flood (its warm-up on other random names)."""
    out = [Mix("bench", query_file, query_file)]
    if args.flood:
        t0 = time.monotonic()
        lines = flood.lines_for(args.duration, args.flood_qps, args.flood_cap)
        timed = flood.write_flood(ps.workdir / "flood.queries", origin, lines, seed=1)
        warm = flood.write_flood(ps.workdir / "flood-warmup.queries", origin,
                                 flood.lines_for(args.warmup, args.flood_qps, args.flood_cap),
                                 seed=2)
        print(f"flood: {lines} random-subdomain questions (generated in "
              f"{time.monotonic() - t0:.1f} s)")
        out.append(Mix("flood", timed, warm, lines))
    return out


def measure(server: str, proc: Proc, host: str, port: int, args: argparse.Namespace,
            mix: Mix, do_bit: bool, signed: bool = False,
            other: tuple[str, Proc] | None = None) -> ServerRun:
    """Warm up (untimed), then one timed dnsperf run; CPU over the server's process tree.

    `other` is the other server, on the same CPU: it must be idle too, or its work (the
    node's image builds after signing) takes the measured server's core (RESULTS.md,
    "Issue 10, session 15"); the CPU it used during the timed run is printed."""
    out = proc.log.parent / (f"dnsperf-{server}-{mix.name}-do{int(do_bit)}"
                             f"{'-signed' * signed}.txt")
    # "when the node has finished its work": idle for longer than the node waits before it
    # merges an overlay into a full image (node.serving.images.MERGE_AFTER, 10 s)
    for name, p in [(server, proc), *([other] if other else [])]:
        window = 12.0 if name == "node" else 3.0
        idle = wait_idle(p.pid, window=window)
        if idle > window + 1:
            print(f"{server}: waited {idle:.0f} s for {name}'s processes to go idle before "
                  f"measuring")
    if args.warmup > 0:  # both servers: answers built on first use are built before timing
        run_dnsperf(host, port, mix.warmup, out.with_suffix(".warmup.txt"),
                    duration=args.warmup, clients=args.clients, outstanding=args.outstanding,
                    cpus=CLIENT_CPU, do_bit=do_bit, per_query=False)
    before, own_before = cpu_seconds(proc.pid), own_cpu_seconds(proc.pid)
    other_before = cpu_seconds(other[1].pid) if other else 0.0
    perf = run_dnsperf(host, port, mix.queries, out, duration=args.duration,
                       clients=args.clients, outstanding=args.outstanding, cpus=CLIENT_CPU,
                       do_bit=do_bit, per_query=not args.no_percentiles)
    after, own_after = cpu_seconds(proc.pid), own_cpu_seconds(proc.pid)
    proc.check()
    if other:
        print(f"{server} {mix.name} DO={int(do_bit)}{' signed' * signed}: {other[0]} (idle, "
              f"same CPU) used {cpu_seconds(other[1].pid) - other_before:.2f} s CPU meanwhile")
    if server == "node" and args.workers > 0:
        print(f"node {mix.name} DO={int(do_bit)}{' signed' * signed}: control process "
              f"{own_after - own_before:.2f} s of the tree's {after - before:.2f} s CPU")
    return ServerRun(server, do_bit, signed, perf, after - before, mix.name,
                     bool(mix.lines) and flood.wrapped(perf.completed, mix.lines))


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
    qmixes = mixes(args, ps, origin, Path(query_file))
    runs: list[ServerRun] = []
    mems: list[Memory] = []
    variants = [False, True] if args.dnssec else [False]
    knot = None
    if not args.skip_knot:
        knot_empty = knot_baseline(ps, origin, args)
        t0 = time.monotonic()
        knot = start_knot(ps, origin, Path(zone_file), args.serial, cpus=args.server_cpus,
                          workers=args.knot_workers)
        load = time.monotonic() - t0
        print(f"{knot.version}: serving {origin} on {knot.host}:{knot.port} "
              f"(pid {knot.proc.pid}, {args.knot_workers} UDP worker(s), loaded in {load:.1f} s)")
        mems.append(Memory("knot", knot_empty, rss_bytes(knot.proc.pid), 0, rrsets, load,
                           pss_bytes(knot.proc.pid)))
    node = None
    if not args.skip_node:
        etcd = start_etcd(ps, cpus=CLIENT_CPU, nice=10)
        prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
        kek = write_kek(ps.workdir) if args.sign else None
        proc, addr = start_node(ps, "bench1", etcd, prefix, cpus=args.server_cpus,
                                kek_file=kek, workers=args.workers)
        empty = rss_bytes(proc.pid)
        t0 = time.monotonic()
        serial = import_zone(addr, origin, text, args.load_timeout)
        rpc = time.monotonic() - t0
        wait_serial(proc, addr.host, addr.dns_port, origin, serial, args.load_timeout)
        load = time.monotonic() - t0
        wait_all_serving(proc, addr, origin, serial, args.load_timeout)
        print(f"node: serving {origin} serial {serial} on {addr.host}:{addr.dns_port} "
              f"(pid {proc.pid}, {args.workers} serving worker(s), "
              f"{process_count(proc.pid)} processes, etcd {etcd}, prefix {prefix}, loaded in "
              f"{load:.1f} s, of which the ImportZone RPC {rpc:.1f} s; every worker serving "
              f"it after {time.monotonic() - t0:.1f} s)")
        mems.append(Memory("node", empty, rss_bytes(proc.pid), 0, rrsets, load,
                           pss_bytes(proc.pid)))
        node = (proc, addr)
    for do_bit in variants:
        if knot is not None and node is not None:
            for mix in qmixes:
                check_answers(mix, knot, node[1], args, do_bit=do_bit)
        runs += measure_both(knot, node, args, qmixes, do_bit)
    if args.sign:
        signed, knot = signed_runs(args, ps, knot, node, origin, Path(zone_file), qmixes,
                                   rrsets)
        runs += signed
    final = {"knot": knot.proc.pid if knot else None, "node": node[0].pid if node else None}
    mems = [Memory(m.server, m.rss_empty, m.rss_loaded, rss_bytes(final[m.server] or 0),
                   m.rrsets, m.load_seconds, m.pss_loaded, pss_bytes(final[m.server] or 0),
                   process_count(final[m.server] or 0)) for m in mems]
    if node is not None:
        warn_log_lines(node[0])
    return runs, mems


def measure_both(knot: KnotServer | None, node: tuple[Proc, NodeAddr] | None,
                 args: argparse.Namespace, qmixes: list[Mix], do_bit: bool,
                 signed: bool = False) -> list[ServerRun]:
    """Every mix on Knot, then on the node (each warmed up before its timed run)."""
    runs = []
    for mix in qmixes:
        if knot is not None:
            runs.append(measure("knot", knot.proc, knot.host, knot.port, args, mix, do_bit,
                                signed, ("node", node[0]) if node else None))
        if node is not None:
            runs.append(measure("node", node[0], node[1].host, node[1].dns_port, args, mix,
                                do_bit, signed, ("knot", knot.proc) if knot else None))
    return runs


def wait_node_signed(proc: Proc, addr: NodeAddr, origin: str,
                     sample: list[tuple[str, int]], timeout: float) -> int:
    """Wait until the node serves the zone signed from every worker, at a serial that holds.

    Signed answers for the sample give a signed serial; then every worker must
    serve that serial (`wait_all_serving`). If the serial moved meanwhile (a
    later signing pass), wait again for the new one. Returns the serial.
    """
    wait_signed(proc, addr.host, addr.dns_port, sample, timeout)
    deadline = time.monotonic() + timeout
    while True:
        serial = wait_serial(proc, addr.host, addr.dns_port, origin, None, timeout)
        wait_all_serving(proc, addr, origin, serial, max(1.0, deadline - time.monotonic()))
        if wait_serial(proc, addr.host, addr.dns_port, origin, None, timeout) == serial:
            return serial
        if time.monotonic() > deadline:
            raise BenchError(f"{origin}: the signed serial kept changing for {timeout:.0f} s")


def signed_runs(args: argparse.Namespace, ps: ProcessSet, knot: KnotServer | None,
                node: tuple[Proc, NodeAddr] | None, origin: str, zone_file: Path,
                qmixes: list[Mix], rrsets: int) -> tuple[list[ServerRun], KnotServer | None]:
    """Sign the zone on both servers (timed), print what signing cost, run DO=1.

    Knot is restarted with signing on: the new KnotServer is returned.
    """
    sample = positive_sample(qmixes[0].queries)
    runs: list[ServerRun] = []
    if knot is not None:
        before = rss_bytes(knot.proc.pid)
        ps.stop(knot.proc)
        t0 = time.monotonic()
        knot = start_knot(ps, origin, zone_file, None, cpus=args.server_cpus,
                          workers=args.knot_workers, timeout=args.load_timeout, sign=True,
                          nsec3=args.nsec3)
        wait_signed(knot.proc, knot.host, knot.port, sample, args.sign_timeout)
        _signing_line("knot", time.monotonic() - t0, before, rss_bytes(knot.proc.pid), rrsets,
                      "restart with automatic signing")
    if node is not None:
        proc, addr = node
        before = rss_bytes(proc.pid)
        t0 = time.monotonic()
        sign_node(addr, origin, args.sign_timeout, nsec3=args.nsec3)
        serial = wait_node_signed(proc, addr, origin, sample, args.sign_timeout)
        _signing_line("node", time.monotonic() - t0, before, rss_bytes(proc.pid), rrsets,
                      f"clusterctl zone sign --nsec{'3' if args.nsec3 else ''}; serial "
                      f"{serial} on every worker")
    if knot is not None and node is not None:
        for mix in qmixes:
            check_answers(mix, knot, node[1], args, do_bit=True)
    runs += measure_both(knot, node, args, qmixes, True, signed=True)
    return runs, knot


def check_answers(mix: Mix, knot: KnotServer, node: NodeAddr,
                  args: argparse.Namespace, do_bit: bool = False) -> None:
    """Compare the shape of both servers' answers to sampled questions; print differences."""
    diffs = compare(mix.queries, (knot.host, knot.port), (node.host, node.dns_port),
                    args.check_sample, do_bit=do_bit)
    print(f"answer check, {mix.name} mix{' (DO=1)' if do_bit else ''}: {args.check_sample} "
          f"sampled queries, {len(diffs)} differ (Knot | node)")
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
    p.add_argument("--nsec3", action="store_true",
                   help="with --sign: NSEC3 (no salt, 0 iterations) on both servers, so the "
                        "flood needs an NSEC3 proof per query")
    p.add_argument("--no-percentiles", action="store_true",
                   help="no per-query output (-v): no p50/p99, slightly less client load")
    p.add_argument("--check-sample", type=int, default=300,
                   help="queries asked of both servers to compare answers first")
    p.add_argument("--strict", action="store_true", help="fail when any sampled answer differs")
    p.add_argument("--knot-workers", type=int, default=1, help="knotd udp-workers")
    p.add_argument("--workers", type=int, default=1,
                   help="the node's server.workers: serving processes (0: in the node process)")
    p.add_argument("--server-cpus", default=SERVER_CPU,
                   help=f"taskset CPU list for the server under test ({SERVER_CPU})")
    p.add_argument("--flood", action="store_true",
                   help="also run a random-subdomain flood (every query a new nonexistent "
                        "name) wherever the bench mix runs")
    p.add_argument("--flood-qps", type=int, default=flood.DEFAULT_QPS,
                   help="queries/s the flood file is sized for (lines = duration x this)")
    p.add_argument("--flood-cap", type=int, default=flood.DEFAULT_CAP,
                   help="most lines in a flood file")
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
