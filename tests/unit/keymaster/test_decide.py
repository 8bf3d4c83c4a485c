"""decide(): tables of observations -> decisions (node/keymaster/decide.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.keymaster.decide import (
    Acquire,
    Handover,
    Hold,
    Observation,
    Seize,
    StepDown,
    Wait,
    decide,
)
from node.keymaster.record import Intent, RoleRecord

BASE = Observation(
    zone="z.", role=RoleRecord("n1", lease=11), token=5, holder_alive=True, my_lease=11,
    lease_valid=True, eligible=True, failover_auto=True, failover_after=10.0,
    holder_offline_since=None, candidates=("n1", "n2", "n3"), intent=None, acting=True,
)


def obs(**kw: object) -> Observation:
    return replace(BASE, **kw)  # type: ignore[arg-type]


def transfer(to: str) -> Intent:
    return Intent("transfer", "n1", to, "op", "t")


@pytest.mark.parametrize(
    ("o", "me", "now", "expected"),
    [
        (obs(), "n1", 0.0, Hold()),
        (obs(my_lease=12), "n1", 0.0, Acquire("new lease")),
        (obs(my_lease=12, acting=False), "n1", 0.0, Acquire("restart")),
        (obs(lease_valid=False), "n1", 0.0, StepDown("this node's lease is not valid")),
        (obs(lease_valid=False, acting=False), "n1", 0.0, Hold()),
        (obs(role=RoleRecord("n2", 7)), "n1", 0.0, StepDown("the role is now held by n2")),
        (obs(intent=transfer("n2")), "n1", 0.0, Handover("n2")),
        (obs(role=None, acting=False), "n1", 0.0, Hold()),
        # not the holder: election only when auto, holder offline long enough, by rank
        (obs(acting=False, my_lease=21), "n2", 100.0, Hold()),
        (obs(acting=False, my_lease=21, holder_alive=False, holder_offline_since=0.0,
             candidates=("n2", "n3")), "n2", 5.0, Wait(10.0)),
        (obs(acting=False, my_lease=21, holder_alive=False, holder_offline_since=0.0,
             candidates=("n2", "n3")), "n2", 10.0, Seize("election")),
        (obs(acting=False, my_lease=21, holder_alive=False, holder_offline_since=0.0,
             candidates=("n2", "n3")), "n3", 10.5, Wait(11.0)),
        (obs(acting=False, my_lease=21, holder_alive=False, holder_offline_since=0.0,
             failover_auto=False), "n2", 1000.0, Hold()),
        (obs(acting=False, my_lease=21, holder_alive=False, holder_offline_since=0.0,
             eligible=False), "n2", 1000.0, Hold()),
        (obs(acting=False, my_lease=0, holder_alive=False, holder_offline_since=0.0),
         "n2", 1000.0, Hold()),
    ],
)
def test_decide(o: Observation, me: str, now: float, expected: object) -> None:
    assert decide(o, me, now) == expected


def test_a_stale_intent_of_a_previous_holder_is_ignored() -> None:
    # n1 was elected after n9 went away; n9's pending transfer to n3 must not fire at n1
    stale = Intent("transfer", "n9", "n3", "op", "t")
    assert decide(obs(intent=stale), "n1", 0.0) == Hold()


@pytest.mark.parametrize(
    ("o", "expected"),
    [  # restarted read-only, without the KEK or with another one than the zone's
        (obs(may_hold=False, my_lease=12, acting=False), Hold()),
        (obs(may_hold=False),
         StepDown("this node lacks the zone's KEK or is not writable")),
    ],
)
def test_a_node_without_the_zones_kek_never_holds_the_role(o: Observation,
                                                          expected: object) -> None:
    assert decide(o, "n1", 0.0) == expected
