"""LagCheck bookkeeping: a stream below a linearizable read for longer than the grace is behind."""

from __future__ import annotations

from node.store.client import EtcdClient
from node.store.lag import LagCheck


def make() -> LagCheck:
    return LagCheck(EtcdClient(["127.0.0.1:1"]), b"/k", every=5.0, grace=2.0)


def test_a_stream_that_reaches_the_read_revision_is_not_behind() -> None:
    lag = make()
    assert lag.expect(10, seen=8, now=100.0)
    assert lag.wants_probe() and not lag.wants_probe()  # one progress request per target
    lag.observe(10)
    assert not lag.behind(10, now=103.0)
    assert lag.target == 0 and lag.wake_at() == 105.0  # the next read


def test_a_stream_below_the_read_revision_after_the_grace_is_behind() -> None:
    lag = make()
    lag.expect(10, seen=8, now=100.0)
    lag.observe(9)
    assert not lag.behind(9, now=101.9)
    assert lag.behind(9, now=102.0)
    assert lag.wake_at() == 102.0


def test_a_failed_read_or_one_the_stream_already_passed_sets_no_target() -> None:
    lag = make()
    assert not lag.expect(0, seen=8, now=100.0)
    assert not lag.expect(7, seen=8, now=100.0)
    assert not lag.behind(8, now=200.0)


async def test_reset_forgets_the_target_and_waits_a_period() -> None:
    lag = make()
    lag.expect(10, seen=8, now=100.0)
    await lag.reset(50.0)
    assert lag.target == 0 and lag.wake_at() == 55.0
