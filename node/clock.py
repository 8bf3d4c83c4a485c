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
