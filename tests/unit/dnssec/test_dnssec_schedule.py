"""The zone signer's refresh schedule (issue 10, session 14): a sorted front with its due
times in an array, a small heap of recent nodes folded into it, retired nodes dropped."""

from __future__ import annotations

import random
import sys

import dns.name
import dns.rrset
import pytest
from dnssec_support import NOW, example_nodes, key_pair

from node.dnssec import schedule
from node.dnssec.denial import DenialParams
from node.dnssec.schedule import RefreshSchedule
from node.dnssec.sigstore import SignedNode
from node.dnssec.zonesigner import SigningParams, ZoneSigner


class Node:
    """A stand-in for a `SignedNode`: only its identity matters to the schedule."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Node({self.n})"


def test_a_full_pass_is_taken_in_due_order() -> None:
    s: RefreshSchedule[Node] = RefreshSchedule()
    nodes = [Node(i) for i in range(100)]
    dues = [1000 + (i * 37) % 100 for i in range(100)]
    for node, due in zip(nodes, dues, strict=True):
        s.add_bulk(node, due)
    s.seal()
    assert s.earliest() == 1000 and len(s) == 100
    taken = s.pop_due(1049)
    assert [dues[n.n] for n in taken] == sorted(d for d in dues if d <= 1049)
    assert s.earliest() == 1050 and len(s) == 50
    assert s.pop_due(999) == []


def test_added_and_retired_nodes() -> None:
    s: RefreshSchedule[Node] = RefreshSchedule()
    a, b, c, d = (Node(i) for i in range(4))
    s.add_bulk(a, 10)
    s.add_bulk(b, 20)
    s.seal()
    s.add(c, 5)
    assert s.earliest() == 5
    s.retire(c)  # replaced: never comes up
    assert s.earliest() == 10
    s.retire(a)
    s.add(d, 15)
    assert s.earliest() == 15
    assert s.pop_due(100) == [b, d] or s.pop_due(100) == [d, b]
    assert s.earliest() is None and not s._stale  # retired ids forgotten once dropped


@pytest.mark.parametrize("seed", range(4))
def test_equals_a_sorted_list_under_random_use(monkeypatch: pytest.MonkeyPatch, seed: int
                                               ) -> None:
    """Against a plain model (node -> due, live or not), with folds forced often."""
    monkeypatch.setattr(schedule, "FOLD_MIN", 8)
    monkeypatch.setattr(schedule, "_TRIM_MIN", 4)
    rng = random.Random(seed)
    s: RefreshSchedule[Node] = RefreshSchedule()
    live: dict[Node, int] = {}
    for i in range(300):
        node = Node(i)
        live[node] = rng.randrange(10_000)
        s.add_bulk(node, live[node])
    s.seal()
    now, made = 0, 300
    for _ in range(2000):
        op = rng.random()
        if op < 0.4:
            node = Node(made)
            made += 1
            live[node] = now + rng.randrange(1, 5000)
            s.add(node, live[node])
        elif op < 0.6 and live:  # an owner's node replaced: the old one retired
            old = rng.choice(list(live))
            del live[old]
            s.retire(old)
        elif op < 0.9:
            now += rng.randrange(0, 60)
            got = s.pop_due(now)
            want = sorted((due, n.n) for n, due in live.items() if due <= now)
            assert sorted((live[n], n.n) for n in got) == want
            for n in got:
                del live[n]
        else:
            assert s.earliest() == min(live.values(), default=None)
    assert s.earliest() == min(live.values(), default=None)
    assert {id(n) for n in s} >= {id(n) for n in live}


def test_taken_front_is_let_go_of() -> None:
    s: RefreshSchedule[Node] = RefreshSchedule()
    for i in range(20_000):
        s.add_bulk(Node(i), i)
    s.seal()
    s.pop_due(15_000)
    assert len(s._order) == 4_999 and s.earliest() == 15_001


def test_sealed_schedule_costs_two_words_per_node() -> None:
    """A node's due time is 8 octets in an array, not an int object and a heap entry."""
    s: RefreshSchedule[Node] = RefreshSchedule()
    n = 50_000
    for i in range(n):
        s.add_bulk(Node(i), 1_800_000_000 + (i * 7919) % 604_800)
    s.seal()
    size = sys.getsizeof(s._order) + sys.getsizeof(s._dues)
    assert size < 18 * n, f"{size / n:.1f} octets per node"  # was ~48: int, slot, heap


@pytest.mark.parametrize("nsec3", [False, True])
def test_signer_schedules_exactly_its_current_signed_owners(monkeypatch: pytest.MonkeyPatch,
                                                           nsec3: bool) -> None:
    """Through changes, removals and refreshes (folds forced often): the schedule's live
    entries are the last result's `SignedNode`s, each once; retired ones are dropped."""
    monkeypatch.setattr(schedule, "FOLD_MIN", 4)
    signer = ZoneSigner(dns.name.from_text("example."),
                        SigningParams(denial=DenialParams(nsec3=nsec3)), key_pair(13))
    nodes = {k: dict(v) for k, v in example_nodes().items()}
    res = signer.sign(nodes, None, NOW)
    rng = random.Random(7)
    t = NOW
    for step in range(40):
        t += rng.choice([1, 3600, 86400])
        name = dns.name.from_text(f"h{rng.randrange(6)}.example.")
        if name in nodes and rng.random() < 0.4:
            del nodes[name]
        else:
            nodes[name] = {16: dns.rrset.from_text(name, 300, "IN", "TXT", f'"{step}"')}
        res = signer.sign({k: dict(v) for k, v in nodes.items()}, frozenset({name}), t)
        sched = signer._schedule
        live = [id(n) for n in sched if id(n) not in sched._stale]
        signed = [id(n) for n in res.nodes.values() if type(n) is SignedNode]
        assert sorted(live) == sorted(signed), f"step {step}"
        assert len(sched._stale) <= len(sched) - len(live)
