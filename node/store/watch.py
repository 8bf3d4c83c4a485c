"""Resumable watch of a key range: `async for batch in client.watch(prefix, rev)`.

Owns the Watch stream's life: creating the watcher, reassembling fragmented
responses, grouping events by revision (all events of one etcd revision, such
as one txn, come in one `WatchBatch`, never split), detecting a dead stream,
and resuming after a disconnect or an etcd restart from the last delivered
revision + 1, so no event is lost and none is delivered twice.

Terminal outcomes, raised from the iterator: `Compacted(compact_revision)` when the start
revision is compacted (the caller resynchronises fully with `range_all` and watches again),
`WatchCanceled(reason)` for any other server-side cancel (after one re-authentication attempt).

Liveness: after `probe_after` seconds of silence a progress request is sent; no
answer within `dead_after` seconds means the stream is dead and it is reopened
(on the next endpoint). etcd 3.4 may answer a progress request before events it
has queued, so a requested progress answer never advances `revision`; server
progress notifications (same watch id, in order with events) advance it at once.

Currency: a member cut off from its peers still answers progress requests,
from its stale store. So the stream carries etcd's `hasleader=true` metadata
(such a member refuses it, or cancels it with "etcdserver: no leader": the
watch moves to the next endpoint), and a `LagCheck` (`node/store/lag.py`)
compares it with a linearizable read every `check_every` seconds, reopening
it elsewhere when it stays behind for `lag_after` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import grpc

from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.store._gen import rpc_pb2
from node.store.client import Compacted, WatchCanceled
from node.store.failures import is_invalid_token
from node.store.lag import LagCheck
from node.store.values import WatchBatch, WatchEvent

if TYPE_CHECKING:
    from node.store.client import EtcdClient

log = logging.getLogger(__name__)

_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)
_NO_LEADER = "no leader"  # etcdserver: no leader (the member cannot reach a quorum)
_TRANSIENT = {getattr(grpc.StatusCode, c) for c in (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED")}


class _StreamLost(Exception):
    """The current stream is unusable; reopen it."""


class _Closed:
    """Queue marker: the watch was closed."""


class _Poke:
    """Queue marker: the lag check's read found the stream behind; look again."""


