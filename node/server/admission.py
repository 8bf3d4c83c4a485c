"""`Doorkeeper`: which computed answers may enter the answer caches (pure, no I/O).

A client picks the query names, so a flood of names asked once each (a
random-subdomain attack, or fuzzing) would fill the answer caches with
entries nobody asks for again: memory grows with the flood, and the cache is
cleared when full, evicting the answers real clients repeat. An answer
computed for a key is kept only when the key was asked before and is still
remembered (TinyLFU's "doorkeeper"): a direct-mapped table of at least
`window` slots (a power of two), each the 16-bit fingerprint of the last key
offered there, slot and fingerprint from the key's hash (salted per process,
so clients cannot aim at collisions). A key is forgotten when another key
takes its slot: it survives m later offers with probability about
e^(-m / slots), so on average `slots` (>= `window`) of them. A key asked once
passes by mistake only when its slot holds its fingerprint already, about 1
in 32,768 (fingerprints are odd: an empty slot holds none).

One memory access, no counter and no reset per offer: the flood's miss path
pays this on every query (a Bloom filter's two bits and its window's count
cost about twice as much there). Memory is fixed: 2 octets per slot (512 KiB
for the table's 200,000 entries). Answers that cost no memory of their own
(the eager answers of a compiled zone) do not need the doorkeeper;
`ZoneTable` keeps them at once.
"""

from __future__ import annotations

MIN_SLOTS = 1 << 12


class Doorkeeper:
    """Admits a key offered again while it is remembered (see the module docstring)."""

    __slots__ = ("_mask", "_seen", "window")

    def __init__(self, window: int) -> None:
        slots = MIN_SLOTS
        while slots < window:
            slots <<= 1
        self.window = slots  # the window it keeps (>= the one asked): a table grows it past this
        self._mask = slots - 1
        self._seen = memoryview(bytearray(2 * slots)).cast("h")  # signed: `h >> 48 | 1`

    @property
    def table(self) -> tuple[memoryview, int]:
        """The fingerprints and the slot mask, for a caller that writes `admit` out (the
        NSEC3 flood's answer, `enclosers.Shortcut.nsec3`: one call less per answer)."""
        return self._seen, self._mask

    def admit(self, key: bytes) -> bool:
        """True if `key` was offered before and is remembered; else remember it, say False.
        Written out in `enclosers.Shortcut.nsec3`: change both (a test checks they agree)."""
        h = hash(key)  # computed once per bytes object: the answer cache's probe did it
        seen = self._seen
        i = h & self._mask
        f = h >> 48 | 1  # the hash's top 16 bits (signed, as the table), odd
        if seen[i] == f:
            return True
        seen[i] = f
        return False
