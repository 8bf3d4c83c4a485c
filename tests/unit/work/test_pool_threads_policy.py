"""Review: the worker pool's own threads in the control process (the executor's manager
thread, its queue feeder, the idle timers) are created by whichever thread submits first
after the pool was (re)started. A full signing submits from the loop's default executor, a
heavy thread (SCHED_BATCH, comm "heavy"): the threads it creates inherit both, so the
cluster test that filters on comm cannot see them. The policy is set back for them
(`normal_policy`), and they name themselves (session 16: a slot thread of the pool,
started from a heavy thread by a full signing, ran normally under the name "heavy")."""

from __future__ import annotations

import asyncio
import os
import threading

from node.priority import heavy_executor, thread_policy
from node.work.pool import worker_pool


async def test_pool_threads_started_from_a_heavy_thread_run_normally() -> None:
    asyncio.get_running_loop().set_default_executor(heavy_executor(1))
    before = {t.native_id for t in threading.enumerate()}  # other tests' threads (xdist)
    pool = worker_pool(1, idle=60)
    try:
        def sign_like() -> int:  # as `_sign_and_digest` -> sign_blobs -> pool.submit
            return pool.submit(os.getpid).result(60)

        heavy = await asyncio.to_thread(lambda: threading.get_native_id())
        await asyncio.to_thread(sign_like)
        # (a thread still starting has no native id yet: `enumerate` lists it from limbo)
        new = [t for t in threading.enumerate() if t.native_id is not None
               and t.native_id not in before and t.native_id != heavy]
        others = {t.name: thread_policy(t.native_id) for t in new}
        comms = {t.name: _comm(t.native_id) for t in new}
    finally:
        pool.shutdown()
    batch = {name for name, policy in others.items() if policy == os.SCHED_BATCH}
    assert not batch, f"threads of the pool SCHED_BATCH: {batch}"
    # a new thread inherits its creator's name too: one named "heavy" but running normally
    # confuses `top -H` and tests/cluster/test_heavy_threads_batch.py
    named_heavy = {name for name, comm in comms.items() if comm == "heavy"}
    assert not named_heavy, f"threads of the pool named 'heavy': {comms}"


def _comm(tid: int | None) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as fh:
            return fh.read().strip()
    except FileNotFoundError:  # the thread ended since `enumerate`
        return ""
