"""3-member etcd faults: how long each node took to recover, per scenario.

    .venv/bin/python -m bench.etcd_faults [--rounds 3]

Runs the fault tests of `tests/cluster/test_etcd_members.py` (three real nodes,
a real 3-member etcd on loopback, node timeout 1 s, lease TTL 4 s, etcd
election timeout 250 ms) `--rounds` times; the tests write what they measured
to a JSON file, and this prints, per scenario and node, the median, minimum
and maximum over the rounds. The partition scenario needs root and iptables
(it is skipped otherwise). What each figure measures:

- member cut off: from a write acknowledged through n2 until n1 (whose watch
  was on the cut member) serves it;
- one member killed: from the kill until each node's write is acknowledged,
  the nodes written one after another;
- quorum lost, then back: from restarting the two killed members until each
  node's write (retried at once, in parallel) is acknowledged;
- leader paused: from SIGSTOP of the etcd leader until each node's write
  (retried at once, in parallel) is acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/cluster/test_etcd_members.py"


def one_round() -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        env = {**os.environ, "DNSCLUSTER_FAULT_TIMES": str(out)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )
        if proc.returncode:
            raise SystemExit(f"the fault tests failed:\n{proc.stdout[-4000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load = os.getloadavg()
    runs = [one_round() for _ in range(args.rounds)]
    print(f"{args.rounds} rounds from {started}, load average at start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs")
    for scenario in runs[0]:
        print(f"\n{scenario}")
        for node in runs[0][scenario]:
            values = [r[scenario][node] for r in runs if node in r.get(scenario, {})]
            print(f"  {node:34} median {statistics.median(values):5.2f} s   "
                  f"min {min(values):5.2f} s   max {max(values):5.2f} s")


if __name__ == "__main__":
    main()
