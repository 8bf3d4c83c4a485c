"""Lease keepalives from a thread of their own, over a gRPC channel of their own.

The node's asyncio loop also answers the API, applies the watch and hands
work to pools; a step that holds it for seconds (a zone-sized parse, copy or
compile) must not let the lease expire (issue 10: LEASE_LOST during an
import). `KeepaliveThread` sends one LeaseKeepAlive every `interval` from a
plain thread with a blocking gRPC channel, so it needs neither the loop nor
the loop's channel; it reports each TTL etcd granted through `renewed`, and
`Session` extends its local deadline from it exactly as from its own
keepalives. It never decides that a lease is lost: the loop's keepalive
(`Session._keepalive`) still runs, sees TTL 0 and does the re-grant, so a
failing thread (TLS, an expired auth token) costs nothing but redundancy.
Python threads get the interpreter lock at least every switch interval
(1 ms in the control process, node/priority.py), so a pure-Python step on the
loop delays a keepalive by milliseconds, not seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc

from node.clock import SYSTEM_CLOCK, Clock
from node.store._gen import rpc_pb2, rpc_pb2_grpc
from node.store.client import EtcdClient

log = logging.getLogger(__name__)

Renewed = Callable[[int, float, int], None]  # (lease id, monotonic send time, TTL granted)
Failed = Callable[[str], None]  # why a keepalive from the thread failed


class KeepaliveThread:
    """Keep the lease that `lease()` names alive every `interval` seconds until `stop()`."""

    def __init__(self, client: EtcdClient, interval: float, lease: Callable[[], int | None],
                 renewed: Renewed, clock: Clock = SYSTEM_CLOCK,
                 failed: Failed | None = None) -> None:
        self._client = client
        self._interval = interval
        self._lease = lease
        self._renewed = renewed
        self._failed = failed or (lambda why: None)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._channel: tuple[int, grpc.Channel] | None = None
        self.sent = 0  # keepalives etcd answered (for tests and debugging)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()  # `run()` may be restarted after a stop
            self._thread = threading.Thread(target=self._run, name="lease-keepalive", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._client.timeout + 1)
            self._thread = None
        self._close_channel()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            lease_id = self._lease()
            if lease_id is None:
                continue
            sent = self._clock.monotonic()
            try:
                ttl = self._send(lease_id)
            except grpc.RpcError as exc:
                why = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
                log.debug("lease %x keepalive from the keepalive thread failed: %s", lease_id, why)
                self._failed(f"keepalive thread: {why}")
                self._close_channel()  # reconnect to the client's current endpoint next time
                continue
            except Exception:  # never end the thread: the loop's keepalive is the fallback
                log.exception("lease keepalive thread step failed")
                continue
            self.sent += 1
            self._renewed(lease_id, sent, ttl)

    def _send(self, lease_id: int) -> int:
        stub = rpc_pb2_grpc.LeaseStub(self._channel_now())
        call = stub.LeaseKeepAlive(iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)]),
                                   timeout=self._client.timeout,
                                   metadata=self._client.metadata())
        try:
            resp = next(call)
        finally:
            call.cancel()
        return max(int(resp.TTL), 0)

    def _channel_now(self) -> grpc.Channel:
        index = self._client.endpoint_index
        if self._channel is None or self._channel[0] != index:
            self._close_channel()
            self._channel = (index, self._client.blocking_channel(index))
        return self._channel[1]

    def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel[1].close()
