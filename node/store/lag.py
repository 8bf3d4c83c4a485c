"""Whether a watch stream keeps up with etcd: the check that catches a member that stopped moving.

A member cut off from its peers still answers a watch's progress requests,
from its stale store, so a live stream is no proof of a current one. Every
`every` seconds `LagCheck` reads the watched key linearizably through the
client (so from a member with a leader: on a leaderless member the read
times out and the client moves to the next endpoint) and keeps the answer's
header revision as the target. The stream must then show a revision at or
past it (an event's, or any response header's, given to `observe`) within
`grace` seconds; if it does not, `behind` says so and the watch reopens on
another endpoint. When a read finds the stream below its target the check
puts a marker on the stream's queue, so the watch sends a progress request
at once instead of waiting for the stream to fall silent.

Owns the read task and the bookkeeping; `node/store/watch.py` owns the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from node.errors import NodeError

if TYPE_CHECKING:
    from node.store.client import EtcdClient

log = logging.getLogger(__name__)


class LagCheck:
    """Periodic linearizable reads compared with what a watch stream has shown."""

    def __init__(self, client: EtcdClient, key: bytes, *, every: float, grace: float) -> None:
        self._client = client
        self._key = key
        self.every = every  # seconds between reads
        self.grace = grace  # how long the stream may stay below a read's revision
        self.next_read = 0.0  # monotonic time of the next read
        self.target = 0  # the revision the stream must reach; 0 when none
        self.since = 0.0  # when `target` was set
        self.probed_for = 0  # the target a progress request was sent for
        self._read: asyncio.Task[None] | None = None

    async def reset(self, now: float) -> None:
        """A new stream: drop any read in flight, forget the target, read after `every`."""
        await self.cancel()
        self.target = self.probed_for = 0
        self.next_read = now + self.every

    async def cancel(self) -> None:
        task, self._read = self._read, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def poll(self, now: float, seen: Any, queue: asyncio.Queue[Any], poke: object) -> None:
        """Start a read when one is due; `seen()` is the stream's revision when it answers,
        and `poke` goes on `queue` if the stream is then below the read."""
        if self._read is None and self.target == 0 and now >= self.next_read:
            self._read = asyncio.create_task(self._head(seen, queue, poke))

    def expect(self, revision: int, seen: int, now: float) -> bool:
        """A read answered at `revision` (0 if it failed); True if the stream is below it."""
        self.next_read = now + self.every
        if revision > seen and self.target == 0:
            self.target, self.since = revision, now
        return self.target != 0

    def observe(self, seen: int) -> None:
        """The stream showed revision `seen`."""
        if self.target and seen >= self.target:
            self.target = 0

    def behind(self, seen: int, now: float) -> bool:
        return bool(self.target) and seen < self.target and now >= self.since + self.grace

    def wants_probe(self) -> bool:
        """True once per target: ask the stream for its revision now."""
        if self.target and self.target != self.probed_for:
            self.probed_for = self.target
            return True
        return False

    def wake_at(self) -> float | None:
        """The next time this check has something to do (None while a read is in flight)."""
        if self.target:
            return self.since + self.grace
        return None if self._read is not None else self.next_read

    async def _head(self, seen: Any, queue: asyncio.Queue[Any], poke: object) -> None:
        try:
            revision = (await self._client.range(self._key, count_only=True)).revision
        except NodeError as exc:
            log.debug("etcd watch: the lag check's read failed: %s", exc)
            revision = 0
        self._read = None
        if self.expect(revision, seen(), asyncio.get_running_loop().time()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(poke)
