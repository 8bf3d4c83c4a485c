"""The lean base (`BaseAnswers`, `BaseNames`, `BasePieces`) against the full-dict base
over a long random sequence of versions: names added, dropped and re-added (in other
case), delegations with names below that come and go, wildcards, empty non-terminals,
RRsets changed then changed back, other NSEC3 parameters; merges on the way. Each
overlay must be byte for byte the reference builder's, and answer as a full compile."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from node.image import ImageTable, ZoneImage
from node.image.builder import write_bytes
from node.image.overlay import ImageBuilder
from node.zones.model import ZoneSnapshot
from tests.unit.image.test_image_differential import _keys
from tests.unit.image.test_overlay_growing import _full
from tests.unit.image.test_overlay_lean_base import _keep_all, _plain
from tests.unit.server.ixfr_versions import sign_versions

POOL = [
    "n1 A 192.0.2.101", "N1 TXT \"n1\"", "n2 A 192.0.2.102", "x.y.n3 A 192.0.2.103",
    "a.b.c.n4 AAAA 2001:db8::4", "sub NS ns.sub", "ns.sub A 192.0.2.110",
    "a.sub A 192.0.2.111", "B.sub TXT \"b\"", "c.d.sub A 192.0.2.112", "d.sub NS ns.other.net.",
    "*.w TXT \"wild\"", "x.w A 192.0.2.120", "*.x.w A 192.0.2.121", "web A 192.0.2.31",
    "Web AAAA 2001:db8::31", "mx2 A 192.0.2.130", "@ MX 20 mx2", "sub2 NS ns.sub",
    "q.sub2 A 192.0.2.140", "e.f.g A 192.0.2.150", "f.g TXT \"ent gone\"",
    "dn DNAME sub.example.", "x.dn A 192.0.2.160", "cn CNAME n1", "cn2 CNAME x.w",
    "SUB NS ns2.sub", "ns2.sub AAAA 2001:db8::110", "srv._tcp SRV 0 0 53 n2", "mx3 MX 5 n2",
    "* TXT \"apex wild\"", "deep.a.b.c.n4 A 192.0.2.170",
]


def _versions(mode: str | None, seed: int, count: int, merges: bool) -> list[ZoneSnapshot]:
    rng = random.Random(seed)
    on: set[int] = set()
    plains = []
    for serial in range(1, count + 1):
        for _ in range(rng.randint(1, 3)):
            on ^= {rng.randrange(len(POOL))}
        extra = "".join(POOL[i] + "\n" for i in sorted(on))
        drops = ("web ",) if rng.random() < 0.3 else ()
        plains.append(_plain(serial, extra, drops))
    if mode != "nsec3":
        snaps = sign_versions(plains, mode)
    else:  # other NSEC3 parameters half way: a new full base, then overlays on it
        half = count // 2
        first, second = sign_versions(plains[:half], mode), sign_versions(
            plains[half:], "nsec3-salt-optout")
        changed = frozenset(plains[half - 1].nodes.keys() | plains[half].nodes.keys())
        snaps = [*first, dataclasses.replace(second[0], changed=changed), *second[1:]]
    if merges:  # some versions with no `changed` (a full re-read): a merge
        snaps = [dataclasses.replace(s, changed=None) if rng.random() < 0.15 else s
                 for s in snaps]
    return snaps


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
@pytest.mark.parametrize("merges", [False, True])
def test_random_versions_lean_base_writes_the_full_base_overlays(
        mode: str | None, merges: bool, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = _versions(mode, [None, "nsec", "nsec3"].index(mode) * 2 + merges, 40, merges)
    with monkeypatch.context() as m:
        _keep_all(m)
        ref = ImageBuilder(max_share=1.0)
        want = [ref.build(snap) for snap in snaps]
    n = sum(base is None for _, base in want)
    assert (n > 3) if merges else n == 1 + (mode == "nsec3"), n
    local = ImageBuilder(max_share=1.0)
    forking = ImageBuilder(max_share=1.0, fork=True)
    base: ZoneImage | None = None
    for i, (snap, (data, base_revision)) in enumerate(zip(snaps, want, strict=True)):
        assert local.build(snap) == (data, base_revision), f"v{snap.serial} in-process"
        path, forked = forking.write(snap, tmp_path)
        assert forked == base_revision and path.read_bytes() == data, f"v{snap.serial} forked"
        if base_revision is None:
            base = ZoneImage.from_bytes(data)
            continue
        assert base is not None
        served = ImageTable()
        served.install(ZoneImage.from_bytes(data, base=base))
        full = _full(snap)
        for key in _keys(snaps[max(0, i - 1) : i + 1], seed=i)[:300]:
            assert served.lookup(key, 1) == full.lookup(key, 1), f"v{snap.serial} {key!r}"


def _mapped(directory: Path) -> int:
    with open("/proc/self/maps") as f:
        return sum(str(directory) in line for line in f)


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "forked"])
def test_the_base_is_read_from_its_mapping_not_the_file(
        fork: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder maps its base image: the file replaced by other bytes (renamed over, as
    `write_bytes` does; never written in place, which the serving workers' mappings rule
    out too) and unlinked (the image directory cleaned) changes no overlay, and each merge
    lets the last mapping go (one mapping of the directory, however many merges)."""
    snaps = _versions("nsec3", 7, 16, merges=False)
    snaps = [dataclasses.replace(s, changed=None) if i % 4 == 0 else s
             for i, s in enumerate(snaps)]  # a merge every 4th version
    with monkeypatch.context() as m:
        _keep_all(m)
        ref = ImageBuilder(max_share=1.0)
        want = [ref.build(snap) for snap in snaps]
    builder = ImageBuilder(max_share=1.0, fork=fork)
    for snap, (data, base_revision) in zip(snaps, want, strict=True):
        path, base = builder.write(snap, tmp_path)
        assert base == base_revision and path.read_bytes() == data, f"v{snap.serial}"
        if base is None:
            write_bytes(b"\x00" * len(data), path)  # as images are written: a new file
            path.unlink()
        assert _mapped(tmp_path) == 1
