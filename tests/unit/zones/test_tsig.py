"""TSIG key values (node/zones/tsig.py): the forms `clusterctl tsig` prints, names, algorithms."""

from __future__ import annotations

import dns.name
import pytest

from node.errors import ValidationError
from node.store.keys import KeyLayout
from node.zones.tsigkey import TsigKey, algorithm_text, key_name

KEY = TsigKey(dns.name.from_text("ddns-key."), "hmac-sha512", b"\x01" * 64, "update")


def test_bind_and_nsupdate_forms_carry_the_algorithm() -> None:
    secret = KEY.secret_b64
    assert KEY.bind_text() == (f'key "ddns-key" {{\n\talgorithm hmac-sha512;\n'
                               f'\tsecret "{secret}";\n}};')
    assert KEY.nsupdate_y() == f"hmac-sha512:ddns-key:{secret}"
    assert KEY.to_dict() == {"name": "ddns-key", "algorithm": "hmac-sha512", "secret": secret,
                             "use": "update"}
    assert KEY.dns_key().algorithm == dns.name.from_text("hmac-sha512")


def test_names_and_algorithms() -> None:
    assert key_name("DDNS-Key") == dns.name.from_text("ddns-key.")
    assert algorithm_text("HMAC-SHA384") == "hmac-sha384"
    with pytest.raises(ValidationError, match="not supported"):
        algorithm_text("hmac-md5")
    with pytest.raises(ValidationError, match="needs a name"):
        key_name(".")


def test_key_paths_round_trip_and_stay_outside_zone_data() -> None:
    layout = KeyLayout("/p/")
    for use in ("update", "transfer"):
        path = layout.tsig_key(use, KEY.name)
        assert path == f"/p/tsig/{use}/ddns-key."
        assert layout.parse_tsig_key(path) == (use, KEY.name)
        assert layout.parse_zone_key(path) is None
    with pytest.raises(ValueError):
        layout.tsig_prefix("other")
