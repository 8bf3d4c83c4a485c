"""RFC 1982 serial number arithmetic for 32-bit SOA serials."""

from __future__ import annotations

MOD = 2**32
HALF = 2**31


def serial_add(serial: int, n: int) -> int:
    """serial + n (n < 2**31), wrapping at 2**32."""
    if not 0 <= n < HALF:
        raise ValueError("RFC 1982 addition is defined for 0 <= n < 2**31")
    return (serial + n) % MOD


def serial_lt(a: int, b: int) -> bool:
    """a < b in serial arithmetic (undefined pairs compare False)."""
    return a != b and ((a < b and b - a < HALF) or (a > b and a - b > HALF))


def serial_gt(a: int, b: int) -> bool:
    return serial_lt(b, a)
