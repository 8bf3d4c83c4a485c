"""Running `dnsperf` pinned to a CPU and reading its summary and per-query latencies.

dnsperf 2.10 prints the average and standard deviation of latency but no
percentiles; with `-v` it prints one line per query (`> RCODE name type
latency`), which we write to a file in the work dir and read afterwards to
get p50/p99 (reading a pipe live would compete with dnsperf for its CPU).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError, binary


@dataclass(frozen=True, slots=True)
class PerfResult:
    """One dnsperf run: its summary and, with per-query output, latency percentiles."""

    sent: int
    completed: int
    lost: int
    qps: float
    avg_latency: float
    stddev_latency: float
    p50: float | None
    p99: float | None
    rcodes: str
    run_time: float


def _num(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text, re.M)
    if m is None:
        raise BenchError(f"dnsperf output has no {what}")
    return float(m.group(1))


def _percentiles(path: Path) -> tuple[float | None, float | None]:
    lat: list[float] = []
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith("> ") and not line.startswith("> T "):
                try:
                    lat.append(float(line.rsplit(None, 1)[1]))
                except (ValueError, IndexError):
                    continue
    if not lat:
        return None, None
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def run_dnsperf(host: str, port: int, query_file: Path, out: Path, *, duration: float,
                clients: int, outstanding: int, cpus: str | None, do_bit: bool,
                per_query: bool, timeout: float = 2.0) -> PerfResult:
    """Run dnsperf for `duration` seconds against host:port; output kept in `out`."""
    cmd = [binary("dnsperf"), "-s", host, "-p", str(port), "-d", str(query_file),
           "-l", str(duration), "-c", str(clients), "-q", str(outstanding), "-T", "1",
           "-t", str(timeout)]
    if do_bit:
        cmd.append("-D")
    if per_query:
        cmd.append("-v")
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    with open(out, "wb") as fh:
        try:
            res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                 timeout=duration + timeout + 60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"dnsperf did not finish; output in {out}") from exc
    # The summary is at the end; read only the tail of a possibly large -v file.
    with open(out, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 4096))
        tail = fh.read().decode(errors="replace")
    if res.returncode != 0 or "Statistics:" not in tail:
        raise BenchError(f"dnsperf failed (exit {res.returncode}); output in {out}:\n{tail}")
    p50, p99 = _percentiles(out) if per_query else (None, None)
    rc = re.search(r"Response codes:\s*(.*)$", tail, re.M)
    return PerfResult(
        sent=int(_num(r"Queries sent:\s+(\d+)", tail, "queries sent")),
        completed=int(_num(r"Queries completed:\s+(\d+)", tail, "queries completed")),
        lost=int(_num(r"Queries lost:\s+(\d+)", tail, "queries lost")),
        qps=_num(r"Queries per second:\s+([\d.]+)", tail, "queries per second"),
        avg_latency=_num(r"Average Latency \(s\):\s+([\d.]+)", tail, "average latency"),
        stddev_latency=_num(r"Latency StdDev \(s\):\s+([\d.]+)", tail, "latency stddev"),
        p50=p50,
        p99=p99,
        rcodes=rc.group(1).strip() if rc else "",
        run_time=_num(r"Run time \(s\):\s+([\d.]+)", tail, "run time"),
    )
