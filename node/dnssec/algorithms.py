"""Supported DNSSEC signing algorithms, their key sizes, and key generation.

Owns the list of algorithms the cluster signs with (RFC 8624 "MUST"/"RECOMMENDED"
minus everything built on SHA-1) and the mapping from algorithm number to the
`cryptography` key type. Parsing refuses SHA-1, DSA, GOST and unknown names with a
message that lists the choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from node.errors import ValidationError

RSASHA256 = 8
RSASHA512 = 10
ECDSAP256SHA256 = 13
ECDSAP384SHA384 = 14
ED25519 = 15
ED448 = 16

PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


@dataclass(frozen=True, slots=True)
class AlgorithmInfo:
    """One supported algorithm: number, mnemonic, key family and sizes."""

    number: int
    name: str
    family: str  # "rsa" | "ecdsa" | "eddsa"
    default_bits: int | None  # RSA only
    allowed_bits: tuple[int, ...] = ()


ALGORITHMS: MappingProxyType[int, AlgorithmInfo] = MappingProxyType({
    RSASHA256: AlgorithmInfo(RSASHA256, "RSASHA256", "rsa", 2048, (2048, 3072, 4096)),
    RSASHA512: AlgorithmInfo(RSASHA512, "RSASHA512", "rsa", 2048, (2048, 3072, 4096)),
    ECDSAP256SHA256: AlgorithmInfo(ECDSAP256SHA256, "ECDSAP256SHA256", "ecdsa", None),
    ECDSAP384SHA384: AlgorithmInfo(ECDSAP384SHA384, "ECDSAP384SHA384", "ecdsa", None),
    ED25519: AlgorithmInfo(ED25519, "ED25519", "eddsa", None),
    ED448: AlgorithmInfo(ED448, "ED448", "eddsa", None),
})

DEFAULT_ALGORITHM = ECDSAP256SHA256

# Known but refused, with the reason given to the operator.
_REFUSED: dict[str, tuple[int, str]] = {
    "RSAMD5": (1, "MD5 is broken"),
    "DH": (2, "not a signing algorithm"),
    "DSA": (3, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "RSASHA1": (5, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "DSANSEC3SHA1": (6, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "DSA-NSEC3-SHA1": (6, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "RSASHA1NSEC3SHA1": (7, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "RSASHA1-NSEC3-SHA1": (7, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "NSEC3DSA": (6, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "NSEC3RSASHA1": (7, "SHA-1 based algorithms are refused (RFC 9904/RFC 8624)"),
    "ECCGOST": (12, "GOST R 34.10-2001 is deprecated (RFC 8624)"),
}
_ALIASES = {"ECDSAP256": ECDSAP256SHA256, "ECDSAP384": ECDSAP384SHA384}


def _choices() -> str:
    return ", ".join(info.name for info in ALGORITHMS.values())


def algorithm_name(number: int) -> str:
    info = ALGORITHMS.get(number)
    return info.name if info else str(number)


def parse_algorithm(text: str | int) -> int:
    """The algorithm number for a mnemonic or number; ValidationError naming the choices."""
    key = str(text).strip().upper().replace("_", "")
    by_name = {info.name: n for n, info in ALGORITHMS.items()} | _ALIASES
    if key in by_name:
        return by_name[key]
    if key.isdigit() and int(key) in ALGORITHMS:
        return int(key)
    for name, (number, reason) in _REFUSED.items():
        if key == name or (key.isdigit() and int(key) == number):
            raise ValidationError(
                f"DNSSEC algorithm {name} ({number}) refused: {reason}; choose one of {_choices()}"
            )
    raise ValidationError(f"unknown DNSSEC algorithm {text!r}; choose one of {_choices()}")


def check_bits(algorithm: int, bits: int | None) -> int | None:
    """The key size to use: RSA default or a checked choice; None for fixed-size curves."""
    info = ALGORITHMS.get(algorithm)
    if info is None:
        raise ValidationError(f"unsupported DNSSEC algorithm {algorithm}; choose one of "
                              f"{_choices()}")
    if info.family != "rsa":
        if bits is not None:
            raise ValidationError(f"{info.name} has a fixed key size; do not give bits")
        return None
    if bits is None:
        return info.default_bits
    if bits not in info.allowed_bits:
        raise ValidationError(
            f"{info.name} key size {bits} not allowed; choose one of "
            + ", ".join(str(b) for b in info.allowed_bits)
        )
    return bits


def generate_private_key(algorithm: int, bits: int | None = None) -> PrivateKey:
    """A new private key for `algorithm` (RSA: `bits`, default 2048)."""
    size = check_bits(algorithm, bits)
    if algorithm in (RSASHA256, RSASHA512):
        assert size is not None
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if algorithm == ECDSAP256SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ECDSAP384SHA384:
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ed448.Ed448PrivateKey.generate()


def key_matches(algorithm: int, private: object) -> bool:
    """Whether a loaded private key is of the type `algorithm` needs."""
    if algorithm in (RSASHA256, RSASHA512):
        return isinstance(private, rsa.RSAPrivateKey)
    if algorithm == ECDSAP256SHA256:
        return isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"
    if algorithm == ECDSAP384SHA384:
        return isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    if algorithm == ED25519:
        return isinstance(private, ed25519.Ed25519PrivateKey)
    if algorithm == ED448:
        return isinstance(private, ed448.Ed448PrivateKey)
    return False
