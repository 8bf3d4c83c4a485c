"""`PendingGenerations`: which generations a replica may take from its watch, and when it
must read one from etcd instead (not followed from its start, a delete under it)."""

from __future__ import annotations

import dns.name
import pytest

from node.store.values import KeyValue
from node.zones import pending
from node.zones.pending import PendingGenerations

Z = dns.name.from_text("p.test.")


def kv(prefix: bytes, owner: str, value: bytes = b'{"ttl": 300, "rdata": ["192.0.2.1"]}'
       ) -> KeyValue:
    return KeyValue(prefix + f"{owner}/A".encode(), value, 1, 1, 1, 0)


def prefix(generation: int) -> bytes:
    return f"/x/zones/p.test./data/{generation}/".encode()


async def test_a_followed_generation_is_taken_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "CHUNK", 3)
    gens = PendingGenerations()
    gens.started(Z, prefix(7))
    for i in range(10):
        gens.offer(prefix(7), kv(prefix(7), f"h{i}.p.test."), True)
    taken = await gens.take(prefix(7))
    assert taken is not None and len(taken[0]) == 10 and taken[1] >= 0
    assert await gens.take(prefix(7)) is None  # taken once
    assert len(gens) == 0


async def test_what_was_not_followed_whole_is_read_from_etcd() -> None:
    gens = PendingGenerations()
    gens.offer(prefix(5), kv(prefix(5), "a.p.test."), True)  # no gen put seen: not followed
    assert await gens.take(prefix(5)) is None
    gens.started(Z, prefix(7))
    gens.offer(prefix(7), kv(prefix(7), "a.p.test."), True)
    gens.offer(prefix(7), kv(prefix(7), "a.p.test."), False)  # a delete: no import does that
    assert await gens.take(prefix(7)) is None


async def test_only_the_newest_generations_of_a_zone_are_followed() -> None:
    gens = PendingGenerations()
    for generation in (3, 4, 5):  # 3: an import that failed and never flips
        gens.started(Z, prefix(generation))
        gens.offer(prefix(generation), kv(prefix(generation), "a.p.test."), True)
    assert len(gens) == pending.KEEP
    assert await gens.take(prefix(3)) is None
    assert await gens.take(prefix(5)) is not None
    gens.forget(Z)
    assert len(gens) == 0


async def test_the_rest_at_the_flip_is_decoded_at_normal_priority(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The zone waits for it: not in the control loop's niced default executor (a reviewer
    found `finish` on asyncio.to_thread, which node.daemon makes nice 10)."""
    import asyncio

    from node.priority import heavy_executor, thread_nice, thread_policy
    from node.zones.decode import NodeDecoder

    seen: list[tuple[int, int]] = []
    real_add = NodeDecoder.add

    def add(self: NodeDecoder, batch: list[KeyValue]) -> None:
        seen.append((thread_nice(), thread_policy()))  # review: the policy too
        real_add(self, batch)

    monkeypatch.setattr(NodeDecoder, "add", add)
    asyncio.get_running_loop().set_default_executor(heavy_executor(1))
    before = (thread_nice(), thread_policy())
    gens = PendingGenerations()
    gens.started(Z, prefix(8))
    gens._gens[prefix(8)].flipped = True  # nothing drained in the background first
    for i in range(5):
        gens.offer(prefix(8), kv(prefix(8), f"h{i}.p.test."), True)
    taken = await gens.take(prefix(8))
    assert taken is not None and len(taken[0]) == 5
    assert seen and seen[-1] == before, f"decoded at nice {seen[-1]}, the loop at {before}"


async def test_a_generation_started_again_lets_go_of_its_first_follower(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`started` on a prefix already followed (the same `gen` put applied again) cancels the
    first follower's background decoding: nothing else would ever stop or take it."""
    import asyncio

    monkeypatch.setattr(pending, "CHUNK", 3)
    gens = PendingGenerations()
    gens.started(Z, prefix(9))
    for i in range(3):
        gens.offer(prefix(9), kv(prefix(9), f"h{i}.p.test."), True)
    first = gens._gens[prefix(9)]
    drain = first.task
    assert drain is not None
    gens.started(Z, prefix(9))
    await asyncio.gather(drain, return_exceptions=True)
    assert drain.cancelled(), "the replaced follower's drain task ran on, decoding for nobody"
    assert gens._gens[prefix(9)] is not first and len(gens) == 1
