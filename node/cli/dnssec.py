"""`clusterctl zone sign|unsign|dnssec` (`trust-anchors export` is in `node.cli.anchors`).

Client-side checks exit 2 before any RPC: unknown algorithm or SHA-1 (the
server's wording, `node.dnssec.algorithms.parse_algorithm`), RSA sizes, bad
durations (`21d`, `9d`, `12h`, `90s`, `1d12h`, or plain seconds), bad salts
(`-`, `random:LEN` made here, or hex). The stored salt is hex.

`--json` output:

* sign: `{"zone", "state": "done"|"pending", "keymaster", "warnings": [..],
  "keys": [key..], "ds": [..], "message"}` (exit 0 done, 3 pending)
* unsign: `{"zone", "state": "done"|"pending", "message"}` (exit 0 / 3)
* dnssec: `{"zone", "serial", "signed", "status", "keymaster": {"node", "online",
  "acquired", "failover", "since", "by", "reason", "changes": [{"at",
  "from_node", "to_node", "by", "why"}]}, "keys": [key..], "nodes": [{"node", "alive", "writable",
  "has_kek", "eligible", "serial", "keyset", "current", "signed_at",
  "first_signed_at", "digest", "digest_mismatch"}], "ds": [..], "published", "published_serial",
  "published_at", "ds_safe", "signed_nodes", "eligible_nodes", "settings": {..},
  "missing_keys": [..]}` (`keymaster` is null for a zone never signed)
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import dns.name

from node.api.convert import unsign_pending_message
from node.cli import arguments as a
from node.cli.context import CommandContext
from node.cli.output import exit_code_for_outcome, key_dict, status_dict
from node.cli.sign_settings import sign_config, signed_settings
from node.cli.tables import key_table, table
from node.dnssec.algorithms import parse_algorithm
from node.dnssec.denial import parse_salt
from node.dnssec.ds import ds_records
from node.dnssec.keys import DnssecKey
from node.errors import ConfigError, NotFound, ValidationError
from node.keymaster.handover import KeyMasterInfo

Name = dns.name.Name
Parents = list[argparse.ArgumentParser]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")
_DURATIONS = re.compile(r"(?:\d+[smhdw])+")

# --- argument types ----------------------------------------------------------


def duration_arg(text: str) -> int:
    """Seconds from "21d", "12h", "90s", "1d12h", "2w" or a plain number of seconds."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    elif _DURATIONS.fullmatch(value):
        seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(value))
    else:
        raise argparse.ArgumentTypeError(
            f"bad duration {text!r}: use seconds or units s, m, h, d, w (21d, 12h, 90s, 1d12h)")
    if not 0 < seconds <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"duration {text!r} out of range (1 s to 68 years)")
    return seconds


def algorithm_arg(text: str) -> int:
    try:
        return parse_algorithm(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def salt_arg(text: str) -> str:
    """The salt as stored (hex); "random:LEN" is drawn here."""
    try:
        return parse_salt(text).hex()
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def iterations_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"iterations must be a number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"iterations {value} out of range (0 to 65535)")
    return value


def bits_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"key size must be bits, got {text!r}") from None


# --- registration ------------------------------------------------------------


