"""Full images streamed into their file (`node.image.fullimage`): the same bytes, bounded memory.

Issue 10 (load time, 1M names): the forked image child rendered the whole
image in memory (every answer as an `Entry`, the image in a bytearray, then
a copy of it as bytes) before writing it: 2-3 GB at 1M names. It now renders
into the file from a lean compile. The layout must not change by one octet:
readers, overlays and the flood's paths read these files. Unsigned images are
compared with digests of the images `build_image` made before the change
(signatures are random, so signed images are compared with the in-process
`ImageWriter`, kept as the reference, in the same process).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tracemalloc
from pathlib import Path

import pytest

from node.image import build_image
from node.image import layout as L
from node.image import overlay as overlay_mod
from node.image.builder import ImageWriter
from node.image.fullimage import FullWriter, lean_compile, write_full
from node.image.overlay import ImageBuilder
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE
from tests.unit.server.signed_zone import ZONE, signed_snapshot

VARIED = """
$TTL 3600
@            SOA   ns1 hostmaster 42 7200 3600 604800 300
@            NS    ns1
@            NS    ns2.other.net.
@            MX    10 mail
@            MX    20 mx.sub
@            TXT   "apex"
ns1          A     192.0.2.1
ns1          AAAA  2001:db8::1
mail         A     192.0.2.2
mail         AAAA  2001:db8::2
_sip._udp    SRV   10 5 5060 sip
sip          A     192.0.2.40
www          CNAME web
web          A     192.0.2.3
chain        CNAME www
*.wild       TXT   "wildcard"
*.wild       A     192.0.2.7
*.wild       MX    5 mail
*            A     192.0.2.77
x.*.odd      A     192.0.2.78
a.b.c.ent    A     192.0.2.5
sub          NS    ns.sub
sub          NS    ns.other.net.
sub          DS    12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899
ns.sub       A     192.0.2.9
mx.sub       A     192.0.2.11
deep.x.y     NS    ns.deep.x.y
ns.deep.x.y  A     192.0.2.10
redir        DNAME target.example.
below.redir  A     192.0.2.12
""" + "".join(f'big          TXT   "{i:03d}{"x" * 200}"\n' for i in range(60)) + "".join(
    f"many         A     198.51.100.{i}\n" for i in range(1, 120)) + "".join(
    f"h{i}          A     203.0.113.{i % 250}\nh{i}          TXT   \"t{i}\"\n" for i in range(300))

ROOT = """
$TTL 86400
@             SOA   a.root-servers.net. nstld.verisign-grs.com. 2024010101 1800 900 604800 86400
@             NS    a.root-servers.net.
@             TXT   "root"
net           NS    a.gtld-servers.net.
a.gtld-servers.net. A 192.5.6.30
"""

# sha256 of `build_image`'s bytes since each name's answer records follow its node record
# (session 14: one pass renders both; before, f4ec506 to cd60b78, every node record came
# first, then the answers in compile order: the same records, other offsets)
GOLDEN = {
    "example": "2f4712f52b51f0fbf047fe6964f7c46f671e966b805a1395cc8b5f5048c21db4",
    "signed-zone-text": "80e46016a41fa1784bdbf45a789e037d90d2b8c11c56b3d8c16da43ee6680619",
    "varied": "69422e578a85ae76383564cf7ff79be13abd15bb07b451f919712c2f616c25e7",
    "root": "596bd5d59ac95e1d104b364d53c427c69382a6019e44ef7a532c9a45c4506b12",
}
# `_content` of `build_image` on main before the streamed render (f4ec506) and before the
# records were reordered (cd60b78): what a reader can see, whatever the offsets
CONTENT = {
    "example": "bfe7df75d46b685029f802d5cd6831e62b1177f846d44d01c7f6143a6fd83b0a",
    "signed-zone-text": "c94821e3ec5d105522862fe8f382947f987b74b75fd1086410cf03047837b7b1",
    "varied": "610c61542a82c7345081503101ff2517d064d14015f542b4a9a296c3c80f5386",
    "root": "5e0704c637174ef33e70e11d5eacebc21bc26be1950011e766b5c7b740b918d3",
}
TEXTS = {"example": (EXAMPLE, "example."), "signed-zone-text": (ZONE, "example."),
         "varied": (VARIED, "example."), "root": (ROOT, ".")}


def _streamed(snap: ZoneSnapshot) -> bytes:
    f = io.BytesIO()
    size = write_full(snap, f)
    data = f.getvalue()
    assert size == len(data)
    return data


def _variants(buf: bytes, off: int) -> tuple[tuple[int | bytes, ...], ...]:
    out = []
    at = off + 1
    for _ in range(buf[off]):
        flags, an, ns, ar, size = L.VARIANT.unpack_from(buf, at)
        at += L.VARIANT.size
        out.append((flags, an, ns, ar, buf[at:at + size]))
        at += size
    return tuple(out)


def _types(buf: bytes, at: int, count: int) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for _ in range(count):
        rdtype, rrs, rr_off, sigs, tgts, sig_off, tgt_off = L.TYPE.unpack_from(buf, at)
        at += L.TYPE.size
        names: list[bytes] = []
        if rdtype == L.RRSIG and tgts == 1:  # indirect: the TTL, then offsets of RRs
            refs = (L.U32.unpack_from(buf, rr_off + 4 + 4 * j)[0] for j in range(rrs))
            run: tuple[bytes, ...] = (buf[rr_off:rr_off + 4],
                                      *(L.tails_at(buf, r, 1)[0] for r in refs))
        else:
            run = L.tails_at(buf, rr_off, rrs) if rrs else ()
            o = tgt_off
            for _ in range(tgts if rdtype != L.RRSIG else 0):
                names.append(buf[o + 1:o + 1 + buf[o]])
                o += 1 + buf[o]
        out.append((rdtype, run, L.tails_at(buf, sig_off, sigs) if sigs else (), names))
    return out


def _content(buf: bytes) -> str:
    """A digest of what readers see in an unsigned image, not where it lies: the header's
    values but offsets, the negative SOA runs, and each record reached by the hash table
    with its runs, targets and variants read where it points."""
    f = L.HEADER.unpack_from(buf)  # (not read_header: `as_4` is layout 4)
    records = []
    for i in range(f[7]):
        tag, off = L.SLOT.unpack_from(buf, f[6] + i * L.SLOT.size)
        if not tag:
            continue
        size = L.U16.unpack_from(buf, off)[0]
        key, kind, at = buf[off + 2:off + 2 + size], buf[off + 2 + size], off + 3 + size
        if kind == L.KIND_ANSWER:
            records.append((key, kind, _variants(buf, at)))
            continue
        flags, count, denial, wdenial, ref = L.NODE.unpack_from(buf, at)
        records.append((key, kind, (flags, denial, wdenial, _variants(buf, ref) if ref else (),
                                    tuple(_types(buf, at + L.NODE.size, count)))))
    records.sort()
    head = (f[0], f[1], f[2], f[3], f[4], buf[L.HEADER.size:L.HEADER.size + f[5]],
            L.tails_at(buf, f[10], f[11]), L.tails_at(buf, f[12], f[13]), f[9], f[14], f[17],
            f[18])
    return hashlib.sha256(repr((head, records)).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_unsigned_images_are_the_bytes_of_before(name: str) -> None:
    """The streamed image is the in-process one, byte for byte; both hold what the images
    before the reordered records held (`CONTENT`). Layout 5 changed signed images only:
    an unsigned one is layout 4's bytes but for the version (`GOLDEN`: layout 4's)."""
    text, origin = TEXTS[name]
    snap = snapshot_from_text(text, origin, revision=7)
    data = _streamed(snap)
    assert data == build_image(snap)
    assert L.HEADER.unpack_from(data)[1] == L.LAYOUT_VERSION == 5
    as_4 = data[:8] + L.U16.pack(4) + data[10:]
    assert hashlib.sha256(as_4).hexdigest() == GOLDEN[name]
    assert _content(as_4) == CONTENT[name]


@pytest.mark.parametrize("mode", ["nsec", "nsec3", "nsec3-salt-optout"])
@pytest.mark.parametrize("name", ["example", "signed-zone-text", "varied"])
def test_signed_images_are_the_in_process_bytes(mode: str, name: str) -> None:
    snap = signed_snapshot(mode, text=TEXTS[name][0])
    assert _streamed(snap) == ImageWriter(CompiledZone.build(snap)).image()


def _zone(n: int = 3000) -> ZoneSnapshot:
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\nhost{k} TXT \"t{k}\"\n" for k in range(n))
    return snapshot_from_text(EXAMPLE + hosts, "example.", revision=1)


class _Recorder(io.BytesIO):
    """A file that remembers how far it was written before each seek back to the header."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.largest = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        self.largest = max(self.largest, len(data))
        return super().write(data)


