"""Signing epochs: when an RRset's signatures are made, as a pure function of the version time.

Every RRset has boundaries that recur every `period` (validity - refresh)
seconds, offset per RRset by a stable hash of its owner (canonical wire
labels) and type, so that re-signing spreads evenly over the period instead of
one zone-wide burst. At version time `t` an RRset is signed with the latest
boundary at or before `t` (its *epoch*): inception = epoch - inception offset,
expiration = epoch + validity. Hence:

- signatures of an untouched RRset never change between two of its boundaries;
- every expiration is at least `t + refresh` (epoch > t - period);
- any node that signs the same version computes the same times.

The hash is CRC-32 of fixed input, never Python's salted `hash()`, never the serial.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

__all__ = ["rrset_offset", "signing_epoch"]


def rrset_offset(labels: Sequence[bytes], rdtype: int, period: int) -> int:
    """The RRset's boundary offset in [0, period): stable across processes and versions."""
    return zlib.crc32(b".".join(labels) + rdtype.to_bytes(2, "big")) % period


def signing_epoch(t: int, period: int, labels: Sequence[bytes], rdtype: int) -> int:
    """The latest boundary of the RRset at or before version time `t`."""
    if period <= 0:
        raise ValueError("the signing period (validity - refresh) must be positive")
    return t - (t - rrset_offset(labels, rdtype, period)) % period