def register_zone_verbs(verbs: argparse._SubParsersAction, parents: Parents) -> None:  # type: ignore[type-arg]
    """`zone sign`, `zone unsign`, `zone dnssec` (called by `node.cli.zone.register`)."""
    p = verbs.add_parser("sign", parents=parents, help="sign a zone with DNSSEC",
                         description="Sign a zone (defaults: KSK+ZSK ECDSAP256SHA256, NSEC3 "
                         "with 0 iterations and no salt, validity 21d, refresh 9d, jitter 12h, "
                         "DNSKEY TTL 3600). On a signed zone the options given change its "
                         "settings (a new algorithm starts an algorithm rollover) and "
                         "--new-keys rolls every key. The global --timeout is how long to "
                         "wait for keys.")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.add_argument("--algorithm", type=algorithm_arg, metavar="ALG",
                   help="RSASHA256, RSASHA512, ECDSAP256SHA256 (default), ECDSAP384SHA384, "
                   "ED25519, ED448")
    p.add_argument("--bits", type=bits_arg, metavar="N", help="RSA key size: 2048, 3072, 4096")
    p.add_argument("--ksk-bits", type=bits_arg, metavar="N", help="RSA KSK size")
    p.add_argument("--zsk-bits", type=bits_arg, metavar="N", help="RSA ZSK size")
    p.add_argument("--csk", action="store_true", default=None,
                   help="one combined signing key instead of a KSK and a ZSK")
    denial = p.add_mutually_exclusive_group()
    denial.add_argument("--nsec", dest="denial", action="store_const", const="nsec",
                        help="NSEC denial of existence")
    denial.add_argument("--nsec3", dest="denial", action="store_const", const="nsec3",
                        help="NSEC3 denial of existence (default)")
    p.add_argument("--iterations", type=iterations_arg, metavar="N",
                   help="NSEC3 extra iterations (default 0; above 50 refused)")
    p.add_argument("--salt", type=salt_arg, metavar="SALT",
                   help="NSEC3 salt: '-' (none, default), random:LEN or hex")
    p.add_argument("--opt-out", action="store_true", default=None, help="NSEC3 opt-out")
    p.add_argument("--no-opt-out", dest="opt_out", action="store_false",
                   help="no NSEC3 opt-out (on a signed zone: turn it off)")
    p.add_argument("--validity", type=duration_arg, metavar="DUR", help="RRSIG validity (21d)")
    p.add_argument("--refresh", type=duration_arg, metavar="DUR",
                   help="re-sign when this much validity remains (9d)")
    p.add_argument("--jitter", type=duration_arg, metavar="DUR", help="refresh jitter (12h)")
    p.add_argument("--dnskey-ttl", type=a.ttl_arg, metavar="TTL", help="DNSKEY TTL (3600)")
    p.add_argument("--cds-ttl", type=a.ttl_arg, metavar="TTL", help="CDS/CDNSKEY TTL (3600)")
    p.add_argument("--propagation-delay", type=duration_arg, metavar="DUR",
                   help="rollover waits: until every server serves a new version (1h)")
    p.add_argument("--parent-ds-ttl", type=duration_arg, metavar="DUR",
                   help="the parent's DS TTL, for KSK rollovers (1d)")
    p.add_argument("--parent-propagation-delay", type=duration_arg, metavar="DUR",
                   help="until the parent's servers serve a new DS (1h)")
    p.add_argument("--rfc5011", action="store_true", default=None,
                   help="roll the KSK by RFC 5011 (stand-by key, revocation) for resolvers "
                   "that hold it as a managed trust anchor")
    p.add_argument("--add-holddown", type=duration_arg, metavar="DUR",
                   help="RFC 5011: the resolvers' add hold-down to wait for (30d)")
    p.add_argument("--remove-holddown", type=duration_arg, metavar="DUR",
                   help="RFC 5011: how long a revoked KSK stays published (30d)")
    p.add_argument("--no-parent-ds", action="store_true", default=None,
                   help="RFC 5011: no parent holds a DS (the trust anchor is the zone's KSK)")
    p.add_argument("--parental-agent", dest="parental_agents", action="append",
                   metavar="HOST:PORT[/KEY]",
                   help="ask this server for the zone's DS while a KSK roll waits for it "
                   "(repeatable; KEY: a transfer TSIG key; '-' clears the list; none: the "
                   "parent zone's servers)")
    p.add_argument("--like", type=a.zone_arg, metavar="ZONE",
                   help="sign with another signed zone's settings (on a signed zone: change "
                   "its settings to those)")
    p.add_argument("--keymaster", metavar="NODE",
                   help="node to be Key Master (default: the node that takes the request)")
    p.add_argument("--no-replicate-ksk-private-key", dest="no_replicate_ksk",
                   action="store_true", default=None,
                   help="keep the KSK private key in the Key Master's local key store only")
    p.add_argument("--no-replicate-zsk-private-key", dest="no_replicate_zsk",
                   action="store_true", default=None,
                   help="keep the ZSK private key in the Key Master's local key store only")
    p.add_argument("--failover", choices=("auto", "manual"),
                   help="Key Master failover (default: auto when every private key is "
                   "replicated, else manual)")
    p.add_argument("--failover-after", type=duration_arg, metavar="DUR",
                   help="offline time before an automatic failover (10m)")
    p.add_argument("--new-keys", action="store_true",
                   help="re-key a signed zone (after a seize with missing keys)")
    p.add_argument("--force", action="store_true",
                   help="accept a refresh margin shorter than SOA expire + largest TTL")
    p.set_defaults(handler=sign)

    p = verbs.add_parser("unsign", parents=parents, help="remove DNSSEC from a zone")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.set_defaults(handler=unsign)

    p = verbs.add_parser("dnssec", parents=parents,
                         help="show a zone's DNSSEC settings, keys, Key Master and signing")
    p.add_argument("zone", type=a.zone_arg, metavar="ZONE")
    p.set_defaults(handler=show)


