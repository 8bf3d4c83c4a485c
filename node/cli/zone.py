"""`clusterctl zone ...`: create, list, show, delete, import, export, update.

`zone sign|unsign|dnssec` are registered here from `node.cli.dnssec`.

`--json` output (see `node.cli.output` for the zone object):

* create, show, import, update: one zone object
* list: a list of zone objects (`rrset_count` null: not counted)
* delete: `{"zone": NAME, "deleted": true}`
* export: `{"zone": NAME, "text": MASTER_FILE}` (with `-o FILE`: `{"zone", "file"}`)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dns.name import Name

from node.cli import arguments as a
from node.cli import dnssec, masterinclude, rollover
from node.cli.context import CommandContext
from node.cli.output import UsageError, exit_code_for_outcome, zone_dict
from node.cli.tables import zone_details, zone_table
from node.errors import ValidationError
from node.zones.model import ZoneConfig

Parents = list[argparse.ArgumentParser]


def register(commands: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    zone = commands.add_parser(
        "zone", help="create, list, show, delete, import, export, sign, unsign zones")
    verbs = zone.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("create", parents=parents, help="create a zone")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--ns", type=a.server_name_arg, action="append", default=[], metavar="NAME",
                   help="NS name at the apex (repeatable; one label such as ns1 is in the "
                        "zone, a name with a dot is absolute)")
    p.add_argument("--primary-ns", type=a.server_name_arg, metavar="NAME",
                   help="SOA primary name server (default: the first --ns)")
    p.add_argument("--email", type=a.email_arg, metavar="ADDR", help="SOA admin e-mail")
    p.add_argument("--allow-transfer", type=a.cidr_arg, action="append", default=[],
                   metavar="CIDR", help="network allowed AXFR/IXFR (repeatable)")
    p.add_argument("--file", metavar="F", help="initial content, a master file ('-': stdin; "
                   "$INCLUDE is read here, relative to the file); "
                   "with --file-backed: the master file's path on --node")
    p.add_argument("--file-backed", action="store_true",
                   help="a file-backed zone: its data is the master file --file on --node, "
                        "its only primary and fixed Key Master")
    p.add_argument("--node", default="", metavar="NODE",
                   help="the node that holds a --file-backed zone's master file")
    p.add_argument("--secondary", action="store_true",
                   help="a secondary zone: every node transfers it from --primary")
    p.add_argument("--primary", action="append", default=[], metavar="HOST:PORT[,...]",
                   help="outside primary of a --secondary zone, an IP address and port "
                        "(comma-separated or repeated; tried in order)")
    p.add_argument("--tsig", default="", metavar="KEY",
                   help="transfer TSIG key for a --secondary zone (clusterctl tsig add KEY "
                        "--use transfer)")
    p.set_defaults(handler=create)

    p = verbs.add_parser("reload", parents=parents,
                         help="re-read a file-backed zone's master file on its node")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.set_defaults(handler=reload)

    p = verbs.add_parser("list", parents=parents, help="list zones")
    p.set_defaults(handler=list_)

    p = verbs.add_parser("show", parents=parents, help="show one zone")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.set_defaults(handler=show)

    p = verbs.add_parser("delete", parents=parents, help="delete a zone and all its data")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.set_defaults(handler=delete)

    p = verbs.add_parser("import", parents=parents, help="replace a zone's content from a file")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("file", metavar="FILE", help="master file, '-' for stdin ($INCLUDE is read "
                   "here, relative to the file)")
    p.add_argument("--no-create", action="store_true",
                   help="fail if the zone does not exist (default: create it)")
    p.set_defaults(handler=import_)

    p = verbs.add_parser("export", parents=parents, help="print a zone as a master file")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=export)

    p = verbs.add_parser("update", parents=parents, help="change a zone's settings")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--allow-transfer", type=a.cidr_arg, action="append", metavar="CIDR",
                       help="networks allowed AXFR/IXFR (repeatable; replaces the list)")
    group.add_argument("--no-allow-transfer", action="store_true",
                       help="allow transfers from nowhere")
    tkeys = p.add_mutually_exclusive_group()
    tkeys.add_argument("--allow-transfer-key", type=a.name_arg, action="append", metavar="NAME",
                       help="TSIG transfer key whose signed AXFR/IXFR is allowed from any "
                            "address, beside --allow-transfer (repeatable; replaces the list)")
    tkeys.add_argument("--no-allow-transfer-key", action="store_true",
                       help="allow no transfer by key (addresses only)")
    notify = p.add_mutually_exclusive_group()
    notify.add_argument("--notify", type=a.notify_target_arg, action="append",
                        metavar="HOST:PORT[/KEY]",
                        help="secondaries sent a NOTIFY on every new serial, signed with the "
                             "transfer key KEY if given (repeatable; replaces the list)")
    notify.add_argument("--no-notify", action="store_true", help="send no NOTIFY")
    upd = p.add_mutually_exclusive_group()
    upd.add_argument("--allow-update", type=a.cidr_arg, action="append", metavar="CIDR",
                     help="networks allowed to send UPDATE, besides TSIG (repeatable; "
                          "replaces the list)")
    upd.add_argument("--no-allow-update", action="store_true",
                     help="no address restriction on UPDATE (TSIG and policy still apply)")
    p.add_argument("--dynamic-update", choices=("none", "secure", "nonsecure_and_secure"),
                   help="who may send RFC 2136 UPDATE (default secure: TSIG only)")
    pol = p.add_mutually_exclusive_group()
    pol.add_argument("--update-policy", action="append", metavar="RULE",
                     help="BIND update-policy rule, e.g. 'grant KEY zonesub ANY' (repeatable; "
                          "replaces the policy)")
    pol.add_argument("--default-update-policy", action="store_true",
                     help="back to the default policy (every update key: zonesub ANY)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--require-tls-transfer", action="store_true", default=None,
                     help="AXFR/IXFR only over DNS over TLS (XoT, RFC 9103; the nodes' "
                          "dns.tls_listen); plain-TCP transfers are refused")
    tls.add_argument("--no-require-tls-transfer", dest="require_tls_transfer",
                     action="store_false", help="transfers over plain TCP allowed again")
    p.set_defaults(handler=update)

    dnssec.register_zone_verbs(verbs, parents)
    rollover.register_zone_verbs(verbs, parents)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def _read_master(path: str, zone: Name) -> masterinclude.Expanded:
    """The master file at `path` with its `$INCLUDE`s expanded here (the node reads none)."""
    return masterinclude.expand(path, _read_text(path), zone)


@contextmanager
def _located(expanded: masterinclude.Expanded | None) -> Iterator[None]:
    """A node's "line N" in a parse error as the FILE:LINE it came from."""
    try:
        yield
    except ValidationError as exc:
        if expanded is None:
            raise
        raise ValidationError(expanded.locate(str(exc))) from exc


