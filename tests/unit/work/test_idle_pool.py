"""`IdlePool`: the worker processes run only while there is work, and come back for more."""

from __future__ import annotations

import os

from node.work.pool import worker_pool
from tests.support.wait import wait_until


def _children() -> set[int]:
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as fh:
        return {int(p) for p in fh.read().split()}


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

