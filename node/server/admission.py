"""`Doorkeeper`: which computed answers may enter the answer caches (pure, no I/O).

A client picks the query names, so a flood of names asked once each (a
random-subdomain attack, or fuzzing) would fill the answer caches with
entries nobody asks for again: memory grows with the flood, and the cache is
cleared when full, evicting the answers real clients repeat. An answer
computed for a key is kept only when the key was asked before in the current
window (TinyLFU's "doorkeeper"): a bitmap of 32 bits per window slot, two
bits per key from the key's hash (salted per process, so clients cannot aim
at collisions). After `window` remembered keys the bitmap starts afresh. At
the end of a window a key asked once passes by mistake with probability
(1 - e^(-1/16))^2, about 0.4%.

Memory is fixed: `window * 32` bits (about 0.8 MB for the table's 200,000
entries). Answers that cost no memory of their own (the eager answers of a
compiled zone) do not need the doorkeeper; `ZoneTable` keeps them at once.
"""

from __future__ import annotations

BITS_PER_KEY = 32
MIN_BITS = 1 << 16


class Doorkeeper:
    """Admits a key the second time it is offered within a window."""

    __slots__ = ("_added", "_bits", "_mask", "window")

    def __init__(self, window: int) -> None:
        size = MIN_BITS
        while size < window * BITS_PER_KEY:
            size <<= 1
        self.window = window
        self._mask = size - 1
        self._bits = bytearray(size >> 3)
        self._added = 0

    def admit(self, key: bytes) -> bool:
        """True if `key` was offered before in this window; else remember it and say False."""
        h = hash(key)
        a = h & self._mask
        b = (h >> 32) & self._mask
        bits = self._bits
        if bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1:
            return True
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)
        self._added += 1
        if self._added >= self.window:
            self._bits = bytearray(len(bits))
            self._added = 0
        return False
