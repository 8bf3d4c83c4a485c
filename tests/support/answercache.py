"""The answer cache's flood check, shared by the tests of both zone tables
(`node.server.answercache.AnswerCache`: `ZoneTable` in process, `ImageTable` in workers)."""

from __future__ import annotations

from collections.abc import Callable

from node.server.answercache import COLD_SHARE, AnswerCache
from node.server.render import Entry


def flood_keeps_hot(table: AnswerCache, lookup: Callable[[bytes, int], Entry | None],
                    hot: list[bytes], key: Callable[[str], bytes], origin: str) -> None:
    """A flood of names under `origin`, each asked once and one in three asked twice (those
    may be admitted), overflows the cold segment of a small cache many times: the cache stays
    within its bound at every step, keeps every `hot` key, and holds some cold answers."""
    table.cache_max = 400
    for i in range(20_000):
        k = key(f"r{i}.x{i % 7}.{origin}")
        lookup(k, 0)
        if i % 3 == 0:
            lookup(k, 0)
        assert len(table.caches[0]) <= table.cache_max
    assert all(k in table.caches[0] for k in hot)
    cold = len(table.caches[0]) - len(hot)
    assert 0 < cold <= table.cache_max // COLD_SHARE
