"""Who had the CPU while an answer was slow: per-process scheduler samples of a benchmark run.

A diagnostic for `bench.availability --sched-trace`: a thread samples, every
`interval` (10 ms), for each node process tree (the control process, its
serving workers, its signing pool and forked image children):

* each serving worker's main thread: CPU time run and time spent runnable but
  waiting for a CPU (`/proc/PID/schedstat`: both in ns, cumulative), and its
  major page faults (`/proc/PID/stat`);
* every other process of the tree: CPU time (`/proc/PID/stat` utime + stime,
  clock ticks);
* a few more threads given by id (`extra`: the prober's thread; the kernel's
  `ksoftirqd/N`, which delivers loopback packets once softirq work is deferred
  to it): run and wait time, as a worker's;
* the machine: the runnable-task count (`/proc/loadavg`), busy time and the
  time the hypervisor gave the vCPUs to others (steal, `/proc/stat`).

`explain(node, sent, latency)` then says, for the window of one slow answer,
what each of the node's workers did (ran, waited for a CPU, faulted) and which
processes used the CPUs meanwhile, so a slow answer is told apart as the
worker's own work (it ran), CPU contention (it waited runnable), or neither
(it slept: blocked, or nothing arrived).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from bench.procs import descendants

TICK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _cmd(pid: int) -> str:
    try:
        return _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    except OSError:
        return ""


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "control"
    cmd = _cmd(pid)
    if "node.serving" in cmd:
        return "worker"
    if "node.work.child" in cmd or "multiprocessing" in cmd or "spawn_main" in cmd:
        return "signing"
    return "child"  # a forked image child (same command line as its parent) or other


def _softirq_threads() -> dict[str, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                comm = _read(f"/proc/{entry}/comm").strip()
                if comm.startswith("ksoftirqd/"):
                    out[comm] = int(entry)
    return out


@dataclass(slots=True)
class Sample:
    t: float  # monotonic
    runnable: int
    busy: float  # machine busy seconds (all CPUs), cumulative
    steal: float  # seconds of steal (all CPUs), cumulative
    workers: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # run ns, wait ns, maj
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds (other processes)
    extra: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> run ns, wait ns


class SchedTrace:
    """Sample the process trees of `roots` ({node name: control pid}) until `stop()`."""

    def __init__(self, roots: dict[str, int], interval: float = 0.01,
                 extra: dict[str, int] | None = None) -> None:
        self.roots = roots
        self.extra = {**(extra or {}), **_softirq_threads()}  # label -> tid
        self.interval = interval
        self.samples: list[Sample] = []
        self.times: list[float] = []
        self.kinds: dict[int, tuple[str, str]] = {}  # pid -> (node, kind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedtrace", daemon=True)

    def start(self) -> SchedTrace:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _refresh(self) -> None:
        for node, root in self.roots.items():
            for pid in descendants(root):
                if pid not in self.kinds:
                    self.kinds[pid] = (node, _kind(pid, root))

    def _run(self) -> None:
        last_refresh = 0.0
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            if now - last_refresh > 0.5:
                self._refresh()
                last_refresh = now
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._sample(now)

    def _sample(self, now: float) -> None:
        runnable = int(_read("/proc/loadavg").split()[3].split("/")[0])
        cpu_line = _read("/proc/stat").split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in cpu_line[:8]]
        busy = (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / TICK
        s = Sample(now, runnable, busy, ticks[7] / TICK)
        for label, tid in self.extra.items():
            with contextlib.suppress(OSError, ValueError):
                run, wait, _ = _read(f"/proc/{tid}/schedstat").split()
                s.extra[label] = (int(run), int(wait))
        for pid, (_, kind) in list(self.kinds.items()):
            try:
                stat = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
                if kind == "worker":
                    run, wait, _ = _read(f"/proc/{pid}/schedstat").split()
                    s.workers[pid] = (int(run), int(wait), int(stat[9]))
                else:
                    s.cpu[pid] = (int(stat[11]) + int(stat[12])) / TICK
            except (OSError, IndexError, ValueError):
                continue  # gone
        self.samples.append(s)
        self.times.append(now)

    def explain(self, node: str, sent: float, latency: float) -> str:
        """One line per worker of `node`, and the top CPU users, over [sent, sent+latency]."""
        i = max(0, bisect_right(self.times, sent) - 1)
        j = min(len(self.samples) - 1, bisect_left(self.times, sent + latency))
        if j <= i:
            return "  (no samples)"
        a, b = self.samples[i], self.samples[j]
        span = b.t - a.t
        lines = [f"  window {span * 1000:.0f} ms: machine busy {(b.busy - a.busy) * 1000:.0f} "
                 f"CPU-ms, steal {(b.steal - a.steal) * 1000:.0f} ms, runnable max "
                 f"{max(s.runnable for s in self.samples[i:j + 1])}"]
        for pid, (n, kind) in self.kinds.items():
            if n != node or kind != "worker" or pid not in a.workers or pid not in b.workers:
                continue
            run = (b.workers[pid][0] - a.workers[pid][0]) / 1e6
            wait = (b.workers[pid][1] - a.workers[pid][1]) / 1e6
            maj = b.workers[pid][2] - a.workers[pid][2]
            # the longest stretch between samples where it neither ran nor... : its own run
            steps = [(s2.workers.get(pid, (0, 0, 0))[0] - s1.workers.get(pid, (0, 0, 0))[0]) / 1e6
                     for s1, s2 in zip(self.samples[i:j], self.samples[i + 1:j + 1], strict=True)]
            lines.append(f"  {node} worker {pid}: ran {run:.1f} ms (most in one sample "
                         f"{max(steps, default=0):.1f}), waited runnable {wait:.1f} ms, "
                         f"major faults {maj}")
        for label in self.extra:
            if label in a.extra and label in b.extra:
                lines.append(f"  {label}: ran {(b.extra[label][0] - a.extra[label][0]) / 1e6:.1f} "
                             f"ms, waited runnable "
                             f"{(b.extra[label][1] - a.extra[label][1]) / 1e6:.1f} ms")
        users: dict[str, float] = {}
        for pid, (n, kind) in self.kinds.items():
            if pid in a.cpu and pid in b.cpu:
                key = f"{n}:{kind}"
                users[key] = users.get(key, 0.0) + b.cpu[pid] - a.cpu[pid]
        top = sorted(users.items(), key=lambda kv: -kv[1])[:5]
        lines.append("  CPU by node process: " + ", ".join(
            f"{k} {v * 1000:.0f} ms" for k, v in top if v > 0))
        return "\n".join(lines)
