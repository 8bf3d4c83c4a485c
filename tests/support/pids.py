"""Processes by their pid: whether one has ended (gone, or a zombie its parent has not
reaped: an orphan's reaper may be slow, or absent in a container), and a node's worker
pool processes."""

from __future__ import annotations

import os
from pathlib import Path


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def pool_children(pid: int, min_cpu: float = 0.0) -> list[int]:
    """The worker pool processes (node/work/child.py) of the node process `pid`, by their
    command line; only those that have used `min_cpu` CPU-s or more."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        if int(stat[1]) == pid and b"node.work.child" in cmdline and cpu >= min_cpu:
            out.append(int(entry.name))
    return out
