"""Spot check before timing: do two servers give the same answers to a sample of the queries?

A throughput ratio means nothing if one server answers wrongly. For a sample
of the query file, both servers are asked the same question and their
(rcode, AA flag, answer record types and counts, authority/additional
counts) compared; rdata bytes are not compared because name compression
may differ legitimately.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path

from bench import wire

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
          "DS": 43, "DNSKEY": 48}


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One question the two servers answered differently."""

    question: str
    left: str
    right: str


def _shape(msg: bytes | None) -> str:
    if msg is None:
        return "no answer"
    ans = wire.parse_answer(msg)
    if ans is None:
        return "unparsable"
    _, _, _, _an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    types = sorted(t for t, _ in ans.records)
    return f"rcode={ans.rcode} aa={int(ans.aa)} answer={types} ns={ns} ar={ar}"


def _raw_query(host: str, port: int, name: str, qtype: int, do_bit: bool) -> bytes | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.connect((host, port))
        sock.send(wire.build_query(0x4242, name, qtype, do_bit))
        try:
            return sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None


def compare(query_file: Path, left: tuple[str, int], right: tuple[str, int],
            sample: int = 300, seed: int = 7, do_bit: bool = False) -> list[Mismatch]:
    """Ask both servers `sample` questions from `query_file` (DO=1 if `do_bit`); differences."""
    lines = [ln.split() for ln in query_file.read_text().splitlines() if ln.strip()]
    rng = random.Random(seed)
    out: list[Mismatch] = []
    for name, rtype in rng.sample(lines, min(sample, len(lines))):
        qtype = QTYPES.get(rtype.upper())
        if qtype is None:
            continue
        a = _shape(_raw_query(*left, name, qtype, do_bit))
        b = _shape(_raw_query(*right, name, qtype, do_bit))
        if a != b:
            out.append(Mismatch(f"{name} {rtype}", a, b))
    return out
