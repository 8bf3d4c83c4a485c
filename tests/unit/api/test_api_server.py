"""node/api/server.py: access policy, health service names, TLS with client certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import grpc.aio
import pytest
from apifakes import SAMPLE_NODES, FixedNodeDirectory, InMemoryZoneRepository
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.api.client import ApiClient, ClientTls
from node.api.errors import ApiUnreachable
from node.api.server import ApiServer, ApiTls, check_access
from node.errors import ConfigError

T = TypeVar("T")
Api = tuple[ApiServer, str]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# --- access policy ---------------------------------------------------------


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:5301", "[::]:5301", "192.0.2.10:5301", "dns.example.test:5301", ":5301"]
)
def test_refuses_non_loopback_without_tls(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.listen"):
        ApiServer(InMemoryZoneRepository(), FixedNodeDirectory([]), listen=listen, tls=None,
                  node_id="t")  # type: ignore[arg-type]


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "127.0.0.11:5301", "[::1]:0", "localhost:0"])
def test_loopback_without_tls_is_allowed(listen: str) -> None:
    check_access(listen, None)


def test_non_loopback_with_tls_is_allowed() -> None:
    check_access("0.0.0.0:5301", ApiTls("ca.pem", "cert.pem", "key.pem"))


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_malformed_listen(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.listen"):
        check_access(listen, None)


# --- health ----------------------------------------------------------------


async def _health(endpoint: str, service: str) -> int:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(resp.status)


async def _wait_until(pred: Callable[[], object], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await pred():  # type: ignore[misc]
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def test_health_liveness_and_readiness(api: Api) -> None:
    server, ep = api
    assert await _health(ep, "") == SERVING
    assert await _health(ep, "liveness") == SERVING
    assert await _health(ep, "readiness") == NOT_SERVING

    server.set_ready(True)

    async def ready() -> bool:
        return await _health(ep, "readiness") == SERVING

    await _wait_until(ready)
    server.set_ready(False)

    async def not_ready() -> bool:
        return await _health(ep, "readiness") == NOT_SERVING

    await _wait_until(not_ready)
    assert await _health(ep, "liveness") == SERVING

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _health(ep, "no-such-service")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_ready_before_start_is_kept() -> None:
    server = ApiServer(InMemoryZoneRepository(), FixedNodeDirectory([]), listen="127.0.0.1:0",
                       tls=None, node_id="t")  # type: ignore[arg-type]
    server.set_ready(True)
    port = await server.start()
    try:
        assert await _health(f"127.0.0.1:{port}", "readiness") == SERVING
    finally:
        await server.stop(0)


# --- TLS with client certificates -------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    # Certificates need a validity window in wall time; a fixed generous one keeps
    # node/clock.py the only reader of the real clock.
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Path:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = _key(), _key()
    ca = _cert("cluster CA", ca_key, None, ca=True)
    rogue_ca = _cert("rogue CA", rogue_ca_key, None, ca=True)
    server_key, client_key, rogue_key = _key(), _key(), _key()
    issuer = (ca.subject, ca_key)
    _write(d / "ca.pem", ca, ca_key)
    _write(d / "server.pem", _cert("node", server_key, issuer, server=True), server_key)
    _write(d / "client.pem", _cert("admin", client_key, issuer), client_key)
    _write(d / "rogue.pem", _cert("admin", rogue_key, (rogue_ca.subject, rogue_ca_key)),
           rogue_key)
    return Pki(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        rogue_cert=d / "rogue.pem",
        rogue_key=d / "rogue.key",
    )


async def _in_thread(endpoint: str, tls: ClientTls, fn: Callable[[ApiClient], T]) -> T:
    def run() -> T:
        with ApiClient(endpoint, tls=tls, timeout=5) as client:
            return fn(client)

    return await asyncio.to_thread(run)


async def test_tls_requires_a_client_cert_signed_by_the_ca(pki: Pki) -> None:
    server = ApiServer(
        InMemoryZoneRepository(),  # type: ignore[arg-type]
        FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0",
        tls=ApiTls(pki.ca, pki.server_cert, pki.server_key),
        node_id="t",
    )
    port = await server.start()
    ep = f"127.0.0.1:{port}"
    try:
        good = ClientTls(pki.ca, pki.client_cert, pki.client_key)
        nodes = await _in_thread(ep, good, lambda c: c.list_nodes())
        assert {n.id for n in nodes} == {"dns-0", "dns-1"}

        no_cert = ClientTls(pki.ca, None, None)
        with pytest.raises(ApiUnreachable):
            await _in_thread(ep, no_cert, lambda c: c.list_nodes())

        rogue = ClientTls(pki.ca, pki.rogue_cert, pki.rogue_key)
        with pytest.raises(ApiUnreachable):
            await _in_thread(ep, rogue, lambda c: c.list_nodes())

        with grpc.insecure_channel(ep) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                await asyncio.to_thread(
                    stub.Check, health_pb2.HealthCheckRequest(service=""), timeout=5
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    finally:
        await server.stop(0)


def test_unreadable_tls_file_names_the_setting(tmp_path: Path) -> None:
    server = ApiServer(
        InMemoryZoneRepository(),  # type: ignore[arg-type]
        FixedNodeDirectory([]),  # type: ignore[arg-type]
        listen="127.0.0.1:0",
        tls=ApiTls(tmp_path / "missing-ca.pem", tmp_path / "c.pem", tmp_path / "k.pem"),
        node_id="t",
    )
    with pytest.raises(ConfigError, match=r"api\.(key|cert|ca)_file"):
        asyncio.run(server.start())
