"""The worker pool's processes yield the CPU to everything else: SCHED_IDLE, own session.

A pool process (zone parse, signing) shares no interpreter lock with the
control process or the serving workers, so it can run at the lowest class
Linux has for an unprivileged process: SCHED_IDLE (a waking normal thread
always preempts it). Where the kernel shares CPU time among sessions first
(autogroup, for processes outside a cgroup), a pool process in its node's
session would share the node's one share, at full weight against each
serving worker's own session, whatever its own nice value or policy: so it
runs in its own session, whose group is niced to 19.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.priority import AUTOGROUP_NICE, autogroup_nice
from node.work.pool import worker_pool


def _probe() -> tuple[int, int, int, int | None]:
    """(scheduling policy, session id, process id, autogroup nice) of the calling process."""
    return os.sched_getscheduler(0), os.getsid(0), os.getpid(), autogroup_nice()


def test_pool_processes_run_sched_idle_in_their_own_session() -> None:
    pool = worker_pool(1)
    try:
        policy, sid, pid, group_nice = pool.submit(_probe).result(60)
    finally:
        pool.shutdown()
    assert policy == os.SCHED_IDLE, f"pool process policy {policy}, not SCHED_IDLE"
    assert sid == pid != os.getsid(0), f"pool process {pid} runs in session {sid}"
    if Path("/proc/self/autogroup").exists():
        assert group_nice == AUTOGROUP_NICE, f"its autogroup runs at nice {group_nice}"


def test_autogroup_nice_reads_this_process_group() -> None:
    if not Path("/proc/self/autogroup").exists():
        pytest.skip("no autogroup on this kernel")
    assert autogroup_nice() is not None
