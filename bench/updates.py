"""UPDATE race: N RFC 2136 UPDATEs per node through three nodes at once, K in flight per node.

etcd and three writable nodes on loopback (shared KEK: TSIG update keys are
encrypted under it). One zone, one TSIG key (hmac-sha256). Every node gets
`--per-node` UPDATEs (default 1,000), `--in-flight` at a time (default 50),
UDP and TCP alternating (dnspython's `dns.update` and `dns.asyncquery`);
each adds a name of its own guarded by "name not in use", so a UDP retry
after a lost answer cannot land twice (it answers YXDOMAIN). Printed:
UPDATEs per second over the whole run, p50/p99/max of the acknowledgement
latency, retries, and the check the issue asks for: every UPDATE landed
exactly once, and the serial moved by exactly the number of commits (one
serial per UPDATE, no gaps), with every node serving the same last serial.

    .venv/bin/python -m bench.updates --per-node 1000 --in-flight 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.name
import dns.rcode
import dns.tsig
import dns.update

from bench import wire
from bench.convergence import ZONE_TEXT, Stats
from bench.procs import (
    BenchError,
    ProcessSet,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_serial,
    write_kek,
)

ZONE = "conv.test."


async def _node_load(host: str, port: int, tag: str, per_node: int, in_flight: int,
                     ring: dict) -> tuple[list[float], dict[str, int], int]:  # type: ignore[type-arg]
    sem = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    rcodes: dict[str, int] = {}
    retries = 0

    async def one(i: int) -> None:
        nonlocal retries
        name = f"{tag}-{i}.{ZONE}"
        u = dns.update.UpdateMessage(ZONE, keyring=ring)
        u.absent(name)
        u.add(name, 60, "A", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        async with sem:
            t0 = time.perf_counter()
            for _ in range(20):
                try:
                    fn = dns.asyncquery.tcp if i % 2 else dns.asyncquery.udp
                    resp = await fn(u, host, port=port, timeout=5)
                    break
                except (dns.exception.Timeout, OSError):
                    retries += 1
            else:
                raise BenchError(f"no answer to the UPDATE of {name}")
            latencies.append(time.perf_counter() - t0)
        rcodes[name] = resp.rcode()

    await asyncio.gather(*(one(i) for i in range(per_node)))
    return latencies, rcodes, retries


def run(args: argparse.Namespace, ps: ProcessSet) -> list[str]:
    from node.api.client import ApiClient
    from node.zones.model import parse_zone_name

    etcd = start_etcd(ps, cpus=None)
    prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
    kek = write_kek(ps.workdir)
    nodes = [start_node(ps, f"n{i}", etcd, prefix, kek_file=kek) for i in (1, 2, 3)]
    with ApiClient(nodes[0][1].api) as api:
        api.create_zone(parse_zone_name(ZONE), text=ZONE_TEXT)
        key = api.add_tsig_key("bench-key")
    for proc, addr in nodes:
        wait_serial(proc, addr.host, addr.dns_port, ZONE, None, 30)
    start = wire.serial_of(nodes[0][1].host, nodes[0][1].dns_port, ZONE)
    assert start is not None
    ring = {key.name: dns.tsig.Key(key.name, key.secret, dns.tsig.HMAC_SHA256)}

    async def load() -> list:  # type: ignore[type-arg]
        return await asyncio.gather(*(
            _node_load(a.host, a.dns_port, a.node_id, args.per_node, args.in_flight, ring)
            for _, a in nodes))

    t0 = time.perf_counter()
    results = asyncio.run(load())
    elapsed = time.perf_counter() - t0
    latencies = [x for r in results for x in r[0]]
    rcodes = {k: v for r in results for k, v in r[1].items()}
    retries = sum(r[2] for r in results)
    total = 3 * args.per_node
    print(f"{total} UPDATEs through 3 nodes, {args.in_flight} in flight per node: "
          f"{total / elapsed:.0f} UPDATEs/s ({elapsed:.1f} s), {retries} UDP retries")
    print(Stats.of(latencies).line("acknowledgement"))
    failures = []
    bad = {k: dns.rcode.to_text(v) for k, v in rcodes.items()
           if v not in (dns.rcode.NOERROR, dns.rcode.YXDOMAIN)}
    if bad:
        failures.append(f"{len(bad)} UPDATEs failed, e.g. {next(iter(bad.items()))}")
    end = start + total  # every UPDATE commits exactly once (a retry answers YXDOMAIN)
    for proc, addr in nodes:
        try:
            wait_serial(proc, addr.host, addr.dns_port, ZONE, end, 60)
        except BenchError as exc:
            failures.append(f"{addr.node_id}: {exc} (serves "
                            f"{wire.serial_of(addr.host, addr.dns_port, ZONE)})")
    if not failures:
        print(f"serial {start} -> {end}: one serial per UPDATE on every node")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.updates", description=__doc__.split("\n\n")[0])
    p.add_argument("--per-node", type=int, default=1000)
    p.add_argument("--in-flight", type=int, default=50)
    p.add_argument("--workdir", type=Path, help="keep configs and logs here")
    args = p.parse_args(argv)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-upd-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    ps = ProcessSet(workdir)
    stop_on_sigterm()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    try:
        failures = run(args, ps)
    except (BenchError, OSError) as exc:
        sys.stderr.write(f"bench.updates: {exc}\n(work dir kept: {workdir})\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench.updates: interrupted\n")
        return 1
    finally:
        ps.close()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if failures:
        sys.stderr.write("bench.updates: FAILED\n  " + "\n  ".join(failures)
                         + f"\n(work dir kept: {workdir})\n")
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
