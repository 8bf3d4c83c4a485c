"""`policy_of`: a zone's settings decide whether its SEP keys roll by RFC 5011."""

from __future__ import annotations

from node.dnssec.rfc5011 import Rfc5011Policy
from node.keymaster.rfc5011 import policy_of
from node.zones.dnssec import DnssecConfig


def test_policy_follows_the_zone_settings() -> None:
    assert policy_of(DnssecConfig()) is None  # double-KSK
    cfg = DnssecConfig(rfc5011=True, add_holddown=10, remove_holddown=6, parent_ds=False)
    assert policy_of(cfg) == Rfc5011Policy(add_holddown=10, remove_holddown=6, parent_ds=False)
    assert policy_of(DnssecConfig(rfc5011=True)) == Rfc5011Policy()  # 30 days each, a DS
    assert DnssecConfig.from_json(cfg.to_json()) == cfg
