"""The image builder's lean base (issue 10, memory) writes the overlays a full base writes.

`ImageBuilder` keeps, of the last full image's compile, only what the next
overlays need to know about the base (which answer keys exist, the chain's
keys), and reads the rest from the base image itself. Whatever it keeps, each
overlay must be byte for byte the overlay a builder writes that kept the whole
compile (every rendered answer and denial piece: `_keep_all`), through the
forked full image (`compile_base`) and the in-process one alike; and the
overlay on its base must answer as a full compile of the version does.

The chain (unsigned, NSEC, NSEC3, NSEC3 with salt and opt-out): names added and
deleted (empty non-terminals made and gone), a wildcard added and removed,
delegations with glue added and removed, one over names of the base and a name
added since (the names below a cut that came or went, in the order a dict of the
names iterates: the order of the overlay's node records), an existing name's
data changed, the apex's MX target changed (an answer's additional section),
and, for NSEC3, a switch to other NSEC3 parameters (a new full base), followed
by more overlays.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from pathlib import Path

import pytest

from node.image import ImageTable, ZoneImage
from node.image import overlay as overlay_mod
from node.image.baseimage import IN_BASE, BaseImage
from node.image.basepieces import Hashes
from node.image.builder import ImageWriter
from node.image.overlay import ImageBuilder, from_image
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.image.test_image_differential import _keys
from tests.unit.image.test_overlay_growing import _full
from tests.unit.server.ixfr_versions import BASE, sign_versions
from tests.unit.server.signed_zone import ORIGIN

SUB = "a.sub A 192.0.2.61\nb.sub TXT \"b\"\nc.d.sub A 192.0.2.62\n"  # below a cut to come
STEPS: list[tuple[str, tuple[str, ...]]] = [  # (extra lines, dropped line prefixes)
    (SUB, ()),
    (SUB + "new1 A 192.0.2.41\n", ()),
    (SUB + "new1 A 192.0.2.41\nx.y.new2 A 192.0.2.42\n", ()),
    (SUB + "new1 A 192.0.2.41\nx.y.new2 A 192.0.2.42\n*.nw TXT \"new\"\n", ("web ",)),
    (SUB + "x.y.new2 A 192.0.2.42\n*.nw TXT \"new\"\nweb A 192.0.2.30\ne.sub A 192.0.2.64\n",
     ("web ", "a.b.c.ent")),
    (SUB + "x.y.new2 A 192.0.2.42\n*.nw TXT \"new\"\nweb A 192.0.2.30\nx NS ns.x\n"
     "ns.x A 192.0.2.43\nmail NS ns.other.net.\ne.sub A 192.0.2.64\nsub NS ns.sub\n"
     "ns.sub A 192.0.2.63\n", ("web ", "a.b.c.ent")),
    (SUB + "x.y.new2 A 192.0.2.42\nweb A 192.0.2.31\nns.x A 192.0.2.43\ne.sub A 192.0.2.64\n",
     ("web ", "a.b.c.ent", "*.wild")),
    (SUB + "web A 192.0.2.31\nns.x A 192.0.2.43\nmail2 A 192.0.2.50\n",
     ("web ", "*.wild", "@            MX")),
    (SUB + "web A 192.0.2.31\nmail2 A 192.0.2.50\n@ MX 10 mail2\nzzz A 192.0.2.51\n",
     ("web ", "*.wild", "@            MX")),
    (SUB + "web A 192.0.2.31\nmail2 A 192.0.2.52\n@ MX 10 mail2\n",
     ("web ", "*.wild", "@            MX", "big")),
]


def _plain(serial: int, extra: str, drops: tuple[str, ...]) -> ZoneSnapshot:
    text = BASE.replace("hostmaster 1 ", f"hostmaster {serial} ")
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(drops)) + "\n"
    return snapshot_from_text(text + extra, ORIGIN, revision=serial,
                              allow_transfer=["127.0.0.0/8"])


def versions(mode: str | None) -> list[ZoneSnapshot]:
    plains = [_plain(i, extra, drops) for i, (extra, drops) in enumerate(STEPS, start=1)]
    if mode != "nsec3":
        return sign_versions(plains, mode)
    # other NSEC3 parameters from the 6th version on: not an evolve, a new full base
    first, second = sign_versions(plains[:5], mode), sign_versions(plains[5:],
                                                                    "nsec3-salt-optout")
    changed = frozenset(plains[4].nodes.keys() | plains[5].nodes.keys())
    return [*first, dataclasses.replace(second[0], changed=changed), *second[1:]]


def _keep_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference builder: its base keeps the whole compile (nothing left to the image)."""
    monkeypatch.setattr(overlay_mod, "_lean", lambda zone, image: None)


