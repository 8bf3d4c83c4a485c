"""The admin API server: grpc.aio server, access policy, error interceptor, health service.

Access (DESIGN "Admin API access"): without TLS the server only listens on a
loopback address (anything else is a `ConfigError` naming `api.listen`); with
`ApiTls` it requires client certificates signed by the configured CA.

Health: the standard `grpc.health.v1.Health` service with three names:
`""` and `liveness` are SERVING while the process works; `readiness` follows
`set_ready()` (NOT_SERVING until the node says it is ready). All three turn
NOT_SERVING when the server stops.

Errors: an interceptor turns `NodeError`s into statuses via `node.api.errors`
(with the error's stable code as trailing metadata); any other exception is
logged with `Event.API_ERROR` and answered INTERNAL with a short message.
etcd's "permission denied" on a read-only node (its etcd user may not write
zones, records or keys: docs/readonly.md) is answered as a refusal that names
the writable nodes' API addresses, not as advice to grant the user the range.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node.api._gen.dnscluster.v1 import (
    dnssec_pb2_grpc,
    keymaster_pb2_grpc,
    node_pb2_grpc,
    record_pb2_grpc,
    tsig_pb2_grpc,
    zone_pb2_grpc,
)
from node.api.dnssec import DnssecService
from node.api.errors import ERROR_CODE_METADATA, status_for
from node.api.keymaster import KeyMasterService
from node.api.nodes import NodeService
from node.api.records import RecordService
from node.api.tsig import TsigService
from node.api.zones import ZoneService
from node.errors import ConfigError, NodeError, Refused
from node.events import Event, emit
from node.keymaster.admin import DnssecAdmin
from node.keymaster.handover import KeyMasterAdmin
from node.nodes.membership import NodeDirectory
from node.store import EtcdPermissionDenied
from node.zones.repository import ZoneRepository
from node.zones.tsig import TsigKeyStore

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
LIVENESS = "liveness"
READINESS = "readiness"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
)


@dataclass(frozen=True, slots=True)
class ApiTls:
    """PEM files: the cluster CA that signs client certificates, and this server's cert/key."""

    ca_file: Path | str
    cert_file: Path | str
    key_file: Path | str


def split_host_port(listen: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6]:port"; ConfigError naming api.listen."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"api.listen must be host:port, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_access(listen: str, tls: ApiTls | None) -> None:
    """Refuse to listen unauthenticated anywhere but loopback (DESIGN: admin API access)."""
    host, _ = split_host_port(listen)
    if tls is None and not is_loopback(host):
        raise ConfigError(
            f"api.listen is {listen!r}, which is not a loopback address; the admin API listens "
            "on a routable address only with TLS client certificates (set api.ca_file, "
            "api.cert_file and api.key_file) or listen on 127.0.0.1"
        )


def _read(path: Path | str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


def server_credentials(tls: ApiTls) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file, "api.key_file"), _read(tls.cert_file, "api.cert_file"))],
        root_certificates=_read(tls.ca_file, "api.ca_file"),
        require_client_auth=True,
    )


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


Explain = Callable[[EtcdPermissionDenied], Awaitable[NodeError]]


async def _as_is(exc: EtcdPermissionDenied) -> NodeError:
    return exc


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """NodeError -> status (with its code as trailing metadata); anything else -> INTERNAL.
    `explain` rewrites etcd's permission denied (the read-only node's refusal)."""

    def __init__(self, explain: Explain = _as_is) -> None:
        self._explain = explain

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is not None and handler.stream_unary is not None:  # ImportZoneStream
            return grpc.stream_unary_rpc_method_handler(
                _guard(handler.stream_unary, handler_call_details.method, self._explain),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _guard(handler.unary_unary, handler_call_details.method, self._explain),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _guard(inner: Handler, method: str, explain: Explain = _as_is) -> Handler:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            try:
                return await inner(request, context)
            except EtcdPermissionDenied as denied:
                raise await explain(denied) from denied
        except NodeError as exc:
            await context.abort(
                status_for(exc), exc.message, trailing_metadata=((ERROR_CODE_METADATA, exc.code),)
            )
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("unexpected error in %s", method)
            emit(Event.API_ERROR, logging.ERROR, method=method, error=repr(exc))
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error in {method} ({type(exc).__name__}); see the node's log",
            )

    return guarded


