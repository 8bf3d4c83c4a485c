"""`GrowingOverlay`: one zone's overlay kept from version to version, extended, not redone.

Worker-side, used by `node.image.overlay.ImageBuilder`. An overlay holds
everything that differs from its base (the last full image), so rendering it
anew for each version costs O(changes since the base): on a signed zone,
about 0.1 ms per answer, node and denial piece, for every earlier change
again. This keeps the overlay's records region (records, their RR runs, the
denial pieces) between versions and, for each new version, appends only the
records of what that version changed (`step`): the answers `evolve` touched,
the nodes of the changed names and their ancestors (and of the names below a
cut that came or went), the denial pieces it replaced or deleted. A record
is never moved (node records hold absolute offsets of their runs), so the
previous records stay valid where they are; the hash table (key -> latest
record), the denial table, the negative SOA runs and the header are written
after the records region for each version, and cut off again before the next.

A record replaced by a later one stays in the region, unreachable (no slot
points at it): such garbage grows by the re-rendered records per version (the
apex's, a few KiB) and is dropped by `fresh` (a new region with only the live
records), which `ImageBuilder` calls when the region has grown past a bound.
Byte-identical answers to a rebuild of the whole overlay rest on what the
cumulative overlay already assumes: a record not touched by a version is the
same in that version as in the one before.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from node.image import layout as L
from node.image.builder import Delta, ImageWriter
from node.server.compile import CompiledZone

# the region is rebuilt when its garbage passes GARBAGE_BYTES or half the base image (but not
# less than MIN_GARBAGE), and its live part
GARBAGE_BYTES = 4 << 20
MIN_GARBAGE = 256 << 10


class _Writer(ImageWriter):
    """An `ImageWriter` that appends one version's records to a kept region, reusing an
    identical RR run or record already there (the apex is rewritten every version, its
    DNSKEY, NS and their signatures mostly unchanged: no garbage from them)."""

    runs: dict[bytes, int] | None = None  # run octets -> offset in the region
    last: dict[bytes, tuple[int, bytes, int]]  # hash key -> its record (kind, payload, offset)

    def records(self, buf: bytearray, runs: dict[bytes, int],
                last: dict[bytes, tuple[int, bytes, int]]) -> list[tuple[bytes, int]]:
        """Append the delta's node and answer records (tombstones included) to `buf`."""
        self.out, self.runs, self.last = buf, runs, last
        self.slots = []
        self._nodes([])
        self._answers()
        return self.slots

    def _run(self, tails: tuple[bytes, ...] | list[bytes]) -> int:
        if self.runs is None or not tails:
            return super()._run(tails)
        data = b"".join(tails)
        off = self.runs.get(data)
        if off is None:
            off = self.runs[data] = self._put(data)
        return off

    def _record(self, hkey: bytes, kind: int, payload: bytes) -> int:
        if self.runs is None:
            return super()._record(hkey, kind, payload)
        if kind == L.KIND_NODE and payload[0] & L.N_CUT and _ref(payload):
            # a cut's node is kept while the cut is unchanged, but its referral also holds
            # the glue of names elsewhere and (DO=1) the cut's NSEC or NSEC3, which change
            # without it: no referral here, the reader renders it (as for the base's nodes)
            payload = L.NODE.pack(*L.NODE.unpack_from(payload)[:4], 0) + payload[L.NODE.size:]
        was = self.last.get(hkey)
        if was is not None and was[0] == kind and was[1] == payload:
            self.slots.append((hkey, was[2]))
            return was[2]
        off = super()._record(hkey, kind, payload)
        self.last[hkey] = (kind, payload, off)
        return off

    def piece(self, key: Any) -> int:
        """Append the current denial piece of `key`; its offset."""
        index = self.zone.denial
        assert index is not None
        owner, tails = index.pieces[key]
        return self._put(bytes((len(owner),)) + owner + L.U16.pack(len(tails))
                         + b"".join(tails))

    def finish(self, slots: _Slots, denial: dict[bytes, int]) -> bytes:
        """Tables and header after the records region: the finished overlay's bytes."""
        self.runs = None  # what follows is cut off again before the next version
        zone = self.zone
        snap = zone.snapshot
        index = zone.denial
        soa = zone.negative_soa()
        soa_off = self._run(soa)
        soa_do = zone.negative_soa_signed() if self.signed else soa
        soa_do_off = self._run(soa_do)
        denial_off = self._table(sorted(denial.items()))
        nsec3 = index is not None and index.nsec3
        salt = index.salt if index is not None else b""
        salt_off = self._put(salt) if salt else 0
        table, hash_slots = slots.table()
        self.out += b"\x00" * (-len(self.out) % 8)  # the hash table is 8-aligned
        hash_off = self._put(table)
        flags = L.F_OVERLAY | (L.F_SIGNED if self.signed else 0) | (L.F_NSEC3 if nsec3 else 0)
        assert self.delta is not None
        L.HEADER.pack_into(
            self.out, 0, L.MAGIC, L.LAYOUT_VERSION, flags, snap.serial, snap.revision,
            len(zone.origin), hash_off, hash_slots, denial_off, len(denial),
            soa_off, len(soa), soa_do_off, len(soa_do),
            index.iterations if index is not None else 0, len(salt), salt_off, len(self.out),
            len(slots), self.delta.base_revision)
        return bytes(self.out)

    def _table(self, keyed: list[tuple[bytes, int]]) -> int:
        """The denial table of `keyed` (layout key, piece offset or 0: deleted), as
        `ImageWriter._denial` lays it out."""
        index = self.zone.denial
        if index is None:
            return 0
        keys = [k for k, _ in keyed]
        if index.nsec3:
            bits = L.bucket_bits(len(keys))
            return self._put(b"".join(keys) + b"".join(L.U32.pack(o) for _, o in keyed)
                             + L.U32.pack(bits)
                             + b"".join(L.U32.pack(i) for i in L.buckets(keys, bits)))
        recs = [self._put(L.U16.pack(len(k)) + k + L.U32.pack(o)) for k, o in keyed]
        table = self._put(b"".join(L.U32.pack(r) for r in recs))
        self.out += b"\x00" * (L.align8(len(self.out)) - len(self.out))
        skip = len(L.canonical_key(self.zone.origin))  # every key starts with the origin's
        self._put(b"".join(L.PREFIX.pack(L.sort_prefix(k[skip:])) for k in keys))
        return table