def create(ctx: CommandContext) -> None:
    args = ctx.args
    primaries = tuple(p.strip() for arg in args.primary for p in arg.split(",") if p.strip())
    if args.secondary:
        if not primaries:
            raise UsageError("zone create --secondary: give --primary HOST:PORT")
        if args.file or args.ns or args.primary_ns or args.email:
            raise UsageError("zone create --secondary: the data comes from the primary; "
                             "--file, --ns, --primary-ns and --email do not apply")
        info = ctx.client.create_zone(args.zone, primaries=primaries, tsig_key=args.tsig,
                                      allow_transfer=tuple(args.allow_transfer))
        ctx.out.result(zone_dict(info), f"created secondary zone {info.config.name} "
                                        f"(primaries {', '.join(info.config.primaries)})")
        return
    if primaries or args.tsig:
        raise UsageError("zone create: --primary and --tsig are for --secondary zones")
    if args.file_backed:
        if not args.node or not args.file:
            raise UsageError("zone create --file-backed: give --node NODE and --file PATH "
                             "(the path on that node)")
        if args.ns or args.primary_ns or args.email:
            raise UsageError("zone create --file-backed: the data comes from the file; "
                             "--ns, --primary-ns and --email do not apply")
        info = ctx.client.create_zone(args.zone, file_node=args.node, file_path=args.file,
                                      allow_transfer=tuple(args.allow_transfer))
        ctx.out.result(zone_dict(info), f"created file-backed zone {info.config.name} "
                                        f"({info.config.path} on {info.config.owner})")
        return
    if args.node:
        raise UsageError("zone create: --node is for --file-backed zones")
    expanded = _read_master(args.file, args.zone) if args.file else None
    with _located(expanded):
        info = ctx.client.create_zone(
            args.zone,
            primary_ns=a.server_name(args.primary_ns, args.zone) if args.primary_ns else None,
            admin_email=args.email,
            ns=tuple(a.server_name(ns, args.zone) for ns in args.ns),
            allow_transfer=tuple(args.allow_transfer),
            text=expanded.text if expanded else None,
        )
    ctx.out.result(zone_dict(info), f"created zone {info.config.name} (serial {info.serial})")


