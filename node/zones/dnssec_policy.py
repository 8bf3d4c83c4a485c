"""Checks of DNSSEC settings before a zone is signed: unsafe settings are refused, with why.

Pure. Mirrors issue #3: SHA-1 algorithms refused (in `dnssec.algorithms`);
NSEC3 iterations above 50 refused, above 0 warned (RFC 9276); a refresh
margin shorter than the SOA expire plus the largest TTL refused unless
forced (a secondary could serve expired signatures); a stagger maximum not
well below the refresh margin refused.
"""

from __future__ import annotations

from node.errors import Refused, ValidationError
from node.zones.dnssec import DnssecConfig

MAX_ITERATIONS = 50


def check_config(
    config: DnssecConfig,
    *,
    soa_expire: int,
    max_ttl: int,
    stagger_max: float,
    force: bool = False,
) -> list[str]:
    """Warnings to show; raises Refused/ValidationError naming the setting to fix."""
    warnings: list[str] = []
    if config.iterations < 0:
        raise ValidationError("--iterations: must be 0 or more")
    if config.iterations > MAX_ITERATIONS:
        raise Refused(f"--iterations {config.iterations}: more than {MAX_ITERATIONS} NSEC3 "
                      "iterations make validators treat the zone as insecure (RFC 9276); use 0")
    if config.iterations > 0:
        warnings.append(f"--iterations {config.iterations}: RFC 9276 recommends 0 extra "
                        "iterations; each one costs every resolver and buys nothing")
    if config.salt and not config.nsec3:
        raise ValidationError("--salt applies to NSEC3 only")
    if config.opt_out and not config.nsec3:
        raise ValidationError("--opt-out applies to NSEC3 only")
    if config.validity <= 0 or config.refresh <= 0 or config.refresh >= config.validity:
        raise ValidationError("--validity and --refresh: need 0 < refresh < validity "
                              f"(got validity {config.validity}s, refresh {config.refresh}s)")
    if config.jitter < 0 or config.jitter * 2 >= config.refresh:
        raise ValidationError(f"--jitter {config.jitter}s: must be below half the refresh "
                              f"margin ({config.refresh}s)")
    needed = soa_expire + max_ttl
    if config.refresh < needed:
        msg = (f"--refresh {config.refresh}s is shorter than the SOA expire ({soa_expire}s) "
               f"plus the largest TTL ({max_ttl}s): a secondary that lost its primary could "
               "serve expired signatures")
        if not force:
            raise Refused(msg + "; lengthen --refresh, shorten the SOA expire, or use --force")
        warnings.append(msg + " (accepted with --force)")
    if stagger_max * 4 > config.refresh:
        raise Refused(f"the signing stagger maximum ({stagger_max:.0f}s) is not well below the "
                      f"refresh margin ({config.refresh}s); lengthen --refresh or lower "
                      "signing.stagger_max")
    if config.keymaster_failover == "auto" and not (config.replicate_ksk and config.replicate_zsk):
        raise Refused("--failover auto needs every private key replicated; use --failover "
                      "manual with --no-replicate-ksk-private-key")
    return warnings
