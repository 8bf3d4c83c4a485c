"""What `bench.qps` measured, and how it prints it: one record per dnsperf run and per server's
memory, and the tables and ratios (ours / Knot) printed at the end of a run."""

from __future__ import annotations

from dataclasses import dataclass

from bench.dnsperf import PerfResult
from bench.procs import Proc


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One dnsperf run against one server, with the server's CPU time over the run."""

    server: str
    do_bit: bool
    signed: bool
    perf: PerfResult
    cpu_seconds: float
    mix: str = "bench"  # "bench" (the generated query file) or "flood" (random subdomains)
    wrapped: bool = False  # a flood run that reused names (its file was too short)

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
    """RSS and PSS (summed over the process tree) of a server, with and without the zone."""

    server: str
    rss_empty: int | None
    rss_loaded: int
    rss_after_runs: int
    rrsets: int
    load_seconds: float
    pss_loaded: int = 0
    pss_after_runs: int = 0
    processes: int = 1  # processes in the tree after the runs

    @property
    def bytes_per_rrset(self) -> float | None:
        if self.rss_empty is None or self.rrsets <= 0:
            return None  # no baseline, or --zone-file without --rrsets
        return (self.rss_loaded - self.rss_empty) / self.rrsets


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
    print("\nserver  mix    zone      DO  queries/s   avg ms  sd ms  p50 ms  p99 ms  lost     "
          "CPU us/q  busy  1-core q/s  rcodes")
    for r in runs:
        p = r.perf
        print(f"{r.server:7} {r.mix:6} {'signed' if r.signed else 'unsigned':8} "
              f"{int(r.do_bit):2}  "
              f"{p.qps:9.0f}  {_ms(p.avg_latency):>7} "
              f"{_ms(p.stddev_latency):>6} {_ms(p.p50):>7} {_ms(p.p99):>7}  {p.lost:<7}  "
              f"{r.cpu_us_per_query:8.2f}  {r.server_busy:4.0%}  {r.capacity_qps:10.0f}  "
              f"{p.rcodes}{'  WRAPPED: names reused' if r.wrapped else ''}")
    if any(r.server_busy < 0.9 for r in runs):
        print("note: a server used < 90% of its core, so its queries/s is bound by the client "
              "or other load,\n      not by the server: compare CPU us/q (and 1-core q/s = "
              "1e6 / CPU us/q) instead.")
    for mix, signed, do_bit in sorted({(r.mix, r.signed, r.do_bit) for r in runs}):
        key = (mix, signed, do_bit)
        ours = [r for r in runs if r.server == "node" and (r.mix, r.signed, r.do_bit) == key]
        knot = [r for r in runs if r.server == "knot" and (r.mix, r.signed, r.do_bit) == key]
        if ours and knot and knot[0].perf.qps > 0:
            o, k = ours[0], knot[0]
            what = f"{mix} mix, {'signed' if signed else 'unsigned'}, DO={int(do_bit)}"
            print(f"ratio ours/Knot ({what}): queries/s {o.perf.qps / k.perf.qps:.3f}, "
                  f"1-core capacity {o.capacity_qps / k.capacity_qps:.3f}, "
                  f"CPU per query {o.cpu_us_per_query / max(k.cpu_us_per_query, 1e-9):.2f}x")
    print("\nMemory, summed over each server's process tree (RSS counts shared pages once per "
          "process,\nPSS divides them among the processes):")
    print("server  procs  RSS empty MiB  RSS loaded MiB  RSS after MiB  PSS loaded MiB  "
          "PSS after MiB  bytes/RRset  load s")
    for m in mems:
        empty = "-" if m.rss_empty is None else f"{m.rss_empty / 2**20:.1f}"
        per = m.bytes_per_rrset
        print(f"{m.server:7} {m.processes:5}  {empty:>13}  {m.rss_loaded / 2**20:14.1f}  "
              f"{m.rss_after_runs / 2**20:13.1f}  {m.pss_loaded / 2**20:14.1f}  "
              f"{m.pss_after_runs / 2**20:13.1f}  {'-' if per is None else f'{per:.0f}':>11}  "
              f"{m.load_seconds:6.1f}")
    node = [m for m in mems if m.server == "node"]
    knot = [m for m in mems if m.server == "knot"]
    if node and knot and knot[0].rss_after_runs > 0:
        print(f"ratio node PSS / Knot RSS (after runs): "
              f"{node[0].pss_after_runs / knot[0].rss_after_runs:.2f}x")


