"""The zone image layout: structs, flags and key encodings shared by builder and reader.

Pure, no I/O and no dnspython: the serving side imports this module, the
builder (`node.image.builder`, worker processes only) writes what it
describes. `docs/image-format.md` is the prose version; every number here
is part of the format (bump `LAYOUT_VERSION` when one changes).

All integers are little-endian. Offsets are absolute from the start of the
image (u32: an image is at most 4 GiB).
"""

from __future__ import annotations

import mmap
import struct
import zlib

from node.errors import ValidationError

MAGIC = b"DNSCIMG\x00"
LAYOUT_VERSION = 5  # 5: a signed image's plain answers read from their runs (`RUNS_ANSWER`)
# (4: every answer stored as bodies; 3: an NSEC3 sort prefix and its cut in two arrays)

# header flags
F_SIGNED = 1  # DO=1 answers differ from DO=0 answers (DNSSEC data present)
F_NSEC3 = 2  # the denial table holds NSEC3 hashes (else NSEC canonical keys)
F_OVERLAY = 4  # an overlay: read through to the full image of revision `base`

# magic, version, flags, serial, revision, origin length,
# hash (offset, slots), denial (offset, count), neg soa (offset, count),
# neg soa signed (offset, count), nsec3 iterations, salt length, salt offset, total size,
# records in the hash table, base revision (overlays: the full image they apply to)
HEADER = struct.Struct("<8sHHIQB3xIIIIIIIIIBxxxIIIQ")

# hash table slot: tag (crc32 of the key, never 0 in a used slot), record offset
SLOT = struct.Struct("<II")

# record: key length, then key (lowercased owner wire + qtype big-endian), then kind
REC_HEAD = struct.Struct("<H")
KIND_ANSWER = 1
KIND_NODE = 2

# an answer variant: flags (QR, AA, rcode), an, ns, ar counts, body length; body follows
VARIANT = struct.Struct("<HHHHI")

# An answer record's count octet of RUNS_ANSWER (signed full images only, layout 5) instead
# of a variant count: the answer is its type's RR run after pointers to the question, the
# DO=1 one the same followed by the type's RRSIG run, each RR after a pointer too; the
# record holds where the node's runs are (`RUNS`), not the bodies: a signed answer without
# an additional section stored its RRs three times and its RRSIGs twice (runs, DO=0 and
# DO=1 bodies), ~40% of a signed image's answer octets (issue 10, memory).
RUNS_ANSWER = 3
# RR run (offset, octets, RR count), RRSIG run (offset, octets, RR count)
RUNS = struct.Struct("<IIHIIH")
POSITIVE = 0x8400  # QR | AA (node.server.render's flags)
SELF = b"\xc0\x0c"  # an owner equal to the question: a pointer to it

# node: flags, type count, denial index (the NSEC/NSEC3 matching the name), wildcard
# denial index (the one covering or matching `*.name`), referral variants offset (0: none)
NODE = struct.Struct("<BxHIII")
N_NAME = 1  # owns RRsets
N_BELOW = 2  # has names strictly below it (an empty non-terminal when not N_NAME)
N_CUT = 4  # a zone cut (NS, not the apex)
N_DNAME = 8  # owns a DNAME: names below it are answered by synthesis (RFC 6672)
NO_DENIAL = 0xFFFFFFFF
BY_KEY = 0xFFFFFFFE  # overlays: find the denial record by the name's key (hash or canonical)

# node type entry: type, RR count, RR run offset, RRSIG count, target count,
# RRSIG run offset, target list offset. For type RRSIG the RR run is indirect:
# u32 TTL, then `count` u32 offsets of RRSIG tails (see docs).
TYPE = struct.Struct("<HHIHHII")

# RR types the answer logic looks at
A = 1
NS = 2
CNAME = 5
DNAME = 39
MX = 15
AAAA = 28
SRV = 33
DS = 43
RRSIG = 46
ANY = 255

# denial table: NSEC3: `count` sorted 20-octet hashes, then `count` u32 piece offsets,
# then the bucket index: bits k (u32), then 2**k + 1 u32 start positions (see `buckets`),
# then (full images only, layout 4), 8-aligned, `count` pairs in the same order: a u64 sort
# prefix (the hash's first 8 octets, big-endian) and its cut (`CUT`, see `nsec3_cut`);
# NSEC: `count` u32 offsets of key records (u16 length, canonical key, u32 piece offset),
# then, 8-aligned, `count` u64 sort prefixes (see `sort_prefix`) in the same order
HASH_LEN = 20
U32 = struct.Struct("<I")
U16 = struct.Struct("<H")
PREFIX_LEN = 8
PREFIX = struct.Struct("<Q")
NSEC3_PAIR = 16  # NSEC3 (layout 4): a sort prefix, then its cut (one cache line serves both)
# an NSEC3 piece's cut: offset of its owner's first label (32 octets + its length octet),
# the length of its first RR (the NSEC3), of both RRs (the NSEC3 and one RRSIG); all 0 when
# the piece is not of that shape
CUT = struct.Struct("<IHH")
CUT_MAX = 0x2000  # the RRs of a cut piece (an NSEC3 with every type: about 8.8 KB; + RRSIG)
NSEC3 = 50
HASH_LABEL = 33  # an NSEC3 owner's first label with its length octet (base32hex SHA-1)


def align8(off: int) -> int:
    return off + (-off % 8)


