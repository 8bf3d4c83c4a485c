"""The node's only etcd client: KV, transactions, leases and watches over etcd's v3 gRPC API.

`EtcdClient` builds each request and turns each answer into frozen domain
types (`KeyValue`, `RangeResult`, `TxnResult`); nothing outside `node/store/`
sees a `*_pb2` message. Channels, endpoint rotation, deadlines, authentication
and the retry rule (reads retried until the deadline, writes only when the
request never left) are its base class's, `EtcdTransport` (`transport.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc

from node.errors import EtcdUnavailable, NotFound
from node.store._gen import rpc_pb2
from node.store.failures import (
    Compacted,
    EtcdAuthError,
    EtcdError,
    EtcdPermissionDenied,
    WatchCanceled,
)
from node.store.ranges import KEY_PAGE, PartSink, read_range, scan_range
from node.store.transport import EtcdTransport
from node.store.txn import Compare, KeyLike, Op, prefix_range_end, to_bytes, txn_request
from node.store.values import KeyValue, RangeResult, TlsConfig, TxnResult

BIG_RANGE = 2_000  # key-values a range converts on the event loop; a larger one goes to a thread

if TYPE_CHECKING:
    from node.store.watch import Watch

__all__ = [
    "Compacted",
    "EtcdAuthError",
    "EtcdClient",
    "EtcdError",
    "EtcdPermissionDenied",
    "EtcdTransport",
    "KeyValue",
    "RangeResult",
    "TlsConfig",
    "TxnResult",
    "WatchCanceled",
]


class EtcdClient(EtcdTransport):
    """An asyncio etcd v3 client for one cluster (several endpoints)."""

    # -- KV

    async def get(self, key: KeyLike) -> KeyValue | None:
        result = await self.range(key)
        return result.kvs[0] if result.kvs else None

    async def range(
        self,
        key: KeyLike,
        range_end: KeyLike | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
    ) -> RangeResult:
        end = prefix_range_end(key) if prefix else to_bytes(range_end or b"")
        req = rpc_pb2.RangeRequest(
            key=to_bytes(key), range_end=end, limit=limit, revision=revision,
            keys_only=keys_only, count_only=count_only, serializable=serializable,
        )
        resp = await self._unary("KV", "Range", req, idempotent=True)
        if len(resp.kvs) > BIG_RANGE:  # 100k keys take ~0.2 s to convert: not on the loop
            return await asyncio.to_thread(RangeResult.from_proto, resp)
        return RangeResult.from_proto(resp)

    async def range_all(
        self, prefix: KeyLike, *, page: int = 1000, revision: int = 0,
        key_page: int = KEY_PAGE,
    ) -> tuple[list[KeyValue], int]:
        """Every key under `prefix`, all at one revision, in bounded sub-ranges
        (`node/store/ranges.py`: a large range is split by a keys-only pass first).

        The revision is the first read's (or `revision` if given); returns
        (kvs in key order, revision). Raises `Compacted` if that revision is
        compacted while reading.
        """
        return await read_range(self._range_call, to_bytes(prefix), prefix_range_end(prefix),
                                page=page, revision=revision, key_page=key_page)

    async def range_scan(
        self, prefix: KeyLike, sink: PartSink, *, page: int = 1000, revision: int = 0,
    ) -> int:
        """`range_all` handing each part to `sink(index, kvs)` as it arrives (out of order)
        instead of returning the list: a caller that reduces a large range (the largest TTL
        of a zone) holds a few parts at a time, never the range. Returns the revision."""
        return await scan_range(self._range_call, to_bytes(prefix), prefix_range_end(prefix),
                                page=page, revision=revision, sink=sink)

    async def _range_call(self, start: bytes, end: bytes, limit: int, rev: int,
                          keys_only: bool) -> RangeResult:
        return await self.range(start, end, limit=limit, revision=rev, keys_only=keys_only)

    async def put(self, key: KeyLike, value: KeyLike, *, lease: int = 0) -> int:
        req = rpc_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value), lease=lease)
        resp = await self._unary("KV", "Put", req, idempotent=False)
        return int(resp.header.revision)

    async def delete(self, key: KeyLike, *, prefix: bool = False) -> int:
        end = prefix_range_end(key) if prefix else b""
        req = rpc_pb2.DeleteRangeRequest(key=to_bytes(key), range_end=end)
        resp = await self._unary("KV", "DeleteRange", req, idempotent=False)
        return int(resp.deleted)

    async def txn(
        self, when: Sequence[Compare], then: Sequence[Op], otherwise: Sequence[Op] = ()
    ) -> TxnResult:
        resp = await self._unary("KV", "Txn", txn_request(when, then, otherwise), idempotent=False)
        revision = int(resp.header.revision)
        responses: list[RangeResult | int | None] = []
        for op in resp.responses:
            kind = op.WhichOneof("response")
            if kind == "response_range":
                responses.append(RangeResult.from_proto(op.response_range))
            elif kind == "response_put":
                responses.append(revision)
            elif kind == "response_delete_range":
                responses.append(int(op.response_delete_range.deleted))
            else:
                responses.append(None)
        return TxnResult(resp.succeeded, revision, tuple(responses))

    async def compact(self, revision: int, *, physical: bool = True) -> None:
        """Compact history before `revision` (already compacted is not an error)."""
        req = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        try:
            await self._unary("KV", "Compact", req, idempotent=True)
        except Compacted:
            pass

    # -- leases

    async def lease_grant(self, ttl: int) -> tuple[int, int]:
        resp = await self._unary(
            "Lease", "LeaseGrant", rpc_pb2.LeaseGrantRequest(TTL=ttl), idempotent=False
        )
        if resp.error:
            raise EtcdError(f"etcd refused a lease of {ttl}s: {resp.error}")
        return int(resp.ID), int(resp.TTL)

    async def lease_revoke(self, lease_id: int) -> None:
        """Revoke a lease (a lease already gone is not an error)."""
        try:
            await self._unary(
                "Lease", "LeaseRevoke", rpc_pb2.LeaseRevokeRequest(ID=lease_id), idempotent=True
            )
        except NotFound:
            pass

    async def lease_keepalive_once(self, lease_id: int) -> int:
        """Refresh a lease once; returns its TTL, 0 if the lease is gone."""

        async def one(stub: Any, timeout: float, metadata: Any) -> Any:
            call = stub.LeaseKeepAlive(timeout=timeout, metadata=metadata)
            try:
                await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
                resp = await call.read()
            finally:
                call.cancel()
            if resp is grpc.aio.EOF:
                raise EtcdUnavailable("etcd closed the keepalive stream")
            return resp

        resp = await self._call("Lease", one, idempotent=True, what="LeaseKeepAlive")
        return max(int(resp.TTL), 0)

    async def lease_ttl(self, lease_id: int) -> int:
        """Remaining TTL of a lease in seconds, -1 if it does not exist."""
        req = rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id)
        try:
            resp = await self._unary("Lease", "LeaseTimeToLive", req, idempotent=True)
        except NotFound:
            return -1
        return int(resp.TTL)

    # -- watch

    def watch(
        self,
        prefix: KeyLike,
        start_revision: int,
        *,
        prefix_match: bool = True,
        prev_kv: bool = False,
    ) -> Watch:
        """A resumable watch from `start_revision` (see `node.store.watch.Watch`)."""
        from node.store.watch import Watch  # watch.py imports this module

        key = to_bytes(prefix)
        end = prefix_range_end(key) if prefix_match else b""
        return Watch(self, key, end, start_revision, prev_kv=prev_kv)
