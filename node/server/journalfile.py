"""The file form of the IXFR journal: `Entry` records, their encoding and the chain check.

Owns the on-disk format of `node.server.journal`. A file is a sequence of
records: magic `IXJ1`, payload length, CRC-32 of the payload, payload (old and
new serial, old and new digest, RR count of the new version, counts of RRs
deleted and added, then the old SOA, the new SOA, the deleted and the added
RRs, each as owner length, owner wire, type, TTL, rdata length, rdata). A
record that is cut short or fails its CRC ends the readable part (a torn tail).
Pure: bytes in, bytes out.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

import dns.name

from node.server.zonediff import RR

__all__ = ["MAGIC", "Entry", "chained", "decode_records", "encode_entry", "file_name"]

MAGIC = b"IXJ1"
_HEAD = struct.Struct("!4sII")  # magic, payload length, CRC-32 of the payload
_FIXED = struct.Struct("!II32s32sQII")  # serials, digests, RR count, deleted, added
_RRH = struct.Struct("!HIH")  # type, TTL, rdata length
MAX_RECORD = 1 << 30


@dataclass(frozen=True, slots=True)
class Entry:
    """One step between consecutive served versions (SOAs apart from the other RRs)."""

    old_serial: int
    new_serial: int
    old_digest: bytes
    new_digest: bytes
    rrs: int  # RRs in the new version (for "is IXFR smaller than AXFR")
    old_soa: RR
    new_soa: RR
    deleted: tuple[RR, ...]
    added: tuple[RR, ...]
    size: int = 0  # encoded octets

    @property
    def count(self) -> int:
        return len(self.deleted) + len(self.added) + 2


def _put_rr(out: bytearray, rr: RR) -> None:
    owner, rdtype, ttl, rdata = rr
    out.append(len(owner))
    out += owner
    out += _RRH.pack(rdtype, ttl, len(rdata))
    out += rdata


def encode_entry(e: Entry) -> bytes:
    """The file record of `e` (header included)."""
    body = bytearray(_FIXED.pack(e.old_serial, e.new_serial, e.old_digest, e.new_digest, e.rrs,
                                 len(e.deleted), len(e.added)))
    for rr in (e.old_soa, e.new_soa, *e.deleted, *e.added):
        _put_rr(body, rr)
    return _HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + bytes(body)


def _decode_payload(body: bytes, size: int) -> Entry:
    old, new, od, nd, rrs, ndel, nadd = _FIXED.unpack_from(body, 0)
    pos = _FIXED.size
    rrs_out: list[RR] = []
    for _ in range(ndel + nadd + 2):
        n = body[pos]
        owner = body[pos + 1:pos + 1 + n]
        pos += 1 + n
        rdtype, ttl, rdlen = _RRH.unpack_from(body, pos)
        pos += _RRH.size
        rdata = body[pos:pos + rdlen]
        if len(rdata) != rdlen or len(owner) != n:
            raise ValueError("record runs past its payload")
        pos += rdlen
        rrs_out.append((bytes(owner), rdtype, ttl, bytes(rdata)))
    if pos != len(body):
        raise ValueError("trailing octets in a record")
    return Entry(old, new, od, nd, rrs, rrs_out[0], rrs_out[1], tuple(rrs_out[2:2 + ndel]),
                 tuple(rrs_out[2 + ndel:]), size)


def decode_records(data: bytes) -> tuple[list[Entry], int]:
    """The valid records at the start of `data`, and the offset where they end (a torn or
    corrupt tail starts there)."""
    entries: list[Entry] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, length, crc = _HEAD.unpack_from(data, pos)
        body = data[pos + _HEAD.size:pos + _HEAD.size + length]
        if magic != MAGIC or length > MAX_RECORD or len(body) != length \
                or zlib.crc32(body) != crc:
            break
        try:
            entries.append(_decode_payload(body, _HEAD.size + length))
        except (ValueError, IndexError, struct.error):
            break
        pos += _HEAD.size + length
    return entries, pos


def chained(entries: list[Entry]) -> list[Entry]:
    """The newest unbroken part of `entries`: each old serial and digest is the new one of
    the entry before."""
    start = len(entries)
    while start > 1:
        a, b = entries[start - 2], entries[start - 1]
        if a.new_serial != b.old_serial or a.new_digest != b.old_digest:
            break
        start -= 1
    return entries[max(start - 1, 0):] if entries else []


def file_name(origin: dns.name.Name) -> str:
    text = origin.to_text(omit_final_dot=True).lower() or "root"
    if re.fullmatch(r"[a-z0-9_][a-z0-9._-]*", text):
        return f"{text}.ixfr"
    return f"x-{origin.to_wire().hex()}.ixfr"  # type: ignore[union-attr]
