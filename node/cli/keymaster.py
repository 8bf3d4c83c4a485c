"""`clusterctl transfer-keymaster` and `clusterctl seize-keymaster` (DESIGN "The Key Master").

Both wait on the server for the new holder to take the role, up to the
global `--timeout` (default 30 s; the RPC's own deadline is 10 s longer), and
exit by their outcome: 0 done, 1 refused (each reason on stderr as
`clusterctl: refused: ...`), 3 pending at the deadline. Errors (unknown
zone, etcd unavailable) exit 1 as usual; usage errors exit 2.

`--json` output (both): `{"zone", "state": "done"|"refused"|"pending",
"holder", "reasons": [..], "missing_keys": [..], "message"}`.
"""

from __future__ import annotations

import argparse

from node.cli import arguments as a
from node.cli.context import CommandContext
from node.cli.output import exit_code_for_outcome, handover_dict
from node.errors import NodeError
from node.keymaster.handover import HandoverOutcome

Parents = list[argparse.ArgumentParser]


def node_arg(text: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() or c == "/" for c in value):
        raise argparse.ArgumentTypeError(f"invalid node id {text!r}")
    return value


def register(commands: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    p = commands.add_parser(
        "transfer-keymaster", parents=parents,
        help="move a zone's Key Master role to another live writable node (graceful)",
        description="Graceful transfer: the holder finishes its step, then NODE takes the "
        "role. Exit 0 done, 1 refused, 3 still pending at --timeout.")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--to", type=node_arg, required=True, metavar="NODE", help="the new holder")
    p.set_defaults(handler=transfer)

    p = commands.add_parser(
        "seize-keymaster", parents=parents,
        help="take a zone's Key Master role for a node when the holder is offline",
        description="Forced move of the role: allowed when the holder is offline, or with "
        "--force. Exit 0 done, 1 refused, 3 still pending at --timeout.")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--to", type=node_arg, required=True, metavar="NODE", help="the new holder")
    p.add_argument("--force", action="store_true", help="seize even if the holder is online")
    p.add_argument("--accept-missing-keys", action="store_true",
                   help="seize even if NODE cannot reach every private key (the zone must "
                   "then be re-signed with --new-keys and trust anchors replaced)")
    p.set_defaults(handler=seize)


def _report(ctx: CommandContext, verb: str, outcome: HandoverOutcome) -> int:
    zone = ctx.args.zone.to_text()
    to = ctx.args.to
    for reason in outcome.reasons:
        ctx.out.refused(reason)
    if outcome.state == "done":
        text = f"the Key Master of {zone} is {outcome.holder or to}"
    elif outcome.state == "refused":
        text = ""
        ctx.out.refused(f"{verb} of the Key Master of {zone} to {to} refused; the holder "
                        f"is still {outcome.holder or 'nobody'}")
    elif outcome.state == "pending":
        text = (f"{verb} of the Key Master of {zone} to {to} is still pending after "
                f"{ctx.args.timeout:g} s (holder now {outcome.holder or 'nobody'})")
    else:
        raise NodeError(f"the server answered an unknown outcome {outcome.state!r}")
    if outcome.message:
        text = f"{text}\n{outcome.message}" if text else outcome.message
    ctx.out.result(handover_dict(zone, outcome), text)
    return exit_code_for_outcome(outcome.state)


def transfer(ctx: CommandContext) -> int:
    outcome = ctx.client.transfer_keymaster(ctx.args.zone, ctx.args.to, timeout=ctx.args.timeout)
    return _report(ctx, "transfer", outcome)


def seize(ctx: CommandContext) -> int:
    args = ctx.args
    outcome = ctx.client.seize_keymaster(
        args.zone, args.to, force=args.force, accept_missing_keys=args.accept_missing_keys,
        timeout=args.timeout,
    )
    return _report(ctx, "seize", outcome)