def reload(ctx: CommandContext) -> int:
    """done / unchanged (the file's serial did not increase: exit 0, as BIND) / pending."""
    out = ctx.client.reload_zone(ctx.args.zone, timeout=float(ctx.args.timeout or 30.0))
    ctx.out.result(out, f"{out['state']}: {out['message']}")
    return exit_code_for_outcome("done" if out["state"] == "unchanged" else str(out["state"]))


def list_(ctx: CommandContext) -> None:
    infos = ctx.client.list_zones()
    ctx.out.result([zone_dict(i) for i in infos], zone_table(infos))


def show(ctx: CommandContext) -> None:
    info = ctx.client.get_zone(ctx.args.zone)
    ctx.out.result(zone_dict(info), zone_details(info))


def delete(ctx: CommandContext) -> None:
    ctx.client.delete_zone(ctx.args.zone)
    name = ctx.args.zone.to_text()
    ctx.out.result({"zone": name, "deleted": True}, f"deleted zone {name}")


def import_(ctx: CommandContext) -> None:
    expanded = _read_master(ctx.args.file, ctx.args.zone)
    with _located(expanded):
        info = ctx.client.import_zone(ctx.args.zone, expanded.text,
                                      create=not ctx.args.no_create)
    count = f", {info.rrset_count} RRsets" if info.rrset_count >= 0 else ""
    ctx.out.result(
        zone_dict(info), f"imported zone {info.config.name} (serial {info.serial}{count})"
    )


def export(ctx: CommandContext) -> None:
    text = ctx.client.export_zone(ctx.args.zone)
    name = ctx.args.zone.to_text()
    if ctx.args.output:
        try:
            Path(ctx.args.output).write_text(text)
        except OSError as exc:
            raise UsageError(f"cannot write {ctx.args.output}: {exc.strerror}") from exc
        ctx.out.result({"zone": name, "file": ctx.args.output}, "")
    elif ctx.out.as_json:
        ctx.out.result({"zone": name, "text": text}, "")
    else:
        ctx.out.stream.write(text if text.endswith("\n") or not text else text + "\n")


def update(ctx: CommandContext) -> None:
    args = ctx.args
    fields: list[str] = []
    allow: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    if args.allow_transfer or args.no_allow_transfer:
        fields.append("allow_transfer")
        allow = () if args.no_allow_transfer else tuple(args.allow_transfer)
    if args.notify or args.no_notify:
        fields.append("notify")
        notify = () if args.no_notify else tuple(args.notify)
    allow_update: tuple[str, ...] = ()
    policy: tuple[str, ...] = ()
    if args.allow_update or args.no_allow_update:
        fields.append("allow_update")
        allow_update = () if args.no_allow_update else tuple(args.allow_update)
    if args.dynamic_update:
        fields.append("dynamic_update")
    keys: tuple[str, ...] = ()
    if args.allow_transfer_key or args.no_allow_transfer_key:
        fields.append("allow_transfer_keys")
        keys = () if args.no_allow_transfer_key else tuple(
            n.to_text() for n in args.allow_transfer_key)
    if args.update_policy or args.default_update_policy:
        fields.append("update_policy")
        policy = () if args.default_update_policy else tuple(args.update_policy)
    if args.require_tls_transfer is not None:
        fields.append("require_tls_transfer")
    if not fields:
        raise UsageError("zone update: give at least one setting (--allow-transfer, "
                         "--allow-transfer-key, --notify, --allow-update, --dynamic-update, "
                         "--update-policy, --require-tls-transfer; see --help)")
    config = ZoneConfig(name=args.zone, allow_transfer=allow, notify=notify,
                        allow_update=allow_update,
                        dynamic_update=args.dynamic_update or "secure", update_policy=policy,
                        require_tls_transfer=bool(args.require_tls_transfer),
                        allow_transfer_keys=keys)
    info = ctx.client.update_config(config, tuple(fields))
    ctx.out.result(zone_dict(info), zone_details(info))
