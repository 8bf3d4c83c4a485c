"""DNSSEC and Key Master conversions: defaults for unset fields, round trips, bad values."""

from __future__ import annotations

import dns.name
import pytest

from node.api import convert
from node.api._gen.dnscluster.v1 import dnssec_pb2, keymaster_pb2
from node.errors import ValidationError
from node.keymaster.handover import HandoverOutcome
from node.zones.dnssec import DnssecConfig

ZONE = dns.name.from_text("example.test")


def test_empty_settings_are_the_documented_defaults() -> None:
    config = convert.dnssec_config_from_pb(dnssec_pb2.DnssecSettings())
    assert config == DnssecConfig()
    assert (config.algorithm, config.nsec3, config.iterations, config.salt) == (13, True, 0, "")
    assert (config.validity, config.refresh, config.jitter) == (21 * 86400, 9 * 86400, 43200)
    assert config.replicate_ksk and config.replicate_zsk
    assert config.keymaster_failover == "auto"


def test_unreplicated_key_defaults_to_manual_failover() -> None:
    pb = dnssec_pb2.DnssecSettings(replicate_ksk_private_key=False)
    config = convert.dnssec_config_from_pb(pb)
    assert not config.replicate_ksk and config.replicate_zsk
    assert config.keymaster_failover == "manual"
    pb.failover = dnssec_pb2.KEY_MASTER_FAILOVER_AUTO  # explicit: passed on (the admin refuses)
    assert convert.dnssec_config_from_pb(pb).keymaster_failover == "auto"


@pytest.mark.parametrize(
    "config",
    [
        DnssecConfig(),
        DnssecConfig(algorithm=10, ksk_bits=4096, zsk_bits=2048, nsec3=False, jitter=0),
        DnssecConfig(algorithm=16, csk=True, iterations=5, salt="00ff", opt_out=True,
                     replicate_ksk=False, replicate_zsk=False, keymaster_failover="manual",
                     status="signed", keymaster="dns-1", requested_by="dns-0",
                     missing_keys=("a", "b"), key_store_node="dns-1", new_keys=True),
        DnssecConfig(rfc5011=True, add_holddown=10, remove_holddown=6, parent_ds=False),
    ],
)
def test_settings_round_trip(config: DnssecConfig) -> None:
    pb = convert.dnssec_config_to_pb(config)
    assert convert.dnssec_config_from_pb(pb) == config


def test_algorithm_travels_as_mnemonic() -> None:
    assert convert.dnssec_config_to_pb(DnssecConfig(algorithm=15)).algorithm == "ED25519"
    pb = dnssec_pb2.DnssecSettings(algorithm="rsasha256")
    assert convert.dnssec_config_from_pb(pb).algorithm == 8


@pytest.mark.parametrize(
    ("pb", "says"),
    [
        (dnssec_pb2.DnssecSettings(algorithm="RSASHA1"), "SHA-1"),
        (dnssec_pb2.DnssecSettings(algorithm="GOST"), "unknown DNSSEC algorithm"),
        (dnssec_pb2.DnssecSettings(salt="0g"), "salt"),
        (dnssec_pb2.DnssecSettings(dnskey_ttl=2**31), "TTL"),
        (dnssec_pb2.DnssecSettings(failover=7), "failover"),
    ],
)
def test_bad_settings_raise_validation_error(pb: dnssec_pb2.DnssecSettings, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        convert.dnssec_config_from_pb(pb)


def test_outcome_states_map_both_ways() -> None:
    for state in ("done", "pending", "refused"):
        assert convert.state_from_pb(convert.state_to_pb(state)) == state
    assert convert.state_to_pb("done") == dnssec_pb2.OUTCOME_STATE_DONE
    assert convert.state_from_pb(dnssec_pb2.OUTCOME_STATE_UNSPECIFIED) == "unknown"


def test_unsign_response_carries_the_pending_instructions() -> None:
    pending = convert.unsign_zone_response(ZONE, "pending")
    assert pending.state == dnssec_pb2.OUTCOME_STATE_PENDING
    assert "remove the DS at the parent" in pending.message
    assert "zone unsign example.test." in pending.message
    done = convert.unsign_zone_response(ZONE, "done")
    assert done.state == dnssec_pb2.OUTCOME_STATE_DONE and done.message == ""


def test_wait_seconds_defaults_and_refuses_negative() -> None:
    assert convert.wait_seconds(0) == convert.DEFAULT_WAIT
    assert convert.wait_seconds(2.5) == 2.5
    with pytest.raises(ValidationError):
        convert.wait_seconds(-1)


def test_handover_round_trip_both_responses() -> None:
    out = HandoverOutcome("refused", "dns-0", ("a", "b"), ("ksk 1 (x)",), "msg")
    assert convert.handover_from_pb(convert.transfer_keymaster_response(out)) == out
    assert convert.handover_from_pb(convert.seize_keymaster_response(out)) == out
    req = keymaster_pb2.SeizeKeyMasterRequest(zone="example.test", to="dns-1", force=True)
    zone, to, kwargs = convert.seize_keymaster_args(req)
    assert (zone, to) == (ZONE, "dns-1")
    assert kwargs == {"force": True, "accept_missing_keys": False, "timeout": 30.0}
