"""`clusterctl`: entry point, global flags, dispatch to one module per command group.

Global flags (before the command, or after it):

* `--endpoint HOST:PORT` (env `CLUSTERCTL_ENDPOINT`, default `127.0.0.11:5301`)
* `--ca FILE`, `--cert FILE`, `--key FILE` (env `CLUSTERCTL_CA`, `CLUSTERCTL_CERT`,
  `CLUSTERCTL_KEY`): TLS, with a client certificate (any of them switches TLS on;
  `--cert` and `--key` go together)
* `--timeout SECONDS` (default 30): the deadline of each RPC; for the commands
  that wait on the cluster (`zone sign`, `transfer-keymaster`,
  `seize-keymaster`) it is how long the server waits, and the RPC's deadline
  is 10 s longer so the definite answer (done / pending / refused) arrives
* `--json`: machine-readable output (shapes in each command module's docstring)

Exit codes and error lines: `node.cli.output`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from node.api.client import ApiClient, ClientTls
from node.cli import anchors, keymaster, nodes, record, tsig, zone
from node.cli.arguments import timeout_arg
from node.cli.context import CommandContext
from node.cli.output import EXIT_OK, PROG, Output, UsageError, report_error
from node.errors import ConfigError, NodeError

DEFAULT_ENDPOINT = "127.0.0.11:5301"
ENDPOINT_ENV = "CLUSTERCTL_ENDPOINT"
DEFAULT_TIMEOUT = 30.0


HELP_PROG = "_help_prog"  # the namespace attribute naming the deepest (sub)command parsed


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (one line, exit 2), not printed with usage.

    Unrecognized arguments are only known once the top parser has the whole line, so the
    deepest command parsed records its name (`HELP_PROG`): the hint names that verb's
    --help, which lists the flags it takes, not the top level's list of commands."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if not hasattr(ns, HELP_PROG):  # a subcommand's parser finished first: keep its
            setattr(ns, HELP_PROG, self.prog)
        return ns, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> argparse.Namespace:
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            raise UsageError(f"unrecognized arguments: {' '.join(extras)} "
                             f"(see '{getattr(ns, HELP_PROG)} --help')")
        return ns


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: object) -> object:
        # After the command the flags must not overwrite what came before it.
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("global options")
    g.add_argument("--endpoint", default=default(None), metavar="HOST:PORT",
                   help=f"node API address (env {ENDPOINT_ENV}, default {DEFAULT_ENDPOINT})")
    g.add_argument("--ca", default=default(None), metavar="FILE",
                   help="CA certificate (PEM) that signed the node's certificate")
    g.add_argument("--cert", default=default(None), metavar="FILE",
                   help="client certificate (PEM)")
    g.add_argument("--key", default=default(None), metavar="FILE", help="client key (PEM)")
    g.add_argument("--timeout", type=timeout_arg, default=default(DEFAULT_TIMEOUT),
                   metavar="SECONDS", help=f"deadline of each call (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("--json", action="store_true", default=default(False),
                   help="print JSON instead of tables")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Administer a dnscluster DNS cluster.")
    _global_flags(parser, suppress=False)
    trailing = Parser(add_help=False)
    _global_flags(trailing, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    zone.register(commands, [trailing])
    record.register(commands, [trailing])
    nodes.register(commands, [trailing])
    keymaster.register(commands, [trailing])
    anchors.register(commands, [trailing])
    tsig.register(commands, [trailing])
    return parser


def _connect(args: argparse.Namespace) -> ApiClient:
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    ca = args.ca or os.environ.get("CLUSTERCTL_CA") or None
    cert = args.cert or os.environ.get("CLUSTERCTL_CERT") or None
    key = args.key or os.environ.get("CLUSTERCTL_KEY") or None
    tls = None
    if bool(cert) != bool(key):
        raise UsageError("--cert and --key go together (the client certificate and its key)")
    if ca or cert or key:
        tls = ClientTls(ca_file=ca, cert_file=cert, key_file=key)
    try:
        return ApiClient(endpoint, tls=tls, timeout=args.timeout)
    except ConfigError as exc:  # an unreadable --ca/--cert/--key file
        raise UsageError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 usage, 3 pending).

    A handler returns None (success) or the exit code of its outcome
    (`node.cli.output.exit_code_for_outcome`).
    """
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return report_error(exc)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    ctx = CommandContext(args=args, out=Output(as_json=args.json),
                         connect=lambda: _connect(args))
    try:
        code = args.handler(ctx)
    except NodeError as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        return report_error(NodeError("interrupted"))
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK
    finally:
        ctx.close()
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