def align16(off: int) -> int:  # NSEC3 pairs: each within one 64-octet cache line
    return off + (-off % 16)


def sort_prefix(relative_key: bytes) -> int:
    """The u64 an NSEC entry is bisected by first: the first 8 octets of its canonical key
    after the origin's canonical key (which every key of the zone starts with), zero-padded,
    read big-endian. Non-decreasing in key order, so a bisect of the prefixes (in C) leaves
    only the entries of equal prefix to compare by whole key."""
    return int.from_bytes(relative_key[:PREFIX_LEN].ljust(PREFIX_LEN, b"\x00"), "big")


def nsec3_cut(owner: bytes, tails: tuple[bytes, ...] | list[bytes], origin: bytes,
              off: int) -> bytes:
    """The `CUT` of the NSEC3 piece at `off` (owner length, owner, RR count, RRs): the
    NSEC3 flood's answer copies the label and the two RRs out of the image around the
    pointers it writes (`node.image.enclosers`). Zeros unless the owner is a hash label
    directly below `origin` and the RRs are an NSEC3 then one RRSIG, together at most
    `CUT_MAX` octets (a pointer after them must stay below 0x4000)."""
    if (len(tails) != 2 or owner[0] != HASH_LABEL - 1 or owner[HASH_LABEL:] != origin
            or tails[0][:2] != NSEC3.to_bytes(2, "big")
            or len(tails[0]) + len(tails[1]) > CUT_MAX):
        return CUT.pack(0, 0, 0)
    return CUT.pack(off + 1, len(tails[0]), len(tails[0]) + len(tails[1]))


def tag(key: bytes) -> int:
    """The hash-table tag of a key: crc32, with 0 (the empty slot) mapped to 1."""
    return zlib.crc32(key) or 1


def canonical_key(wire: bytes) -> bytes:
    """An octet string whose bytewise order is RFC 4034 §6.1 canonical order of the
    lowercased wire names: labels right to left, each label with 0x00 and 0x01 escaped
    (as 0x01 0x00 and 0x01 0x01) and closed by 0x00."""
    labels = []
    i = 0
    ln = wire[0]
    while ln:
        labels.append(wire[i + 1 : i + 1 + ln])
        i += ln + 1
        ln = wire[i]
    out = bytearray()
    for label in reversed(labels):
        if b"\x00" in label or b"\x01" in label:
            label = label.replace(b"\x01", b"\x01\x01").replace(b"\x00", b"\x01\x00")
        out += label
        out.append(0)
    return bytes(out)


def tails_at(buf: bytes, off: int, count: int) -> tuple[bytes, ...]:
    """`count` RR tails (type, class, TTL, rdlength, rdata) stored back to back at `off`."""
    out = []
    for _ in range(count):
        end = off + 10 + (buf[off + 8] << 8 | buf[off + 9])
        out.append(buf[off:end])
        off = end
    return tuple(out)


def runs_variant(buf: bytes | mmap.mmap, off: int, do: int
                 ) -> tuple[int, int, int, int, bytes]:
    """The variant (flags, an, ns, ar, body) of a `RUNS_ANSWER` record whose `RUNS` is at
    `off`: the bytes a stored body would hold (`SELF` before each RR)."""
    rr_off, rr_len, rrs, sig_off, sig_len, sigs = RUNS.unpack_from(buf, off)
    body = SELF + (buf[rr_off:rr_off + rr_len] if rrs == 1
                   else SELF.join(tails_at(buf, rr_off, rrs)))
    if not do or not sigs:
        return POSITIVE, rrs, 0, 0, body
    return POSITIVE, rrs + sigs, 0, 0, body + SELF + (
        buf[sig_off:sig_off + sig_len] if sigs == 1 else SELF.join(tails_at(buf, sig_off, sigs)))


def run_length(tails: tuple[bytes, ...] | list[bytes]) -> int:
    return sum(len(t) for t in tails)


def bucket_bits(count: int) -> int:
    """Bits of the NSEC3 bucket index for a chain of `count` hashes (about 2 per bucket)."""
    return max(0, min(24, count.bit_length() - 1))


def buckets(hashes: list[bytes], bits: int) -> list[int]:
    """start[b] = the first position whose hash's top `bits` bits are >= b, for b in
    0..2**bits (the last one: `len(hashes)`); hashes sorted."""
    out = []
    i = 0
    n = len(hashes)
    shift = 32 - bits
    for b in range((1 << bits) + 1):
        while i < n and int.from_bytes(hashes[i][:4], "big") >> shift < b:
            i += 1
        out.append(i)
    return out


def read_header(buf: bytes | mmap.mmap) -> tuple[int, ...]:
    """The header's fields (`HEADER`), once its magic, layout version and size check."""
    if len(buf) < HEADER.size:
        raise ValidationError("zone image too short")
    fields = HEADER.unpack_from(buf, 0)
    magic, version, size = fields[0], fields[1], fields[17]
    end = fields[6] + fields[7] * SLOT.size  # the hash table's end
    if magic != MAGIC:
        raise ValidationError("not a zone image (bad magic)")
    if version != LAYOUT_VERSION:
        raise ValidationError(f"zone image layout {version}, expected {LAYOUT_VERSION}")
    if size != len(buf) or end > size:
        raise ValidationError(f"zone image truncated: {len(buf)} of {size} octets")
    return fields