def test_the_forked_render_writes_as_it_renders(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """The render the builder hands its child writes the image piece by piece, none of them
    near the image's size (before: `render()` returned the whole image as bytes)."""
    handed = []

    class NoFork:
        def __init__(self, render: object, path: Path) -> None:
            handed.append(render)
            raise OSError("no fork in this test")  # the builder then builds in-process

    monkeypatch.setattr(overlay_mod, "ImageChild", NoFork)
    snap = _zone()
    ImageBuilder(fork=True).write(snap, tmp_path)
    f = _Recorder()
    size = handed[0](f)
    data = f.getvalue()
    assert size == len(data) == len(build_image(snap))
    assert f.writes > 1000
    assert f.largest < size // 2  # the hash table, the largest piece (a quarter here)


def test_the_render_holds_far_less_than_the_image(tmp_path: Path) -> None:
    """Beyond the lean compile, the streamed render holds the hash table's array, the
    records' tags, the names in canonical order and a bounded memo of RR tails; the
    in-memory render held several times the image (every answer rendered, the buffer,
    its copy)."""
    snap = _zone()
    zone = lean_compile(snap)
    with open(tmp_path / "z.img", "wb", buffering=1 << 16) as f:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            size = FullWriter(zone, f).write()
            streamed = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        in_memory = len(ImageWriter(CompiledZone.build(snap)).image())
        whole = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert in_memory == size == (tmp_path / "z.img").stat().st_size
    assert whole > 3 * size  # what it replaces (a check of the measure)
    assert streamed < whole // 3, (streamed, whole, size)


@pytest.mark.parametrize("fault", ["enospc", "killed"])
def test_a_child_that_fails_mid_write_publishes_no_partial_image(
        fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The child now writes as it renders: a write error (a full disk) or its death after
    part of the image (the records, no hash table, no header) is in its temp file must
    leave that file unpublished and removed; the image is then built in-process."""
    import errno
    import os
    import signal

    from node.image import fullimage

    def failing_hash(self: FullWriter) -> tuple[int, int]:
        self.f.flush()  # part of the image is in the temp file
        assert os.fstat(self.f.fileno()).st_size > 0
        if fault == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fullimage.FullWriter, "_hash", failing_hash)  # inherited by the fork
    snap = _zone(300)
    published = []  # when the failure is reported (before the in-process build): any file?
    emit = overlay_mod.emit
    monkeypatch.setattr(overlay_mod, "emit", lambda *a, **k: (
        published.append(sorted(p.name for p in tmp_path.iterdir())), emit(*a, **k)))
    with caplog.at_level(logging.INFO, logger="node.events"):
        path, base = ImageBuilder(fork=True).write(snap, tmp_path)
    assert base is None
    (error,) = [e["error"] for e in (json.loads(r.message) for r in caplog.records
                                     if r.name == "node.events")
                if e["name"] == "SERVING_IMAGE_FORK_FAILED"]
    assert {"enospc": "No space left", "killed": "signal 9"}[fault] in str(error)
    assert published == [[]]  # neither the partial image nor its temp file
    assert path.read_bytes() == build_image(snap)  # the in-process image, whole
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("mode", [None, "nsec3"])
def test_an_empty_rrset_is_the_in_process_answer(mode: str | None) -> None:
    """A stored RRset with no records decodes to an empty RRset (`decode.rrset_from_json`
    takes `"rdata": []`): its answer has no RR, so no pointer to the question either
    (the direct render wrote `c0 0c` with a count of 0: a malformed answer)."""
    import dataclasses
    from types import MappingProxyType

    import dns.name
    import dns.rrset

    snap = (snapshot_from_text(EXAMPLE, "example.", revision=1) if mode is None
            else signed_snapshot(mode, text=EXAMPLE))
    nodes = dict(snap.nodes)
    owner = dns.name.from_text("empty.example.")
    nodes[owner] = MappingProxyType({16: dns.rrset.RRset(owner, 1, 16)})  # TXT, no records
    snap = dataclasses.replace(snap, nodes=nodes)
    assert _streamed(snap) == ImageWriter(CompiledZone.build(snap)).image()


def test_canonical_keys_from_the_parents_are_layouts() -> None:
    """The full render's sort keys (each made from its parent's) are `canonical_key`'s,
    escapes of 0x00 and 0x01 included, and sort names as it does."""
    from node.image.fullimage import canonical_keys

    labels = [b"a", b"\x00", b"\x01", b"a\x00b", b"\x01\x00", b"zz", b"-", b"\xff"]
    names = [b"\x00"]
    for first in labels:
        names.append(bytes((len(first),)) + first + b"\x00")
        for second in labels:
            names.append(bytes((len(second),)) + second + bytes((len(first),)) + first + b"\x00")
    key = canonical_keys()
    assert [key(n) for n in names] == [L.canonical_key(n) for n in names]
    assert sorted(names, key=canonical_keys()) == sorted(names, key=L.canonical_key)


ROOT_DNAME = """$TTL 300
.       SOA   ns. h. 1 7200 3600 604800 300
.       NS    ns.
.       DNAME other.invalid.
ns.     A     192.0.2.1
a.      A     192.0.2.2
b.a.    TXT   "x"
"""


def test_a_dname_at_the_root_apex_is_the_in_process_image() -> None:
    """`CompiledZone._occluded` never looks at the root name (its walk stops above it): a
    DNAME at the root zone's apex hides no name's answers there, so the full render's
    canonical-order occlusion must not either (it hid them all: `a.` answered otherwise
    from a forked child's image than from the in-process one)."""
    snap = snapshot_from_text(ROOT_DNAME, ".", revision=3)
    assert _streamed(snap) == ImageWriter(CompiledZone.build(snap)).image()
