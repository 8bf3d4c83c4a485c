"""KEK wrapping: round trip, wrong KEK, moved ciphertext, file loading."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from node.dnssec.kek import kek_fingerprint, load_kek, unwrap, wrap
from node.errors import ConfigError, ValidationError

KEK = bytes(range(32))
OTHER = bytes(range(1, 33))
SECRET = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"


def test_wrap_round_trip_and_ciphertext_hides_plaintext() -> None:
    blob = wrap(KEK, "example.", "k1", SECRET)
    assert SECRET not in blob and b"secret" not in blob
    assert unwrap(KEK, "example.", "k1", blob) == SECRET
    assert wrap(KEK, "example.", "k1", SECRET) != blob  # fresh nonce each time


def test_wrong_kek_fails() -> None:
    blob = wrap(KEK, "example.", "k1", SECRET)
    with pytest.raises(ValidationError, match="wrong KEK or tampered"):
        unwrap(OTHER, "example.", "k1", blob)


@pytest.mark.parametrize(("zone", "key_id"), [("example.", "k2"), ("other.", "k1")])
def test_moved_ciphertext_fails(zone: str, key_id: str) -> None:
    blob = wrap(KEK, "example.", "k1", SECRET)
    with pytest.raises(ValidationError, match="wrong KEK or tampered"):
        unwrap(KEK, zone, key_id, blob)


def test_zone_name_case_and_trailing_dot_do_not_matter() -> None:
    blob = wrap(KEK, "Example.", "k1", SECRET)
    assert unwrap(KEK, "example", "k1", blob) == SECRET


def test_tampered_ciphertext_fails() -> None:
    blob = bytearray(wrap(KEK, "example.", "k1", SECRET))
    blob[-1] ^= 1
    with pytest.raises(ValidationError, match="tampered"):
        unwrap(KEK, "example.", "k1", bytes(blob))
    with pytest.raises(ValidationError, match="malformed"):
        unwrap(KEK, "example.", "k1", b"\x01short")


def test_kek_must_be_32_bytes() -> None:
    with pytest.raises(ValidationError, match="32 bytes"):
        wrap(b"short", "example.", "k1", SECRET)


@pytest.mark.parametrize("encode", [lambda k: k, lambda k: k.hex().encode() + b"\n",
                                    lambda k: base64.b64encode(k) + b"\n"])
def test_load_kek_formats(tmp_path: Path, encode) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "kek"
    path.write_bytes(encode(KEK))
    os.chmod(path, 0o600)
    assert load_kek(path) == KEK


def test_load_kek_bad_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_bytes(b"too short")
    with pytest.raises(ConfigError, match=str(path)):
        load_kek(path)
    with pytest.raises(ConfigError, match="missing"):
        load_kek(tmp_path / "missing")


def test_load_kek_warns_on_open_permissions(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kek"
    path.write_bytes(KEK.hex().encode())
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert load_kek(path) == KEK
    assert "0600" in caplog.text
    assert KEK.hex() not in caplog.text


def test_fingerprint_short_stable_distinct() -> None:
    assert kek_fingerprint(KEK) == kek_fingerprint(bytes(KEK))
    assert kek_fingerprint(KEK) != kek_fingerprint(OTHER)
    assert len(kek_fingerprint(KEK)) == 16
    assert KEK.hex()[:16] not in kek_fingerprint(KEK)
