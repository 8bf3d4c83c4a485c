"""`clusterctl record ...`: add, delete, replace, list.

NAME is relative to the zone (`www`), `@` for the apex, or absolute with a
trailing dot. RDATA is master-file syntax, the remaining words joined with
spaces (`10 mx1`); for TXT a word with spaces is one string. Put `--` before
RDATA that starts with `-`.

`--json` output:

* add, delete, replace: `{"zone", "owner", "type", "serial"}` (the zone's new serial)
* list: a list of rrset objects `{"owner", "ttl", "type", "rdata": [..]}`
"""

from __future__ import annotations

import argparse

import dns.name
import dns.rdatatype

from node.cli import arguments as a
from node.cli.context import CommandContext
from node.cli.output import rrset_dict
from node.cli.tables import record_table

Parents = list[argparse.ArgumentParser]


def register(commands: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    record = commands.add_parser("record", help="add, delete, replace, list records")
    verbs = record.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("add", parents=parents, help="add a record")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("name", metavar="NAME")
    p.add_argument("ttl", type=a.ttl_arg, metavar="TTL", help="seconds, or 1h, 1d, 1w2d")
    p.add_argument("type", type=a.type_arg, metavar="TYPE")
    p.add_argument("rdata", nargs="+", metavar="RDATA")
    p.set_defaults(handler=add)

    p = verbs.add_parser("delete", parents=parents,
                         help="delete a record, or the whole RRset without RDATA")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("name", metavar="NAME")
    p.add_argument("type", type=a.type_arg, metavar="TYPE")
    p.add_argument("rdata", nargs="*", metavar="RDATA")
    p.set_defaults(handler=delete)

    p = verbs.add_parser("replace", parents=parents,
                         help="replace the whole RRset at NAME/TYPE with this one record")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("name", metavar="NAME")
    p.add_argument("ttl", type=a.ttl_arg, metavar="TTL", help="seconds, or 1h, 1d, 1w2d")
    p.add_argument("type", type=a.type_arg, metavar="TYPE")
    p.add_argument("rdata", nargs="+", metavar="RDATA")
    p.set_defaults(handler=replace)

    p = verbs.add_parser("list", parents=parents, help="list a zone's records")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--name", metavar="N", help="only this owner name")
    p.add_argument("--type", type=a.type_arg, metavar="T", help="only this type")
    p.set_defaults(handler=list_)


_ALREADY = {"added": "the record already exists with this TTL",
            "replaced": "the RRset already is exactly this"}


def _change(ctx: CommandContext, verb: str, owner: dns.name.Name, rdtype: int, serial: int,
            changed: bool = True) -> None:
    type_text = dns.rdatatype.to_text(rdtype)
    value = {"zone": ctx.args.zone.to_text(), "owner": owner.to_text(), "type": type_text,
             "serial": serial, "changed": changed}
    if changed:
        text = f"{verb} {owner} {type_text}; zone {ctx.args.zone} is now at serial {serial}"
    else:  # exit 0: what was asked for holds (as nsupdate; no serial bump, as RFC 2136)
        text = (f"{owner} {type_text}: {_ALREADY[verb]}; nothing changed, zone "
                f"{ctx.args.zone} stays at serial {serial}")
    ctx.out.result(value, text)


def add(ctx: CommandContext) -> None:
    args = ctx.args
    rrset = a.record_rrset(args.zone, args.name, args.ttl, args.type, args.rdata)
    change = ctx.client.add_records(args.zone, rrset)
    _change(ctx, "added", rrset.name, rrset.rdtype, change.serial, change.changed)


def delete(ctx: CommandContext) -> None:
    args = ctx.args
    rrset = a.record_rrset(args.zone, args.name, 0, args.type, args.rdata)
    serial = ctx.client.delete_records(
        args.zone, rrset.name, rrset.rdtype, rrset if len(rrset) else None
    )
    _change(ctx, "deleted", rrset.name, rrset.rdtype, serial)


def replace(ctx: CommandContext) -> None:
    args = ctx.args
    rrset = a.record_rrset(args.zone, args.name, args.ttl, args.type, args.rdata)
    change = ctx.client.replace_rrset(args.zone, rrset)
    _change(ctx, "replaced", rrset.name, rrset.rdtype, change.serial, change.changed)


def list_(ctx: CommandContext) -> None:
    args = ctx.args
    owner = a.owner_in(args.zone, args.name) if args.name else None
    rdtype = dns.rdatatype.from_text(args.type) if args.type else None
    rrsets = ctx.client.list_records(args.zone, owner, rdtype)
    ctx.out.result([rrset_dict(r) for r in rrsets], record_table(rrsets))
