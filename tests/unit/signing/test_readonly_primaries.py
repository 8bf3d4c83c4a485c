"""`[readonly] primaries`: which writable nodes a read-only node transfers from, in order."""

from __future__ import annotations

import asyncio

from node.nodes.membership import NodeInfo
from node.signing.secondary import SecondaryLoader


def _node(node_id: str, addr: str, role: str = "writable", alive: bool = True) -> NodeInfo:
    return NodeInfo(id=node_id, role=role, dns_addresses=(addr,), api_address="",
                    metrics_address="", alive=alive)


class _Directory:
    """The node directory as etcd would list it (a plain value, no etcd)."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes

    async def list_nodes(self) -> list[NodeInfo]:
        return sorted(self.nodes, key=lambda n: n.id)


NODES = [_node("n1", "10.0.0.1:5300"), _node("n2", "10.0.0.2:5300"),
         _node("n3", "10.0.0.9:5300"), _node("n4", "10.0.0.4:5300", alive=False),
         _node("ro2", "10.0.0.9:5300", role="readonly")]
ME = _node("ro", "10.0.0.9:5300", role="readonly")


def _sources(primaries: tuple[str, ...]) -> list[str]:
    loader = SecondaryLoader(me=ME, directory=_Directory(NODES),  # type: ignore[arg-type]
                             publish=lambda _s: None, hold=lambda _z: None,
                             on_readiness=lambda: None, primaries=primaries)
    return [n.id for n in asyncio.run(loader._sources())]


def test_unpinned_a_writable_node_on_the_same_host_comes_first() -> None:
    assert _sources(()) == ["n3", "n1", "n2"]


def test_pinned_only_those_live_writable_nodes_in_the_given_order() -> None:
    assert _sources(("n2", "n1")) == ["n2", "n1"]
    assert _sources(("n4", "ro2", "n1")) == ["n1"]  # offline and read-only ones are skipped
    assert _sources(("n4",)) == []
