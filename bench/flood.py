"""Random-subdomain flood query files: every line a new nonexistent name under the zone.

Each line is `<12 random lowercase letters and digits>.<zone> A`, so every
query misses the answer cache and asks for a denial proof (NXDOMAIN, with
NSEC or NSEC3 records and their RRSIGs when the zone is signed and DO=1).
dnsperf reads its query file in order and starts over at the end; the file
holds enough lines that it does not wrap within a run (duration x expected
queries/s, capped), and `wrapped` tells afterwards whether it did.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

ALPHABET = string.ascii_lowercase + string.digits
LABEL_LENGTH = 12
DEFAULT_QPS = 250_000  # above what either server reached on one core here
DEFAULT_CAP = 6_000_000  # lines: about 200 MB for a 20-character zone name


def lines_for(duration: float, expected_qps: int, cap: int = DEFAULT_CAP) -> int:
    """Lines a flood file needs so a `duration` s run at `expected_qps` does not wrap."""
    return max(1000, min(cap, int(duration * expected_qps * 1.1)))


def write_flood(path: Path, origin: str, lines: int, seed: int) -> Path:
    """Write `lines` random-subdomain A questions under `origin` to `path`.

    Labels are 12 characters from 36 (about 4.7e18 choices): among a few
    million lines a repeat has a probability near 1e-6, so no set of seen
    labels is kept (it would cost hundreds of MB).
    """
    zone = origin.rstrip(".") + "."
    rng = random.Random(seed)
    with open(path, "w") as fh:
        batch: list[str] = []
        for _ in range(lines):
            batch.append(f"{''.join(rng.choices(ALPHABET, k=LABEL_LENGTH))}.{zone} A\n")
            if len(batch) >= 10_000:
                fh.writelines(batch)
                batch.clear()
        fh.writelines(batch)
    return path


def wrapped(completed: int, lines: int) -> bool:
    """Whether a dnsperf run that completed `completed` queries reused flood names."""
    return completed > lines
