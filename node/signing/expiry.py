"""Signature expiry of the copy each zone is *served* from, checked on a timer, on every node.

Whoever serves a zone tells `ExpiryWatch.served(zone, earliest)` the earliest
RRSIG expiration of what is now served (None: served unsigned, or no longer
served): the signing worker after a successful pass, and a read-only node's
secondary loader through `watching(publish)`, which reads it from the
transferred copy. `run()` wakes when a zone enters the warning window or
expires, never later than `recheck` seconds, and emits the model's events:
`SIGNATURE_EXPIRING` (1525) inside `warn_window`, `SIGNATURE_EXPIRED` (1524)
once past; each when the zone enters that state, then again every `repeat`
seconds while it stays there. So the events fire when signing has stalled,
which a check after each signing pass cannot do. `earliest(zone)` feeds the
earliest-expiration metric at scrape time, so the metric is always the served
copy's. Expiry is wall-clock by nature (RRSIG times are absolute), read
through the Clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import dns.name
import dns.rdatatype
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.rrsigset import RRSIGSet
from node.events import Event, emit
from node.zones.model import ZoneSnapshot

Name = dns.name.Name
Level = Literal["ok", "expiring", "expired"]


def earliest_expiration(nodes: Mapping[Name, Mapping[int, dns.rrset.RRset]]) -> int | None:
    """The earliest RRSIG expiration in a node map (None if nothing is signed)."""
    earliest: int | None = None
    for types in nodes.values():
        sigs = types.get(dns.rdatatype.RRSIG)
        if sigs is None:
            continue
        exps = sigs.expirations() if isinstance(sigs, RRSIGSet) else (
            int(rd.expiration) for rd in sigs)  # type: ignore[attr-defined]
        for exp in exps:
            if earliest is None or exp < earliest:
                earliest = exp
    return earliest


def level_at(earliest: int, now: float, warn_window: float) -> Level:
    """Pure: where a copy whose earliest RRSIG expires at `earliest` stands at `now`."""
    if earliest <= now:
        return "expired"
    if earliest - now <= warn_window:
        return "expiring"
    return "ok"


@dataclass(slots=True)
class _Watched:
    earliest: int
    level: Level = "ok"
    emitted_at: float = 0.0  # wall time of the last event for this zone


class ExpiryWatch:
    """Per served signed zone: the earliest RRSIG expiration, with warning/error events."""

    def __init__(self, *, warn_window: float, clock: Clock = SYSTEM_CLOCK,
                 repeat: float = 3600.0, recheck: float = 300.0) -> None:
        self._window = warn_window
        self._clock = clock
        self._repeat = repeat
        self._recheck = recheck
        self._zones: dict[Name, _Watched] = {}
        self._wake = asyncio.Event()
        self.on_change: Callable[[], None] | None = None  # a zone expired or recovered

    def served(self, zone: Name, earliest: int | None) -> None:
        """`zone` is now served with this earliest RRSIG expiration (None: not signed)."""
        if earliest is None:
            self.forget(zone)
            return
        w = self._zones.get(zone)
        if w is None:
            self._zones[zone] = _Watched(earliest)
        else:
            w.earliest = earliest
        self._wake.set()

    def forget(self, zone: Name) -> None:
        w = self._zones.pop(zone, None)
        if w is not None and w.level == "expired" and self.on_change is not None:
            self.on_change()

    def earliest(self, zone: Name) -> int:
        w = self._zones.get(zone)
        return w.earliest if w is not None else 0

    def expired(self) -> list[Name]:
        """Zones whose served signatures had expired at the last check."""
        return [zone for zone, w in self._zones.items() if w.level == "expired"]

    def watching(self, publish: Callable[[ZoneSnapshot], Awaitable[None]]
                 ) -> Callable[[ZoneSnapshot], Awaitable[None]]:
        """`publish`, then record the served copy's earliest expiration (read from its
        RRSIGs: meant for whole transferred zones, which are read in full anyway)."""
        async def publish_and_watch(snap: ZoneSnapshot) -> None:
            await publish(snap)
            earliest = (await asyncio.to_thread(earliest_expiration, snap.nodes)  # zone-sized
                        if snap.signed else None)
            self.served(snap.origin, earliest)
        return publish_and_watch

    def check(self) -> float:
        """Emit what is due now; seconds until the next check is due."""
        now = self._clock.time()
        changed = False
        wait = self._recheck
        for zone, w in self._zones.items():
            level = level_at(w.earliest, now, self._window)
            if level != w.level or (level != "ok" and now - w.emitted_at >= self._repeat):
                changed = changed or (level == "expired") != (w.level == "expired")
                w.level = level
                if level == "expired":
                    w.emitted_at = now
                    emit(Event.SIGNATURE_EXPIRED, level=logging.ERROR, zone=zone,
                         expiration=w.earliest)
                elif level == "expiring":
                    w.emitted_at = now
                    emit(Event.SIGNATURE_EXPIRING, level=logging.WARNING, zone=zone,
                         expiration=w.earliest, seconds_left=int(w.earliest - now))
            if level == "ok":
                wait = min(wait, w.earliest - self._window - now)
            elif level == "expiring":
                wait = min(wait, w.earliest - now, w.emitted_at + self._repeat - now)
            else:
                wait = min(wait, w.emitted_at + self._repeat - now)
        if changed and self.on_change is not None:
            self.on_change()
        return max(0.05, wait)

    async def run(self) -> None:
        """Check whenever something is due or a zone's served copy changed."""
        while True:
            self._wake.clear()
            wait = self.check()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass
