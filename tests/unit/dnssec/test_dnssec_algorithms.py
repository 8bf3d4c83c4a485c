"""Algorithm parsing, refusals and key generation."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from node.dnssec.algorithms import (
    ALGORITHMS,
    check_bits,
    generate_private_key,
    key_matches,
    parse_algorithm,
)
from node.errors import ValidationError


@pytest.mark.parametrize(("text", "number"), [
    ("RSASHA256", 8), ("rsasha512", 10), ("ECDSAP256SHA256", 13), ("ecdsap384sha384", 14),
    ("ED25519", 15), ("Ed448", 16), ("13", 13), (15, 15), ("ECDSAP256", 13),
])
def test_parse_algorithm_accepts_supported(text: str | int, number: int) -> None:
    assert parse_algorithm(text) == number
    assert number in ALGORITHMS


@pytest.mark.parametrize("text", ["RSASHA1", "RSASHA1-NSEC3-SHA1", "NSEC3RSASHA1", "7",
                                  "DSA", "5", "DSANSEC3SHA1", "NSEC3DSA"])
def test_sha1_algorithms_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="SHA-1"):
        parse_algorithm(text)


def test_unknown_algorithm_names_the_choices() -> None:
    with pytest.raises(ValidationError, match=r"ECDSAP256SHA256.*ED448"):
        parse_algorithm("FOO")
    with pytest.raises(ValidationError, match="refused"):
        parse_algorithm("ECCGOST")


def test_rsa_bits_checked() -> None:
    assert check_bits(8, None) == 2048
    assert check_bits(10, 4096) == 4096
    with pytest.raises(ValidationError, match="2048, 3072, 4096"):
        check_bits(8, 1024)
    with pytest.raises(ValidationError, match="fixed key size"):
        check_bits(13, 2048)


@pytest.mark.parametrize(("alg", "kind"), [
    (8, rsa.RSAPrivateKey), (13, ec.EllipticCurvePrivateKey), (14, ec.EllipticCurvePrivateKey),
    (15, ed25519.Ed25519PrivateKey), (16, ed448.Ed448PrivateKey),
])
def test_generate_private_key(alg: int, kind: type) -> None:
    key = generate_private_key(alg)
    assert isinstance(key, kind)
    assert key_matches(alg, key)
    assert not key_matches(16 if alg != 16 else 15, key)


def test_generate_rsa_key_size() -> None:
    key = generate_private_key(10, 3072)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
