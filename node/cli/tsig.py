"""`clusterctl tsig add|list|show|delete`: TSIG keys (RFC 8945) for UPDATE and transfers.

`add` and `show` print the key in BIND's `key {}` syntax and in the `-y`
form (`hmac-sha256:NAME:SECRET`; nsupdate defaults to hmac-md5, so the
algorithm is always given) of the command it is for: `nsupdate -y` for an
update key, `dig -y ... AXFR` for a transfer key. `--json`: `{name, algorithm, secret, use}` for
add and show; a list of `{name, algorithm, use}` for list;
`{"key": NAME, "deleted": true}` for delete.
"""

from __future__ import annotations

import argparse

from node.cli.context import CommandContext
from node.cli.tables import table
from node.zones.tsigkey import ALGORITHMS, TsigKey

Parents = list[argparse.ArgumentParser]


def register(commands: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    tsig = commands.add_parser("tsig", help="add, list, show, delete TSIG keys")
    verbs = tsig.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = verbs.add_parser("add", parents=parents, help="create a key with a random secret")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="hmac-sha256")
    p.add_argument("--use", choices=("update", "transfer"), default="update",
                   help="update: RFC 2136 UPDATE (secret under the KEK); transfer: AXFR/IXFR")
    p.set_defaults(handler=add)
    p = verbs.add_parser("list", parents=parents, help="list keys (no secrets)")
    p.set_defaults(handler=list_)
    p = verbs.add_parser("show", parents=parents, help="show one key with its secret")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=show)
    p = verbs.add_parser("delete", parents=parents, help="delete a key")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=delete)


def key_text(key: TsigKey) -> str:
    if key.use == "transfer":  # nsupdate with a transfer key is refused (BADKEY)
        how = f"# dig -y {key.nsupdate_y()} @NODE ZONE AXFR"
    else:
        how = f"# nsupdate -y {key.nsupdate_y()}"
    return f"{key.bind_text()}\n\n{how}\n# use: {key.use}"


def add(ctx: CommandContext) -> None:
    key = ctx.client.add_tsig_key(ctx.args.name, ctx.args.algorithm, ctx.args.use)
    ctx.out.result(key.to_dict(), key_text(key))


def show(ctx: CommandContext) -> None:
    key = ctx.client.get_tsig_key(ctx.args.name)
    ctx.out.result(key.to_dict(), key_text(key))


def list_(ctx: CommandContext) -> None:
    keys = ctx.client.list_tsig_keys()
    rows = [{k: v for k, v in key.to_dict().items() if k != "secret"} for key in keys]
    ctx.out.result(rows, table(("NAME", "ALGORITHM", "USE"),
                               [(r["name"], r["algorithm"], r["use"]) for r in rows]))


def delete(ctx: CommandContext) -> None:
    ctx.client.delete_tsig_key(ctx.args.name)
    ctx.out.result({"key": ctx.args.name, "deleted": True}, f"deleted TSIG key {ctx.args.name}")
