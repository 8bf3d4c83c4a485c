"""The NSEC3 flood shortcut (`enclosers.Shortcut.nsec3`) cuts the cover's piece out of the
image and writes it between a head and a wildcard tail cached per question shape: its
answers equal `ZoneTable`'s byte for byte for every origin length (a TLD, a deep origin,
one that leaves a single octet for the label), salt and iterations, opt-out, labels of
every length up to the 255-octet limit, labels that are NSEC3 owner labels, NSEC3 records
with two RRSIGs (a second ZSK), tiny chains where the cover is the apex's NSEC3 or the
wildcard's proof, and overlays (which take the merged path)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

import dns.name
import dns.rdatatype
import pytest

from node.dnssec.denial import DenialParams
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.image import ImageTable, ZoneImage, build_image, enclosers
from node.image import layout as L
from node.image.overlay import ImageBuilder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.image.test_image_overlay import versions as overlay_versions

T = dns.rdatatype
NOW = 1_780_000_000
PARAMS = {
    "plain": DenialParams(),
    "salt-iterations": DenialParams(iterations=3, salt=bytes.fromhex("aabbccdd")),
    "opt-out": DenialParams(iterations=1, salt=bytes.fromhex("01"), opt_out=True),
}
BODY = """
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 604800 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
www AAAA 2001:db8::2
mail MX 10 www
a.b.ent TXT "below an empty non-terminal"
sub NS ns.other.net.
secure NS ns.secure
secure DS 12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899
ns.secure A 192.0.2.9
"""
LONG = ".".join(["x" * 63] * 3) + ".example."  # 202 octets: labels up to 52 below it
ORIGINS = ["tld.", "example.", "a.b.c.d.example.", LONG]


def _sign(origin: str, params: DenialParams, text: str = BODY, zsks: int = 1,
          revision: int = 1) -> ZoneSnapshot:
    name = dns.name.from_text(origin)
    now = datetime.fromtimestamp(NOW, UTC)
    keys = []
    for role in ("ksk", *["zsk"] * zsks):
        key, pem = new_key(name, 13, role, now=now)  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    plain = snapshot_from_text(text, origin, revision=revision)
    res = ZoneSigner(name, SigningParams(denial=params), keys).sign(plain.nodes, None, NOW)
    return dataclasses.replace(plain, nodes=res.nodes, signed=True)


def _wire(name: dns.name.Name) -> bytes:
    return name.to_wire().lower()  # type: ignore[union-attr]


def _keys(snap: ZoneSnapshot, n: int, seed: int) -> list[bytes]:
    """Keys one label below the apex: random labels of every length that fits, the NSEC3
    owner labels themselves (and same-length twins), names that exist, QTYPEs and class."""
    rng = random.Random(seed)
    origin = _wire(snap.origin)
    room = min(63, 255 - len(origin) - 1)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-"
    out = []
    for i in range(n):
        size = 1 + i % room if i % 4 else rng.randrange(1, room + 1)
        label = bytes(rng.choices(alphabet, k=size))
        qtype = (T.A, T.A, T.AAAA, T.MX, T.TXT, T.NSEC3, T.ANY, 4711)[i % 8]
        out.append(bytes((size,)) + label + origin + qtype.to_bytes(2, "big") + b"\x00\x01")
    owners = [_wire(name) for name, types in snap.nodes.items() if T.NSEC3 in types]
    for o in owners:
        out.append(o + b"\x00\x01\x00\x01")
        out.append(o[:1] + bytes(reversed(o[1 : 1 + o[0]])) + o[1 + o[0] :] + b"\x00\x01\x00\x01")
    for name in snap.nodes:
        out.append(_wire(name) + b"\x00\x01\x00\x01")
    out.append(b"\x02zz" + origin + b"\x00\x01\x00\x03")  # class CH
    out.append(b"\x02zz" + origin + b"\x00\xfc\x00\x01")  # AXFR
    return out


def _same(snap: ZoneSnapshot, keys: list[bytes], table: ImageTable | None = None
          ) -> ImageTable:
    old = ZoneTable()
    old.publish(snap)
    if table is None:
        table = ImageTable()
        table.install(ZoneImage.from_bytes(build_image(snap)))
    for key in keys + keys:  # the second round: the shortcut learned, answers admitted
        for do in (1, 0):
            assert table.lookup(key, do) == old.lookup(key, do), \
                f"{dns.name.from_wire(key, 0)[0]} {key[-4:].hex()} DO={do}"
    return table


@pytest.mark.parametrize("mode", sorted(PARAMS))
@pytest.mark.parametrize("origin", ORIGINS, ids=["tld", "example", "deep", "long"])
def test_nsec3_shortcut_answers_equal_the_general_path(origin: str, mode: str) -> None:
    snap = _sign(origin, PARAMS[mode])
    table = _same(snap, _keys(snap, 300, seed=len(origin)))
    short = table.shortcuts[1].get(_wire(snap.origin))
    assert short is not None and short.__name__ == "nsec3"
    assert any(shape[3] for shape in short.__self__._shapes.values())  # type: ignore


def test_two_rrsigs_per_nsec3_take_the_general_render() -> None:
    """A second ZSK: every NSEC3 piece has three RRs, outside the cut-out's shape."""
    snap = _sign("example.", PARAMS["plain"], zsks=2)
    table = _same(snap, _keys(snap, 200, seed=2))
    short = table.shortcuts[1][_wire(snap.origin)]
    assert short.__name__ == "nsec3"
    assert len(short.__self__.img.piece(0)[1]) == 3  # type: ignore[attr-defined]
    assert not any(shape[3] for shape in short.__self__._shapes.values())  # type: ignore


