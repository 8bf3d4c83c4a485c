"""`clusterctl zone rollover|key|ds-seen`: start a rollover, set a key's policy, confirm a DS.

* `zone rollover ZONE (--key-id KEY_ID | --ksk | --zsk) [--now]` (`--key` is the
  global TLS client key option): the Key Master
  publishes a successor now and takes every RFC 7583 wait from there (none is
  skipped; `--now` is accepted for the model's syntax and changes nothing).
* `zone key enable-rollover|disable-rollover ZONE KEY_ID [--every DUR] [--offset DUR]`:
  one key's automatic rollover (durations as `zone sign` takes them: `90d`,
  `12h`, `30s` or plain seconds).
* `zone ds-seen ZONE KEY_ID`: the new KSK's DS is at the parent; the KSK
  rollover goes on (the old KSK goes after the parent's DS TTL).

KEY_ID is a key id or, as BIND's and Knot's tools take it, a key tag (the
number in `zone dnssec`, the DS record and the DNSKEY) that one key of the
zone has.

`--json`: the key as `zone dnssec --json` shows it (`{"zone", "key", "message"}`).
"""

from __future__ import annotations

import argparse

from node.cli import arguments as a
from node.cli.context import CommandContext
from node.cli.dnssec import duration_arg, human_duration
from node.cli.output import key_dict
from node.errors import NotFound, ValidationError

Parents = list[argparse.ArgumentParser]


def register_zone_verbs(verbs: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("rollover", parents=parents, help="start a key rollover",
                         description="Start a rollover of one key: its successor is "
                         "published now and replaces it once every cache has it.")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--key-id", dest="key_id", metavar="KEY_ID",
                       help="the key to roll (`--key` is the global TLS client key)")
    which.add_argument("--ksk", dest="role", action="store_const", const="ksk",
                       help="the zone's active KSK")
    which.add_argument("--zsk", dest="role", action="store_const", const="zsk",
                       help="the zone's active ZSK")
    p.add_argument("--now", action="store_true", help="start now (the default)")
    p.set_defaults(handler=rollover)

    p = verbs.add_parser("key", parents=parents, help="set one key's rollover policy")
    key_verbs = p.add_subparsers(dest="key_verb", metavar="VERB", required=True)
    for verb, auto in (("enable-rollover", True), ("disable-rollover", False)):
        k = key_verbs.add_parser(verb, parents=parents,
                                 help=f"{'enable' if auto else 'disable'} automatic rollover "
                                 "of one key")
        k.add_argument("zone", type=a.zone_arg, metavar="ZONE")
        k.add_argument("key_id", metavar="KEY_ID")
        k.add_argument("--every", type=duration_arg, metavar="DUR",
                       help="rollover frequency (default ZSK 90d, KSK 755d)")
        k.add_argument("--offset", type=offset_arg, metavar="DUR",
                       help="delay of the first rollover (spreads zones signed on one day)")
        k.set_defaults(handler=set_policy, auto=auto)

    p = verbs.add_parser("ds-seen", parents=parents,
                         help="confirm that a new KSK's DS is at the parent")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("key_id", metavar="KEY_ID")
    p.set_defaults(handler=ds_seen)


def offset_arg(text: str) -> int:
    return 0 if text.strip() == "0" else duration_arg(text)


def _result(ctx: CommandContext, key: object, message: str) -> None:
    d = key_dict(key)  # type: ignore[arg-type]
    text = (f"{d['role'].upper()} {d['tag']} ({d['key_id']}): {d['state']}; automatic "
            f"rollover {'on' if d['rollover']['auto'] else 'off'}, every "
            f"{human_duration(d['rollover']['every'])}, offset "
            f"{human_duration(d['rollover']['offset'])}")
    ctx.out.result({"zone": ctx.args.zone.to_text(), "key": d, "message": message},
                   text + (f"\n{message}" if message else ""))


def _key_id(ctx: CommandContext, text: str) -> str:
    """`text` as a key id; a key tag (1-5 digits) is the id of the zone's one key with it."""
    if not (text.isdigit() and len(text) <= 5 and int(text) <= 65535):
        return text
    zone = ctx.args.zone
    ids = [k.key_id for k in ctx.client.dnssec_status(zone).keys if k.tag == int(text)]
    if not ids:
        raise NotFound(f"zone {zone} has no key with tag {text} (clusterctl zone dnssec "
                       f"{zone} lists the tags and key ids)")
    if len(ids) > 1:
        raise ValidationError(f"{len(ids)} keys of zone {zone} have tag {text}: give the key "
                              f"id ({', '.join(ids)})")
    return ids[0]


def rollover(ctx: CommandContext) -> None:
    key_id = _key_id(ctx, ctx.args.key_id) if ctx.args.key_id else ""
    key, message = ctx.client.roll_key(ctx.args.zone, key_id=key_id,
                                       role=ctx.args.role or "", now=ctx.args.now)
    _result(ctx, key, message)


def set_policy(ctx: CommandContext) -> None:
    key = ctx.client.set_key_policy(ctx.args.zone, _key_id(ctx, ctx.args.key_id),
                                    auto=ctx.args.auto,
                                    every=ctx.args.every, offset=ctx.args.offset)
    _result(ctx, key, "")


def ds_seen(ctx: CommandContext) -> None:
    key = ctx.client.confirm_ds_seen(ctx.args.zone, _key_id(ctx, ctx.args.key_id))
    _result(ctx, key, f"the Key Master removes the old KSK once its DS has left caches "
                      f"(clusterctl zone dnssec {ctx.args.zone})")
