"""Two trees' incremental signing, taking turns block by block (A/B interleaved finely).

    .venv/bin/python -m bench.lockstep --a /work/main --b . [--names 20000] [--nsec] \
        [--changes 6000] [--block 200]

Starts `bench.signerstate --lockstep BLOCK` once per tree (`PYTHONPATH=<tree>`, the
script itself taken from this tree), lets both finish their full sign, then has them
make the same single changes in turns: a block of BLOCK changes by A, the same block by
B, the next by B first then A, and so on, one process running at a time, so both see
the same machine state within a block's few hundred milliseconds. Prints per-block
thread CPU of each and the ratio B/A over all blocks (sum, and the median of per-block
ratios), then both runs' summary lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path


def _start(tree: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("signerstate.py")
    cmd = [sys.executable, str(script), "--names", str(args.names), "--changes",
           str(args.changes), "--lockstep", str(args.block), "--cache", str(args.cache)]
    if args.nsec:
        cmd.append("--nsec")
    env = dict(os.environ, PYTHONPATH=tree)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env)


def _line(proc: subprocess.Popen[str], want: str) -> str:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"a run ended early (exit {proc.wait()})")
        if line.startswith(want):
            return line.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="tree A (PYTHONPATH)")
    p.add_argument("--b", required=True, help="tree B (PYTHONPATH)")
    p.add_argument("--names", type=int, default=20000)
    p.add_argument("--nsec", action="store_true")
    p.add_argument("--changes", type=int, default=6000)
    p.add_argument("--block", type=int, default=200)
    p.add_argument("--cache", type=Path, default=Path("/tmp/bench-signerstate"))
    args = p.parse_args(argv)
    runs = [_start(args.a, args), _start(args.b, args)]
    for proc in runs:  # one at a time: the full signs do not overlap the blocks
        _line(proc, "ready")
    blocks: list[tuple[float, float]] = []
    for n in range(-(-args.changes // args.block)):
        got = [0.0, 0.0]
        for i in ((0, 1) if n % 2 == 0 else (1, 0)):  # A first, then B first, in turn
            proc = runs[i]
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            got[i] = float(_line(proc, "block").split()[1])
        blocks.append((got[0], got[1]))
        print(f"block A {got[0]:8.1f} ms  B {got[1]:8.1f} ms  B/A {got[1] / got[0]:.3f}",
              flush=True)
    summaries = [_line(proc, "mode=") for proc in runs]
    for proc in runs:
        proc.wait()
    a, b = sum(x for x, _ in blocks), sum(y for _, y in blocks)
    ratios = [y / x for x, y in blocks]
    print(f"incremental CPU over {len(blocks)} blocks: A {a:.0f} ms, B {b:.0f} ms, B/A {b / a:.3f}"
          f" (median of block ratios {statistics.median(ratios):.3f})")
    print("A", summaries[0])
    print("B", summaries[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