def test_tiny_chains_where_the_cover_is_the_match_or_the_wildcards_proof() -> None:
    """Two or three NSEC3 records: most names are covered by the apex's NSEC3 or by the
    wildcard's proof, and for some origins `*.apex` is covered by the apex's own NSEC3
    (no separate wildcard piece)."""
    same = cut = 0
    for i in range(12):
        origin = f"z{i}.test."
        snap = _sign(origin, PARAMS["plain"], text="@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\n"
                     "ns 300 A 192.0.2.1\n" + ("www 300 A 192.0.2.2\n" if i % 2 else ""))
        table = _same(snap, _keys(snap, 60, seed=i))
        sc = table.shortcuts[1][_wire(snap.origin)].__self__  # type: ignore[attr-defined]
        same += sc.node[2] == sc.node[3]
        cut += any(shape[3] for shape in sc._shapes.values())  # a cover was cut out
    assert same, "no origin whose wildcard is covered by the apex's NSEC3: widen the search"
    assert cut, "no cover cut out of a tiny chain: widen the search"


def test_question_shapes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enclosers, "SHAPES_MAX", 3)
    monkeypatch.setattr(enclosers, "WILDS_MAX", 1)
    snap = _sign("example.", PARAMS["salt-iterations"])
    table = _same(snap, _keys(snap, 300, seed=5))
    sc = table.shortcuts[1][_wire(snap.origin)].__self__  # type: ignore[attr-defined]
    assert len(sc._shapes) == 3
    assert all(len(shape[3]) <= 1 for shape in sc._shapes.values())


def test_a_flood_of_every_length_and_five_qtypes_renders_each_head_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A random-subdomain flood asks labels of every length with a few QTYPEs: 63 lengths
    times five QTYPEs below `example.` are 315 questions of distinct (length, QTYPE), more
    than `SHAPES_MAX`. The head depends on the length only, so each is rendered once;
    keyed by (length, QTYPE), the shapes past the bound were rendered again for every
    query (twice the CPU of a cached one), an attacker's choice with 256 odd QTYPEs."""
    snap = _sign("example.", PARAMS["plain"])
    origin = _wire(snap.origin)
    rng = random.Random(7)
    keys = [bytes((n,)) + bytes(rng.choices(b"klmnopqrstuv", k=n)) + origin
            + qtype.to_bytes(2, "big") + b"\x00\x01"
            for n in range(1, 64) for qtype in (T.A, T.AAAA, T.MX, T.TXT, T.ANY)]
    table = _same(snap, keys)
    rendered: list[bytes] = []
    shape = enclosers.Shortcut._shape
    monkeypatch.setattr(enclosers.Shortcut, "_shape",
                        lambda self, *args: rendered.append(args) or shape(self, *args))
    for key in keys:  # the flood goes on: every head is known
        table.lookup(key, 1)
    assert table.shortcuts[1][origin].__name__ == "nsec3"
    assert not rendered, f"{len(rendered)} heads rendered again"


