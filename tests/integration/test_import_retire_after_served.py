"""An import deletes the generation it replaced once every live node serves the new serial.

Issue 10, load time: the deletion (etcd CPU, every watcher decoding the events) used
to start right after the flip, while every node was building the new version's
image. Now `ZoneRepository.import_zone` waits (`node.zones.retire.until_served`) until
each live node's status record (`alive/<id>`) reports the new serial, at most
`retire.WAIT_MAX` seconds, and then deletes it; a zone with DNSSEC state is not
waited for. Real etcd; the live nodes are stood in for by their status records,
written here as `node.nodes.membership` writes them.
"""

from __future__ import annotations

import asyncio
import json

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import retire
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("retire.test.")
HELD_FOR = 1.0  # seconds: an import that did not wait deletes a zone this small in ms


def _text(www: str) -> str:
    return (f"$ORIGIN {Z}\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 300\n"
            f"@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\nwww 300 IN A {www}\n")


async def _alive(client: EtcdClient, layout: KeyLayout, node: str, serial: int) -> None:
    await client.put(layout.alive_key(node), json.dumps(
        {"ready": True, "served": {Z.to_text(): serial}, "problems": {}}).encode())


async def _keys(client: EtcdClient, layout: KeyLayout, generation: int) -> int:
    kvs, _ = await client.range_all(layout.data_prefix(Z, generation))
    return len(kvs)


async def _head(client: EtcdClient, layout: KeyLayout) -> dict[str, int]:
    kv = await client.get(layout.head_key(Z))
    assert kv is not None
    return json.loads(kv.value)  # type: ignore[no-any-return]


async def _import_flipped(client: EtcdClient, layout: KeyLayout, repo: ZoneRepository,
                          old: dict[str, int]) -> asyncio.Task[object]:
    """Start an import of new content; return its task once the head has flipped."""
    task = asyncio.create_task(repo.import_zone(Z, _text("192.0.2.20")))
    await async_wait_until(lambda: _flipped(client, layout, old), 30,
                           message="the import never flipped the head")
    return task  # type: ignore[return-value]


async def _flipped(client: EtcdClient, layout: KeyLayout, old: dict[str, int]) -> bool:
    return (await _head(client, layout))["generation"] != old["generation"]


async def test_the_old_generation_goes_once_every_node_serves_the_new_serial(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    info = await repo.import_zone(Z, _text("192.0.2.10"))
    old = await _head(etcd_client, layout)
    await _alive(etcd_client, layout, "n1", info.serial)
    await _alive(etcd_client, layout, "n2", info.serial)
    task = await _import_flipped(etcd_client, layout, repo, old)
    new_serial = (await _head(etcd_client, layout))["serial"]
    await _alive(etcd_client, layout, "n1", new_serial)  # n2 still serves the old serial
    async with asyncio.timeout(5):
        await task  # applied at the flip: the deletion goes on in the background
    await asyncio.sleep(HELD_FOR)
    assert await _keys(etcd_client, layout, old["generation"]) == 4, \
        "the import deleted the old generation before n2 served the new serial"
    await _alive(etcd_client, layout, "n2", new_serial + 1)  # a later serial counts too
    await _gone(etcd_client, layout, old["generation"], retire.WAIT_MAX / 2)


async def _gone(client: EtcdClient, layout: KeyLayout, generation: int, within: float) -> None:
    async def empty() -> bool:
        return await _keys(client, layout, generation) == 0

    await async_wait_until(empty, within, message="the replaced generation was never deleted")


async def test_a_node_that_never_serves_holds_the_import_no_longer_than_the_bound(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retire, "WAIT_MAX", 1.5)
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    info = await repo.import_zone(Z, _text("192.0.2.10"))
    old = await _head(etcd_client, layout)
    await _alive(etcd_client, layout, "stuck", info.serial)
    async with asyncio.timeout(30):
        await repo.import_zone(Z, _text("192.0.2.20"))
    await _gone(etcd_client, layout, old["generation"], 10)


async def test_a_zone_with_dnssec_state_is_not_waited_for(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retire, "WAIT_MAX", 60.0)
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    info = await repo.import_zone(Z, _text("192.0.2.10"))
    old = await _head(etcd_client, layout)
    await etcd_client.put(layout.dnssec_key(Z), b'{"status": "signed"}')
    await _alive(etcd_client, layout, "signing", info.serial)  # signs for a while yet
    async with asyncio.timeout(20):
        await repo.import_zone(Z, _text("192.0.2.20"))
    await _gone(etcd_client, layout, old["generation"], 5)