class ApiServer:
    """The node's gRPC admin API: zones, records, nodes, DNSSEC, Key Master, health.

    Without `dnssec` / `keymaster` the DNSSEC and Key Master services still
    answer, with FAILED_PRECONDITION naming this node (no signing here).
    """

    def __init__(
        self,
        repo: ZoneRepository,
        nodes: NodeDirectory,
        *,
        listen: str,
        tls: ApiTls | None,
        node_id: str,
        dnssec: DnssecAdmin | None = None,
        keymaster: KeyMasterAdmin | None = None,
        tsig: TsigKeyStore | None = None,
    ) -> None:
        check_access(listen, tls)
        self._tsig = tsig
        self._repo = repo
        self._nodes = nodes
        self._dnssec = dnssec
        self._keymaster = keymaster
        self._listen = listen
        self._tls = tls
        self._node_id = node_id
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._ready = False
        self._pending: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (listen "127.0.0.1:0" picks one)."""
        server = grpc.aio.server(interceptors=[ErrorInterceptor(self._explain_denied)],
                                 options=SERVER_OPTIONS)
        zone_pb2_grpc.add_ZoneServiceServicer_to_server(ZoneService(self._repo, self._tsig), server)
        record_pb2_grpc.add_RecordServiceServicer_to_server(RecordService(self._repo), server)
        node_pb2_grpc.add_NodeServiceServicer_to_server(NodeService(self._nodes), server)
        dnssec_pb2_grpc.add_DnssecServiceServicer_to_server(
            DnssecService(self._dnssec, node_id=self._node_id), server)
        keymaster_pb2_grpc.add_KeyMasterServiceServicer_to_server(
            KeyMasterService(self._keymaster, node_id=self._node_id), server)
        if self._tsig is not None:
            tsig_pb2_grpc.add_TsigServiceServicer_to_server(TsigService(self._tsig), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            if self._tls is None:
                port = server.add_insecure_port(self._listen)
            else:
                port = server.add_secure_port(self._listen, server_credentials(self._tls))
        except RuntimeError as exc:
            raise ConfigError(f"api.listen: cannot bind {self._listen}: {exc}") from exc
        if port == 0:
            raise ConfigError(f"api.listen: cannot bind {self._listen}")
        await self._health.set("", _SERVING)
        await self._health.set(LIVENESS, _SERVING)
        await self._health.set(READINESS, _SERVING if self._ready else _NOT_SERVING)
        await server.start()
        self._server = server
        self.port = port
        host, _ = split_host_port(self._listen)
        emit(
            Event.API_LISTENING,
            node=self._node_id,
            address=f"{host}:{port}",
            tls=self._tls is not None,
        )
        return port

    async def _explain_denied(self, exc: EtcdPermissionDenied) -> NodeError:
        """On a read-only node: a refusal naming where changes go; else etcd's error."""
        try:
            nodes = await self._nodes.list_nodes()
        except NodeError:
            return exc
        if not any(n.id == self._node_id and n.role == "readonly" for n in nodes):
            return exc
        writable = ", ".join(f"{n.id} {n.api_address}" for n in nodes
                             if n.role == "writable" and n.api_address) or "none registered"
        return Refused(f"node {self._node_id} is read-only: its etcd user is not allowed "
                       f"this (nothing was changed); send changes to a writable node "
                       f"({writable}) with clusterctl --endpoint HOST:PORT")

    def set_ready(self, ready: bool) -> None:
        """Report readiness on the health service (`readiness`); safe before start."""
        self._ready = ready
        if self._server is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._health.set(READINESS, _SERVING if ready else _NOT_SERVING)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self, grace: float | None = 5.0) -> None:
        """Health turns NOT_SERVING, then in-flight RPCs get `grace` seconds to finish."""
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._server = None
