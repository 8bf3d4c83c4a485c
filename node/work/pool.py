"""The node's pool of worker processes for zone-sized work, at lower CPU priority.

Spawned, not forked (grpc's threads do not survive a fork), and each worker
lowers its own priority with `os.nice` in the initializer, so the control
process (lease, watch, API) and the answering code always win the CPU from
parsing and signing. The jobs live in `node/work/` modules that import no
asyncio, grpc or etcd code; their arguments and results are plain data.

Idle: the processes exist only while there is work. `IdlePool` starts them
on the first job and shuts them down once no job has been pending for
`idle` seconds: a process that parsed a zone or signed chunks keeps its
heap at its peak, and a node serving a signed zone has nothing to run in
them between imports and full signings (an incremental signing of a few
RRsets signs in the calling thread). Starting the processes again costs
about a second of CPU, against a zone-sized job.

A worker ends itself within a second of its node's death (kill -9, OOM): it
would otherwise live on as an orphan, blocked on a queue nobody writes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, ParamSpec, TypeVar

from node.priority import normal_policy

log = logging.getLogger(__name__)

DEFAULT_NICE = 10
IDLE_SECONDS = 30.0  # an idle pool's processes are stopped after this long

P = ParamSpec("P")
R = TypeVar("R")


PARENT_CHECK_SECONDS = 1.0  # how often a worker checks that its node is still there


def _start_worker(increment: int, parent: int) -> None:
    """Initializer of every worker: lower its priority, and end it when its node is gone."""
    if increment:
        try:
            os.nice(increment)
        except OSError as exc:  # a container may forbid it: run at normal priority then
            log.warning("worker process could not lower its priority: %s", exc)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch",
                     daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A spawned worker holds its own copy of the job queue's write end, so it never sees
    the queue close when its node dies (kill -9, OOM): it would live on as an orphan."""
    while os.getppid() == parent:
        threading.Event().wait(PARENT_CHECK_SECONDS)
    os._exit(1)


def worker_pool(workers: int, nice: int = DEFAULT_NICE,
                idle: float = IDLE_SECONDS) -> IdlePool:
    """`workers` worker processes (0: one per core), each `nice`d by `nice`, run only while
    there is work (`IdlePool`)."""
    return IdlePool(lambda: _process_pool(workers, nice), idle)


class IdlePool(Executor):
    """An executor whose process pool is started on demand and shut down when idle."""

    def __init__(self, factory: Callable[[], Executor], idle: float) -> None:
        self._factory = factory
        self.idle = idle
        self._lock = threading.Lock()
        self._pool: Executor | None = None
        self._pending = 0
        self._generation = 0  # bumped by every submit: a timer armed before one is stale
        self._closed = False

    @property
    def running(self) -> bool:
        """True while the processes exist (work pending, or idle for less than `idle`)."""
        return self._pool is not None

    def submit(self, fn: Callable[P, R], /, *args: P.args,
               **kwargs: P.kwargs) -> Future[R]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            # the pool's manager, feeder and timer threads live in this process: started
            # from a heavy thread (a full signing) they would inherit SCHED_BATCH
            with normal_policy():
                if self._pool is None:
                    self._pool = self._factory()
                self._pending += 1
                self._generation += 1
                fut = self._pool.submit(fn, *args, **kwargs)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending or self._pool is None:
                return
            timer = threading.Timer(self.idle, self._stop_if_idle, (self._generation,))
        timer.daemon = True
        timer.start()

    def _stop_if_idle(self, generation: int) -> None:
        with self._lock:
            if self._pending or generation != self._generation or self._pool is None:
                return
            pool, self._pool = self._pool, None
        pool.shutdown(wait=False)
        log.debug("worker processes stopped after %.0f s without work", self.idle)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _process_pool(workers: int, nice: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(nice, os.getpid()),
    )
