"""`PendingGenerations` holds no decoded generation that can no longer be taken.

An import that fails or is cancelled after its `gen` put never flips; a create
that lost its race deletes what it wrote. Each replica has decoded what it saw
of such a generation (up to a whole zone of RRsets); it must not keep it until
two other imports of the zone happen to run at the same time.
"""

from __future__ import annotations

from test_pending import Z, kv, prefix

from node.zones.pending import PendingGenerations


async def test_a_generation_that_never_flips_is_let_go_at_the_zones_next_flip() -> None:
    gens = PendingGenerations()
    gens.started(Z, prefix(3))  # an import that failed after writing
    for i in range(10):
        gens.offer(prefix(3), kv(prefix(3), f"h{i}.p.test."), True)
    for generation in (5, 7):  # later imports of the zone, one at a time
        gens.started(Z, prefix(generation))
        gens.offer(prefix(generation), kv(prefix(generation), "a.p.test."), True)
        assert await gens.take(prefix(generation)) is not None
    assert len(gens) == 0, "the failed import's generation is still followed (and held)"


async def test_a_generation_deleted_under_is_let_go_at_once() -> None:
    gens = PendingGenerations()
    gens.started(Z, prefix(7))
    for i in range(10):
        gens.offer(prefix(7), kv(prefix(7), f"h{i}.p.test."), True)
    for i in range(10):  # a create that lost its race removes what it wrote
        gens.offer(prefix(7), kv(prefix(7), f"h{i}.p.test."), False)
    assert len(gens) == 0, "a generation deleted under is still held"
    assert await gens.take(prefix(7)) is None  # read from etcd, as before
