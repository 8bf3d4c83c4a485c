"""decide(): the SOA refresh/retry/expire timers of a secondary zone (node/zones/refresh.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.zones.model import ZoneConfig, parse_primary, parse_zone_name
from node.zones.refresh import Decision, Observation, Timers, decide

T = Timers(refresh=60, retry=10, expire=300)
HELD = Observation(timers=T, succeeded_at=1000.0, attempted_at=1000.0)
NONE = Observation(timers=None, succeeded_at=None, attempted_at=None, first_retry=5.0)


def obs(base: Observation = HELD, **kw: object) -> Observation:
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("o", "now", "want"), [
    # no copy: refresh at once, then every first_retry, never served
    (NONE, 0.0, Decision(serve=False, refresh=True, next_at=0.0)),
    (obs(NONE, attempted_at=10.0, failed=True), 12.0, Decision(False, False, 15.0)),
    (obs(NONE, attempted_at=10.0, failed=True), 15.0, Decision(False, True, 15.0)),
    # fresh copy: served, next refresh at succeeded + refresh
    (HELD, 1001.0, Decision(serve=True, refresh=False, next_at=1060.0)),
    (HELD, 1060.0, Decision(serve=True, refresh=True, next_at=1060.0)),
    # a NOTIFY: refresh at once, whatever the timers say
    (obs(notified=True), 1001.0, Decision(serve=True, refresh=True, next_at=1001.0)),
    # failed refresh: retry after `retry`, still served before expire
    (obs(attempted_at=1100.0, failed=True), 1105.0, Decision(True, False, 1110.0)),
    (obs(attempted_at=1100.0, failed=True), 1110.0, Decision(True, True, 1110.0)),
    # the retry would come after expire: wake at expire to stop serving
    (obs(timers=Timers(60, 100, 300), attempted_at=1250.0, failed=True), 1260.0,
     Decision(True, False, 1300.0)),
    # expire passed: not served, retries go on
    (obs(attempted_at=1295.0, failed=True), 1300.0, Decision(False, False, 1305.0)),
    (obs(attempted_at=1295.0, failed=True), 1300.0 + 1e-9, Decision(False, False, 1305.0)),
    (obs(attempted_at=1295.0, failed=True), 1305.0, Decision(False, True, 1305.0)),
    # a successful refresh after expire: served again
    (obs(succeeded_at=1310.0, attempted_at=1310.0), 1311.0, Decision(True, False, 1370.0)),
])
def test_decide(o: Observation, now: float, want: Decision) -> None:
    assert decide(o, now) == want


def test_expire_is_never_passed_while_waiting() -> None:
    """Whatever the timers, a served copy wakes its zone no later than its expire time."""
    for refresh, retry, expire in ((60, 10, 30), (3600, 600, 10), (5, 5, 5)):
        o = obs(timers=Timers(refresh, retry, expire))
        d = decide(o, 1000.5)
        assert d.serve and d.next_at <= 1000.0 + expire


def test_secondary_config_round_trips_and_etcd_zone_json_is_unchanged() -> None:
    name = parse_zone_name("sec.test")
    cfg = ZoneConfig(name=name, kind="secondary", primaries=("127.0.0.1:5300",),
                     tsig_key="xfr.")
    assert ZoneConfig.from_json(cfg.to_json()) == cfg and cfg.secondary
    plain = ZoneConfig(name=name)
    assert b"kind" not in plain.to_json() and not ZoneConfig.from_json(plain.to_json()).secondary


@pytest.mark.parametrize(("text", "want"), [
    ("127.0.0.1:53", ("127.0.0.1", 53)), ("[::1]:5300", ("::1", 5300)),
])
def test_parse_primary(text: str, want: tuple[str, int]) -> None:
    assert parse_primary(text) == want


@pytest.mark.parametrize("text", ["ns1.example:53", "127.0.0.1", "127.0.0.1:0", "1.2.3.4:x"])
def test_parse_primary_refuses(text: str) -> None:
    from node.errors import ValidationError
    with pytest.raises(ValidationError):
        parse_primary(text)
