"""`clusterctl trust-anchors export`: a signed zone's trust anchors in resolver formats.

The anchors are the keys a resolver should trust (`node.dnssec.rfc5011.anchor_keys`):
the active KSKs/CSKs and an RFC 5011 stand-by successor, never a revoked key.

Formats:

* `ds` (default), `dnskey`: master-file lines (Unbound `trust-anchor-file`, static).
* `bind`: a `trust-anchors` clause of static anchors (`static-ds`; delv -a FILE +root=ZONE).
* `bind-initial-key`, `bind-initial-ds`: a `trust-anchors` clause of RFC 5011 managed
  anchors (`initial-key` / `initial-ds`): BIND then follows the zone's KSK rolls.
* `unbound-auto`: a seed for Unbound's `auto-trust-anchor-file` (DNSKEY lines; Unbound
  rewrites the file as it tracks the keys by RFC 5011). The file must be writable by it.

`--json`: `{"zone", "format", "records": [..]}`.
"""

from __future__ import annotations

import argparse
import base64

import dns.name

from node.cli import arguments as a
from node.cli.context import CommandContext
from node.dnssec.ds import ds_records
from node.dnssec.keys import DnssecKey
from node.dnssec.rfc5011 import anchor_keys
from node.errors import NotFound

Name = dns.name.Name
FORMATS = ("ds", "dnskey", "bind", "bind-initial-key", "bind-initial-ds", "unbound-auto")


def register(commands: argparse._SubParsersAction,  # type: ignore[type-arg]
             parents: list[argparse.ArgumentParser]) -> None:
    """`trust-anchors export`."""
    ta = commands.add_parser("trust-anchors", help="export a signed zone's trust anchors")
    verbs = ta.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = verbs.add_parser("export", parents=parents,
                         help="print the active KSK/CSK (and a stand-by one) as trust anchors")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--format", choices=FORMATS, default="ds",
                   help="ds (SHA-256, default) or dnskey: master-file lines (unbound "
                   "trust-anchor-file); bind: static trust-anchors clause; bind-initial-key, "
                   "bind-initial-ds: RFC 5011 managed trust-anchors clause; unbound-auto: "
                   "seed of an unbound auto-trust-anchor-file")
    p.set_defaults(handler=export_anchors)


def _ds_fields(key: DnssecKey) -> str:
    ds = ds_records(key, "SHA256")
    return (f'{ds.key_tag} {ds.algorithm} {ds.digest_type} '  # type: ignore[attr-defined]
            f'"{ds.digest.hex().upper()}"')  # type: ignore[attr-defined]


def _dnskey_fields(key: DnssecKey) -> str:
    rd = key.dnskey()
    return (f'{rd.flags} {rd.protocol} {rd.algorithm} '
            f'"{base64.b64encode(rd.key).decode()}"')


def anchor_lines(zone: Name, keys: list[DnssecKey], fmt: str, ttl: int = 3600) -> list[str]:
    """The anchors of `keys` in format `fmt` (one of FORMATS)."""
    if fmt == "dnskey":
        return [f"{zone} IN DNSKEY {k.dnskey().to_text()}" for k in keys]
    if fmt == "ds":
        return [f"{zone} IN DS {ds_records(k, 'SHA256').to_text()}" for k in keys]
    if fmt == "unbound-auto":
        return [f"; autotrust trust anchor file seed for {zone} (clusterctl trust-anchors "
                "export)", *(f"{zone} {ttl} IN DNSKEY {k.dnskey().to_text()}" for k in keys)]
    kind, fields = {"bind": ("static-ds", _ds_fields),
                    "bind-initial-ds": ("initial-ds", _ds_fields),
                    "bind-initial-key": ("initial-key", _dnskey_fields)}[fmt]
    return ["trust-anchors {", *(f'    "{zone}" {kind} {fields(k)};' for k in keys), "};"]


def export_anchors(ctx: CommandContext) -> None:
    zone = ctx.args.zone
    status = ctx.client.dnssec_status(zone)
    keys = anchor_keys(status.keys)
    if not keys:
        raise NotFound(f"zone {zone} has no active KSK or CSK (is it signed? clusterctl zone "
                       f"dnssec {zone})")
    ttl = status.config.dnskey_ttl if status.config else 3600
    lines = anchor_lines(zone, keys, ctx.args.format, ttl)
    ctx.out.result({"zone": zone.to_text(), "format": ctx.args.format, "records": lines},
                   "\n".join(lines))
