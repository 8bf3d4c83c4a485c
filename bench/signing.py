"""Signed zones for the DO=1 comparison: our node's SignZone, and waiting for signed answers.

Both servers sign the same unsigned zone themselves with the same settings
(KSK+ZSK ECDSAP256SHA256, NSEC): Knot by its automatic signing policy
(`bench/knot.py`), our node through `clusterctl zone sign` (set-up, not
measured, so the CLI is fine here). Signing is done when a sample of the
query file's positive questions all come back with RRSIGs under DO=1.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from bench import wire
from bench.compare import QTYPES
from bench.procs import BenchError, NodeAddr, Proc, binary, wait_until


def positive_sample(query_file: Path, count: int = 30, seed: int = 11) -> list[tuple[str, int]]:
    """(name, qtype) pairs from `query_file` whose answers are signed data (no NXDOMAIN, no
    referral)."""
    pairs = []
    for line in query_file.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0].startswith(("nx-", "www.")) or parts[1] not in QTYPES:
            continue
        pairs.append((parts[0], QTYPES[parts[1]]))
    if not pairs:
        raise BenchError(f"{query_file}: no positive questions to check signing with")
    return random.Random(seed).sample(pairs, min(count, len(pairs)))


def first_unsigned(host: str, port: int, sample: list[tuple[str, int]]) -> str | None:
    """The first sampled question whose DO=1 answer has no RRSIG, or None when all have."""
    for name, qtype in sample:
        ans = wire.query_once(host, port, name, qtype, timeout=1.0, do_bit=True)
        if ans is None or not any(t == wire.TYPE_RRSIG for t, _ in ans.records):
            return f"{name} type {qtype}"
    return None


def wait_signed(proc: Proc, host: str, port: int, sample: list[tuple[str, int]],
                timeout: float) -> None:
    """Wait until every sampled answer is signed; BenchError naming an unsigned one if not."""
    missing: list[str | None] = [None]

    def ok() -> bool:
        proc.check()
        missing[0] = first_unsigned(host, port, sample)
        return missing[0] is None

    try:
        wait_until(f"{proc.name} serving signed answers", ok, timeout, 0.5)
    except BenchError as exc:
        raise BenchError(f"{exc} (no RRSIG with DO=1 for {missing[0]})") from None


def sign_node(addr: NodeAddr, zone: str, timeout: float, nsec3: bool = False) -> None:
    """`clusterctl zone sign ZONE --nsec` (or `--nsec3`, no salt, 0 iterations) on the node
    at `addr` (ECDSA P-256 KSK+ZSK)."""
    cmd = [binary("clusterctl"), "zone", "sign", "--endpoint", addr.api,
           "--timeout", str(int(timeout)), "--nsec3" if nsec3 else "--nsec",
           "--algorithm", "ECDSAP256SHA256", zone]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd)}: no answer in {timeout:.0f} s") from exc
    if res.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {res.returncode}: "
                         f"{res.stderr.strip() or res.stdout.strip()}")
