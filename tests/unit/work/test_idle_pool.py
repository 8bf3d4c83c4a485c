"""`IdlePool`: the worker processes run only while there is work, and come back for more."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from node.work.pool import worker_pool
from tests.support import pooljobs
from tests.support.wait import wait_until


def _children() -> set[int]:
    """This process's children, whichever of its threads started them."""
    out: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as fh:
                out |= {int(p) for p in fh.read().split()}
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return out


def test_processes_stop_when_idle_and_start_again_for_the_next_job() -> None:
    before = _children()
    pool = worker_pool(1, idle=0.2)
    try:
        assert not pool.running  # nothing started before the first job
        first = pool.submit(os.getpid).result(60)
        assert first in _children() - before
        wait_until(lambda: not pool.running, 30, message="pool still running while idle")
        wait_until(lambda: first not in _children(), 30,
                   message=f"worker process {first} still alive after the pool stopped")
        second = pool.submit(os.getpid).result(60)  # a new process for the next job
        assert second != first and pool.running
    finally:
        pool.shutdown()
    assert not pool.running



def test_a_killed_worker_fails_its_job_only_and_the_next_job_runs(tmp_path: Path) -> None:
    """A worker killed mid-job (OOM, kill -9) fails that job; the job queued behind it and
    every later one run in a new process. (ProcessPoolExecutor failed them all with
    BrokenProcessPool, and every job submitted until the pool had been idle `idle` s.)"""
    pool = worker_pool(1, idle=60)
    try:
        held = pool.submit(pooljobs.hold, str(tmp_path / "started"), str(tmp_path / "never"))
        queued = pool.submit(os.getpid)
        victim = int(wait_until(lambda: (tmp_path / "started").exists()
                                and (tmp_path / "started").read_text(), 60))
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(Exception, match=f"worker process {victim} was killed by SIGKILL"):
            held.result(60)
        assert queued.result(60) != victim
        assert pool.submit(os.getpid).result(60) == queued.result()
    finally:
        pool.shutdown()
