"""Unsafe DNSSEC settings are refused with a reason (node/zones/dnssec_policy.py)."""

from __future__ import annotations

import pytest

from node.errors import Refused, ValidationError
from node.zones.dnssec import DnssecConfig
from node.zones.dnssec_policy import check_config

OK = {"soa_expire": 604800, "max_ttl": 3600, "stagger_max": 1800.0}


def test_defaults_pass_without_warnings() -> None:
    assert check_config(DnssecConfig(), **OK) == []


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"iterations": 51}, Refused, "RFC 9276"),
        ({"iterations": -1}, ValidationError, "iterations"),
        ({"nsec3": False, "salt": "ab"}, ValidationError, "NSEC3 only"),
        ({"nsec3": False, "opt_out": True}, ValidationError, "NSEC3 only"),
        ({"refresh": 30 * 86400}, ValidationError, "refresh < validity"),
        ({"refresh": 3 * 86400}, Refused, "SOA expire"),
        ({"jitter": 5 * 86400}, ValidationError, "jitter"),
        ({"replicate_ksk": False}, Refused, "failover"),
    ],
)
def test_unsafe_settings_are_refused(changes: dict[str, object], error: type[Exception],
                                     words: str) -> None:
    with pytest.raises(error, match=words):
        check_config(DnssecConfig().with_(**changes), **OK)


def test_iterations_above_zero_warn() -> None:
    warnings = check_config(DnssecConfig(iterations=5), **OK)
    assert warnings and "RFC 9276" in warnings[0]


def test_short_refresh_is_accepted_with_force_and_still_warns() -> None:
    warnings = check_config(DnssecConfig(refresh=3 * 86400), force=True, **OK)
    assert any("--force" in w for w in warnings)


def test_stagger_must_be_well_below_refresh() -> None:
    with pytest.raises(Refused, match="stagger"):
        check_config(DnssecConfig(validity=3600, refresh=1200, jitter=60),
                     soa_expire=60, max_ttl=60, stagger_max=1800.0)


def test_config_round_trips_through_json() -> None:
    cfg = DnssecConfig(algorithm=15, nsec3=True, salt="cafe", missing_keys=("a", "b"))
    assert DnssecConfig.from_json(cfg.to_json()) == cfg
