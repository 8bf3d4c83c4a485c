"""`clusterctl nodes`: the cluster's nodes as registered in etcd.

`--json` output: a list of node objects `{"id", "role", "alive", "ready",
"dns_addresses", "api_address", "metrics_address", "version", "started_at",
"served_serials": {zone: serial}}`.
"""

from __future__ import annotations

import argparse

from node.cli.context import CommandContext
from node.cli.output import node_dict
from node.cli.tables import node_table

Parents = list[argparse.ArgumentParser]


def register(commands: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("nodes", parents=parents, help="list the cluster's nodes")
    p.set_defaults(handler=list_)


def list_(ctx: CommandContext) -> None:
    nodes = ctx.client.list_nodes()
    ctx.out.result([node_dict(n) for n in nodes], node_table(nodes))
