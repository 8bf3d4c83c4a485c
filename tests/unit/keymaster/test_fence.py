"""Fence.for_role (node/keymaster/duties.py): a fence without a lease is refused."""

from __future__ import annotations

import dns.name
import pytest

from node.errors import FencedOut
from node.keymaster.duties import Fence
from node.store.keys import KeyLayout


def test_a_fence_needs_the_lease() -> None:
    with pytest.raises(FencedOut):
        Fence.for_role(KeyLayout(), dns.name.from_text("z."), 5, "n1", 0)


def test_a_fence_compares_role_and_lease() -> None:
    fence = Fence.for_role(KeyLayout(), dns.name.from_text("z."), 5, "n1", 77)
    assert len(fence.compares) == 2
