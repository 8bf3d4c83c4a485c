"""Waiting on a condition with a deadline: the only way tests synchronise (no bare sleeps)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


def wait_until(
    pred: Callable[[], Any], timeout: float, interval: float = 0.02, message: str = ""
) -> Any:
    """Poll `pred()` until it returns a truthy value (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {pred!r}")
        time.sleep(interval)


async def async_wait_until(
    pred: Callable[[], Any | Awaitable[Any]],
    timeout: float,
    interval: float = 0.02,
    message: str = "",
) -> Any:
    """Like `wait_until`, for async tests; `pred` may be sync or async."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {pred!r}")
        await asyncio.sleep(interval)
