"""The zone list pages past a zone's data using the data keys' own zone component, not
the canonical one (real etcd, keys written by hand as an operator might).

Every key the node writes names its zone lowercased, absolute (node/store/keys.py), so
both are the same; a key written by hand into etcd need not be. `list_zones`
jumped to the end of the canonical name's `data/`: past other zones' settings
for an uppercase name (`Foo.` sorts before `bar.`, `foo.` after it), and back
to before the page it had just read for a name without its final dot (`foo.test/`
sorts after `foo.test./`), reading the same page forever.
"""

from __future__ import annotations

import asyncio

import dns.name
import pytest

from node.store.keys import KeyLayout
from node.zones import reads
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

BAR = dns.name.from_text("bar.test.")


@pytest.fixture
async def repo(etcd_client, key_prefix: str):  # type: ignore[no-untyped-def]
    return ZoneRepository(etcd_client, KeyLayout(key_prefix))


async def _hand_written(repo: ZoneRepository, prefix: str, zone: str, n: int) -> None:
    for i in range(n):
        await repo.etcd.put(f"{prefix}zones/{zone}/data/1/h{i}.{zone.lower()}/A",
                            b'{"ttl": 300, "rdata": ["192.0.2.1"]}')


async def test_an_uppercase_zone_key_skips_no_other_zone(
        repo: ZoneRepository, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "LIST_PAGE", 4)
    await repo.create_zone(BAR)
    await _hand_written(repo, key_prefix, "Foo.test.", 10)
    names = [i.config.name for i in await repo.list_zones()]
    assert names == [BAR], f"zone list {names}: the hand-written Foo.test. data hid bar.test."


async def test_a_zone_key_without_its_final_dot_ends_the_list(
        repo: ZoneRepository, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "LIST_PAGE", 4)
    await repo.create_zone(BAR)
    await _hand_written(repo, key_prefix, "foo.test", 10)
    try:
        async with asyncio.timeout(20):
            infos = await repo.list_zones()
    except TimeoutError:
        pytest.fail("list_zones still paging after 20 s: it read the same page again and again")
    assert [i.config.name for i in infos] == [BAR]
