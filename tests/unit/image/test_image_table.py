"""`ZoneImage` files and `ImageTable`: mapping, validation, version swaps, held and removed
zones, and the answer cache's bounds (a flood of one-off names never evicts hot answers)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from node.errors import ValidationError
from node.image import ImageTable, ZoneImage, build_image, write_image
from node.image import layout as L
from node.server.responder import Responder
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.answercache import flood_keeps_hot
from tests.support.zones import EXAMPLE

ORIGIN = dns.name.from_text("example.com.")
OWIRE = ORIGIN.to_wire()


def _snap(revision: int = 1, serial: int = 2024010101) -> ZoneSnapshot:
    return snapshot_from_text(EXAMPLE, ORIGIN, serial=serial, revision=revision)


def _key(name: str, rdtype: int = dns.rdatatype.A) -> bytes:
    return dns.name.from_text(name).to_wire().lower() + rdtype.to_bytes(2, "big") + b"\x00\x01"


def _ask(responder: Responder, name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    out = responder.handle(q.to_wire(), ("127.0.0.1", 5300), "udp")
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


def test_write_image_maps_the_file(tmp_path: Path) -> None:
    path = write_image(_snap(revision=9), tmp_path)
    assert path.name == "example.com.2024010101.9.img"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    img = ZoneImage.open(path)
    assert (img.origin, img.serial, img.revision, img.signed) == (OWIRE, 2024010101, 9, False)
    assert img.size == path.stat().st_size
    table = ImageTable()
    table.install(img)
    resp = _ask(Responder(table), "WWW.Example.COM.")  # type: ignore[arg-type]
    assert resp.rcode() == dns.rcode.NOERROR
    assert [str(r.name) for r in resp.answer] == ["WWW.Example.COM.", "web.Example.COM."]


def test_bad_images_are_refused() -> None:
    buf = build_image(_snap())
    with pytest.raises(ValidationError, match="magic"):
        ZoneImage.from_bytes(b"X" + buf[1:])
    with pytest.raises(ValidationError, match="truncated"):
        ZoneImage.from_bytes(buf[:-1])
    with pytest.raises(ValidationError, match="layout"):
        ZoneImage.from_bytes(buf[:8] + b"\x63\x00" + buf[10:])
    with pytest.raises(ValidationError, match="short"):
        ZoneImage.from_bytes(buf[:20])


def test_canonical_key_orders_like_rfc4034() -> None:
    names = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
             "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.",
             "\\200.z.example."]
    wires = [dns.name.from_text(n).to_wire().lower() for n in names]
    assert sorted(wires, key=L.canonical_key) == sorted(
        wires, key=lambda w: dns.name.from_wire(w, 0)[0])
    assert L.canonical_key(b"\x01\x00\x00") < L.canonical_key(b"\x01\x01\x00")
    assert L.canonical_key(b"\x01a\x00") < L.canonical_key(b"\x02a\x00\x00")


def test_install_swaps_versions_and_ignores_older_ones() -> None:
    table = ImageTable()
    responder = Responder(table)  # type: ignore[arg-type]
    assert table.install(ZoneImage.from_bytes(build_image(_snap(revision=5, serial=5))))
    for _ in range(2):  # asked twice: the negative answer is cached
        assert _ask(responder, "nope.example.com.").authority[0][0].serial == 5
    assert table.install(ZoneImage.from_bytes(build_image(_snap(revision=6, serial=6))))
    assert _ask(responder, "nope.example.com.").authority[0][0].serial == 6
    assert not table.install(ZoneImage.from_bytes(build_image(_snap(revision=4, serial=4))))
    assert _ask(responder, "nope.example.com.").authority[0][0].serial == 6
    assert table.zones() == [OWIRE]


def test_hold_and_remove() -> None:
    table = ImageTable()
    responder = Responder(table)  # type: ignore[arg-type]
    table.install(ZoneImage.from_bytes(build_image(_snap())))
    _ask(responder, "www.example.com.")
    table.hold(OWIRE)
    assert table.held(OWIRE)
    assert _ask(responder, "www.example.com.").rcode() == dns.rcode.SERVFAIL
    assert table.find(_key("www.example.com.")[:-4]) is None
    table.install(ZoneImage.from_bytes(build_image(_snap(revision=2))))
    assert _ask(responder, "www.example.com.").rcode() == dns.rcode.NOERROR
    assert table.remove(OWIRE)
    assert _ask(responder, "www.example.com.").rcode() == dns.rcode.REFUSED
    assert not table.remove(OWIRE)


def test_flood_of_one_off_names_never_evicts_hot_answers() -> None:
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(_snap())))
    hot = [_key(n, t) for n in ("www.example.com.", "web.example.com.", "mail.example.com.")
           for t in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT)]
    hot = [k for k in hot if table.lookup(k, 0) is not None and k in table.caches[0]]
    assert len(hot) >= 3
    flood_keeps_hot(table, table.lookup, hot, _key, "example.com.")


def test_hot_segment_evicts_oldest_first() -> None:
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(_snap())))
    table.cache_max = 8  # hot segment: 6 entries
    owners = ["web", "mail", "ns1", "chain3", "sipsrv", "a.b.c", "mail", "web"]
    types = [dns.rdatatype.A] * 6 + [dns.rdatatype.AAAA, dns.rdatatype.TXT]
    keys = [_key(f"{o}.example.com.", t) for o, t in zip(owners, types, strict=True)]
    for k in keys:  # asked twice: once the segment is full, the second ask admits
        table.lookup(k, 0)
        table.lookup(k, 0)
    assert keys[0] not in table.caches[0] and keys[1] not in table.caches[0]
    assert all(k in table.caches[0] for k in keys[2:])


def test_ds_at_apex_is_answered_by_the_parent() -> None:
    child = snapshot_from_text("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n",
                               "sub.example.com.")
    table = ImageTable()
    responder = Responder(table)  # type: ignore[arg-type]
    table.install(ZoneImage.from_bytes(build_image(child)))
    for _ in range(2):  # no parent served: the child answers (and the answer is cached)
        resp = _ask(responder, "sub.example.com.", "DS")
        assert resp.authority[0].name == dns.name.from_text("sub.example.com.")
    assert _key("sub.example.com.", dns.rdatatype.DS) in table.caches[0]
    table.install(ZoneImage.from_bytes(build_image(_snap())))
    resp = _ask(responder, "sub.example.com.", "DS")
    assert resp.answer[0].rdtype == dns.rdatatype.DS
    assert _ask(responder, "ns.sub.example.com.").answer[0][0].address == "192.0.2.1"



def test_ds_at_apex_is_servfail_while_the_parent_is_held() -> None:
    """The DS RRset is the parent's: while the parent is held (a signed zone this node has
    not signed yet), DS at a served child's apex is SERVFAIL, as any of the parent's
    answers; the child answered it, an authoritative "no DS" for a signed delegation."""
    child = snapshot_from_text("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n",
                               "sub.example.com.")
    table = ImageTable()
    responder = Responder(table)  # type: ignore[arg-type]
    table.install(ZoneImage.from_bytes(build_image(child)))
    table.install(ZoneImage.from_bytes(build_image(_snap())))
    table.hold(OWIRE)
    for _ in range(3):  # and so it stays once cached
        assert _ask(responder, "sub.example.com.", "DS").rcode() == dns.rcode.SERVFAIL
    assert _ask(responder, "sub.example.com.", "SOA").rcode() == dns.rcode.NOERROR
    table.install(ZoneImage.from_bytes(build_image(_snap(revision=2))))
    assert _ask(responder, "sub.example.com.", "DS").answer[0].rdtype == dns.rdatatype.DS

def test_a_mapped_image_holds_no_python_objects_per_rrset(tmp_path: Path) -> None:
    lines = ["@ 300 SOA ns h 1 2 3 4 5", "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    lines += [f"h{i} 300 A 192.0.2.{i % 250}\nh{i} 300 TXT \"t{i}\"" for i in range(3000)]
    snap = snapshot_from_text("\n".join(lines) + "\n", "big.example.")
    path = write_image(snap, tmp_path)
    table = ImageTable()  # fixed-size parts (the doorkeepers' bitmaps) allocated before
    tracemalloc.start()
    try:
        img = ZoneImage.open(path)
        table.install(img)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert img.size > 200_000  # 6,000 RRsets in the image...
    assert held < 16_000  # ...and a few kB of Python objects to serve them
