"""Retry delays of the signing worker: 1 s doubling to a 60 s cap, reset on success. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """The delay before the next retry; `next()` doubles it up to `cap`."""

    first: float = 1.0
    cap: float = 60.0
    _next: float = 0.0

    def next(self) -> float:
        delay = self._next or self.first
        self._next = min(self.cap, delay * 2)
        return delay

    def reset(self) -> None:
        self._next = 0.0

    @property
    def failing(self) -> bool:
        """True after a failure and before the next reset."""
        return self._next != 0.0
