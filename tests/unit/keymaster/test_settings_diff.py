"""`changes`: which settings `zone sign` on a signed zone changes, and which it refuses."""

from __future__ import annotations

import pytest

from node.errors import Refused
from node.keymaster.settings_change import changes
from node.zones.dnssec import DnssecConfig

SIGNED = DnssecConfig(status="signed", keymaster="dns-1", kek="ab12", requested_by="dns-2",
                      salt="aabb", validity=30 * 86400)


def test_the_same_settings_change_nothing() -> None:
    assert changes(SIGNED, SIGNED) == {}
    # the runtime fields of the request (status, keymaster, ...) are never settings
    assert changes(SIGNED, SIGNED.with_(status="keygen", keymaster="", kek="")) == {}


def test_denial_and_signature_settings_change() -> None:
    wanted = SIGNED.with_(nsec3=False, salt="", validity=40 * 86400, dnskey_ttl=300,
                          cds_ttl=60)
    assert changes(SIGNED, wanted) == {"nsec3": False, "salt": "", "validity": 40 * 86400,
                                       "dnskey_ttl": 300, "cds_ttl": 60}
    assert changes(SIGNED, SIGNED.with_(algorithm=15)) == {"algorithm": 15}


@pytest.mark.parametrize("field", ["csk", "replicate_ksk", "replicate_zsk"])
def test_properties_of_the_keys_are_refused(field: str) -> None:
    with pytest.raises(Refused, match="cannot change on a signed zone"):
        changes(SIGNED, SIGNED.with_(**{field: not getattr(SIGNED, field)}))


def test_key_sizes_change_only_with_the_algorithm() -> None:
    rsa = SIGNED.with_(algorithm=8, ksk_bits=2048, zsk_bits=2048)
    with pytest.raises(Refused, match="key size"):
        changes(rsa, rsa.with_(ksk_bits=4096))
    assert changes(rsa, rsa.with_(algorithm=13, ksk_bits=0, zsk_bits=0)) == {
        "algorithm": 13, "ksk_bits": 0, "zsk_bits": 0}
