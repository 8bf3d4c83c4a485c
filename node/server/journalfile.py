"""The file form of the IXFR journal: `Entry` records, their encoding and the chain check.

Owns the on-disk format of `node.server.journal`. A file is a sequence of
records: magic `IXJ1`, payload length, CRC-32 of the payload, payload (old and
new serial, old and new digest, RR count of the new version, counts of RRs
deleted and added, then the old SOA, the new SOA, the deleted and the added
RRs, each as owner length, owner wire, type, TTL, rdata length, rdata). A
record that is cut short or fails its CRC ends the readable part (a torn tail).
`read_index` reads a file record by record into index entries (a step's RRs
kept only when small, `RESIDENT_MAX`); `read_record` reads one step back from
its record, checked against its index entry. Pure apart from reading a file
object it is given.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import dns.name

from node.server.zonediff import RR

__all__ = ["MAGIC", "RESIDENT_MAX", "Entry", "chained", "decode_records", "encode_entry",
           "file_name", "read_index", "read_record"]

MAGIC = b"IXJ1"
_HEAD = struct.Struct("!4sII")  # magic, payload length, CRC-32 of the payload
_FIXED = struct.Struct("!II32s32sQII")  # serials, digests, RR count, deleted, added
_RRH = struct.Struct("!HIH")  # type, TTL, rdata length
MAX_RECORD = 1 << 30
# a step whose RRs take at most this many octets keeps them in memory too (an IXFR over UDP
# must fit in 512 octets, so it is always answered from memory); larger ones only in the file
RESIDENT_MAX = 4096


@dataclass(frozen=True, slots=True)
class Entry:
    """One step between consecutive served versions (SOAs apart from the other RRs).

    The deleted and added RRs are held packed (`packed`: the record's RR run, deleted
    first), one bytes object per step, and decoded on each read of `deleted` / `added`:
    a zone-sized step (an import, a full signing) held as tuples cost ~170 bytes of Python
    objects per RR in the control process (issue 10), packed it costs its wire size.
    In the journal's index `packed` is None for a step larger than `RESIDENT_MAX`: its RRs
    are read back from the record at `offset` of the file (`read_record`).
    Build one from RR tuples with `Entry.of`.
    """

    old_serial: int
    new_serial: int
    old_digest: bytes
    new_digest: bytes
    rrs: int  # RRs in the new version (for "is IXFR smaller than AXFR")
    old_soa: RR
    new_soa: RR
    ndeleted: int
    nadded: int
    packed: bytes | None  # the deleted then the added RRs, in the file's RR form (None: on disk)
    size: int = 0  # encoded octets
    offset: int = -1  # of its record in the journal file (-1: not written)

    @classmethod
    def of(cls, old_serial: int, new_serial: int, old_digest: bytes, new_digest: bytes,
           rrs: int, old_soa: RR, new_soa: RR, deleted: Iterable[RR], added: Iterable[RR],
           size: int = 0) -> Entry:
        out = bytearray()
        ndel = nadd = 0
        for rr in deleted:
            _put_rr(out, rr)
            ndel += 1
        for rr in added:
            _put_rr(out, rr)
            nadd += 1
        return cls(old_serial, new_serial, old_digest, new_digest, rrs, old_soa, new_soa,
                   ndel, nadd, bytes(out), size)

    @property
    def deleted(self) -> tuple[RR, ...]:
        return _get_rrs(self._rrs(), 0, self.ndeleted)[0]

    @property
    def added(self) -> tuple[RR, ...]:
        pos = _skip_rrs(self._rrs(), 0, self.ndeleted)
        return _get_rrs(self._rrs(), pos, self.nadded)[0]

    @property
    def resident(self) -> bool:
        return self.packed is not None

    def changes(self) -> Iterator[RR]:
        """The old SOA, the deleted RRs, the new SOA, the added RRs, decoded one at a time."""
        body = self._rrs()
        yield self.old_soa
        pos = yield from _iter_rrs(body, 0, self.ndeleted)
        yield self.new_soa
        yield from _iter_rrs(body, pos, self.nadded)

    def index(self) -> Entry:
        """This step as the journal's index keeps it (its RRs dropped when large)."""
        if self.packed is not None and len(self.packed) > RESIDENT_MAX:
            return replace(self, packed=None)
        return self

    def _rrs(self) -> bytes:
        if self.packed is None:
            raise ValueError(f"the RRs of the step to serial {self.new_serial} are on disk")
        return self.packed

    @property
    def count(self) -> int:
        return self.ndeleted + self.nadded + 2


