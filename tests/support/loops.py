"""The event loops the node may run on (asyncio's own, and uvloop where installed), for
tests whose behaviour differs between them (e.g. when a transport starts reading)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def event_loops() -> list[tuple[str, LoopFactory]]:
    """(name, factory) of every loop to test on."""
    loops: list[tuple[str, LoopFactory]] = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, ("uvloop", uvloop.new_event_loop)]
