"""etcd authentication: a user limited to a prefix, wrong passwords, token expiry
(a restart invalidates simple tokens), watches under auth, JWT tokens made stale by an
auth change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.store.client import EtcdAuthError, EtcdClient, EtcdPermissionDenied, WatchCanceled
from tests.support.etcd import EtcdProcess, jwt_auth_args


def _enable_app_auth(etcd: EtcdProcess) -> None:
    """Auth on; user `app` may read and write `/app/` only."""
    ctl = etcd.ctl
    ctl("user", "add", "root:rootpw")
    ctl("role", "add", "app")
    ctl("role", "grant-permission", "app", "--prefix=true", "readwrite", "/app/")
    ctl("user", "add", "app:apppw")
    ctl("user", "grant-role", "app", "app")
    ctl("auth", "enable")


@pytest.fixture
def auth_etcd(private_etcd: EtcdProcess) -> Iterator[EtcdProcess]:
    _enable_app_auth(private_etcd)
    yield private_etcd


@pytest.fixture
def jwt_etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """Like `auth_etcd`, with JWT tokens: any auth change makes earlier tokens stale."""
    proc = EtcdProcess("jwt", extra_args=jwt_auth_args(tmp_path))
    proc.start()
    try:
        _enable_app_auth(proc)
        yield proc
    finally:
        proc.close()


async def test_user_with_role_works_within_its_prefix(auth_etcd: EtcdProcess) -> None:
    client = EtcdClient([auth_etcd.endpoint], username="app", password="apppw", timeout=2.0)
    await client.connect()
    try:
        rev = await client.put("/app/x", "1")
        kv = await client.get("/app/x")
        assert kv is not None and kv.mod_revision == rev
        with pytest.raises(EtcdPermissionDenied, match="permission denied"):
            await client.put("/secret/x", "1")
        with pytest.raises(EtcdPermissionDenied):
            await client.get("/secret/x")
        # the token survives nothing across an etcd restart: the client re-authenticates once
        auth_etcd.restart()
        assert (await client.get("/app/x")) is not None
        assert await client.put("/app/y", "2") > rev
        # a watch under auth, then one outside the permitted range
        watch = client.watch("/app/", rev)
        batch = await asyncio.wait_for(anext(aiter(watch)), 10)
        assert batch.revision == rev
        await watch.close()
        denied = client.watch("/secret/", 1)
        with pytest.raises(WatchCanceled, match="permission denied"):
            await asyncio.wait_for(anext(aiter(denied)), 10)
    finally:
        await client.close()
    assert "/app/y" in auth_etcd.ctl("get", "/app/y", user="root:rootpw")


async def test_wrong_password_is_a_clear_error(auth_etcd: EtcdProcess) -> None:
    client = EtcdClient([auth_etcd.endpoint], username="app", password="nope", timeout=2.0)
    try:
        with pytest.raises(EtcdAuthError, match=r"etcd\.username/etcd\.password"):
            await client.connect()
        with pytest.raises(EtcdAuthError):
            await client.get("/app/x")
    finally:
        await client.close()


async def test_no_credentials_against_auth_etcd_names_the_setting(auth_etcd: EtcdProcess) -> None:
    client = EtcdClient([auth_etcd.endpoint], timeout=2.0)
    try:
        with pytest.raises(EtcdAuthError, match=r"etcd\.username"):
            await client.get("/app/x")
    finally:
        await client.close()


async def test_a_token_made_stale_by_an_auth_change_is_refreshed(jwt_etcd: EtcdProcess) -> None:
    """etcd answers "revision of auth store is old" (INVALID_ARGUMENT) to a token issued
    before a role change; like etcd's Go client, re-authenticate and retry once."""
    client = EtcdClient([jwt_etcd.endpoint], username="app", password="apppw", timeout=2.0)
    await client.connect()
    try:
        rev = await client.put("/app/x", "1")
        watch = client.watch("/app/", rev + 1)
        # the watch (re)opens with a stale token
        jwt_etcd.ctl("role", "grant-permission", "app", "read", "/harmless/", user="root:rootpw")
        jwt_etcd.ctl("put", "/app/w", "by-root", user="root:rootpw")
        batch = await asyncio.wait_for(anext(aiter(watch)), 20)
        assert [e.kv.key for e in batch.events] == [b"/app/w"]
        await watch.close()
        # reads and writes with a stale token
        jwt_etcd.ctl("role", "revoke-permission", "app", "/harmless/", user="root:rootpw")
        kv = await client.get("/app/x")
        assert kv is not None and kv.value == b"1"
        jwt_etcd.ctl("role", "grant-permission", "app", "read", "/harmless/", user="root:rootpw")
        assert await client.put("/app/x", "2") > rev
    finally:
        await client.close()
    assert "2" in jwt_etcd.ctl("get", "/app/x", user="root:rootpw")
