"""A replica's decode and the cyclic collector (node/gcwatch.py `kept_part`, decode.py).

An import's keys are decoded part by part; the objects of a zone-sized part are
frozen as made (the full collections of the growing heap visited them again and
again: ~40% of a 100k-name zone's decode CPU). What other threads left as cyclic
garbage meanwhile is collected first, not kept; a few keys' objects (an update's)
are left to the collector, and a collector someone else disabled stays disabled.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from node import gcwatch
from node.store.values import KeyValue
from node.zones.decode import KEPT_PART, NodeDecoder
from tests.support.wait import wait_until

PREFIX = b"/p/zones/z.test./data/1/"


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def _kvs(count: int) -> list[KeyValue]:
    return [KeyValue(PREFIX + f"h{i}.z.test./A".encode(),
                     b'{"ttl": 300, "rdata": ["192.0.2.%d"]}' % (i % 250), i, i, 1, 0)
            for i in range(count)]


def _tracked(decoder: NodeDecoder) -> list[object]:
    nodes = decoder.nodes()
    return [rrset for types in nodes.values() for rrset in types.values()]


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_zone_sized_part_is_frozen_and_the_collector_enabled_again() -> None:
    gc.collect()
    decoder = NodeDecoder(PREFIX)
    decoder.add(_kvs(KEPT_PART * 2))
    assert gc.isenabled()
    rrsets = _tracked(decoder)
    assert len(rrsets) == KEPT_PART * 2
    assert gc.get_freeze_count() >= 4 * len(rrsets), "the part's objects were not frozen"
    young = {id(o) for g in range(3) for o in gc.get_objects(g)}
    assert not any(id(r) in young for r in rrsets), "an RRset is left to the collector"


def test_cyclic_garbage_made_before_the_part_is_collected_not_kept() -> None:
    gc.collect()
    garbage = _Cycle()
    ref = weakref.ref(garbage)
    del garbage
    NodeDecoder(PREFIX).add(_kvs(KEPT_PART))
    assert ref() is None, "cyclic garbage was frozen with the part"


def test_a_few_keys_are_left_to_the_collector() -> None:
    gc.collect()
    decoder = NodeDecoder(PREFIX)
    decoder.add(_kvs(3))
    assert gc.get_freeze_count() == 0


def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.collect()
    gc.disable()
    NodeDecoder(PREFIX).add(_kvs(KEPT_PART))
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    with gcwatch.kept_part():  # the same, called directly
        pass
    assert not gc.isenabled()


@pytest.mark.parametrize("first", ["kept_part", "paused_gc"])
def test_a_pause_ending_inside_another_ones_start_leaves_the_collector_enabled(
        first: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads pause the collector at once (an import's decoder, a reload's
    `build_nodes`, an image build, a full signing): the first one's pause ends between
    the second's look at the collector (disabled: someone else's) and its `gc.disable()`.
    Each deciding alone, the second disabled it after the first enabled it again, and
    left it to its owner: disabled for good (seen with two real threads doing
    `kept_part` and `paused_gc` in a loop, s13 review). This test runs that order in one
    thread: the first pause's end is called from inside the second's `gc.disable()`."""
    from node.image.builder import paused_gc

    gc.collect()
    one = gcwatch.kept_part() if first == "kept_part" else paused_gc()
    one.__enter__()
    real_disable = gc.disable

    def first_ends_then_disable() -> None:
        monkeypatch.setattr(gc, "disable", real_disable)
        one.__exit__(None, None, None)  # the other thread's pause ends here
        real_disable()

    monkeypatch.setattr(gc, "disable", first_ends_then_disable)
    with gcwatch.kept_part():
        pass
    assert gc.isenabled(), "the collector was left disabled for good"


def test_a_part_inside_another_pause_leaves_collecting_to_that_one() -> None:
    """A decode part during an image build (another thread's `paused_gc`): no collection
    of the build's young objects, no freeze; the collector enabled when the build ends."""
    from node.image.builder import paused_gc

    gc.collect()
    with paused_gc():
        NodeDecoder(PREFIX).add(_kvs(KEPT_PART))
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_a_forked_child_can_pause_while_a_parent_thread_held_the_lock() -> None:
    """The image child is forked from a thread while others may be inside `paused()`:
    in the child the lock is free and no pause of the parent's is counted."""
    import os

    with gcwatch._pause_lock:  # another thread of the parent, mid-pause bookkeeping
        pid = os.fork()
        if pid == 0:  # the child: must not wait on the parent's held lock
            try:
                with gcwatch.paused():
                    pass
                os._exit(0 if gcwatch._pauses["count"] == 0 else 2)
            finally:
                os._exit(3)
    ended: list[int] = []

    def reaped() -> bool:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append(status)
        return bool(done)

    try:
        wait_until(reaped, 30, message="the forked child blocked on the pause lock")
    finally:
        if not ended:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    status = ended[0]
    assert os.waitstatus_to_exitcode(status) == 0
