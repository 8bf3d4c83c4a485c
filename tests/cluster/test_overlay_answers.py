"""A signed zone served through a grown overlay answers as the full image of the same version.

One node with serving workers; a signed zone (1,500 names, so that the
overlay never grows past its share of the zone) gets 24 changes one after the
other (names added next to each other, every third one deleted again, an
address changed), so its workers serve an overlay that grew version by
version (`node/image/growing.py`). The answers (DO=1, over TCP) for the
changed, deleted and neighbouring names, nonexistent names next to and below
them (NXDOMAIN proofs), types they lack (NODATA), the wildcard, the
delegation and the apex are recorded; once the zone has been quiet for
`images.MERGE_AFTER` seconds the node serves a full image of the same
version instead, and every answer must be the same (same signatures: same
version, signed once).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_keymaster import ctl
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support.api import Api
from tests.support.nodes import SERVING_WORKERS, NodeProcess
from tests.support.wait import wait_until

ZONE = "grow.test."
CHANGES = 24
FILLER = 1500  # names: the overlay of CHANGES versions stays under its share of the zone


@pytest.fixture(scope="module")
def signing_node() -> Iterator[tuple[Cluster, Path]]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    images = Path(tempfile.mkdtemp(prefix="images-"))
    c = make_cluster(count=1, env={**SERVING_WORKERS, "DNSNODE_SERVER__IMAGE_DIR": str(images)},
                     extra_toml=f'[signing]\nkek_file = "{kek_file(keydir)}"\n'
                                'stagger_min = 0.0\nstagger_max = 0.0\n')
    try:
        yield c, images
    finally:
        c.close()


def _questions() -> list[tuple[str, str]]:
    names = [f"n{i:02d}" for i in range(CHANGES)]
    out = [(n, t) for n in names for t in ("A", "TXT")]
    out += [(f"{n}a", "A") for n in names[::3]] + [(f"x.{n}", "A") for n in names[1::4]]
    out += [("www", "A"), ("www", "AAAA"), ("www", "TXT"), ("a", "A"), ("a.b", "A"),
            ("x.apps", "A"), ("sub", "A"), ("x.sub", "A"), ("zz", "A"), ("@", "SOA"),
            ("@", "DNSKEY"), ("@", "NS"), ("@", "NSEC")]
    return out


def _answers(node: NodeProcess) -> dict[tuple[str, str], str]:
    out = {}
    for label, rdtype in _questions():
        name = ZONE if label == "@" else f"{label}.{ZONE}"
        resp: dns.message.Message = node.query(name, rdtype, tcp=True, want_dnssec=True,
                                               timeout=10)
        resp.id = 0
        out[(label, rdtype)] = resp.to_text()
    return out


def _overlays(images: Path) -> list[str]:
    return sorted(p.name for p in images.glob("grow.test.*.ovl"))


def test_answers_through_a_grown_overlay_equal_the_full_image(
        signing_node: tuple[Cluster, Path]) -> None:
    c, images = signing_node
    n1 = c.nodes[0]
    filler = "".join(f"h{i} IN A 10.0.{i >> 8}.{i & 255}\n" for i in range(FILLER))
    with Api(n1.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE) + filler)
    code, out = ctl(n1, "zone", "sign", ZONE)
    assert code == 0, out
    wait_until(lambda: ctl(n1, "zone", "dnssec", ZONE)[1].get("published"), 60,
               interval=0.2, message=f"{ZONE} published")
    with Api(n1.api) as api:
        for i in range(CHANGES):
            serial = api.add(ZONE, f"n{i:02d}", 300, "A", f"192.0.2.{100 + i}")
            if i % 3 == 2:
                serial = api.delete(ZONE, f"n{i - 2:02d}", "A")
            if i == CHANGES // 2:
                api.delete(ZONE, "www", "A")
                serial = api.add(ZONE, "www", 300, "A", "192.0.2.81")
    wait_until(lambda: n1.serial(ZONE) == serial, 60, message=f"serial {serial} served")
    overlay = _overlays(images)
    assert overlay, f"no overlay served: {sorted(p.name for p in images.iterdir())}"
    base = int(overlay[0].rsplit("+", 1)[1].split(".")[0])  # <serial>.<revision>+<base>.ovl
    assert base < int(overlay[0].rsplit("+", 1)[0].rsplit(".", 1)[1]) - CHANGES, \
        f"{overlay}: the overlay does not cover the changes"
    before = _answers(n1)
    if _overlays(images) != overlay:
        pytest.skip("the overlay was merged while it was being asked (a very slow machine)")
    wait_until(lambda: not _overlays(images), 120, message="the overlay merged into a full image")
    after = _answers(n1)
    differ = [q for q in before if before[q] != after[q]]
    assert not differ, "\n\n".join(f"{q}\noverlay:\n{before[q]}\nfull:\n{after[q]}"
                                   for q in differ[:3])
    assert any("NXDOMAIN" in a for a in before.values())
