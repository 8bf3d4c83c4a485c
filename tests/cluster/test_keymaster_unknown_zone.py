"""`transfer-keymaster` and `seize-keymaster` for a zone that does not exist
say so (a mistyped name), not "it was never signed", which sends the operator looking for
a signing problem; for an unsigned zone they still say it was never signed. One node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api


@pytest.fixture(scope="module")
def one() -> Iterator[Cluster]:
    c = make_cluster(count=1)
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone("unsigned.test.", "@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns.other.\n")
        yield c
    finally:
        c.close()


@pytest.mark.parametrize("verb", [["transfer-keymaster", "--to", "n1"],
                                  ["seize-keymaster", "--to", "n1"]])
def test_unknown_zone_is_named_as_missing(one: Cluster, verb: list[str]) -> None:
    node = one.nodes[0]
    res = node.ctl(verb[0], "typo.test", *verb[1:])
    assert res.returncode == 1
    assert "typo.test. does not exist" in res.stderr, res.stderr
    res = node.ctl(verb[0], "unsigned.test", *verb[1:])
    assert res.returncode == 1
    assert "never signed" in res.stderr, res.stderr
