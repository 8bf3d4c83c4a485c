"""What one pass of the generation sweep costs at N zones: etcd calls, CPU and wall time.

A private etcd; `--zones` zones written straight into it (config, head, gen and
two data keys each, as `zone create` leaves them, 20 zones a transaction) with
nothing to sweep; then, interleaved `--runs` times, a full pass (every zone
with keys under `zones/`: the only pass before issue 10 session 9, and still
this node's first and every `FULL_EVERY`-th) and a marked pass (the zones
under `unswept/` only; none, here: the cluster's steady state), and a marked
pass with `--marked` zones marked (as after that many bulk writes). Each line:
etcd calls, wall seconds, this process's CPU seconds, etcd's CPU seconds. Run
from a tree before the marks (PYTHONPATH), it measures that tree's one pass.

    .venv/bin/python -m bench.sweepcost --zones 1000 10000 --runs 2
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.name

from bench.procs import ProcessSet, cpu_seconds, start_etcd, stop_on_sigterm
from node.config import Config
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout, name_component
from node.store.session import Session
from node.store.txn import Op
from node.zones.model import ZoneConfig, ZoneHead
from node.zones.repository import ZoneRepository
from node.zones.sweep import GenerationSweep

GENERATION = 7


class CountingClient(EtcdClient):
    """Counts its KV calls (reads, writes, transactions)."""

    calls = 0

    async def _unary(self, service: str, method: str, req: Any, *, idempotent: bool) -> Any:
        if service == "KV":
            self.calls += 1
        return await super()._unary(service, method, req, idempotent=idempotent)


async def populate(client: EtcdClient, layout: KeyLayout, first: int, count: int) -> None:
    """`count` zones from number `first` on, each as a created zone leaves them."""
    ops: list[Op] = []
    for i in range(first, first + count):
        zone = dns.name.from_text(f"z{i:06d}.sweep.test.")
        data = layout.data_prefix(zone, GENERATION) + name_component(zone)
        ops += [Op.put(layout.config_key(zone), ZoneConfig(name=zone).to_json()),
                Op.put(layout.head_key(zone), ZoneHead(1, GENERATION, 0).to_json()),
                Op.put(layout.gen_key(zone), b""),
                Op.put(f"{data}/SOA", b'{"ttl": 3600, "rdata": []}'),
                Op.put(f"{data}/NS", b'{"ttl": 3600, "rdata": []}')]
        if len(ops) >= 100:
            await client.txn(when=[], then=ops)
            ops = []
    if ops:
        await client.txn(when=[], then=ops)


async def one(client: CountingClient, sweep: GenerationSweep, etcd_pid: int, what: str,
              full: bool, zones: int) -> None:
    client.calls = 0
    cpu, etcd_cpu, t0 = time.process_time(), cpu_seconds(etcd_pid), time.perf_counter()
    # a tree before the marks (issue 10 session 8) has one pass: `sweep()`, every zone
    swept = await (getattr(sweep, "_every_zone", sweep.sweep)() if full else sweep._marked())
    wall = time.perf_counter() - t0
    print(f"{zones:>7} zones  {what:<22} calls {client.calls:>7}  wall {wall:7.3f} s  "
          f"cpu {time.process_time() - cpu:7.3f} s  etcd cpu "
          f"{cpu_seconds(etcd_pid) - etcd_cpu:7.3f} s  swept {swept}", flush=True)


async def run(url: str, etcd_pid: int, sizes: list[int], runs: int, marked: int) -> None:
    client = CountingClient([url], timeout=30.0)
    await client.connect()
    session = Session(client, 10, keepalive_interval=2.0)
    task = asyncio.create_task(session.run())
    try:
        await session.wait_ready(10)
        layout = KeyLayout("/sweepcost/dnscluster/v1/")
        repo = ZoneRepository(client, layout)
        sweep = GenerationSweep(client, layout, repo.bulk, session,
                                NodeDirectory(client, layout), Config(node_id="bench"))
        have = 0
        for zones in sizes:
            await populate(client, layout, have, zones - have)
            have = zones
            marks = hasattr(layout, "unswept_key")
            for _ in range(runs):  # A, B, A, B: the machine's load moves
                await one(client, sweep, etcd_pid, "full pass (every zone)", True, zones)
                if marks:
                    await one(client, sweep, etcd_pid, "marked pass (0 marked)", False, zones)
            if not marks:
                continue
            for i in range(0, zones, max(1, zones // marked)):
                zone = dns.name.from_text(f"z{i:06d}.sweep.test.")
                await client.put(layout.unswept_key(zone), b"")
            await one(client, sweep, etcd_pid, f"marked pass ({marked} marked)", False, zones)
            await one(client, sweep, etcd_pid, "marked pass (0 marked)", False, zones)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zones", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--marked", type=int, default=100)
    args = p.parse_args(argv)
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-sweepcost-")))
    try:
        url = start_etcd(ps, cpus=None, nice=0)
        etcd_pid = next(pr.pid for pr in ps.procs if pr.name == "etcd")
        asyncio.run(run(url, etcd_pid, sorted(args.zones), args.runs, args.marked))
    finally:
        ps.close()
        shutil.rmtree(ps.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
