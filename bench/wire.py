"""Hand-built DNS queries and a minimal response reader, so probes cost microseconds.

The benchmarks poll servers in tight loops; dnspython's parse/render (100+ µs
a message) would dominate what is measured. Only what the probes need is
here: build a query, read the header, walk the answer section for A/SOA data.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

TYPE_A = 1
TYPE_SOA = 6
TYPE_RRSIG = 46
TYPE_OPT = 41
RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3


@dataclass(frozen=True, slots=True)
class Answer:
    """What a probe needs from a response: id, flags, rcode and the answer records."""

    id: int
    aa: bool
    rcode: int
    records: tuple[tuple[int, bytes], ...]  # (type, rdata) of the answer section


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def build_query(qid: int, name: str, qtype: int, do_bit: bool = False) -> bytes:
    """A query with RD=0, class IN; with `do_bit`, an OPT record (1232 octets, DO=1)."""
    question = encode_name(name) + struct.pack("!HH", qtype, 1)
    if not do_bit:
        return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + question
    opt = b"\x00" + struct.pack("!HHIH", TYPE_OPT, 1232, 0x00008000, 0)
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + question + opt


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        length = msg[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


def parse_answer(msg: bytes) -> Answer | None:
    """Header and answer records of `msg`, or None when it is not a response or is truncated."""
    if len(msg) < 12:
        return None
    qid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    if not flags & 0x8000:
        return None
    try:
        pos = 12
        for _ in range(qd):
            pos = _skip_name(msg, pos) + 4
        records = []
        for _ in range(an):
            pos = _skip_name(msg, pos)
            rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
            pos += 10
            records.append((rtype, msg[pos : pos + rdlen]))
            pos += rdlen
    except (IndexError, struct.error):
        return None
    return Answer(qid, bool(flags & 0x0400), flags & 0x000F, tuple(records))


def soa_serial(answer: Answer) -> int | None:
    """The SOA serial in `answer`'s answer section (the rdata ends with 5 uint32)."""
    for rtype, rdata in answer.records:
        if rtype == TYPE_SOA and len(rdata) >= 20:
            return int(struct.unpack_from("!I", rdata, len(rdata) - 20)[0])
    return None


def query_once(
    host: str, port: int, name: str, qtype: int, timeout: float = 0.5, do_bit: bool = False
) -> Answer | None:
    """One UDP query; the matching response, or None on timeout/garbage."""
    qid = int(time.monotonic_ns() & 0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(build_query(qid, name, qtype, do_bit))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
            ans = parse_answer(data)
            if ans is not None and ans.id == qid:
                return ans
    return None


def serial_of(host: str, port: int, zone: str, timeout: float = 0.5) -> int | None:
    """The SOA serial the server at host:port answers authoritatively for `zone`, or None."""
    ans = query_once(host, port, zone, TYPE_SOA, timeout)
    if ans is None or not ans.aa or ans.rcode != RCODE_NOERROR:
        return None
    return soa_serial(ans)
