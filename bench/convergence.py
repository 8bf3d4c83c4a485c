"""Convergence: how long after node 1 acknowledges a change do nodes 2 and 3 answer it.

etcd and three nodes on loopback (one etcd, three ports on 127.0.0.1, one
key prefix for the run). For each of N changes (default 1,000), one
`RecordService.AddRecords` call through the generated gRPC stub on node 1
(a new name with a unique A record); the acknowledgement time is when the
response arrives. Nodes 2 and 3 are then polled with hand-built UDP queries
(non-blocking sockets, a select() of at most 2 ms between rounds) until each
answers the new address (the time its answer arrived in the poller's socket, from the
kernel's receive timestamp). Printed: p50/p99/max of (answered - acknowledged)
per node and for both, and the acknowledgement latency itself.

No CPU pinning: etcd, three nodes and this poller share the machine's cores,
as they would on a small host; the poller's busy loop costs some CPU.

    .venv/bin/python -m bench.convergence --changes 1000
    .venv/bin/python -m bench.convergence --sign     # signed zone: wait for A + RRSIG
    .venv/bin/python -m bench.convergence --sign --names 100000 --changes 40

With `--names N` the zone is first imported from a generated N-name zone
(`bench.zonegen`, under the same origin) instead of the three-record one, so
a change lands in a zone of that size; setup waits scale with N.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import struct
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import wire
from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_serial,
    write_kek,
)
from bench.signing import sign_node, wait_signed
from bench.zonegen import generate

ZONE = "conv.test."
SIGNED_SAMPLE = [(ZONE, wire.TYPE_SOA), (f"ns1.{ZONE}", wire.TYPE_A)]
ZONE_TEXT = f"""$ORIGIN {ZONE}
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
"""


@dataclass(frozen=True, slots=True)
class Stats:
    """Percentiles of a list of durations, seconds."""

    count: int
    p50: float
    p99: float
    max: float

    @staticmethod
    def of(values: list[float]) -> Stats:
        if not values:
            return Stats(0, float("nan"), float("nan"), float("nan"))
        s = sorted(values)
        return Stats(len(s), s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))], s[-1])

    def line(self, what: str) -> str:
        return (f"{what:28} n={self.count:5}  p50 {self.p50 * 1000:8.2f} ms  "
                f"p99 {self.p99 * 1000:8.2f} ms  max {self.max * 1000:8.2f} ms")


def print_stages(node: str, log: Path, changes: int) -> None:
    """Per-stage p50/p99 of the last `changes` CONVERGENCE_STAGES events (1861) in a node's
    log: where each change's time went between the etcd watch and the serving workers."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        at = line.find('{"event": 1861')
        if at >= 0:
            events.append(json.loads(line[at:line.rindex("}") + 1]))
    events = events[-changes:]
    fulls = sum(1 for e in events if e.get("full"))
    print(f"\n{node}: stages of the last {len(events)} versions ({fulls} full images)")
    fields = [k for k in events[-1] if k.endswith("_ms")] if events else []
    for field in fields:
        print(Stats.of([e[field] / 1000 for e in events if field in e]).line(f"  {field}"))
    for field in ("entries", "bytes"):
        values = sorted(e.get(field, 0) for e in events if not e.get("full"))
        if values:
            print(f"  overlay {field:19} p50 {values[len(values) // 2]:>10}  "
                  f"max {values[-1]:>10}")


def _address(i: int) -> tuple[str, bytes]:
    octets = (10, (i >> 16) & 255, (i >> 8) & 255, i & 255)
    return ".".join(map(str, octets)), bytes(octets)


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: receive time, CLOCK_REALTIME


def _arrival(anc: list[tuple[int, int, bytes]]) -> float:
    """Monotonic time the datagram arrived in our socket (its kernel timestamp), not when this
    poller, itself on the loaded cores, got round to reading it; now if there is none."""
    now = time.monotonic()
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("@qq", value[:16])
            return min(now, now - (time.time() - (sec + nsec / 1e9)))
    return now


def poll_until(socks: dict[str, socket.socket], name: str, expected: bytes,
               timeout: float, signed: bool = False) -> dict[str, float]:
    """Query every socket for `name` A until it answers `expected` (and, if `signed`, with an
    RRSIG under DO=1); monotonic time per node."""
    done: dict[str, float] = {}
    qid = 0
    deadline = time.monotonic() + timeout
    by_fd = {s.fileno(): n for n, s in socks.items()}
    while len(done) < len(socks) and time.monotonic() < deadline:
        qid = (qid + 1) & 0xFFFF
        packet = wire.build_query(qid, name, wire.TYPE_A, signed)
        waiting = [s for n, s in socks.items() if n not in done]
        for s in waiting:
            try:
                s.send(packet)
            except (BlockingIOError, ConnectionRefusedError):
                pass
        ready, _, _ = select.select(waiting, [], [], 0.002)
        for s in ready:
            node = by_fd[s.fileno()]
            for _ in range(64):  # drain every response queued on this socket
                try:
                    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
                except (BlockingIOError, ConnectionRefusedError):
                    break
                ans = wire.parse_answer(data)
                if ans is None or (wire.TYPE_A, expected) not in ans.records:
                    continue
                if not signed or any(t == wire.TYPE_RRSIG for t, _ in ans.records):
                    done.setdefault(node, _arrival(anc))
    return done


def run(args: argparse.Namespace, ps: ProcessSet) -> dict[str, object]:
    import grpc

    from node.api._gen.dnscluster.v1 import (
        common_pb2,
        record_pb2,
        record_pb2_grpc,
        zone_pb2,
        zone_pb2_grpc,
    )

    etcd = start_etcd(ps, cpus=None, nice=0)
    prefix = f"/bench-conv-{uuid.uuid4().hex[:8]}/"
    kek = write_kek(ps.workdir) if args.sign else None
    nodes: list[tuple[Proc, NodeAddr]] = [
        start_node(ps, f"n{i}", etcd, prefix, kek_file=kek,
                   log_level="INFO" if args.stages else "WARNING") for i in (1, 2, 3)
    ]
    writer = nodes[0][1]
    print(f"etcd {etcd}, prefix {prefix}; nodes "
          + ", ".join(f"{a.node_id} dns {a.host}:{a.dns_port} api {a.api}" for _, a in nodes))
    text = ZONE_TEXT
    if args.names:
        text = generate(ps.workdir / "zone", names=args.names, origin=ZONE).zone_file.read_text()
    setup = max(120.0, args.names / 1000 * 6)  # seconds: import and sign scale with the zone
    channel = grpc.insecure_channel(writer.api, options=[
        ("grpc.max_send_message_length", 256 << 20)])
    try:
        t0 = time.monotonic()
        resp = zone_pb2_grpc.ZoneServiceStub(channel).ImportZone(
            zone_pb2.ImportZoneRequest(name=ZONE, text=text, create_if_missing=True),
            timeout=setup)
        for proc, a in nodes:
            wait_serial(proc, a.host, a.dns_port, ZONE, resp.zone.serial, setup)
        print(f"{ZONE} imported ({args.names or 1} names) and served by all three nodes in "
              f"{time.monotonic() - t0:.1f} s")
        if args.sign:
            t0 = time.monotonic()
            sign_node(writer, ZONE, setup)
            for proc, a in nodes:
                wait_signed(proc, a.host, a.dns_port, SIGNED_SAMPLE, setup)
            print(f"{ZONE} signed (ECDSA P-256 KSK+ZSK, NSEC) and served signed by all three "
                  f"nodes in {time.monotonic() - t0:.1f} s; polling with DO=1 for A + RRSIG")
        records = record_pb2_grpc.RecordServiceStub(channel)
        socks: dict[str, socket.socket] = {}
        for _, a in nodes[1:]:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((a.host, a.dns_port))
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
            socks[a.node_id] = s
        if args.names:  # not counted: waits out the full images that follow a big import/sign
            t0 = time.monotonic()
            text0, raw0 = _address(0)
            records.AddRecords(record_pb2.AddRecordsRequest(
                zone=ZONE, rrset=common_pb2.RRset(owner="warmup", ttl=60, type="A",
                                                  rdata=[text0])), timeout=setup)
            seen0 = poll_until(socks, f"warmup.{ZONE}", raw0, setup, args.sign)
            print(f"warm-up change answered by {len(seen0)} of {len(socks)} nodes in "
                  f"{time.monotonic() - t0:.1f} s (not counted)")
        ack_lat: list[float] = []
        lag: dict[str, list[float]] = {n: [] for n in socks}
        both: list[float] = []
        failures: list[str] = []
        timeline: list[dict[str, float]] = []  # per change, monotonic (system-wide) times
        overall = time.monotonic() + args.max_seconds
        for i in range(args.changes):
            if time.monotonic() > overall:
                failures.append(f"stopped after {i} changes: --max-seconds {args.max_seconds}")
                break
            text, raw = _address(i + 1)
            owner = f"c{i}"
            req = record_pb2.AddRecordsRequest(
                zone=ZONE, rrset=common_pb2.RRset(owner=owner, ttl=60, type="A", rdata=[text]))
            sent = time.monotonic()
            try:
                records.AddRecords(req, timeout=10)
            except grpc.RpcError as exc:
                raise BenchError(f"AddRecords #{i} on {writer.api}: {exc.code().name}: "
                                 f"{exc.details()}") from exc
            acked = time.monotonic()
            ack_lat.append(acked - sent)
            seen = poll_until(socks, f"{owner}.{ZONE}", raw, args.change_timeout, args.sign)
            for node, t in seen.items():
                lag[node].append(t - acked)
            timeline.append({"sent": sent, "acked": acked, **seen})
            if len(seen) == len(socks):
                both.append(max(seen.values()) - acked)
            else:
                missing = sorted(set(socks) - set(seen))
                failures.append(f"change {i}: {missing} did not answer within "
                                f"{args.change_timeout} s")
                for proc, _ in nodes:
                    proc.check()
            if len(failures) > 10:
                break
        for s in socks.values():
            s.close()
    finally:
        channel.close()
    print(f"\n{len(ack_lat)} changes acknowledged by {writer.node_id} "
          f"(AddRecords via gRPC, one etcd txn each)")
    print(Stats.of(ack_lat).line("acknowledgement latency"))
    for node, values in lag.items():
        print(Stats.of(values).line(f"{node} answered - acked"))
    print(Stats.of(both).line("both answered - acked"))
    if args.stages:
        for proc, _ in nodes[1:]:
            print_stages(proc.name, proc.log, len(ack_lat))
    return {
        "changes": len(ack_lat),
        "ack": asdict(Stats.of(ack_lat)),
        **{f"{n}_lag": asdict(Stats.of(v)) for n, v in lag.items()},
        "both_lag": asdict(Stats.of(both)),
        "failures": failures,
        "timeline": timeline,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.convergence", description=__doc__.split("\n\n")[0])
    p.add_argument("--changes", type=int, default=1000)
    p.add_argument("--sign", action="store_true",
                   help="sign the zone first; a change counts once answered with its RRSIG")
    p.add_argument("--names", type=int, default=0,
                   help="import a generated zone of this many names first (bench.zonegen)")
    p.add_argument("--change-timeout", type=float, default=10.0,
                   help="seconds to wait for nodes 2 and 3 to answer one change")
    p.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole run")
    p.add_argument("--workdir", type=Path, help="keep configs and logs here")
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    p.add_argument("--stages", action="store_true",
                   help="nodes log at INFO; print n2/n3's per-stage times (event 1861)")
    args = p.parse_args(argv)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-conv-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    ps = ProcessSet(workdir)
    stop_on_sigterm()
    try:
        result = run(args, ps)
    except (BenchError, OSError) as exc:
        sys.stderr.write(f"bench.convergence: {exc}\n(work dir kept: {workdir})\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench.convergence: interrupted\n")
        return 1
    finally:
        ps.close()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    failures = result["failures"]
    if failures:
        sys.stderr.write("bench.convergence: FAILED\n  " + "\n  ".join(map(str, failures))
                         + f"\n(work dir kept: {workdir})\n")
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
