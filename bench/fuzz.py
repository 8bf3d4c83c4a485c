"""Hostile input, the long run: millions of random and mutated DNS messages at real nodes.

    .venv/bin/python -m bench.fuzz [--messages 5000000] [--nodes 3] [--seed N] [--json FILE]

etcd and `--nodes` writable nodes on loopback, each serving an unsigned zone and a
signed (NSEC3) one. The messages come from `tests/support/dnsfuzz.py` (the
generator and sender of the short run in `tests/cluster/test_hostile_input.py`):
90% over UDP in batches of 200 without waiting for each answer, each batch
followed by a probe query that must be answered, 10% over TCP (pipelined
frames, cut frames, lying length prefixes). Each node first gets a warm-up of
100k messages, then its RSS (`VmRSS` of the serving process) is read; the rest
is spread over the nodes in chunks of 100k; the RSS is read again at the end.

Prints: messages sent (UDP, TCP), answers, messages with QR=1 and answers to
them (must be 0), nodes alive, handler errors in the node logs (must be 0),
RSS per node before and after and its growth (must be < 10%), the seed, the
command, the machine. Exit status 1 if a node stopped, answered a QR=1
message, logged a handler error or grew by 10% or more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dns.name

from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    alive,
    start_etcd,
    start_node,
    stop_on_sigterm,
    write_kek,
)
from node.api.client import ApiClient
from node.zones.dnssec import DnssecConfig
from tests.support.dnsfuzz import Fuzzer, FuzzRun, NodeStopped
from tests.support.zones import FUZZ

WARMUP = 100_000
CHUNK = 100_000
TCP_SHARE = 0.1
ZONES = ("fuzz.test.", "signed.fuzz.test.")
ZONE_TEXT = FUZZ


def vm_rss_kib(pid: int) -> int:
    """VmRSS of the serving process alone (not its signing workers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def _handler_errors(log: Path) -> int:
    """DNS_HANDLER_ERROR events and tracebacks in a node's log (both must be absent)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count('"event": 1302') + text.count("Traceback")


def fuzz(run: FuzzRun, total: int) -> None:
    tcp = int(total * TCP_SHARE)
    run.run_tcp(tcp // 2)
    run.run_udp(total - tcp)
    run.run_tcp(tcp - tcp // 2)


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, " \
           f"Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-fuzz-")))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        etcd = start_etcd(ps, cpus=None, nice=0)
        kek = write_kek(ps.workdir)
        prefix = f"/bench-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
        nodes: list[tuple[Proc, NodeAddr]] = [
            start_node(ps, f"n{i + 1}", etcd, prefix, kek_file=kek)
            for i in range(args.nodes)]
        api = ApiClient(nodes[0][1].api, timeout=60)
        for zone in ZONES:
            api.create_zone(dns.name.from_text(zone), text=ZONE_TEXT.format(zone=zone,
                                                                             txt="x" * 200))
        out = api.sign_zone(dns.name.from_text(ZONES[1]), DnssecConfig(), timeout=60)
        if out.state != "done":
            raise BenchError(f"signing did not finish: {out.message}")
        runs = [FuzzRun(addr.host, addr.dns_port, Fuzzer(list(ZONES), seed + i), ZONES[0])
                for i, (_, addr) in enumerate(nodes)]
        before: list[int] = []
        for (proc, _), run in zip(nodes, runs, strict=True):
            fuzz(run, WARMUP)
            before.append(vm_rss_kib(proc.pid))
        left = args.messages - WARMUP * len(nodes)
        turn = 0
        while left > 0:
            n = min(CHUNK, left)
            fuzz(runs[turn % len(runs)], n)
            left -= n
            turn += 1
            sent = sum(r.stats.sent for r in runs)
            print(f"  {sent:,} sent, {time.monotonic() - started:.0f} s", file=sys.stderr)
        after = [vm_rss_kib(proc.pid) for proc, _ in nodes]
        living = sum(alive(proc.pid) for proc, _ in nodes)
        errors = sum(_handler_errors(proc.log) for proc, _ in nodes)
    except NodeStopped as exc:
        print(f"bench.fuzz: a node stopped answering: {exc} (seed {seed}; logs in {ps.workdir})",
              file=sys.stderr)
        return 1
    except BenchError as exc:
        print(f"bench.fuzz: {exc}", file=sys.stderr)
        return 1
    finally:
        ps.close()
    figures = {
        "command": " ".join(["python -m bench.fuzz", *sys.argv[1:]]),
        "machine": machine(),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "sent": sum(r.stats.sent for r in runs),
        "udp_sent": sum(r.stats.udp_sent for r in runs),
        "tcp_sent": sum(r.stats.tcp_sent for r in runs),
        "answers": sum(r.stats.answers for r in runs),
        "probes": sum(r.stats.probes for r in runs),
        "qr1_sent": sum(r.stats.qr1_sent for r in runs),
        "qr1_answered": sum(r.stats.qr1_answered for r in runs),
        "not_responses": sum(r.stats.not_responses for r in runs),
        "nodes": len(nodes),
        "nodes_alive": living,
        "handler_errors": errors,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_growth_pct": [round(100 * (a - b) / b, 2) for a, b in zip(after, before, strict=True)],
    }
    for key, value in figures.items():
        print(f"{key:15} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    bad = (living < len(nodes) or figures["qr1_answered"] or figures["not_responses"] or errors
           or any(g >= 10 for g in figures["rss_growth_pct"]))  # type: ignore[union-attr]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
