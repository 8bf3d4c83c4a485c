"""The daemon's task supervisor (node/supervision.py): a failing loop is logged with an
event and started again after a back-off; it never ends the TaskGroup (issue #8, finding 4)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from node.errors import ValidationError
from node.supervision import supervised as _supervised


async def test_a_failing_loop_is_restarted_with_an_event(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValidationError("etcd Range: etcdserver: revision of auth store is old")
        if runs == 2:
            raise RuntimeError("a bug")

    with caplog.at_level(logging.INFO, logger="node.events"):
        await asyncio.wait_for(_supervised("keymaster", loop, backoff=(0.0,)), 5)
    assert runs == 3  # returned normally on the third run
    names = [r.getMessage() for r in caplog.records if r.name == "node.events"]
    assert sum('"TASK_CRASHED"' in n and '"keymaster"' in n for n in names) == 2
    assert sum('"TASK_RESTARTED"' in n for n in names) == 2


async def test_cancellation_is_not_a_failure() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(_supervised("replica", loop, backoff=(0.0,)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
