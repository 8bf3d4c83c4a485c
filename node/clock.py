"""Time, injected (STYLE R5): the only module of `node/` that reads real time."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for deadlines, wall time (UTC) for DNS timestamps."""

    def monotonic(self) -> float: ...

    def now(self) -> _dt.datetime: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_dt.UTC)

    def time(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()


class OffsetClock:
    """The real clock shifted by `offset` seconds (wall time only; monotonic is untouched).

    Only the test suite uses it (`[testing] clock_offset`), to show that a node whose
    clock is wrong still signs a zone version to the same bytes as every other node.
    """

    def __init__(self, offset: float, base: Clock = SYSTEM_CLOCK) -> None:
        self._offset = offset
        self._base = base

    def monotonic(self) -> float:
        return self._base.monotonic()

    def now(self) -> _dt.datetime:
        return self._base.now() + _dt.timedelta(seconds=self._offset)

    def time(self) -> float:
        return self._base.time() + self._offset
