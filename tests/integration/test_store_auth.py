"""etcd authentication: a user limited to a prefix, wrong passwords, token expiry
(a restart invalidates simple tokens), watches under auth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from node.store.client import EtcdAuthError, EtcdClient, EtcdPermissionDenied, WatchCanceled
from tests.support.etcd import EtcdProcess


@pytest.fixture
def auth_etcd(private_etcd: EtcdProcess) -> Iterator[EtcdProcess]:
    """Auth on; user `app` may read and write `/app/` only."""
    ctl = private_etcd.ctl
    ctl("user", "add", "root:rootpw")
    ctl("role", "add", "app")
    ctl("role", "grant-permission", "app", "--prefix=true", "readwrite", "/app/")
    ctl("user", "add", "app:apppw")
    ctl("user", "grant-role", "app", "app")
    ctl("auth", "enable")
    yield private_etcd


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
