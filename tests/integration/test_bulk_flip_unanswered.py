"""The txn that makes an imported generation live gets no answer (etcd unavailable):
applied or not, the generation must not stay registered, and so kept, for good.

Before, the import raised and left its generation registered under the node's lease
(`writing/<zone>/<G>`): the sweep keeps a registered generation, so its keys (a whole
zone's) stayed in etcd, and in every node's replica, until that node restarted. Now, in
the background, until etcd answers: a flip that was not applied can no longer be (the
registration goes while the head is unchanged) and its generation is deleted; a flip
that was applied deletes the generation it replaced, as the import would have.
Real etcd; the client loses the flip's answer, before or after sending it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import dns.name
import pytest

from node.errors import EtcdUnavailable
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.store.values import TxnResult
from node.zones.model import ZoneHead
from node.zones.repository import ZoneRepository
from tests.support.etcd import EtcdProcess
from tests.support.sweep import connected
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("flip.test.")
HEAD = ("@ 300 IN SOA ns1 hostmaster 7 3600 600 604800 300\n@ 300 IN NS ns1\n"
        "ns1 300 IN A 192.0.2.1\n")
NEW = HEAD.replace(" 7 ", " 8 ") + "".join(f"h{i} 300 IN A 192.0.2.2\n" for i in range(300))


class LosingClient(EtcdClient):
    """Loses the answer of the next txn that deletes a `writing/` key (a flip):
    `applied` says whether etcd got it first."""

    lose: bool | None = None  # None: nothing to lose; else lose it, applied or not
    prefix = ""

    async def txn(self, when: Sequence[Compare], then: Sequence[Op],
                  otherwise: Sequence[Op] = ()) -> TxnResult:
        flips = [op for op in then if op.kind == "delete" and b"/writing/" in op.key]
        if self.lose is not None and flips and any(op.kind == "put" for op in then):
            applied, self.lose = self.lose, None
            if applied:
                await super().txn(when, then, otherwise)
            raise EtcdUnavailable("etcd unavailable (injected: the flip's answer lost)")
        return await super().txn(when, then, otherwise)


@pytest.fixture
async def client(etcd: EtcdProcess) -> AsyncIterator[LosingClient]:
    async with connected(LosingClient, etcd) as c:
        yield c


async def _generations(client: EtcdClient, layout: KeyLayout) -> set[int]:
    kvs, _ = await client.range_all(layout.data_root(Z))
    root = layout.data_root(Z).encode()
    return {int(kv.key[len(root):].split(b"/", 1)[0]) for kv in kvs}


async def _registered(client: EtcdClient, layout: KeyLayout) -> int:
    kvs, _ = await client.range_all(layout.writing_root())
    return len(kvs)


@pytest.mark.parametrize("applied", [False, True], ids=["not-applied", "applied"])
async def test_an_unanswered_flip_leaves_one_generation(
        client: LosingClient, key_prefix: str, applied: bool) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    created = await repo.create_zone(Z, text=HEAD)
    client.lose = applied
    with pytest.raises(EtcdUnavailable):
        await repo.import_zone(Z, NEW)
    kv = await client.get(layout.head_key(Z))
    assert kv is not None
    live = ZoneHead.from_json(kv.value).generation
    assert (live != created.generation) is applied

    async def settled() -> bool:
        return (await _generations(client, layout) == {live}
                and await _registered(client, layout) == 0)

    await async_wait_until(settled, timeout=30, message="a generation or a registration left")


@pytest.mark.parametrize("applied", [False, True], ids=["not-applied", "applied"])
async def test_an_unanswered_create_leaves_its_generation_only_if_live(
        client: LosingClient, key_prefix: str, applied: bool) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    client.lose = applied
    with pytest.raises(EtcdUnavailable):
        await repo.create_zone(Z, text=NEW)
    kv = await client.get(layout.head_key(Z))
    assert (kv is not None) is applied
    live = {ZoneHead.from_json(kv.value).generation} if kv is not None else set()

    async def settled() -> bool:
        return (await _generations(client, layout) == live
                and await _registered(client, layout) == 0)

    await async_wait_until(settled, timeout=30, message="a generation or a registration left")
