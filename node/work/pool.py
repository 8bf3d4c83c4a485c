"""The node's pool of worker processes for zone-sized work, at lower CPU priority.

Spawned, not forked (grpc's threads do not survive a fork), and each worker
lowers its own priority with `os.nice` in the initializer, so the control
process (lease, watch, API) and the answering code always win the CPU from
parsing and signing. The jobs live in `node/work/` modules that import no
asyncio, grpc or etcd code; their arguments and results are plain data.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

DEFAULT_NICE = 10


def _lower_priority(increment: int) -> None:
    try:
        os.nice(increment)
    except OSError as exc:  # a container may forbid it: run at normal priority then
        log.warning("worker process could not lower its priority: %s", exc)


def worker_pool(workers: int, nice: int = DEFAULT_NICE) -> ProcessPoolExecutor:
    """`workers` worker processes (0: one per core), each `nice`d by `nice`."""
    return ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_lower_priority if nice else None,
        initargs=(nice,) if nice else (),
    )
