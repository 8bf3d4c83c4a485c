"""Where the CPU went and who waited for it: per-thread samples of a benchmark's processes.

Samples, every `--interval` (20 ms), every thread of every process whose
working directory is the benchmark's work dir (`bench/procs.py` starts etcd
and the nodes there) and of their descendants (serving workers, signing
pools): CPU time (utime+stime), nice, and the scheduler's run-queue wait
(`/proc/<pid>/task/<tid>/schedstat`: time runnable but not running). A
thread's wait within one sample window is how long it was ready to run and
was not given a core: for a serving worker's one thread, the floor under an
answer's latency while the machine is busy.

Printed per process kind (control = `dns-node`, worker = `node.serving`,
pool = the signing pool, etcd) and per thread: CPU seconds, nice, and the
run-queue wait (total, and windows whose wait was over 10 ms / over 50 ms).
Run it beside a benchmark that keeps its work dir:

    .venv/bin/python -m bench.sched --workdir /dev/shm/conv --out sched.json &
    .venv/bin/python -m bench.convergence --workdir /dev/shm/conv ...

It stops when every process it followed is gone (or after `--seconds`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class ThreadStat:
    pid: int
    tid: int
    kind: str
    nice: int = 0
    cpu: float = 0.0  # seconds, last sample
    cpu0: float | None = None
    wait: float = 0.0  # seconds runnable and not running, last sample
    wait0: float | None = None
    windows_over_10ms: int = 0
    windows_over_50ms: int = 0
    worst_window: float = 0.0
    worst_at: float = 0.0
    waits: list[tuple[float, float]] = field(default_factory=list)  # (t, wait in window) > 5 ms


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _kind(pid: int) -> str:
    cmd = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")
    if "node.serving" in cmd:
        return "worker"
    if "node.work.child" in cmd or "multiprocessing" in cmd:  # the pool (before: spawn's)
        return "pool"
    if "dns-node" in cmd:
        return "control"
    if "etcd" in cmd:
        return "etcd"
    return "other"


def _roots(workdir: Path) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(os.readlink(f"/proc/{entry}/cwd")) == workdir:
                    found.add(int(entry))
            except OSError:
                pass
    return found


def _tree(roots: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    out = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in out and pid not in out:
                out.add(pid)
                grew = True
    return out


def sample(threads: dict[int, ThreadStat], pids: set[int], kinds: dict[int, str],
           now: float) -> None:
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tids:
            tid = int(t)
            stat = _read(f"/proc/{pid}/task/{tid}/stat")
            sched = _read(f"/proc/{pid}/task/{tid}/schedstat")
            if not stat or not sched:
                continue
            f = stat.rpartition(")")[2].split()
            cpu = (int(f[11]) + int(f[12])) / CLK_TCK
            wait = int(sched.split()[1]) / 1e9
            th = threads.get(tid)
            if th is None:
                th = threads[tid] = ThreadStat(pid, tid, kinds.setdefault(pid, _kind(pid)))
                th.cpu0, th.wait0 = cpu, wait
            else:
                window = wait - th.wait
                if window > 0.010:
                    th.windows_over_10ms += 1
                if window > 0.050:
                    th.windows_over_50ms += 1
                if window > th.worst_window:
                    th.worst_window, th.worst_at = window, now
                if window > 0.005:
                    th.waits.append((now, window))
            th.nice, th.cpu, th.wait = int(f[16]), cpu, wait


def report(threads: dict[int, ThreadStat], t0: float) -> dict[str, object]:
    out: dict[str, object] = {}
    by_kind: dict[str, list[ThreadStat]] = {}
    for th in threads.values():
        by_kind.setdefault(th.kind, []).append(th)
    for kind, ths in sorted(by_kind.items()):
        cpu = sum(t.cpu - (t.cpu0 or 0) for t in ths)
        wait = sum(t.wait - (t.wait0 or 0) for t in ths)
        print(f"{kind:8} threads {len(ths):3}  CPU {cpu:7.1f} s  run-queue wait {wait:7.1f} s")
        rows = sorted(ths, key=lambda t: -(t.cpu - (t.cpu0 or 0)))
        for t in rows:
            used = t.cpu - (t.cpu0 or 0)
            if used < 0.5 and t.worst_window < 0.05:
                continue
            print(f"   pid {t.pid:7} tid {t.tid:7} nice {t.nice:3}  CPU {used:6.1f} s  wait "
                  f"{t.wait - (t.wait0 or 0):6.1f} s  windows >10ms {t.windows_over_10ms:5}"
                  f"  >50ms {t.windows_over_50ms:4}  worst {t.worst_window * 1000:5.0f} ms"
                  f" at +{t.worst_at - t0:6.1f} s")
        out[kind] = [{"pid": t.pid, "tid": t.tid, "nice": t.nice, "cpu_s": t.cpu - (t.cpu0 or 0),
                      "wait_s": t.wait - (t.wait0 or 0), "over_10ms": t.windows_over_10ms,
                      "over_50ms": t.windows_over_50ms, "worst_s": t.worst_window,
                      "waits": [(round(a - t0, 3), round(w, 4)) for a, w in t.waits]}
                     for t in rows]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.sched", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--seconds", type=float, default=3600.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    workdir = args.workdir.resolve()
    threads: dict[int, ThreadStat] = {}
    kinds: dict[int, str] = {}
    t0 = time.monotonic()
    pids: set[int] = set()
    seen = False
    last_scan = 0.0
    try:
        while time.monotonic() - t0 < args.seconds:
            now = time.monotonic()
            if now - last_scan > 0.5:
                last_scan = now
                pids = _tree(_roots(workdir)) if workdir.exists() else set()
                if pids:
                    seen = True
                elif seen:
                    break
            sample(threads, pids, kinds, now)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    result = report(threads, t0)
    result["t0_monotonic"] = t0  # CLOCK_MONOTONIC is system-wide: lines up with the prober's
    if args.out:
        args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
