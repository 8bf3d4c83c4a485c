"""Peak and current memory of a benchmark's process trees, sampled by a thread.

Every `interval` (1 s) the tracker reads the PSS of each named process tree
(a node and its workers, etcd) from /proc/PID/smaps_rollup, summed over the
tree (`bench.procs.pss_bytes`), and the machine's MemAvailable. It keeps,
per step label (`step(label)` switches it), the peak of each tree, the peak
of the total and the lowest MemAvailable, and the last sample: what a
1M-name run on several nodes needs to say whether the machine's RAM holds
it. With `csv`, every sample is also appended there (MiB), so a run killed
for memory keeps its series. Reading smaps_rollup walks the page tables of a big process; at one
sample a second that costs a few per cent of a core.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bench.procs import pss_bytes


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


class MemTracker:
    """Samples PSS of `trees` (name -> root PID) every `interval` seconds in a thread."""

    def __init__(self, trees: dict[str, int], interval: float = 1.0,
                 csv: Path | None = None) -> None:
        self.trees = dict(trees)
        self.csv = csv  # one line per sample (a run killed for memory keeps its series)
        self.t0 = time.monotonic()
        self.interval = interval
        self.label = "start"
        self.peaks: dict[str, dict[str, float]] = {}
        self.last: dict[str, int] = {}
        self.samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memtrack", daemon=True)

    def start(self) -> MemTracker:
        self._thread.start()
        return self

    def step(self, label: str) -> None:
        """Peaks from now on are recorded under `label`."""
        with self._lock:
            self.label = label

    def sample(self) -> dict[str, int]:
        """One sample now: PSS per tree, `total`, and `mem_available`, in bytes."""
        now = {name: pss_bytes(pid) for name, pid in self.trees.items()}
        now["total"] = sum(now.values())
        now["mem_available"] = mem_available()
        with self._lock:
            peaks = self.peaks.setdefault(self.label, {"seconds": 0.0})
            for key, value in now.items():
                if key == "mem_available":
                    peaks[key] = min(peaks.get(key, value), value)
                else:
                    peaks[key] = max(peaks.get(key, 0), value)
            peaks["seconds"] += self.interval
            self.last = now
            self.samples += 1
            label = self.label
        if self.csv is not None:
            new = not self.csv.exists()
            with self.csv.open("a") as fh:
                if new:
                    fh.write("seconds,step," + ",".join(now) + "\n")
                fh.write(f"{time.monotonic() - self.t0:.1f},{label},"
                         + ",".join(str(v >> 20) for v in now.values()) + "\n")
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, object]:
        """Stop sampling; the peaks per step label and the last sample."""
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            return {"peaks": {k: dict(v) for k, v in self.peaks.items()},
                    "last": dict(self.last), "samples": self.samples}


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def report(result: dict[str, object]) -> None:
    """Print the peaks per step and the last sample."""
    peaks = result["peaks"]
    assert isinstance(peaks, dict)
    for label, p in peaks.items():
        trees = ", ".join(f"{k} {gib(v)}" for k, v in p.items()
                          if k not in ("total", "mem_available", "seconds"))
        print(f"PSS peak during {label} ({p['seconds']:.0f} s): total {gib(p['total'])}; "
              f"{trees}; lowest MemAvailable {gib(p['mem_available'])}")
    last = result["last"]
    assert isinstance(last, dict)
    if last:
        print("PSS at the end: " + ", ".join(f"{k} {gib(v)}" for k, v in last.items()))
