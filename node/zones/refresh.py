"""The SOA refresh, retry and expire timers of a secondary zone (RFC 1034 §4.3.5, RFC 1996).

Pure (STYLE R1, R4): `decide(obs, now)` looks at what a node knows about its
copy of a zone transferred from an outside primary and says whether the copy
may be served, whether to refresh now (ask the primary's SOA, transfer if
newer) and when to decide again. All times are monotonic seconds.

- No copy yet: refresh at once, then every `first_retry` seconds until one
  arrives (no SOA is known, so no timer of the zone applies yet).
- A NOTIFY from a listed primary: refresh at once (RFC 1996 §3.7).
- After a successful refresh (SOA checked or zone transferred): the next one
  `refresh` seconds later.
- After a failed refresh: the next one `retry` seconds after that attempt.
- `expire` seconds after the last successful refresh the copy is no longer
  served (SERVFAIL) until a refresh succeeds again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timers:
    """The SOA timers of the copy held (seconds)."""

    refresh: int
    retry: int
    expire: int


@dataclass(frozen=True, slots=True)
class Observation:
    timers: Timers | None  # of the copy held; None: no copy yet
    succeeded_at: float | None  # last successful refresh (SOA checked or transferred)
    attempted_at: float | None  # last refresh attempt, successful or not
    failed: bool = False  # the last attempt failed
    notified: bool = False  # a NOTIFY from a listed primary came after the last attempt
    first_retry: float = 5.0  # between attempts while no copy is held


@dataclass(frozen=True, slots=True)
class Decision:
    serve: bool  # the copy may be served
    refresh: bool  # refresh now
    next_at: float  # decide again at this time (at the latest)


def expires_at(obs: Observation) -> float | None:
    """When the copy stops being served; None without a copy."""
    if obs.timers is None or obs.succeeded_at is None:
        return None
    return obs.succeeded_at + obs.timers.expire


def decide(obs: Observation, now: float) -> Decision:
    """What to do with one secondary zone at `now`."""
    expire = expires_at(obs)
    serve = expire is not None and now < expire
    if obs.notified or obs.attempted_at is None:
        return Decision(serve=serve, refresh=True, next_at=now)
    if obs.timers is None or obs.succeeded_at is None:
        due = obs.attempted_at + obs.first_retry
    elif obs.failed:
        due = obs.attempted_at + obs.timers.retry
    else:
        due = obs.succeeded_at + obs.timers.refresh
    if due <= now:
        return Decision(serve=serve, refresh=True, next_at=now)
    next_at = due if not serve or expire is None else min(due, expire)
    return Decision(serve=serve, refresh=False, next_at=next_at)
