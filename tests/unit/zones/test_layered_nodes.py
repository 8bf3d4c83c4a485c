"""`LayeredNodes`: successive versions made from changes read as the plain dicts they
replace (get, in, [], len, iteration, items, equality), never change an older version,
and flatten once the top layer grows past its share."""

from __future__ import annotations

import random

import dns.name
import pytest

from node.zones import layered
from node.zones.layered import LayeredNodes


def _name(i: int) -> dns.name.Name:
    return dns.name.from_text(f"n{i}.example.")


def _check(view: LayeredNodes, want: dict[dns.name.Name, object]) -> None:
    assert len(view) == len(want)
    assert dict(view) == want
    assert dict(view.items()) == want
    assert set(view) == set(want) and set(view.keys()) == set(want)
    assert view == want
    for i in range(-1, 60):
        n = _name(i)
        assert (n in view) == (n in want)
        assert view.get(n) == want.get(n)
        if n in want:
            assert view[n] is want[n]
        else:
            with pytest.raises(KeyError):
                view[n]


def test_versions_read_as_dicts_and_older_ones_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "FLAT_MIN", 8)
    rng = random.Random(5)
    source = {_name(i): {1: i} for i in range(40)}
    view = LayeredNodes.of(source)
    history = [(view, dict(source))]
    flattened = 0
    for step in range(200):
        changes: dict[dns.name.Name, object] = {}
        for _ in range(rng.randint(1, 3)):
            n = _name(rng.randrange(55))
            if rng.random() < 0.4:
                source.pop(n, None)
                changes[n] = None
            else:
                source[n] = changes[n] = {2: step}
        before = view.layer
        view = view.updated(changes, source if step % 2 else None)  # type: ignore[arg-type]
        flattened += view.layer < before
        source_copy = dict(source)
        history.append((view, source_copy))
        _check(view, source_copy)
    assert flattened > 5  # the top was merged into a new base again and again
    for old, want in history[::17]:
        _check(old, want)  # older versions unchanged


def test_a_flattened_version_does_not_share_the_source() -> None:
    source = {_name(i): {1: i} for i in range(3)}
    view = LayeredNodes.of(source)
    source[_name(9)] = {1: 9}
    assert _name(9) not in view and len(view) == 3
