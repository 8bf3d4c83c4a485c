"""The node's etcd lease: grant, keepalive, local validity deadline, lost/renewed signals.

`Session.run()` grants a lease and keeps it alive until cancelled (then it
revokes it). Its authority is local and conservative (DESIGN.md, "Key Master
lease"): `valid_until()` is the monotonic time at which the last *successful*
keepalive was *sent*, plus the TTL etcd granted, minus `margin`. Past it,
`is_valid()` is False whether or not etcd answers, so a holder that is cut off
stops acting before etcd can give its role away.

When etcd reports the lease gone (keepalive TTL 0: expired or revoked), a new
lease is granted and every `on_new_lease` callback runs with its id (they
re-register the node's keys under it); `on_lease_lost` callbacks run first.
`last_loss` then says when and why, for `clusterctl nodes`: how long no
keepalive had succeeded, and the last keepalive error (none: the node was
busy or paused and sent none in time).
etcd errors are logged and retried; they never end `run()`.

Keepalives are also sent from a thread of their own (`store/keepalive.py`),
so a loop held up by heavy work does not let the lease lapse; both paths
extend the same local deadline, and only the loop's path handles a loss.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.store.client import EtcdClient
from node.store.keepalive import KeepaliveThread

log = logging.getLogger(__name__)

LeaseCallback = Callable[[int], Awaitable[None] | None]


class Session:
    """One lease for this node, kept alive by `run()`."""

    def __init__(
        self,
        client: EtcdClient,
        ttl: int,
        *,
        keepalive_interval: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        margin: float = 1.0,
        keepalive_thread: bool = True,
    ) -> None:
        if ttl < 2:
            raise ValueError("a session lease needs a TTL of at least 2 seconds")
        self._client = client
        self.ttl = ttl
        self.keepalive_interval = keepalive_interval if keepalive_interval else ttl / 3
        if self.keepalive_interval + 2 * client.timeout > ttl:
            log.warning(
                "lease timing: keepalive_interval %.1fs + 2 x etcd timeout %.1fs > lease TTL %ds;"
                " one slow keepalive may lose the lease", self.keepalive_interval,
                client.timeout, ttl,
            )
        self._clock = clock
        self.margin = margin
        self._lease_id: int | None = None
        self._valid_until = float("-inf")
        self._ready = asyncio.Event()
        self._on_new: list[LeaseCallback] = []
        self._on_lost: list[LeaseCallback] = []
        self.leases_granted = 0
        self.last_loss = ""  # "lease lost at <when> (keepalive failed for N s: <why>)"
        self._last_ok = float("-inf")  # monotonic send time of the last successful keepalive
        self._last_error = ""  # the last keepalive error since then
        self._lock = threading.Lock()  # the keepalive thread extends the deadline too
        self._thread = KeepaliveThread(client, self.keepalive_interval, lambda: self._lease_id,
                                       self._renewed, clock, self._thread_failed,
                                       ) if keepalive_thread else None

    # -- state

    @property
    def lease_id(self) -> int | None:
        """The current lease (None until granted, and between loss and re-grant)."""
        return self._lease_id

    def valid_until(self) -> float:
        """Monotonic deadline of this node's authority under the lease."""
        return self._valid_until

    def is_valid(self) -> bool:
        return self._lease_id is not None and self._clock.monotonic() < self._valid_until

    async def wait_ready(self, timeout: float) -> int:
        """The lease id, once granted; `EtcdUnavailable` if none within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while self._lease_id is None:
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            raise EtcdUnavailable(f"no etcd lease granted within {timeout}s") from None
        return self._lease_id

    def on_new_lease(self, cb: LeaseCallback) -> None:
        """Run `cb(lease_id)` after every grant (the first one included)."""
        self._on_new.append(cb)

    def on_lease_lost(self, cb: LeaseCallback) -> None:
        """Run `cb(old_lease_id)` when etcd reports the lease gone."""
        self._on_lost.append(cb)

    # -- loop

    async def run(self) -> None:
        if self._thread is not None:
            self._thread.start()
        try:
            while True:
                if self._lease_id is None:
                    await self._grant()
                    continue
                await asyncio.sleep(self._next_keepalive_delay())
                await self._keepalive()
        finally:
            if self._thread is not None:
                await asyncio.to_thread(self._thread.stop)
            await self._revoke_quietly()

    async def revoke(self) -> None:
        """Give the lease up now (keys under it vanish); `run()` grants a new one."""
        with self._lock:
            lease_id, self._lease_id = self._lease_id, None
            self._valid_until = float("-inf")
        if lease_id is not None:
            await self._client.lease_revoke(lease_id)

    # -- steps

    def _next_keepalive_delay(self) -> float:
        # Keep the regular rhythm, but never let the local deadline lapse for lack of trying.
        until_deadline = self._valid_until - self._clock.monotonic()
        return max(min(self.keepalive_interval, until_deadline / 2), 0.05)

    async def _grant(self) -> None:
        sent = self._clock.monotonic()
        try:
            lease_id, granted = await self._client.lease_grant(self.ttl)
        except NodeError as exc:
            log.warning("etcd lease grant failed, retrying: %s", exc)
            await asyncio.sleep(min(self.keepalive_interval, 1.0))
            return
        self._lease_id = lease_id
        self._valid_until = sent + granted - self.margin
        self._last_ok, self._last_error = sent, ""
        self.leases_granted += 1
        emit(Event.LEASE_GRANTED, lease=f"{lease_id:x}", ttl=granted)
        self._ready.set()
        await self._fire(self._on_new, lease_id)

    async def _keepalive(self) -> None:
        lease_id = self._lease_id
        if lease_id is None:
            return
        sent = self._clock.monotonic()
        try:
            ttl = await self._client.lease_keepalive_once(lease_id)
        except NodeError as exc:
            level = logging.WARNING if self.is_valid() else logging.DEBUG
            log.log(level, "etcd keepalive of lease %x failed: %s", lease_id, exc)
            self._last_error = str(exc)
            await asyncio.sleep(min(self.keepalive_interval / 2, 0.5))
            return
        if self._lease_id != lease_id:
            return  # revoked meanwhile
        if ttl <= 0:
            with self._lock:
                self._lease_id = None
                self._valid_until = float("-inf")
            silent = sent - self._last_ok
            why = self._last_error or "no keepalive was sent in time: the node was busy or paused"
            at = self._clock.now().replace(microsecond=0).isoformat()
            self.last_loss = f"lease lost at {at} (keepalive failed for {silent:.0f} s: {why})"
            emit(Event.LEASE_LOST, logging.WARNING, lease=f"{lease_id:x}",
                 reason="expired-or-revoked", seconds=round(silent, 1), cause=why)
            await self._fire(self._on_lost, lease_id)
            return
        self._renewed(lease_id, sent, ttl)

    def _thread_failed(self, why: str) -> None:
        """The keepalive thread's last error, for the LEASE_LOST cause (no decision here)."""
        with self._lock:
            self._last_error = why

    def _renewed(self, lease_id: int, sent: float, ttl: int) -> None:
        """A keepalive sent at `sent` got `ttl` (from the loop or the keepalive thread)."""
        with self._lock:
            if ttl <= 0 or self._lease_id != lease_id:
                return  # a loss is the loop's to handle; a stale lease is nobody's
            self._valid_until = max(self._valid_until, sent + ttl - self.margin)
            if sent > self._last_ok:
                self._last_ok, self._last_error = sent, ""

    async def _fire(self, callbacks: list[LeaseCallback], lease_id: int) -> None:
        for cb in list(callbacks):
            try:
                result = cb(lease_id)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease callback %r failed (event %d)", cb, Event.TASK_CRASHED)

    async def _revoke_quietly(self) -> None:
        lease_id, self._lease_id = self._lease_id, None
        self._valid_until = float("-inf")
        if lease_id is None:
            return
        try:
            await asyncio.shield(self._client.lease_revoke(lease_id))
        except (NodeError, asyncio.CancelledError) as exc:
            log.info("could not revoke lease %x on stop: %s", lease_id, exc)
