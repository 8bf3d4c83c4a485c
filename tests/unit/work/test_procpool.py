"""`ProcessPool` (node/work/procpool.py) with real worker processes: a job whose process is
killed fails alone and the pool goes on; outcomes, exceptions and pickling faults come
back; shutdown runs or cancels what is queued; the workers import only their jobs."""

from __future__ import annotations

import ast
import os
import pickle
import signal
import subprocess
import sys
from concurrent.futures import CancelledError, Future
from pathlib import Path

import pytest

from node.work.procpool import ProcessPool, RemoteTraceback, WorkerDied
from tests.support import pooljobs
from tests.support.pids import ended
from tests.support.wait import wait_until

TIMEOUT = 60.0


def _started(path: Path) -> int:
    """The pid a held job wrote once it runs."""
    return int(wait_until(lambda: path.exists() and path.read_text(), TIMEOUT,
                          message=f"the held job did not start ({path})"))


def test_a_job_whose_worker_is_killed_fails_alone_and_the_pool_goes_on(tmp_path: Path) -> None:
    pool = ProcessPool(1)
    try:
        held = pool.submit(pooljobs.hold, str(tmp_path / "started"), str(tmp_path / "never"))
        queued = pool.submit(os.getpid)
        victim = _started(tmp_path / "started")
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerDied) as info:
            held.result(TIMEOUT)
        assert f"worker process {victim} was killed by SIGKILL while running " \
               "tests.support.pooljobs.hold" == str(info.value)
        assert queued.result(TIMEOUT) not in (victim, os.getpid())  # a new worker ran it
        assert pool.submit(os.getpid).result(TIMEOUT) == queued.result()
    finally:
        pool.shutdown()


def test_a_worker_gone_while_idle_is_replaced_before_the_next_job() -> None:
    pool = ProcessPool(1)
    try:
        first = pool.submit(os.getpid).result(TIMEOUT)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: first not in pool.pids or ended(first), TIMEOUT)
        second = pool.submit(os.getpid).result(TIMEOUT)  # not a WorkerDied: it never ran
        assert second != first
        with pytest.raises(WorkerDied, match="exited with status 3 while running"):
            pool.submit(pooljobs.leave).result(TIMEOUT)
    finally:
        pool.shutdown()


def test_exceptions_and_results_that_do_not_pickle_come_back_as_errors() -> None:
    pool = ProcessPool(1)
    try:
        with pytest.raises(ValueError, match=r"^bad zone$") as info:
            pool.submit(pooljobs.fail, "bad zone").result(TIMEOUT)
        cause = info.value.__cause__
        assert isinstance(cause, RemoteTraceback) and "in fail" in cause.tb
        with pytest.raises(RuntimeError, match="result could not be pickled"):
            pool.submit(pooljobs.unpicklable).result(TIMEOUT)
        with pytest.raises(RuntimeError, match=r"pooljobs\.fail_unreadably could not be "
                                               r"unpickled"):
            pool.submit(pooljobs.fail_unreadably).result(TIMEOUT)
        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            pool.submit(os.getpid, lambda: 0).result(TIMEOUT)  # its argument does not pickle
        assert pool.submit(divmod, 7, 2).result(TIMEOUT) == (3, 1)  # the same worker still
        assert len(pool.pids) == 1
    finally:
        pool.shutdown()


def test_shutdown_cancels_queued_jobs_and_lets_the_running_one_finish(tmp_path: Path) -> None:
    pool = ProcessPool(1)
    release = tmp_path / "release"
    held = pool.submit(pooljobs.hold, str(tmp_path / "started"), str(release))
    queued: list[Future[int]] = [pool.submit(os.getpid) for _ in range(3)]
    worker = _started(tmp_path / "started")
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(os.getpid)
    release.touch()
    assert held.result(TIMEOUT) == worker
    pool.shutdown(wait=True)
    assert pool.pids == [] and ended(worker)
    with pytest.raises(CancelledError):
        queued[0].result(0)


def test_shutdown_without_cancelling_runs_what_is_queued() -> None:
    pool = ProcessPool(2)
    futures = [pool.submit(divmod, i, 3) for i in range(20)]
    pool.shutdown(wait=True)
    assert [f.result(0) for f in futures] == [divmod(i, 3) for i in range(20)]
    assert pool.pids == []


def test_a_worker_imports_its_jobs_and_not_the_pools_machinery() -> None:
    pool = ProcessPool(1)
    try:
        loaded = set(pool.submit(pooljobs.modules).result(TIMEOUT))
    finally:
        pool.shutdown()
    unwanted = ("multiprocessing", "concurrent", "__mp_main__", "node.__main__",
                "node.work.pool", "node.work.procpool", "subprocess", "asyncio", "grpc")
    found = sorted(m for m in loaded for u in unwanted if m == u or m.startswith(u + "."))
    assert not found, f"a worker imports what its jobs never use: {found}"


def test_a_worker_runs_with_the_nodes_interpreter_options() -> None:
    # a node started with -X dev or -W error (a developer's, a CI's) gets them in its jobs too
    code = ("from node.work.procpool import ProcessPool; from tests.support import pooljobs; "
            "p = ProcessPool(1); print(p.submit(pooljobs.interpreter_options).result(60)); "
            "p.shutdown()")
    out = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c",
                          code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[3], check=True).stdout
    dev, warnings = ast.literal_eval(out.strip())
    assert dev and warnings[-1] == "error::ResourceWarning", out