@pytest.mark.parametrize("mode", ["nsec3", "nsec3-salt-optout"])
def test_overlay_floods_answer_alike(mode: str) -> None:
    """Overlays on the full image: their shortcut is the merged one (`overlay`)."""
    builder = ImageBuilder(max_share=1.0)  # every later version an overlay
    base: ZoneImage | None = None
    for snap in overlay_versions(mode)[:3]:
        data, base_revision = builder.build(snap)
        image = ZoneImage.from_bytes(data, base=None if base_revision is None else base)
        if base_revision is None:
            base = image
        table = ImageTable()
        table.install(image)
        _same(snap, _keys(snap, 150, seed=snap.serial), table)
        kind = table.shortcuts[1][_wire(snap.origin)].__name__
        assert kind == ("overlay" if image.overlay else "nsec3")


def test_cuts_only_for_the_shape_the_shortcut_writes() -> None:
    """`L.nsec3_cut`: zeros for any piece but a hash label below the origin with an NSEC3
    and one RRSIG of at most `L.CUT_MAX` octets (so no pointer after them passes 0x3FFF)."""
    origin = b"\x07example\x00"
    owner = b"\x20" + b"a" * 32 + origin
    nsec3 = b"\x00\x32\x00\x01\x00\x00\x01\x2c\x00\x02\x01\x00"
    sig = b"\x00\x2e\x00\x01\x00\x00\x01\x2c\x00\x01\x00"
    assert L.CUT.unpack(L.nsec3_cut(owner, (nsec3, sig), origin, 100)) == (101, 12, 23)
    zero = (0, 0, 0)
    assert L.CUT.unpack(L.nsec3_cut(owner, (nsec3, sig, sig), origin, 100)) == zero
    assert L.CUT.unpack(L.nsec3_cut(owner, (sig, nsec3), origin, 100)) == zero
    assert L.CUT.unpack(L.nsec3_cut(b"\x03abc" + origin, (nsec3, sig), origin, 100)) == zero
    assert L.CUT.unpack(L.nsec3_cut(owner, (nsec3, sig), b"\x03org\x00", 100)) == zero
    big = nsec3 + b"\x00" * (L.CUT_MAX - len(nsec3) - len(sig) + 1)
    assert L.CUT.unpack(L.nsec3_cut(owner, (big, sig), origin, 100)) == zero


@pytest.mark.parametrize("params", sorted(PARAMS))
def test_each_sort_prefix_is_followed_by_its_cut(params: str) -> None:
    """Layout 4: a full NSEC3 image's sort prefixes and cuts are 16-octet pairs from a
    16-aligned offset (each in one cache line), entry i's prefix the first 8 octets of its
    hash and its cut `L.nsec3_cut` of its piece; `img.prefix` sees the prefixes only."""
    img = ZoneImage.from_bytes(build_image(_sign("example.", PARAMS[params])))
    assert img.count > 3 and img.prefix is not None and len(img.prefix) == img.count
    assert (img._cuts - L.PREFIX_LEN) % 16 == 0
    cuts = 0
    for i in range(img.count):
        key = img._key_at(i)
        assert img.prefix[i] == int.from_bytes(key[:8], "big")
        assert L.PREFIX.unpack_from(img._buf, img._cuts - L.PREFIX_LEN + L.NSEC3_PAIR * i)[0] \
            == img.prefix[i]
        owner, tails = img.piece(i)
        want = L.nsec3_cut(owner, tails, img.origin, img._off_at(i))
        assert bytes(img._buf[img._cuts + 16 * i : img._cuts + 16 * i + 8]) == want
        cuts += want != bytes(8)
    assert cuts  # most pieces have the shape the shortcut cuts