def _reference(snaps: list[ZoneSnapshot], monkeypatch: pytest.MonkeyPatch
               ) -> list[tuple[bytes, int | None]]:
    with monkeypatch.context() as m:
        _keep_all(m)
        builder = ImageBuilder(max_share=1.0)
        return [builder.build(snap) for snap in snaps]


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3", "nsec3-salt-optout"])
def test_lean_base_overlays_are_the_full_base_ones(
        mode: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = versions(mode)
    want = _reference(snaps, monkeypatch)
    assert sum(base is None for _, base in want) == (2 if mode == "nsec3" else 1)
    local = ImageBuilder(max_share=1.0)
    forking = ImageBuilder(max_share=1.0, fork=True)
    base: ZoneImage | None = None
    for i, (snap, (data, base_revision)) in enumerate(zip(snaps, want, strict=True)):
        assert local.build(snap) == (data, base_revision), f"v{snap.serial} in-process"
        path, forked_base = forking.write(snap, tmp_path)
        assert forked_base == base_revision and path.read_bytes() == data, \
            f"v{snap.serial} forked"
        if base_revision is None:
            image = base = ZoneImage.from_bytes(data)
            continue
        assert base is not None
        image = ZoneImage.from_bytes(data, base=base)
        served = ImageTable()
        served.install(image)
        full = _full(snap)
        for key in _keys(snaps[max(0, i - 1) : i + 1], seed=i):
            for do in (0, 1):
                assert served.lookup(key, do) == full.lookup(key, do), \
                    f"v{snap.serial} {key!r} DO={do}"


def test_packed_hashes_act_as_the_sorted_list() -> None:
    """`Hashes` under what `DenialIndex` does to its keys: insort, bisect, delete, wrap."""
    rng = random.Random(7)
    want = sorted(rng.randbytes(20) for _ in range(50))
    got = Hashes(want)
    for _ in range(200):
        key = rng.randbytes(20) if rng.random() < 0.5 or not want else rng.choice(want)
        for keys in (want, got):
            i = bisect.bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                del keys[i]
            else:
                bisect.insort(keys, key)
        assert len(got) == len(want) and got[-1] == want[-1] and got[0] == want[0]
        assert bisect.bisect_right(got, key) == bisect.bisect_right(want, key)
    assert got == want and list(got) == want


def test_base_answers_act_as_the_dict_of_the_base() -> None:
    """`BaseAnswers` under what an evolve does to the answers (pop, re-render, drop) is
    the dict it was: every key of the base `IN_BASE` until rendered again."""
    snap = versions("nsec")[0]
    full = CompiledZone.build(snap)
    want: dict[bytes, object] = dict.fromkeys(full.answers, IN_BASE)
    from_image(full, BaseImage(ImageWriter(full).image()))
    got = full.answers
    rng = random.Random(3)
    keys = [*want, *(k[:-4] + b"\x00\x63\x00\x01" for k in list(want)[:5])]  # type 99: none
    for _ in range(300):
        key = rng.choice(keys)
        step = rng.random()
        if step < 0.4:
            assert got.pop(key, None) == want.pop(key, None)
        elif step < 0.8:
            got[key] = want[key] = (b"rendered", key)  # type: ignore[assignment]
        assert (key in got) == (key in want) and got.get(key) == want.get(key)
        assert len(got) == len(want)
    assert dict(got) == want
