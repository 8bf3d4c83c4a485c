"""Signature-expiry checks of the served copy (node/signing/expiry.py) and retry back-off."""

from __future__ import annotations

import datetime as dt
import json
import logging

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.signing.backoff import Backoff
from node.signing.expiry import ExpiryWatch, earliest_expiration, level_at

ZONE = dns.name.from_text("example.test.")


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.t, dt.UTC)

    def time(self) -> float:
        return self.t


def events(caplog: pytest.LogCaptureFixture) -> list[int]:
    out = [json.loads(r.getMessage())["event"] for r in caplog.records
           if r.name == "node.events"]
    caplog.clear()
    return out


def rrsig(expiration: int) -> str:
    return f"A 13 3 300 {expiration} 1000 12345 example.test. AAAA"


def test_earliest_expiration_reads_every_rrsig() -> None:
    def sigs(owner: str, *exps: int) -> dns.rrset.RRset:
        return dns.rrset.from_text(owner, 300, dns.rdataclass.IN, dns.rdatatype.RRSIG,
                                   *(rrsig(e) for e in exps))

    nodes = {
        ZONE: {dns.rdatatype.RRSIG: sigs("example.test.", 2000000000, 1900000000)},
        dns.name.from_text("a.example.test."): {dns.rdatatype.RRSIG: sigs("a.example.test.",
                                                                          1800000000)},
        dns.name.from_text("b.example.test."): {},
    }
    assert earliest_expiration(nodes) == 1800000000
    assert earliest_expiration({ZONE: {}}) is None


@pytest.mark.parametrize(("earliest", "now", "level"), [
    (1000, 900, "ok"), (1000, 985, "ok"), (1000, 990, "expiring"), (1000, 1000, "expired"),
])
def test_level_at(earliest: int, now: float, level: str) -> None:
    assert level_at(earliest, now, warn_window=10) == level


def test_watch_warns_then_errs_on_its_own_timer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="node.events")
    clock = FakeClock(1000.0)
    changes: list[bool] = []
    watch = ExpiryWatch(warn_window=20, clock=clock, repeat=100)
    watch.on_change = lambda: changes.append(bool(watch.expired()))
    watch.served(ZONE, 1050)
    assert watch.check() == pytest.approx(30)  # until the warning window opens
    assert events(caplog) == []
    clock.t = 1030.0  # no signing pass happened: the timer alone raises the warning
    assert watch.check() == pytest.approx(20)  # until expiry
    assert events(caplog) == [1525]
    clock.t = 1040.0
    watch.check()
    assert events(caplog) == []  # once per state, not on every check
    clock.t = 1050.0
    watch.check()
    assert events(caplog) == [1524]
    assert watch.expired() == [ZONE] and changes == [True]
    clock.t = 1150.0
    watch.check()
    assert events(caplog) == [1524]  # repeated while it lasts
    watch.served(ZONE, 5000)  # signed again
    watch.check()
    assert watch.expired() == [] and changes == [True, False]
    assert watch.earliest(ZONE) == 5000
    watch.served(ZONE, None)  # served unsigned: nothing to watch
    assert watch.earliest(ZONE) == 0


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(first=1.0, cap=60.0)
    assert not b.failing
    assert [b.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.failing
    b.reset()
    assert b.next() == 1 and b.failing