class _Slots:
    """The overlay's hash table, kept and updated per key (`ImageWriter._hash`'s layout:
    linear probing, at most half full), so a version costs its changed keys, not a new
    table of every key since the base. A key stays once in (a tombstone when it goes)."""

    __slots__ = ("_at", "_n", "_tab")

    def __init__(self) -> None:
        self._n = 8
        self._tab = array("I", bytes(8 * self._n))  # tag, record offset per slot
        self._at: dict[bytes, int] = {}  # hash key -> its slot

    def __contains__(self, hkey: bytes) -> bool:
        return hkey in self._at

    def __len__(self) -> int:
        return len(self._at)

    def put(self, hkey: bytes, off: int) -> None:
        i = self._at.get(hkey)
        if i is None:
            if 2 * (len(self._at) + 1) > self._n:
                self._grow()
            i = self._at[hkey] = self._free(L.tag(hkey))
        self._tab[2 * i + 1] = off

    def _free(self, tag: int) -> int:
        tab, mask = self._tab, self._n - 1
        i = tag & mask
        while tab[2 * i]:
            i = (i + 1) & mask
        tab[2 * i] = tag
        return i

    def _grow(self) -> None:
        old, at = self._tab, self._at
        self._n *= 2
        self._tab = array("I", bytes(8 * self._n))
        for hkey, i in at.items():
            at[hkey] = j = self._free(old[2 * i])
            self._tab[2 * j + 1] = old[2 * i + 1]

    def table(self) -> tuple[bytes, int]:
        """The table's octets (`layout.SLOT` each, little-endian) and its slot count."""
        if sys.byteorder == "little":
            return self._tab.tobytes(), self._n
        tab = array("I", self._tab)
        tab.byteswap()
        return tab.tobytes(), self._n


