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
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

DEFAULT_NICE = 10
IDLE_SECONDS = 30.0  # an idle pool's processes are stopped after this long

P = ParamSpec("P")
R = TypeVar("R")


def _lower_priority(increment: int) -> None:
    try:
        os.nice(increment)
    except OSError as exc:  # a container may forbid it: run at normal priority then
        log.warning("worker process could not lower its priority: %s", exc)


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
        initializer=_lower_priority if nice else None,
        initargs=(nice,) if nice else (),
    )
