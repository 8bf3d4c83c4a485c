"""`Doorkeeper`: a key is admitted the second time it is offered in a window."""

from __future__ import annotations

from node.server.admission import Doorkeeper


def test_second_offer_is_admitted() -> None:
    door = Doorkeeper(1000)
    assert not door.admit(b"\x03www\x00\x00\x01\x00\x01")
    assert door.admit(b"\x03www\x00\x00\x01\x00\x01")


def test_keys_offered_once_rarely_pass() -> None:
    door = Doorkeeper(10_000)
    passed = sum(door.admit(i.to_bytes(8, "big")) for i in range(100_000))
    assert passed < 100_000 * 0.01  # about 0.2% on average over a window


def test_a_new_window_forgets() -> None:
    door = Doorkeeper(10)
    door.admit(b"old")
    for i in range(10):
        door.admit(bytes([i]) * 3)
    assert not door.admit(b"old")
