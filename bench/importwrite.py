"""One node's import until every batch is written: the parse and the writes, without watchers.

A private etcd (as `bench.loadtime` starts it: one CPU, nice 10) and, in this
process, a `ZoneRepository` with the node's worker pool (one process, nice
10, idle after 1 s: each import spawns it, as on an idle node); the
`bench.zonegen` zone (100k names by default) is imported `--runs` times
(the first creates the zone, the others replace it). Per import: seconds
from the call until the parse ended (the first "writing" progress: a text
parsed in pieces has some RRsets written by then), until every batch was
written ("activating", or the create's return), until the call returned (old
generation deleted), and the CPU seconds of this process and its pool (counted
once the pool is reaped) and of etcd. No other node watches: the replicas'
decoding, which shares the machine in `bench.loadtime`, is not here, so this
isolates the importing node's critical path (issue 10, session 13).

    PYTHONPATH=$PWD .venv/bin/python -m bench.importwrite [--names 100000] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time

import dns.name

from bench import zonegen
from bench.procs import cpu_seconds, start_etcd
from bench.scratch import load_average, scratch_run
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.work.pool import worker_pool
from node.zones.repository import ZoneRepository

IDLE = 1.0  # seconds before the pool's process stops
REAPED = 3.0  # seconds waited after an import, so the pool's CPU is in RUSAGE_CHILDREN


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool's processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def _run(url: str, etcd_pid: int, text: str, origin: str, runs: int) -> None:
    zone = dns.name.from_text(origin)
    client = EtcdClient([url], timeout=30)
    await client.connect()
    pool = worker_pool(1, idle=IDLE)
    repo = ZoneRepository(client, KeyLayout("/importwrite/dnscluster/v1/"), pool=pool)
    try:
        for run in range(1, runs + 1):
            await asyncio.sleep(IDLE + 1.5)  # the pool is stopped: this import spawns it
            marks: dict[str, float] = {}
            start, cpu, etcd = time.monotonic(), _own_cpu(), cpu_seconds(etcd_pid)

            def progress(stage: str, done: int, total: int, start: float = start,
                         marks: dict[str, float] = marks) -> None:
                marks.setdefault(stage, time.monotonic() - start)

            await repo.import_zone(zone, text, progress=progress)
            end, etcd_used = time.monotonic() - start, cpu_seconds(etcd_pid) - etcd
            await asyncio.sleep(REAPED)
            print(f"run {run}: parsed {marks.get('writing', -1):.2f} s, written "
                  f"{marks.get('activating', end):.2f} s, returned {end:.2f} s; CPU node+pool "
                  f"{_own_cpu() - cpu:.2f} s, etcd {etcd_used:.2f} s; load {load_average()}",
                  flush=True)
    finally:
        pool.shutdown()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=zonegen.DEFAULT_NAMES)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    with scratch_run("importwrite-") as ps:
        generated = zonegen.generate(ps.workdir / "zone", names=args.names)
        text = generated.zone_file.read_text()
        url = start_etcd(ps)
        etcd = next(p for p in ps.procs if p.name == "etcd")
        print(f"{args.names} names, {generated.rrsets} RRsets, {len(text)} characters; "
              f"load average {load_average()} ({os.cpu_count()} CPUs)", flush=True)
        asyncio.run(_run(url, etcd.pid, text, generated.origin, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
