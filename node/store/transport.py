"""The etcd connection under `EtcdClient`: channels, endpoints, authentication, deadlines,
retries.

Owns the gRPC channels (one per endpoint, created lazily, options for large
ranges and fast reconnects), endpoint rotation, per-call deadlines,
authentication (token metadata, re-authentication once on an invalid or stale
token) and retries (errors are mapped in `failures.py`). It knows no etcd
method: `EtcdClient` (client.py) builds the requests and reads the answers;
`watch.py` and `keepalive.py` open their streams and channels through the
plumbing here (`stub`, `metadata`, `rotate`, `blocking_channel`).

Retry rule: idempotent calls (reads, lease keepalive/TTL/revoke, compact) are
retried on the next endpoint until the call's deadline; writes (put, delete,
txn, lease grant) are retried only when gRPC says the request never left
(connection refused / failed to connect); otherwise they raise
`EtcdUnavailable`, because the write may or may not have been applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from node.errors import ConfigError, EtcdUnavailable, NodeError
from node.events import Event, emit
from node.store._gen import rpc_pb2, rpc_pb2_grpc
from node.store.endpoint import Endpoint, parse_endpoint
from node.store.failures import (
    EtcdError,
    is_invalid_token,
    is_not_sent,
    map_error,
    unavailable,
)
from node.store.values import TlsConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_MESSAGE = 64 * 1024 * 1024
_RETRY_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8)
_REQUIRE_LEADER = ("hasleader", "true")  # etcd's rpctypes.MetadataRequireLeaderKey/HasLeader
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.enable_retries", 0),
)


class EtcdTransport:
    """Calls to one etcd cluster (several endpoints) with deadlines, retries and auth."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TlsConfig | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not endpoints:
            raise ConfigError("etcd.endpoints: at least one endpoint is required")
        self._endpoints: tuple[Endpoint, ...] = tuple(
            parse_endpoint(e, tls=tls is not None) for e in endpoints
        )
        self._username = username
        self._password = password
        self._tls = tls
        self.timeout = timeout
        self._index = 0
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[int, str], Any] = {}
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        self._closed = False

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(e.url for e in self._endpoints)

    # -- lifecycle

    async def connect(self) -> None:
        """Prepare the channel; authenticate if a user is configured and etcd answers.

        Never fails because etcd is down (calls fail later with
        `EtcdUnavailable`); fails with `EtcdAuthError` on a wrong password.
        """
        self._channel()
        if self._username:
            try:
                await self._authenticate(asyncio.get_running_loop().time() + self.timeout)
            except EtcdUnavailable as exc:
                log.warning("etcd not reachable at connect, will retry on use: %s", exc)

    async def close(self) -> None:
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        self._stubs = {}
        for channel in channels:
            await channel.close()

    # -- plumbing shared with client.py, watch.py and keepalive.py

    def stub(self, service: str) -> Any:
        """The stub of `service` on the current endpoint's channel."""
        key = (self._index, service)
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = getattr(rpc_pb2_grpc, f"{service}Stub")(self._channel())
        return stub

    def metadata(self, *, require_leader: bool = False) -> tuple[tuple[str, str], ...]:
        """Call metadata: the auth token, and with `require_leader` etcd's `hasleader=true`
        (the Go client's WithRequireLeader): a member without a leader then refuses the
        call, or cancels the stream, with "etcdserver: no leader" instead of serving from
        its stale store."""
        token = (("token", self._token),) if self._token else ()
        return (*token, _REQUIRE_LEADER) if require_leader else token

    def rotate(self, failed_index: int | None = None) -> None:
        """Move to the next endpoint (once per failure of the current one)."""
        if len(self._endpoints) > 1 and failed_index in (None, self._index):
            self._index = (self._index + 1) % len(self._endpoints)
            log.info("etcd: switching to endpoint %s", self._endpoints[self._index].url)

    @property
    def has_credentials(self) -> bool:
        return bool(self._username)

    @property
    def endpoint_index(self) -> int:
        return self._index

    async def ensure_token(self, deadline: float, *, refresh: bool = False) -> None:
        """Authenticate if a user is configured and there is no (valid) token."""
        if self._username and (refresh or self._token is None):
            await self._authenticate(deadline, stale=self._token if refresh else None)

    def map_error(self, err: grpc.aio.AioRpcError, what: str) -> NodeError:
        return map_error(err, what, self.endpoints)

    def blocking_channel(self, index: int) -> grpc.Channel:
        """A new blocking (non-asyncio) channel to endpoint `index`, for a thread of its own
        (`store/keepalive.py`); the caller closes it."""
        ep = self._endpoints[index]
        if ep.secure:
            return grpc.secure_channel(ep.target, self._credentials(), _CHANNEL_OPTIONS)
        return grpc.insecure_channel(ep.target, _CHANNEL_OPTIONS)

    # -- internals

    def _channel(self) -> grpc.aio.Channel:
        if self._closed:
            raise EtcdUnavailable("the etcd client is closed")
        channel = self._channels.get(self._index)
        if channel is None:
            ep = self._endpoints[self._index]
            if ep.secure:
                channel = grpc.aio.secure_channel(ep.target, self._credentials(), _CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(ep.target, _CHANNEL_OPTIONS)
            self._channels[self._index] = channel
        return channel

    def _credentials(self) -> grpc.ChannelCredentials:
        tls = self._tls or TlsConfig()

        def read(path: str | None, setting: str) -> bytes | None:
            if path is None:
                return None
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise ConfigError(f"etcd.tls.{setting}: cannot read {path}: {exc}") from exc

        return grpc.ssl_channel_credentials(
            root_certificates=read(tls.ca_file, "ca_file"),
            private_key=read(tls.key_file, "key_file"),
            certificate_chain=read(tls.cert_file, "cert_file"),
        )

    async def _authenticate(self, deadline: float, stale: str | None = None) -> None:
        async with self._auth_lock:
            if stale is None and self._token is not None:
                return
            if stale is not None and self._token != stale:
                return  # someone else already refreshed it
            self._token = None
            req = rpc_pb2.AuthenticateRequest(
                name=self._username or "", password=self._password or ""
            )

            async def auth(stub: Any, timeout: float, metadata: Any) -> Any:
                return await stub.Authenticate(req, timeout=timeout)

            try:
                resp = await self._call(
                    "Auth", auth, idempotent=True, what="Authenticate",
                    deadline=deadline, auth=False,
                )
            except EtcdError as exc:
                if "authentication is not enabled" in str(exc):
                    log.warning("etcd user %r configured but etcd auth is disabled", self._username)
                    return
                raise
            self._token = resp.token

    async def _unary(self, service: str, method: str, req: Any, *, idempotent: bool) -> Any:
        async def one(stub: Any, timeout: float, metadata: Any) -> Any:
            return await getattr(stub, method)(req, timeout=timeout, metadata=metadata)

        return await self._call(service, one, idempotent=idempotent, what=method)

    async def _call(
        self,
        service: str,
        fn: Callable[[Any, float, Any], Awaitable[T]],
        *,
        idempotent: bool,
        what: str,
        deadline: float | None = None,
        auth: bool = True,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = deadline if deadline is not None else loop.time() + self.timeout
        attempt = 0
        reauthed = False
        last: grpc.aio.AioRpcError | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise unavailable(what, self.endpoints, last)
            if auth:
                await self.ensure_token(deadline)
            index = self._index
            try:
                return await fn(self.stub(service), remaining, self.metadata() if auth else ())
            except grpc.aio.AioRpcError as err:
                last = err
                code = err.code()
                if auth and self._username and not reauthed and is_invalid_token(err):
                    reauthed = True  # refused before it was applied: a write may retry too
                    emit(Event.ETCD_TOKEN_REFRESHED, call=what, reason=err.details())
                    await self.ensure_token(deadline, refresh=True)
                    continue
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise self.map_error(err, what) from err
                self.rotate(index)
                if not (idempotent or is_not_sent(err)):
                    raise unavailable(what, self.endpoints, err, unknown=True) from err
                delay = _RETRY_BACKOFF[min(attempt, len(_RETRY_BACKOFF) - 1)]
                attempt += 1
                await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
