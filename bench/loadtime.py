"""Import-to-answer time: how long until every node answers an imported zone, per stage.

etcd and N nodes (3 by default, default serving workers) on loopback, one
key prefix for the run; `clusterctl zone import` of the `bench.zonegen`
zone (100k names by default) through node 1, timed from the command's
start until each node answers the new serial (an SOA query every 20 ms per
node). The nodes log at INFO, so their events give the stages (seconds
since the command started, per node):

    parse    IMPORT_PROGRESS "writing", the first (node 1: the text parsed; one in
             pieces has some RRsets written by then)
    write    IMPORT_PROGRESS "activating" (node 1: every batch written)
    flip     ZONE_RELOAD_STARTED (the node's watch saw the new head)
    read     ZONE_RELOAD_DONE: read_s (range read of the generation)
    decode   ZONE_RELOAD_DONE: decode_s (stored values into RRsets)
    image    SERVING_IMAGE_BUILT: seconds (the full image)
    answer   the node answered the serial

Then the CPU seconds each node's process tree (control process, serving
workers, pools, the image child once reaped) and etcd used from the
command's start until every node answered: on a shared machine these
compare before/after better than the wall times. Also (sampled every
`SAMPLE` s): each node's CPU from its flip until it answered, all of them
and etcd from the first flip until the last answer, and the CPU of all
until every node is idle again (work moved past the answer still counts
there).

    .venv/bin/python -m bench.loadtime [--names 100000] [--nodes 3] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench import wire, zonegen
from bench.availability import clusterctl
from bench.procs import (
    NodeAddr,
    Proc,
    ProcessSet,
    cpu_seconds,
    own_cpu_seconds,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_idle,
)
from bench.scratch import load_average, scratch_run

STAGES = {1841: "progress", 1205: "flip", 1855: "reload", 1856: "image", 1842: "done"}
SAMPLE = 0.1  # seconds between CPU samples (post-flip window)


class Sampler(threading.Thread):
    """(time, CPU of each node's tree, etcd's CPU) every `SAMPLE` s until `stop`."""

    def __init__(self, pids: list[int], etcd: int | None) -> None:
        super().__init__(daemon=True)
        self.pids, self.etcd = pids, etcd
        self.samples: list[tuple[float, list[float], float]] = []
        self.done = threading.Event()

    def take(self) -> tuple[float, list[float], float]:
        return (time.time(), [cpu_seconds(p) for p in self.pids],
                own_cpu_seconds(self.etcd) if self.etcd else 0.0)

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(self.take())
            self.done.wait(SAMPLE)

    def at(self, when: float) -> tuple[float, list[float], float]:
        """The last sample taken at or before `when` (the first one if none)."""
        before = [s for s in self.samples if s[0] <= when]
        return before[-1] if before else self.samples[0]

    def after(self, when: float) -> tuple[float, list[float], float]:
        """The first sample taken at or after `when` (the last one if none)."""
        later = [s for s in self.samples if s[0] >= when]
        return later[0] if later else self.samples[-1]


def _answered(a: NodeAddr, zone: str, above: int, t0: float, out: dict[str, float],
              timeout: float) -> None:
    while time.time() - t0 < timeout:
        serial = wire.serial_of(a.host, a.dns_port, zone, timeout=0.5)
        if serial is not None and serial > above:
            out[a.node_id] = time.time() - t0
            return
        time.sleep(0.02)


def events(proc: Proc, since: float) -> list[tuple[float, dict[str, object]]]:
    """(seconds since `since`, event) of the stage events in `proc`'s log after `since`."""
    found = []
    for line in proc.log.read_text(errors="replace").splitlines():
        head, _, body = line.partition(" {")
        if not body or '"event": ' not in body:
            continue
        try:
            ev = json.loads("{" + body)
            stamp = datetime.strptime(head[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        except ValueError:
            continue
        at = stamp.timestamp() - since
        if ev.get("event") in STAGES and at > -1:
            found.append((at, ev))
    return found


def stages(proc: Proc, since: float) -> str:
    parts: list[str] = []
    for at, ev in events(proc, since):
        kind = STAGES[int(ev["event"])]  # type: ignore[call-overload]
        if kind == "progress" and ev.get("stage") == "writing" \
                and not any(p.startswith("parsed") for p in parts):
            parts.append(f"parsed {at:.2f}")  # the first: a text parsed in pieces has some
        elif kind == "progress" and ev.get("stage") == "activating":  # written already
            parts.append(f"written {at:.2f}")
        elif kind == "flip":
            parts.append(f"flip {at:.2f}")
        elif kind == "reload":
            cpu = f" (CPU {ev['decode_cpu_s']} s in all)" if "decode_cpu_s" in ev else ""
            parts.append(f"read {ev['read_s']} decode {ev['decode_s']}{cpu} (end {at:.2f})")
        elif kind == "image":
            parts.append(f"image {ev['seconds']} (CPU {ev.get('cpu_s')}, child "
                         f"{ev.get('child_cpu_s')}, fork {ev.get('fork_ms')} ms) (end {at:.2f})")
        elif kind == "done":
            parts.append(f"import done {at:.2f}")
    return ", ".join(parts)


def run_once(ps: ProcessSet, nodes: list[tuple[Proc, NodeAddr]], zone_file: Path, zone: str,
             timeout: float) -> dict[str, float]:
    above = wire.serial_of(nodes[0][1].host, nodes[0][1].dns_port, zone, timeout=0.5) or 0
    answered: dict[str, float] = {}
    etcd = [p for p in ps.procs if p.name == "etcd"]
    cpu0 = [(cpu_seconds(p.pid), own_cpu_seconds(p.pid)) for p, _ in nodes]
    etcd0 = own_cpu_seconds(etcd[0].pid) if etcd else 0.0
    sampler = Sampler([p.pid for p, _ in nodes], etcd[0].pid if etcd else None)
    sampler.start()
    t0 = time.time()
    pollers = [threading.Thread(target=_answered, args=(a, zone, above, t0, answered, timeout))
               for _, a in nodes]
    for t in pollers:
        t.start()
    clusterctl(nodes[0][1], "zone", "import", zone, str(zone_file), timeout=timeout)
    acked = time.time() - t0
    for t in pollers:
        t.join()
    cpu = [(cpu_seconds(p.pid) - tree, own_cpu_seconds(p.pid) - own)
           for (p, _), (tree, own) in zip(nodes, cpu0, strict=True)]
    etcd_cpu = (own_cpu_seconds(etcd[0].pid) if etcd else 0.0) - etcd0
    print(f"clusterctl acknowledged after {acked:.2f} s; answered: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(answered.items())))
    for proc, _ in nodes:
        print(f"  {proc.name}: {stages(proc, t0)}")
    per_node = ", ".join(f"{p.name} {tree:.1f} (control {own:.1f})"
                         for (p, _), (tree, own) in zip(nodes, cpu, strict=True))
    print(f"CPU s until answered: {per_node}, etcd {etcd_cpu:.1f}; "
          f"all {sum(t for t, _ in cpu) + etcd_cpu:.1f}")
    sampler.done.set()
    sampler.join()
    _after_flip(sampler, nodes, t0, answered)
    for proc, _ in nodes:
        wait_idle(proc.pid, timeout=timeout)
    end = sampler.take()
    idle_nodes = sum(end[1]) - sum(tree for tree, _ in cpu0)
    print(f"CPU s until every node was idle again ({end[0] - t0:.1f} s): all "
          f"{idle_nodes + end[2] - etcd0:.1f} (nodes {idle_nodes:.1f}, etcd {end[2] - etcd0:.1f})")
    return answered


def _after_flip(sampler: Sampler, nodes: list[tuple[Proc, NodeAddr]], t0: float,
                answered: dict[str, float]) -> None:
    """Each node's CPU from its flip until it answered; all, first flip to last answer."""
    flips: dict[str, float] = {}
    for proc, a in nodes:
        at = [t for t, ev in events(proc, t0)
              if STAGES[int(ev["event"])] == "flip"]  # type: ignore[call-overload]
        if at and a.node_id in answered:
            flips[a.node_id] = t0 + at[-1]
    if len(flips) != len(nodes):
        print("CPU s after the flip: not every node logged its flip and answered")
        return
    parts = []
    for i, (_, a) in enumerate(nodes):
        start, end = sampler.at(flips[a.node_id]), sampler.after(t0 + answered[a.node_id])
        parts.append(f"{a.node_id} {end[1][i] - start[1][i]:.1f}")
    first = sampler.at(min(flips.values()))
    last = sampler.after(t0 + max(answered.values()))
    print(f"CPU s from its flip until answered: {', '.join(parts)}; all from the first flip "
          f"to the last answer {sum(last[1]) - sum(first[1]) + last[2] - first[2]:.1f} "
          f"(etcd {last[2] - first[2]:.1f}, {last[0] - first[0]:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.loadtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--runs", type=int, default=2,
                   help="imports in a row: the first creates the zone, the next replace it")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    stop_on_sigterm()
    with scratch_run("bench-load-") as ps:
        etcd = start_etcd(ps, cpus=None, nice=0)
        prefix = f"/bench-load-{uuid.uuid4().hex[:8]}/"
        nodes = [start_node(ps, f"n{i}", etcd, prefix, log_level="INFO")
                 for i in range(1, args.nodes + 1)]
        gen = zonegen.generate(ps.workdir / "zone", args.names)
        print(f"{gen.names} names, {gen.rrsets} RRsets; load average "
              f"{load_average()} (2 CPUs)")
        for i in range(args.runs):
            if i:  # a new serial for the next import
                text = gen.zone_file.read_text().replace(" 1 7200 3600", f" {i + 1} 7200 3600", 1)
                gen.zone_file.write_text(text)
            run_once(ps, nodes, gen.zone_file, gen.origin, args.timeout)
        print(f"load average {load_average()} (2 CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