# --- zone sign ---------------------------------------------------------------


def ds_lines(keys: tuple[DnssecKey, ...] | list[DnssecKey]) -> list[str]:
    """DS records (SHA-256, SHA-384) of the KSK/CSK keys a parent may point at."""
    return [f"{k.zone} IN DS {ds_records(k, digest).to_text()}"
            for k in keys if k.is_sep and k.state in ("active", "published")
            for digest in ("SHA256", "SHA384")]


def sign(ctx: CommandContext) -> int:
    args = ctx.args
    config = sign_config(args)  # usage errors exit 2 before any RPC
    base = signed_settings(ctx)
    if base is not None:
        config = sign_config(args, base)
    outcome = ctx.client.sign_zone(
        args.zone, config, keymaster=args.keymaster or "", like=args.like,
        new_keys=args.new_keys, force=args.force, timeout=args.timeout,
    )
    zone = args.zone.to_text()
    ds = ds_lines(outcome.keys)
    for warning in outcome.warnings:
        ctx.out.warn(warning)
    if outcome.state == "done" and outcome.message:  # a signed zone: settings or rollover
        text = "\n".join([f"{zone}: {outcome.message}", "",
                          key_table([key_dict(k) for k in outcome.keys]), "",
                          "(the keys when the change was made: any new ones come from the Key "
                          f"Master; clusterctl zone dnssec {zone} shows them and each next step)"])
    elif outcome.state == "done":
        text = "\n".join([
            f"signed {zone} (Key Master {outcome.keymaster})", "",
            key_table([key_dict(k) for k in outcome.keys]), "",
            f"DS records (hand them to the parent once 'clusterctl zone dnssec {zone}' says "
            "the DS is safe):", *ds,
        ])
    else:
        text = outcome.message or f"signing of {zone} is {outcome.state}"
    ctx.out.result({
        "zone": zone, "state": outcome.state, "keymaster": outcome.keymaster,
        "warnings": list(outcome.warnings), "keys": [key_dict(k) for k in outcome.keys],
        "ds": ds, "message": outcome.message,
    }, text)
    return exit_code_for_outcome(outcome.state)


# --- zone unsign -------------------------------------------------------------


def unsign(ctx: CommandContext) -> int:
    zone = ctx.args.zone
    state = ctx.client.unsign_zone(zone)
    message = unsign_pending_message(zone) if state == "pending" else ""
    text = f"unsigned {zone}" if state == "done" else message
    ctx.out.result({"zone": zone.to_text(), "state": state, "message": message}, text)
    return exit_code_for_outcome(state)


# --- zone dnssec -------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """`1814400` -> `21d`, `45000` -> `12h30m`, `90` -> `1m30s` (as the options take them)."""
    rest, out = int(seconds), []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _fields(rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k + ':':<{width + 1}} {v}" for k, v in rows)