class GrowingOverlay:
    """The kept records region of one zone's overlay on the full image `base_revision`."""

    __slots__ = ("_buf", "_denial", "_end", "_fresh_end", "_gone", "_last", "_limit",
                 "_records", "_runs", "_slots", "base_revision", "written")

    def __init__(self, zone: CompiledZone, base_revision: int, base_bytes: int) -> None:
        self.base_revision = base_revision
        self._limit = min(GARBAGE_BYTES, max(base_bytes // 2, MIN_GARBAGE))
        self._buf = bytearray(L.HEADER.size) + zone.origin
        self._end = self._fresh_end = len(self._buf)  # end of the records region
        self.written = 0  # records and denial pieces the last version appended
        self._records: dict[bytes, int] = {}  # hash key -> offset of its latest record
        self._gone: set[bytes] = set()  # hash keys whose latest record is a tombstone
        self._slots = _Slots()  # the hash table: every key in _records (and tombstones)
        self._runs: dict[bytes, int] = {}  # RR runs in the region, by their octets
        self._last: dict[bytes, tuple[int, bytes, int]] = {}  # hash key -> latest record
        self._denial: dict[Any, tuple[bytes, int]] = {}  # key -> (layout key, piece offset
        # or 0: deleted)

    @property
    def entries(self) -> int:
        """Records and denial entries the overlay holds (what a rebuild would render)."""
        return len(self._records) + len(self._denial)

    def grown(self) -> bool:
        """The region grew since it was rebuilt by more than its limit (`GARBAGE_BYTES`, at
        most half the base image, at least `MIN_GARBAGE`) and more than its size then
        (amortised: a rebuild renders every live record again)."""
        grew = self._end - self._fresh_end
        return grew > self._limit and grew > self._fresh_end

    def step(self, zone: CompiledZone, answers: dict[bytes, bool], nodes: dict[bytes, bool],
             denial: dict[Any, Any]) -> bytes:
        """Append the records of what changed and return the overlay of `zone`.

        `answers` and `nodes`: the answer keys and names to rewrite, each with whether the
        base had it (a tombstone is written for one gone since); `denial`: the denial keys
        to rewrite, each with the base's piece (None: none)."""
        del self._buf[self._end:]
        now = zone.answers
        live_answers = [k for k in answers if k in now]
        gone_answers = [k for k in answers if k not in now and answers[k]]
        live = [n for n in nodes if n in zone.names or zone.below.get(n)]
        gone_nodes = [n for n in nodes if n not in zone.names and not zone.below.get(n)
                      and nodes[n]]
        writer = _Writer(zone, Delta(self.base_revision, tuple(live_answers),
                                     tuple(gone_answers), tuple(live), tuple(gone_nodes),
                                     (), ()))
        records, gone = self._records, self._gone
        keys = [k[:-2] for k in answers] + [n + b"\x00\x00" for n in nodes]
        for hkey in keys:
            records.pop(hkey, None)  # came and went since the base: in neither
            gone.discard(hkey)
        slots = writer.records(self._buf, self._runs, self._last)
        records.update(slots)
        self.written = len(slots)
        for hkey, off in slots:
            self._slots.put(hkey, off)
        for hkey in keys:  # came and went: the table keeps it, as a tombstone (read: none)
            if hkey not in records and hkey in self._slots:
                node = hkey.endswith(b"\x00\x00")
                self._slots.put(hkey, writer._record(
                    hkey, L.KIND_NODE if node else L.KIND_ANSWER,
                    L.NODE.pack(0, 0, 0, 0, 0) if node else b"\x00"))
        gone.update(k[:-2] for k in gone_answers)
        gone.update(n + b"\x00\x00" for n in gone_nodes)
        index = zone.denial
        if index is not None:
            table = self._denial
            for key, base in denial.items():
                lkey = key if index.nsec3 else _ckey(key)
                if key in index.pieces:
                    table[key] = (lkey, writer.piece(key))
                    self.written += 1
                elif base is not None:
                    table[key] = (lkey, 0)
                else:  # came and went since the base: the base has none either
                    table.pop(key, None)
        self._end = len(self._buf)
        return writer.finish(self._slots, dict(self._denial.values()))

    def delta(self) -> Delta:
        """What the overlay holds now, as the cumulative `Delta` (answer keys with class)."""
        live = [k for k in self._records if k not in self._gone]
        nodes = tuple(k[:-2] for k in live if k.endswith(b"\x00\x00"))
        answers = tuple(k + b"\x00\x01" for k in live if not k.endswith(b"\x00\x00"))
        gone_nodes = tuple(k[:-2] for k in self._gone if k.endswith(b"\x00\x00"))
        gone_answers = tuple(k + b"\x00\x01" for k in self._gone if not k.endswith(b"\x00\x00"))
        return Delta(self.base_revision, answers, gone_answers, nodes, gone_nodes,
                     tuple(k for k, (_, off) in self._denial.items() if off),
                     tuple(lkey for lkey, off in self._denial.values() if not off))

    def rebuilt(self, zone: CompiledZone, answers: dict[bytes, bool], nodes: dict[bytes, bool],
                denial: dict[Any, Any]) -> tuple[GrowingOverlay, bytes]:
        """A new region holding only the live records of everything changed since the base."""
        fresh = GrowingOverlay(zone, self.base_revision, 2 * self._limit)
        data = fresh.step(zone, answers, nodes, denial)
        fresh._fresh_end = fresh._end
        return fresh, data


def _ref(payload: bytes) -> int:
    """The referral offset of a node record's payload (0: none)."""
    return L.NODE.unpack_from(payload)[4]  # type: ignore[no-any-return]


def _ckey(key: tuple[bytes, ...]) -> bytes:
    """The layout (canonical) key of an NSEC chain key (`proofs.wire_key`: labels right to
    left)."""
    return L.canonical_key(b"".join(bytes((len(label),)) + label for label in reversed(key))
                           + b"\x00")