def _put_rr(out: bytearray, rr: RR) -> None:
    owner, rdtype, ttl, rdata = rr
    out.append(len(owner))
    out += owner
    out += _RRH.pack(rdtype, ttl, len(rdata))
    out += rdata


def _iter_rrs(body: bytes, pos: int, n: int) -> Iterator[RR]:  # returns the end offset
    for _ in range(n):
        size = body[pos]
        owner = body[pos + 1:pos + 1 + size]
        pos += 1 + size
        rdtype, ttl, rdlen = _RRH.unpack_from(body, pos)
        pos += _RRH.size
        rdata = body[pos:pos + rdlen]
        if len(rdata) != rdlen or len(owner) != size:
            raise ValueError("record runs past its payload")
        pos += rdlen
        yield bytes(owner), rdtype, ttl, bytes(rdata)
    return pos  # type: ignore[misc]


def _get_rrs(body: bytes, pos: int, n: int) -> tuple[tuple[RR, ...], int]:
    """`n` RRs read from `body` at `pos`, and the offset after them."""
    it = _iter_rrs(body, pos, n)
    out: list[RR] = []
    while True:
        try:
            out.append(next(it))
        except StopIteration as stop:
            return tuple(out), stop.value


def _skip_rrs(body: bytes, pos: int, n: int) -> int:
    """The offset after `n` RRs of `body` from `pos` (checked)."""
    for _ in range(n):
        pos += 1 + body[pos]
        _, _, rdlen = _RRH.unpack_from(body, pos)
        pos += _RRH.size + rdlen
        if pos > len(body):
            raise ValueError("record runs past its payload")
    return pos


def encode_entry(e: Entry) -> bytes:
    """The file record of `e` (header included); its RRs must be in memory."""
    body = bytearray(_FIXED.pack(e.old_serial, e.new_serial, e.old_digest, e.new_digest, e.rrs,
                                 e.ndeleted, e.nadded))
    _put_rr(body, e.old_soa)
    _put_rr(body, e.new_soa)
    body += e._rrs()
    return _HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + bytes(body)


def _decode_payload(body: bytes, size: int, offset: int) -> Entry:
    old, new, od, nd, rrs, ndel, nadd = _FIXED.unpack_from(body, 0)
    soas, start = _get_rrs(body, _FIXED.size, 2)
    end = _skip_rrs(body, start, ndel + nadd)
    if end != len(body):
        raise ValueError("trailing octets in a record")
    return Entry(old, new, od, nd, rrs, soas[0], soas[1], ndel, nadd, bytes(body[start:]), size,
                 offset)


def _records(f: BinaryIO) -> Iterator[Entry]:
    """The valid records from the position of `f` on (each with its RRs), one at a time,
    up to the first one cut short or corrupt."""
    pos = f.tell()
    while True:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        magic, length, crc = _HEAD.unpack(head)
        if magic != MAGIC or length > MAX_RECORD:
            return
        body = f.read(length)
        if len(body) != length or zlib.crc32(body) != crc:
            return
        try:
            yield _decode_payload(body, _HEAD.size + length, pos)
        except (ValueError, IndexError, struct.error):
            return
        pos += _HEAD.size + length


def decode_records(data: bytes) -> tuple[list[Entry], int]:
    """The valid records at the start of `data`, and the offset where they end (a torn or
    corrupt tail starts there)."""
    entries = list(_records(io.BytesIO(data)))
    return entries, (entries[-1].offset + entries[-1].size if entries else 0)


def read_index(f: BinaryIO) -> tuple[list[Entry], int]:
    """`decode_records` of a file, as index entries (`Entry.index`), reading one record at a
    time: a zone-sized step is never held beside the others."""
    entries = [e.index() for e in _records(f)]
    return entries, (entries[-1].offset + entries[-1].size if entries else 0)


def read_record(data: bytes, want: Entry) -> Entry:
    """The step `want` (an index entry) with its RRs, from `data`, the octets at its offset;
    ValueError unless they are its intact record (the file was cut or rewritten)."""
    got = next(_records(io.BytesIO(data)), None)
    if got is None or got.size != want.size or (got.old_serial, got.new_serial, got.old_digest,
                                                got.new_digest) != (
            want.old_serial, want.new_serial, want.old_digest, want.new_digest):
        raise ValueError(f"no intact record of the step to serial {want.new_serial} "
                         f"at offset {want.offset}")
    return replace(got, offset=want.offset)


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
