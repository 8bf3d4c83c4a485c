"""What `zone sign` asks for: the settings from its options, over a signed zone's own.

On an unsigned zone the options not given take the defaults; on a signed zone
they keep the zone's current settings, so `zone sign ZONE --nsec3 --salt
random:8` changes only the denial (node.keymaster.settings_change applies it).
"""

from __future__ import annotations

import argparse

from node.cli.context import CommandContext
from node.cli.output import UsageError
from node.dnssec.algorithms import check_bits
from node.errors import NotFound, ValidationError
from node.zones.dnssec import DnssecConfig
from node.zones.transfers import parental_agent_texts as agent_texts

# Options that set a signing setting: they cannot be combined with --like / --new-keys.
_SETTINGS = ("algorithm", "bits", "ksk_bits", "zsk_bits", "csk", "denial", "iterations",
             "salt", "opt_out", "validity", "refresh", "jitter", "dnskey_ttl", "cds_ttl",
             "no_replicate_ksk", "no_replicate_zsk", "failover", "failover_after",
             "propagation_delay", "parent_ds_ttl", "parent_propagation_delay", "rfc5011",
             "add_holddown", "remove_holddown", "no_parent_ds", "parental_agents")


def sign_config(args: argparse.Namespace, base: DnssecConfig | None = None) -> DnssecConfig:
    """The settings a `zone sign` command line asks for; UsageError when they cannot work.
    `base`: a signed zone's current settings, which the options given change (the others
    stay); without it the defaults."""
    given = [f"--{d.replace('_', '-')}" for d in _SETTINGS if getattr(args, d, None) is not None]
    if given and (args.like is not None or args.new_keys):
        which = "--like" if args.like is not None else "--new-keys"
        raise UsageError(f"{which} keeps the settings it finds; do not combine it with "
                         + ", ".join(given))
    d = base or DnssecConfig()
    algorithm = args.algorithm if args.algorithm is not None else d.algorithm
    same_alg = base is not None and algorithm == d.algorithm
    try:
        ksk_bits = check_bits(algorithm, args.ksk_bits or args.bits
                              or (d.ksk_bits if same_alg else 0) or None) or 0
        zsk_bits = check_bits(algorithm, args.zsk_bits or args.bits
                              or (d.zsk_bits if same_alg else 0) or None) or 0
    except ValidationError as exc:
        raise UsageError(str(exc)) from exc
    nsec3 = d.nsec3 if args.denial is None else args.denial == "nsec3"
    if not nsec3:
        extras = [n for n, v in (("--iterations", args.iterations), ("--salt", args.salt),
                                 ("--opt-out", args.opt_out)) if v is not None]
        if extras:
            raise UsageError(f"{', '.join(extras)} apply to NSEC3 only, not with --nsec")
    validity = args.validity or d.validity
    refresh = args.refresh or d.refresh
    jitter = args.jitter if args.jitter is not None else d.jitter
    if refresh >= validity:
        raise UsageError(f"--refresh ({refresh}s) must be shorter than --validity ({validity}s)")
    if jitter * 2 >= refresh:
        raise UsageError(f"--jitter ({jitter}s) must be below half of --refresh ({refresh}s)")
    rfc5011 = bool(args.rfc5011) if args.rfc5011 is not None else d.rfc5011
    extras = [n for n, v in (("--add-holddown", args.add_holddown), ("--remove-holddown",
              args.remove_holddown), ("--no-parent-ds", args.no_parent_ds)) if v is not None]
    if extras and not rfc5011:
        raise UsageError(f"{', '.join(extras)} apply to RFC 5011 rollovers: add --rfc5011")
    replicate_ksk = d.replicate_ksk if args.no_replicate_ksk is None else False
    replicate_zsk = d.replicate_zsk if args.no_replicate_zsk is None else False
    failover = args.failover or (d.keymaster_failover if base is not None else
                                 "auto" if replicate_ksk and replicate_zsk else "manual")
    return DnssecConfig(
        algorithm=algorithm, ksk_bits=ksk_bits, zsk_bits=zsk_bits,
        csk=bool(args.csk) if args.csk is not None else d.csk, nsec3=nsec3,
        iterations=(args.iterations if args.iterations is not None else d.iterations)
        if nsec3 else 0,
        salt=(args.salt if args.salt is not None else d.salt) if nsec3 else "",
        opt_out=(args.opt_out if args.opt_out is not None else d.opt_out) and nsec3,
        validity=validity, refresh=refresh, jitter=jitter,
        dnskey_ttl=args.dnskey_ttl if args.dnskey_ttl is not None else d.dnskey_ttl,
        cds_ttl=args.cds_ttl if args.cds_ttl is not None else d.cds_ttl,
        replicate_ksk=replicate_ksk, replicate_zsk=replicate_zsk, keymaster_failover=failover,
        failover_after=float(args.failover_after or d.failover_after),
        propagation_delay=args.propagation_delay or d.propagation_delay,
        parent_ds_ttl=args.parent_ds_ttl or d.parent_ds_ttl,
        parent_propagation_delay=args.parent_propagation_delay or d.parent_propagation_delay,
        rfc5011=rfc5011, add_holddown=args.add_holddown or d.add_holddown,
        remove_holddown=args.remove_holddown or d.remove_holddown,
        parent_ds=d.parent_ds if args.no_parent_ds is None else False,
        parental_agents=_agents(args, d),
    )


def _agents(args: argparse.Namespace, d: DnssecConfig) -> tuple[str, ...]:
    """`--parental-agent` (repeatable; `-` alone clears the list); none given: kept."""
    given = getattr(args, "parental_agents", None)
    if given is None:
        return d.parental_agents
    try:
        return agent_texts([g for g in given if g != "-"])
    except ValidationError as exc:
        raise UsageError(str(exc)) from exc


def signed_settings(ctx: CommandContext) -> DnssecConfig | None:
    """The zone's settings when it is signed already (`zone sign` then changes them)."""
    args = ctx.args
    if args.like is not None or args.new_keys:
        return None
    try:
        cfg = ctx.client.dnssec_status(args.zone).config
    except NotFound:
        return None
    return cfg if cfg is not None and cfg.status == "signed" else None