def status_text(d: dict[str, Any]) -> str:
    if not d["signed"]:
        return f"zone {d['zone']} is not signed (serial {d['serial']})"
    s, km = d["settings"], d["keymaster"]
    denial = "NSEC" if s["denial"] == "nsec" else (
        f"NSEC3, {s['iterations']} iterations, salt {s['salt'] or '-'}"
        + (", opt-out" if s["opt_out"] else ""))
    parts = [f"zone {d['zone']}: {d['status']} (serial {d['serial']})", "", "Key Master:"]
    if km is None:
        parts.append("  none")
    else:
        parts.append(_fields([
            ("node", km["node"] or "(released)"),
            ("online", "yes" if km["online"] else "NO"),
            ("acquired", "yes" if km["acquired"] else "not yet (waiting for the node's lease)"),
            ("failover", f"auto after {human_duration(s['failover_after'])} offline"
             if km["failover"] == "auto" else "manual (transfer or seize only)"),
            ("since", f"{km['since'] or '-'} ({km['reason'] or '-'} by {km['by'] or '-'})"),
        ]))
        if km["changes"]:
            parts.append("  last role changes:")
        for c in km["changes"]:
            parts.append(f"    {c['at']}  {c['from_node'] or '-'} -> {c['to_node']}  "
                         f"({c['why']} by {c['by']})")
    if d["missing_keys"]:
        parts.append(f"  MISSING private keys: {', '.join(d['missing_keys'])} - re-sign with "
                     f"'clusterctl zone sign {d['zone']} --new-keys', then replace trust "
                     "anchors and the parent's DS")
    parts += ["", "Keys:"]
    parts.append(_indent(key_table(d["keys"])) if d["keys"] else "  none yet")
    parts.append(f"  next rollover step: {d['next_step']} at {d['next_at']}"
                 + (f" (waiting for {d['waiting_for']})" if d["waiting_for"] else "")
                 if d.get("next_step") else "  next rollover step: none planned")
    parts += ["", "Settings:", _fields([
        ("algorithm", s["algorithm"] + (" (CSK)" if s["csk"] else " (KSK + ZSK)")),
        ("denial", denial),
        ("validity", f"{human_duration(s['validity'])}, refresh "
                     f"{human_duration(s['refresh'])} before expiry, jitter "
                     f"{human_duration(s['jitter'])}, inception "
                     f"-{human_duration(s['inception_offset'])}"),
        ("dnskey ttl", s["dnskey_ttl"]),
        ("cds ttl", s["cds_ttl"]),
        ("parental agents", ", ".join(s.get("parental_agents") or ()) or "none (the parent's "
                                                                         "servers)"),
        ("replicate private keys", f"KSK {'yes' if s['replicate_ksk'] else 'no'}, "
                                   f"ZSK {'yes' if s['replicate_zsk'] else 'no'}"),
    ])]
    rows = [(n["node"], "writable" if n["writable"] else "read-only",
             "yes" if n["alive"] else "no", "yes" if n["has_kek"] else "no",
             n["serial"] if n["serial"] is not None else "-",
             "current" if n["current"] else ("old" if n["keyset"] else "-"),
             (n["digest"][:16] + (" DIFFERS" if n["digest_mismatch"] else ""))
             if n["digest"] else "-",
             n["signed_at"] or "-") for n in d["nodes"]]
    parts += ["", "Signing:", _indent(table(
        ("NODE", "ROLE", "ALIVE", "KEK", "SERIAL", "KEY SET", "DIGEST", "SIGNED AT"), rows))]
    if any(n["digest_mismatch"] for n in d["nodes"]):
        parts += ["", "WARNING: nodes serve different signed copies at the same serial "
                      "(DIGEST ... DIFFERS); see event SIGNED_COPY_MISMATCH in their logs"]
    verdict = (f"DS is safe to hand to the parent ({d['signed_nodes']} of "
               f"{d['eligible_nodes']} writable nodes signed"
               + (f", published at serial {d['published_serial']})" if d["published"] else ")")
               if d["ds_safe"] else
               f"DS is NOT yet safe to hand to the parent ({d['signed_nodes']} of "
               f"{d['eligible_nodes']} writable nodes signed; not published)")
    parts += ["", "DS records:", *(f"  {line}" for line in d["ds"] or ["none"]), "", verdict]
    return "\n".join(parts)


def show(ctx: CommandContext) -> None:
    zone = ctx.args.zone
    status = ctx.client.dnssec_status(zone)
    info: KeyMasterInfo | None = None
    if status.keymaster is not None:
        try:
            info = ctx.client.get_keymaster(zone)
        except (NotFound, ConfigError):  # released meanwhile / no Key Master service here
            info = None
    d = status_dict(status, info)
    ctx.out.result(d, status_text(d))
