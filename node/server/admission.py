"""`Doorkeeper`: which computed answers may enter the answer caches (pure, no I/O).

A client picks the query names, so a flood of names asked once each (a
random-subdomain attack, or fuzzing) would fill the answer caches with
entries nobody asks for again: memory grows with the flood, and the cache is
cleared when full, evicting the answers real clients repeat. An answer
computed for a key is kept only when the key was asked before in the current
window (TinyLFU's "doorkeeper"): a bitmap of 32 bits per window slot, two
bits per key from the key's hash (salted per process, so clients cannot aim
at collisions), both in one 64-bit word (a blocked Bloom filter: one memory
access and one word test per key; the flood's miss path pays this on every
query). After `window` remembered keys the bitmap starts afresh. At the end
of a window a key asked once passes by mistake with probability about 0.45%
(two keys per word on average; unblocked, (1 - e^(-1/16))^2, 0.36%).

Memory is fixed: `window * 32` bits (about 0.8 MB for the table's 200,000
entries). Answers that cost no memory of their own (the eager answers of a
compiled zone) do not need the doorkeeper; `ZoneTable` keeps them at once.
"""

from __future__ import annotations

BITS_PER_KEY = 32
MIN_BITS = 1 << 16
# the two bits a key sets in its word, by 12 bits of its hash: always two distinct bits
_PAIRS = tuple(1 << (i & 63) | 1 << ((i & 63) + 1 + (i >> 6) % 63 & 63) for i in range(4096))


class Doorkeeper:
    """Admits a key the second time it is offered within a window."""

    __slots__ = ("_added", "_mask", "_words", "window")

    def __init__(self, window: int) -> None:
        size = MIN_BITS
        while size < window * BITS_PER_KEY:
            size <<= 1
        self.window = window
        self._mask = (size >> 6) - 1  # of a word's index
        self._words = memoryview(bytearray(size >> 3)).cast("Q")
        self._added = 0

    def admit(self, key: bytes) -> bool:
        """True if `key` was offered before in this window; else remember it and say False."""
        h = hash(key)  # computed once per bytes object: the answer cache's probe did it
        words = self._words
        i = h & self._mask
        pair = _PAIRS[h >> 40 & 4095]
        w = words[i]
        if w & pair == pair:
            return True
        words[i] = w | pair
        self._added += 1
        if self._added >= self.window:
            self._words = memoryview(bytearray(len(words) << 3)).cast("Q")
            self._added = 0
        return False
