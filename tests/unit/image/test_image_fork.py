"""Full images written by a forked child (`node.image.forked`): same bytes, parent heap spared.

Issue 10 (memory, availability): the control process builds zone images; a
full image's rendering (the DO=1 variants, the buffer, the hash slots) is
most of a full build's CPU and a zone-sized burst of small objects that
leaves the control process's heap fragmented. `ImageBuilder(fork=True)`
compiles in the caller (the overlays evolve that compile) and writes the
image from a forked child that exits. The image must be byte-identical to
the in-process build; a child that crashes, fails or hangs must give an
event and the image built in-process, never no image.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from node.image import build_image, forked, overlay
from node.image.baseimage import IN_BASE, BaseImage
from node.image.basepieces import compile_base
from node.image.builder import image_name
from node.image.overlay import ImageBuilder
from node.server import answer
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot
from tests.unit.image.test_overlay_growing import versions
from tests.unit.server.ixfr_versions import plain

N = 3000


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [e for e in (json.loads(r.message) for r in caplog.records
                        if r.name == "node.events") if e["name"] == name]


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
def test_forked_full_image_and_next_overlay_are_the_in_process_ones(
        mode: str | None, tmp_path: Path) -> None:
    snaps = versions(mode, count=4)
    forking, local = ImageBuilder(fork=True), ImageBuilder()
    with ThreadPoolExecutor(1) as pool:  # forked from a thread, as the control process does
        path, base = pool.submit(forking.write, snaps[0], tmp_path / "f").result()
    assert base is None
    assert path.read_bytes() == build_image(snaps[0])
    assert forking.timing["child_cpu"] > 0  # the child did the rendering
    local.build(snaps[0])
    for snap in snaps[1:]:  # overlays evolve the compile the parent kept
        path, base = forking.write(snap, tmp_path / "f")
        data, local_base = local.build(snap)
        assert base == local_base == snaps[0].revision
        assert path.read_bytes() == data


def _zone() -> ZoneSnapshot:
    hosts = "".join(f"host{k} A 192.0.2.{k % 250}\nhost{k} TXT \"t{k}\"\n" for k in range(N))
    return plain(1, hosts)


def _peak(builder: ImageBuilder, snap: ZoneSnapshot, directory: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        builder.write(snap, directory)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_parent_allocates_no_image_sized_garbage(tmp_path: Path) -> None:
    snap = _zone()
    size = len(build_image(snap))
    peak = _peak(ImageBuilder(fork=True), snap, tmp_path / "f")
    in_process = _peak(ImageBuilder(), snap, tmp_path / "l")
    assert in_process > 2 * size  # the buffer, its copy, the rendered pieces
    assert peak < in_process / 2, f"parent peak {peak} bytes, in-process {in_process}"


@pytest.mark.parametrize("fault", ["crash", "error", "hang"])
def test_a_failed_child_gives_an_event_and_the_in_process_image(
        fault: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forked.FAULT_ENV, fault)
    monkeypatch.setattr(forked, "STALL_AFTER", 1.0)
    snap = versions("nsec", count=1)[0]
    with caplog.at_level(logging.INFO, logger="node.events"):
        path, base = ImageBuilder(fork=True).write(snap, tmp_path)
    assert base is None and path == tmp_path / image_name(snap)
    assert path.read_bytes() == build_image(snap)
    (event,) = _events(caplog, "SERVING_IMAGE_FORK_FAILED")
    assert event["event"] == 1885
    assert {"crash": "signal 9", "error": "RuntimeError", "hang": "hung"}[fault] \
        in str(event["error"])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("mode", [None, "nsec", "nsec3"])
def test_the_lean_compile_is_the_full_one_less_what_the_image_has(mode: str | None) -> None:
    """What the builder keeps of a forked full build (`compile_base`) is what it keeps of an
    in-process one (a full compile, then its rendered parts dropped)."""
    snap = versions(mode, count=12)[-1]
    snap = dataclasses.replace(snap, changed=None)
    local = ImageBuilder()
    local.build(snap)
    full, lean = local._zone, compile_base(snap)
    assert full is not None
    assert lean.names == full.names and lean.below == full.below and lean.cuts == full.cuts
    assert not lean.answers  # which exist: read from the image once it is written
    overlay.from_image(lean, BaseImage(build_image(snap)))
    rendered = CompiledZone.build(snap)
    assert len(lean.answers) == len(full.answers) == len(rendered.answers)
    assert dict(lean.answers) == dict(full.answers) == dict.fromkeys(rendered.answers, IN_BASE)
    assert lean.fdeps == full.fdeps
    assert lean.rdeps == full.rdeps
    if mode is None:
        assert lean.denial is None and full.denial is None
    else:
        assert lean.denial is not None and full.denial is not None
        assert lean.denial.keys == full.denial.keys
        assert rendered.denial is not None
        # rendered on read: the full compile's pieces
        assert dict(lean.denial.pieces) == dict(full.denial.pieces) == rendered.denial.pieces


@pytest.mark.parametrize("mode", [None, "nsec3"])
def test_the_lean_compile_renders_no_answer(mode: str | None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked child renders every answer; the parent's compile takes only their keys and
    dependencies (issue 10, load time: rendering them twice cost the parent a full compile's
    CPU, ~1.2 s of the 100k-name zone's)."""
    snap = dataclasses.replace(versions(mode, count=12)[-1], changed=None)

    def rendered(*args: object) -> None:
        raise AssertionError("an answer rendered by the lean compile")

    monkeypatch.setattr(answer, "positive", rendered)
    lean = compile_base(snap)
    assert lean.fdeps and not lean.answers
