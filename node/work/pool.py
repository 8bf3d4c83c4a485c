"""The node's pool of worker processes for zone-sized work, at lower CPU priority.

The processes are fresh interpreters (`node/work/procpool.py`: not forked, as
grpc's threads do not survive a fork; not multiprocessing's, whose resource
tracker process outlived every pool), and each lowers its own priority with
`os.nice` before its first job, so the control process (lease, watch, API) and
the answering code always win the CPU from parsing and signing. The jobs live
in `node/work/` (and `node/dnssec/signer.py`) modules that import no asyncio,
grpc or etcd code; their arguments and results are plain data.

Idle: the processes exist only while there is work. `IdlePool` starts them
on the first job and shuts them down once no job has been pending for
`idle` seconds: a process that parsed a zone or signed chunks keeps its
heap at its peak, and a node serving a signed zone has nothing to run in
them between imports and full signings (an incremental signing of a few
RRsets signs in the calling thread). Starting a process again costs about
0.1 CPU-s (the job's imports), against a zone-sized job.

A worker ends itself within a second of its node's death (kill -9, OOM)
(`node/work/child.py`); a worker that dies fails its job only (`WorkerDied`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from node.priority import normal_policy
from node.work.procpool import ProcessPool

log = logging.getLogger(__name__)

DEFAULT_NICE = 10
IDLE_SECONDS = 30.0  # an idle pool's processes are stopped after this long

P = ParamSpec("P")
R = TypeVar("R")


def worker_pool(workers: int, nice: int = DEFAULT_NICE,
                idle: float = IDLE_SECONDS) -> IdlePool:
    """`workers` worker processes (0: one per core), each `nice`d by `nice`, run only while
    there is work (`IdlePool`)."""
    return IdlePool(lambda: ProcessPool(workers or os.cpu_count() or 1, nice), idle)


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
            # the pool's slot threads (and the processes they start) live in this process:
            # started from a heavy thread (a full signing) they would inherit SCHED_BATCH
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

