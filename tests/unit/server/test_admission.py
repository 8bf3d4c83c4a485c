"""`Doorkeeper`: a key is admitted when it is offered again while remembered."""

from __future__ import annotations

import random

from node.server.admission import Doorkeeper


def test_second_offer_is_admitted() -> None:
    door = Doorkeeper(1000)
    assert not door.admit(b"\x03www\x00\x00\x01\x00\x01")
    assert door.admit(b"\x03www\x00\x00\x01\x00\x01")


def test_keys_offered_once_rarely_pass() -> None:
    """About 1 in 32,768 (a slot already holding the key's 16-bit fingerprint); a Bloom
    filter of 32 bits per key passed about 1 in 500."""
    door = Doorkeeper(10_000)
    passed = sum(door.admit(i.to_bytes(8, "big")) for i in range(200_000))
    assert passed < 40  # about 6 expected


def test_recent_keys_are_remembered() -> None:
    """Keys asked again after a tenth of the window's offers: about e^(-0.1) of them, at
    least, pass (each survives m later offers with probability e^(-m / slots))."""
    door = Doorkeeper(100_000)
    rng = random.Random(3)
    keys = [rng.randbytes(16) for _ in range(10_000)]
    assert sum(door.admit(k) for k in keys) < 5  # new: hardly any passes (0.02 expected)
    assert sum(door.admit(k) for k in keys) > 0.85 * len(keys)


def test_a_key_is_forgotten_once_others_took_its_slot() -> None:
    door = Doorkeeper(10)  # 4,096 slots at least
    door.admit(b"old")
    for i in range(200_000):  # e^(-48): the slot was taken
        door.admit(i.to_bytes(4, "big"))
    assert not door.admit(b"old")