class Watch:
    """An async iterator of `WatchBatch`; see the module docstring."""

    def __init__(
        self,
        client: EtcdClient,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        *,
        prev_kv: bool = False,
        probe_after: float | None = None,
        dead_after: float | None = None,
        check_every: float | None = None,
        lag_after: float | None = None,
    ) -> None:
        self._client = client
        self._key = key
        self._end = range_end
        self._prev_kv = prev_kv
        self._from_now = start_revision <= 0
        self.revision = max(start_revision - 1, 0)  # last revision fully delivered
        self.probe_after = probe_after if probe_after is not None else max(client.timeout, 0.5)
        self.dead_after = dead_after if dead_after is not None else max(client.timeout, 0.5)
        self._lag = LagCheck(
            client, key, every=check_every if check_every is not None else self.probe_after,
            grace=lag_after if lag_after is not None else self.probe_after + self.dead_after,
        )
        self._seen = 0  # the highest revision the current stream has shown
        self._pending: deque[WatchBatch] = deque()
        self._safe_progress = 0  # a progress revision known not to overtake events
        self._fragments: list[rpc_pb2.Event] = []
        self._call: Any = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._watch_id: int | None = None
        self._index = 0
        self._probe_sent: float | None = None
        self._reauthed = False
        self._failures = 0
        self._closed = False
        self.streams_opened = 0  # for observability and tests
        self.fragments_received = 0

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchBatch:
        while True:
            if self._pending:
                return self._deliver()
            if self._closed:
                raise StopAsyncIteration
            try:
                if self._call is None:
                    await self._open()
                await self._receive()
                self._failures = 0
            except _StreamLost as lost:
                await self._drop_stream()
                if self._closed:
                    continue
                if isinstance(lost, _NeedReauth):
                    await self._refresh_token()
                self._failures += 1
                level = logging.WARNING if self._failures in (1, 10) or not self._failures % 100 \
                    else logging.DEBUG
                log.log(level, "etcd watch on %r lost (%s); resuming from revision %d",
                        self._key, lost, self.revision + 1)
                await asyncio.sleep(_BACKOFF[min(self._failures - 1, len(_BACKOFF) - 1)])
            except BaseException:
                await self._drop_stream()
                raise

    async def close(self) -> None:
        """Stop watching; a pending or later `__anext__` ends the iteration."""
        self._closed = True
        while self._queue.full():  # a consumer behind: what it did not read is not wanted
            self._queue.get_nowait()
        self._queue.put_nowait(_Closed())
        await self._drop_stream()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- delivery

    def _deliver(self) -> WatchBatch:
        batch = self._pending.popleft()
        self.revision = max(self.revision, batch.revision)
        if not self._pending:
            self.revision = max(self.revision, self._safe_progress)
        return batch

    def _add_events(self, events: list[rpc_pb2.Event]) -> None:
        by_rev: dict[int, list[WatchEvent]] = {}
        prev = self._prev_kv
        for ev in events:
            by_rev.setdefault(ev.kv.mod_revision, []).append(WatchEvent.from_proto(ev, prev))
        last_queued = self._pending[-1].revision if self._pending else self.revision
        for rev in sorted(by_rev):
            if rev <= last_queued:
                log.debug("etcd watch: dropping already delivered revision %d", rev)
                continue
            self._pending.append(WatchBatch(rev, tuple(by_rev[rev])))
            last_queued = rev

    def _progress(self, resp: rpc_pb2.WatchResponse) -> None:
        rev = int(resp.header.revision)
        if resp.watch_id == self._watch_id:  # server-initiated: ordered with events
            self._safe_progress = max(self._safe_progress, rev)
        # An answer to a progress request only proves the stream is alive: etcd 3.4
        # may send it ahead of events it still has queued for an unsynced watcher
        # (etcd#15220), possibly several times in a row, so it never moves `revision`.
        if not self._pending:
            self.revision = max(self.revision, self._safe_progress)

    # -- stream

    async def _open(self) -> None:
        client = self._client
        loop = asyncio.get_running_loop()
        try:
            await client.ensure_token(loop.time() + client.timeout)
        except EtcdUnavailable as exc:
            raise _StreamLost(str(exc)) from exc
        index = client.endpoint_index
        self._index = index
        self._queue = asyncio.Queue(maxsize=64)
        if self._closed:
            raise _StreamLost("closed")
        self._fragments = []
        self._probe_sent = None
        self._seen = 0
        await self._lag.reset(loop.time())
        try:
            self._call = client.stub("Watch").Watch(metadata=client.metadata(require_leader=True))
            self._reader = asyncio.create_task(self._read(self._call, self._queue))
            start = 0 if self._from_now else self.revision + 1
            create = rpc_pb2.WatchCreateRequest(
                key=self._key, range_end=self._end, start_revision=start,
                progress_notify=True, prev_kv=self._prev_kv, fragment=True,
            )
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            client.rotate(index)
            raise _StreamLost(f"cannot open the watch stream: {exc}") from exc
        await self._write(rpc_pb2.WatchRequest(create_request=create))
        self.streams_opened += 1
        resp = await self._next(client.timeout, probe=False)
        if resp.canceled:
            self._canceled(resp)
        if not resp.created:
            raise _StreamLost("etcd did not confirm the watch")
        self._watch_id = int(resp.watch_id)
        if self._from_now:
            self._from_now = False
            self.revision = max(self.revision, int(resp.header.revision))
        if self.streams_opened > 1:
            emit(Event.WATCH_RESUMED, key=self._key.decode(errors="replace"),
                 revision=self.revision + 1)

    async def _drop_stream(self) -> None:
        call, reader = self._call, self._reader
        self._call = self._reader = None
        self._watch_id = None
        if call is not None:
            call.cancel()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await self._lag.cancel()

    @staticmethod
    async def _read(call: Any, queue: asyncio.Queue[Any]) -> None:
        try:
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    await queue.put(_StreamLost("etcd closed the watch stream"))
                    return
                await queue.put(resp)
        except grpc.aio.AioRpcError as err:
            await queue.put(err)
        except (grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            await queue.put(_StreamLost(str(exc)))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            await queue.put(_StreamLost("the watch call was cancelled"))

    async def _next(self, wait: float, *, probe: bool) -> rpc_pb2.WatchResponse:
        """The next response; with `probe`, probes a silent stream and checks that it keeps
        up with etcd; raises `_StreamLost` if it is dead or behind."""
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + wait
        while True:
            if self._closed:
                raise _StreamLost("closed")
            now = loop.time()
            until = quiet_until if self._probe_sent is None else self._probe_sent + self.dead_after
            wake = until
            if probe:
                await self._check_lag(now)
                wake = min(wake, self._lag.wake_at() or until)
            try:
                item = await asyncio.wait_for(self._queue.get(), max(wake - now, 0.0))
            except TimeoutError:
                if loop.time() < until:
                    continue  # woke up for the lag check
                if probe and self._probe_sent is None:
                    await self._send_probe()
                    continue
                raise _StreamLost("no answer from etcd on the watch stream") from None
            if isinstance(item, _Poke):
                continue
            self._probe_sent = None
            if isinstance(item, _Closed):
                raise _StreamLost("closed")
            if isinstance(item, _StreamLost):
                raise item
            if isinstance(item, grpc.aio.AioRpcError):
                await self._stream_error(item)
            self._seen = max(self._seen, int(item.header.revision))
            self._lag.observe(self._seen)
            return item

    async def _check_lag(self, now: float) -> None:
        """Start the periodic linearizable read; probe at once when it shows the stream
        behind; give up on the stream when it stays behind (see `node/store/lag.py`)."""
        lag = self._lag
        lag.poll(now, lambda: self._seen, self._queue, _Poke())
        if lag.behind(self._seen, now) and self._queue.empty():
            emit(Event.WATCH_BEHIND, level=logging.WARNING, key=self._key.decode(errors="replace"),
                 stream_revision=self._seen, etcd_revision=lag.target,
                 endpoint=self._client.endpoints[self._index])
            self._client.rotate(self._index)
            raise _StreamLost(f"the stream is at revision {self._seen}, etcd at {lag.target}")
        if self._probe_sent is None and lag.wants_probe():
            await self._send_probe()

    async def _send_probe(self) -> None:
        self._probe_sent = asyncio.get_running_loop().time()
        await self._write(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    async def _write(self, req: rpc_pb2.WatchRequest) -> None:
        call = self._call
        if call is None:
            raise _StreamLost("no stream")
        try:
            await call.write(req)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            self._client.rotate(self._index)
            raise _StreamLost(f"cannot write to the watch stream: {exc}") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise _StreamLost("the watch call was cancelled") from None

    async def _stream_error(self, err: grpc.aio.AioRpcError) -> None:
        client = self._client
        if is_invalid_token(err) and self._reauth_allowed():
            await self._refresh_token()
            raise _StreamLost("auth token expired")
        if err.code() in _TRANSIENT:
            if _NO_LEADER in (err.details() or ""):
                self._no_leader()
            client.rotate(self._index)
            raise _StreamLost(f"{err.code().name}: {err.details()}")
        raise client.map_error(err, "Watch")

    async def _receive(self) -> None:
        resp = await self._next(self.probe_after, probe=True)
        if resp.canceled:
            self._canceled(resp)
        if resp.created:
            return
        if resp.fragment:
            self.fragments_received += 1
            self._fragments.extend(resp.events)
            return
        if self._fragments:
            events = [*self._fragments, *resp.events]
            self._fragments = []
        else:
            events = list(resp.events)
        if events:
            self._add_events(events)
            self._reauthed = False
        else:
            self._progress(resp)

    def _canceled(self, resp: rpc_pb2.WatchResponse) -> None:
        if resp.compact_revision:
            self._closed = True
            emit(Event.WATCH_COMPACTED_RESYNC, key=self._key.decode(errors="replace"),
                 compact_revision=int(resp.compact_revision))
            raise Compacted(int(resp.compact_revision))
        reason = resp.cancel_reason
        low = reason.lower()
        if _NO_LEADER in low:
            self._no_leader()
            self._client.rotate(self._index)
            raise _StreamLost(reason)
        if ("auth" in low or "permission denied" in low) and self._reauth_allowed():
            self._reauthed = True
            raise _NeedReauth(reason)
        self._closed = True
        raise WatchCanceled(reason)

    def _no_leader(self) -> None:
        emit(Event.WATCH_NO_LEADER, level=logging.WARNING, key=self._key.decode(errors="replace"),
             endpoint=self._client.endpoints[self._index], revision=self.revision + 1)

    def _reauth_allowed(self) -> bool:
        return bool(self._client.has_credentials) and not self._reauthed

    async def _refresh_token(self) -> None:
        self._reauthed = True
        loop = asyncio.get_running_loop()
        try:
            await self._client.ensure_token(loop.time() + self._client.timeout, refresh=True)
        except NodeError as exc:
            log.warning("etcd watch: re-authentication failed: %s", exc)


class _NeedReauth(_StreamLost):
    """etcd canceled the watch for an auth reason: refresh the token, then reopen."""
