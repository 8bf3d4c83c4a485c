"""When a read-only node may serve its transferred copy of a signed zone: one pure function.

A read-only node is a secondary of the writable nodes (RFC 1034 §4.3.5, RFC
1996 §2): it refreshes its copy every SOA REFRESH seconds, retries on failure,
and once SOA EXPIRE seconds (never less than REFRESH + RETRY, as BIND
reads it) have gone by without a successful refresh it stops answering for
the zone. Here a refresh succeeds when a writable node
serves (or transfers) the serial that etcd says is current; while no source
has it, the copy ages, whatever older serials the sources offer.

A signed copy has a second clock: its signatures. The writable nodes re-sign
(bump the serial) as soon as a signature's remaining validity falls inside
the zone's refresh margin (`zone sign --refresh`), so a copy still carrying
such a signature means re-signing has stalled. Entering the margin is also
the normal moment of every re-sign, and the new copy needs time to be made
and transferred, so the copy is held once half the margin has passed: half
the margin is still left before any signature it serves expires.

`judge(copy, monotonic, now) -> Verdict(serve, reason, next_at)`; no I/O, no
clock reads (STYLE R4-R6). `earliest_rrsig_expiration(nodes)` gives a copy's
earliest RRSIG expiry (also what the expiry warnings and the
`dnscluster_rrsig_earliest_expiration_timestamp_seconds` metric report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.rdatatype
import dns.rrset

RRSIG = dns.rdatatype.RRSIG


@dataclass(frozen=True, slots=True)
class SoaTimers:
    """The SOA fields that drive a secondary (seconds)."""

    refresh: int
    retry: int
    expire: int


@dataclass(frozen=True, slots=True)
class Copy:
    """A transferred copy of one zone, as the read-only node holds it."""

    serial: int
    refreshed_at: float  # monotonic: last successful refresh (or when first installed)
    earliest_expiration: int | None  # unix time of its earliest RRSIG expiry
    timers: SoaTimers
    refresh_margin: int  # the zone's DNSSEC refresh: re-sign when this much validity is left


@dataclass(frozen=True, slots=True)
class Verdict:
    serve: bool
    reason: str  # why not (empty when served)
    next_at: float  # monotonic: refresh or judge again by then


def judge(copy: Copy, monotonic: float, now: float) -> Verdict:
    """Serve `copy` or hold it (SERVFAIL); `monotonic` for the SOA timers, `now` (unix time)
    for the signatures. `next_at`: the next refresh, or the moment the verdict changes by
    itself (infinity for an expired copy: only a successful refresh brings it back)."""
    t = copy.timers
    expire = max(t.expire, t.refresh + t.retry)  # as BIND: never before a refresh and a retry
    expire_at = copy.refreshed_at + expire
    refresh_at = copy.refreshed_at + t.refresh
    hold_at = math.inf
    sigs_hold = math.inf  # unix time at which the signatures hold the copy
    if copy.earliest_expiration is not None:
        sigs_hold = copy.earliest_expiration - copy.refresh_margin / 2
        hold_at = monotonic + (sigs_hold - now)
    if monotonic >= expire_at:
        return Verdict(False, f"expired: serial {copy.serial} was last confirmed current by a "
                              f"writable node {monotonic - copy.refreshed_at:.0f}s ago, more "
                              f"than the SOA expire ({expire}s)", math.inf)
    if now >= sigs_hold:
        assert copy.earliest_expiration is not None
        when = datetime.fromtimestamp(copy.earliest_expiration, UTC).isoformat()
        return Verdict(False, f"signatures expire soon: serial {copy.serial} carries an RRSIG "
                              f"that expires at {when}, inside the refresh margin "
                              f"({copy.refresh_margin}s) for more than half of it; the writable "
                              "nodes have not re-signed", refresh_at)
    return Verdict(True, "", min(refresh_at, expire_at, hold_at))


def earliest_rrsig_expiration(
        nodes: Mapping[object, Mapping[int, dns.rrset.RRset]]) -> int | None:
    """The earliest RRSIG expiration (unix time) in a node map, None if nothing is signed."""
    earliest: int | None = None
    for types in nodes.values():
        sigs = types.get(RRSIG)
        if sigs is None:
            continue
        for rd in sigs:
            exp = rd.expiration  # type: ignore[attr-defined]
            if earliest is None or exp < earliest:
                earliest = exp
    return earliest
