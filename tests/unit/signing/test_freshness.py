"""judge(): when a read-only node serves or holds its copy (node/signing/freshness.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from node.dnssec.signer import rrsig_rrset
from node.signing.freshness import Copy, SoaTimers, earliest_rrsig_expiration, judge

NOW = 1_800_000_000.0  # unix time
MONO = 5_000.0  # monotonic
DAY = 86400
# SOA refresh 1 h, retry 10 min, expire 7 d; re-sign when 9 d of validity are left
COPY = Copy(serial=7, refreshed_at=MONO, earliest_expiration=int(NOW) + 20 * DAY,
            timers=SoaTimers(refresh=3600, retry=600, expire=7 * DAY), refresh_margin=9 * DAY)


@pytest.mark.parametrize(
    ("name", "copy", "mono", "now", "serve", "why"),
    [
        ("just refreshed", COPY, MONO, NOW, True, ""),
        ("refresh overdue, not expired", COPY, MONO + 6 * DAY, NOW + 6 * DAY, True, ""),
        ("SOA expire passed without a refresh", COPY, MONO + 7 * DAY, NOW + 7 * DAY, False,
         "SOA expire"),
        ("inside the margin, under half of it", COPY, MONO, NOW + 15 * DAY, True, ""),
        ("inside the margin for half of it", COPY, MONO, NOW + 15.5 * DAY, False,
         "refresh margin"),
        ("expired signatures", COPY, MONO, NOW + 21 * DAY, False, "refresh margin"),
        ("refreshed but not re-signed", replace(COPY, refreshed_at=MONO + 16 * DAY),
         MONO + 16 * DAY, NOW + 16 * DAY, False, "have not re-signed"),
        ("no signatures: only the SOA timers", replace(COPY, earliest_expiration=None),
         MONO + 30, NOW + 30 * DAY, True, ""),
        ("an expire shorter than refresh + retry counts as refresh + retry",
         replace(COPY, timers=SoaTimers(refresh=3600, retry=600, expire=0)), MONO + 4000, NOW,
         True, ""),
        ("... and no longer", replace(COPY, timers=SoaTimers(refresh=3600, retry=600, expire=0)),
         MONO + 4200, NOW, False, "SOA expire (4200s)"),
    ],
)
def test_judge(name: str, copy: Copy, mono: float, now: float, serve: bool, why: str) -> None:
    verdict = judge(copy, mono, now)
    assert verdict.serve is serve, name
    assert why in verdict.reason, name
    assert bool(verdict.reason) is not serve, name


def test_next_at_is_the_next_refresh_or_the_moment_the_verdict_changes() -> None:
    assert judge(COPY, MONO, NOW).next_at == MONO + 3600  # the SOA refresh
    late = judge(COPY, MONO + 7 * DAY - 10, NOW)  # refresh overdue: expire is next
    assert late.next_at == MONO + 3600
    short = replace(COPY, timers=SoaTimers(refresh=100_000 * DAY, retry=600, expire=50 * DAY))
    # the signatures hold the copy at expiry - margin / 2 = NOW + 15.5 d
    assert judge(short, MONO, NOW).next_at == pytest.approx(MONO + 15.5 * DAY)
    assert math.isinf(judge(COPY, MONO + 8 * DAY, NOW).next_at)  # only a refresh helps


def test_held_before_any_signature_expires_whatever_the_timers() -> None:
    # a zone signed with --force: a SOA expire longer than the signatures' validity
    copy = replace(COPY, timers=SoaTimers(refresh=3600, retry=600, expire=60 * DAY))
    for days in range(0, 21):
        verdict = judge(copy, MONO + days * DAY, NOW + days * DAY)
        if not verdict.serve:
            break
    assert not verdict.serve and NOW + days * DAY < copy.earliest_expiration  # type: ignore[operator]


def test_earliest_rrsig_expiration() -> None:
    origin = dns.name.from_text("example.")

    def sig(covers: str, expiration: int) -> dns.rdata.Rdata:
        return dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.RRSIG,
            f"{covers} 13 1 300 {expiration} 1700000000 12345 example. AAAA")

    www = dns.name.from_text("www", origin)
    nodes = {
        # one RRSIG RRset per owner, every covered type in it (node/dnssec/signer.py)
        origin: {dns.rdatatype.RRSIG: rrsig_rrset(origin, [sig("SOA", 1800000500),
                                                           sig("NS", 1800000200)])},
        www: {dns.rdatatype.RRSIG: rrsig_rrset(www, [sig("A", 1800000300)])},
    }
    assert earliest_rrsig_expiration(nodes) == 1800000200
    assert earliest_rrsig_expiration({origin: {}}) is None
