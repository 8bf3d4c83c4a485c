"""`dnscluster.v1.NodeService`: thin servicer over `NodeDirectory`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from node.api import convert
from node.api._gen.dnscluster.v1 import node_pb2_grpc
from node.nodes.membership import NodeDirectory

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import node_pb2

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class NodeService(node_pb2_grpc.NodeServiceServicer):
    """Cluster membership as registered in etcd."""

    def __init__(self, nodes: NodeDirectory) -> None:
        self._nodes = nodes

    async def ListNodes(
        self, request: node_pb2.ListNodesRequest, context: Ctx
    ) -> node_pb2.ListNodesResponse:
        return convert.list_nodes_response(await self._nodes.list_nodes())
