"""The cyclic collector and zone-sized builds (node/gcwatch.py, `paused_gc`).

A full image build allocates the zone's objects with the collector disabled;
what the build leaves alive must be frozen before the collector runs again,
else the first collections after it visit every one of those objects (gen 0
and gen 1 pauses of 0.1-1.6 s measured on the signed 100k-name zone). An
overlay's few objects are left to the collector (freezing after every change
would keep cyclic garbage forever).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from node import gcwatch
from node.image.overlay import ImageBuilder
from tests.unit.image.test_image_overlay import versions


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_full_build_leaves_its_objects_frozen_and_the_young_generation_empty() -> None:
    builder = ImageBuilder(max_share=1.0)
    snaps = versions("nsec")
    gc.collect()
    assert gc.get_freeze_count() == 0
    _, base = builder.build(snaps[0])
    assert base is None  # a full image
    assert gc.get_freeze_count() > 1000, "the build's live objects were not frozen"
    assert gc.get_count()[0] < 700, f"young generation left with {gc.get_count()} objects"


def test_an_overlay_build_freezes_nothing() -> None:
    builder = ImageBuilder(max_share=1.0)
    snaps = versions("nsec")
    builder.build(snaps[0])
    gc.unfreeze()
    gc.collect()
    _, base = builder.build(snaps[1])
    assert base is not None  # an overlay
    assert gc.get_freeze_count() == 0


def test_long_collections_are_reported_and_every_collection_is_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    monkeypatch.setattr(gcwatch, "_state", {"started": 0.0, "histogram": None,
                                            "installed": False})
    monkeypatch.setattr(gcwatch, "LONG_PAUSE", 0.0)
    gcwatch.install(registry)
    try:
        with caplog.at_level(logging.WARNING, logger="node.events"):
            gc.collect()
    finally:
        gc.callbacks.remove(gcwatch._callback)
    assert any('"event": 1850' in r.getMessage() and '"generation": 2' in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    count = registry.get_sample_value("dnscluster_gc_pause_seconds_count",
                                      {"generation": "2"})
    assert count is not None and count >= 1


def test_settle_freezes_what_is_alive() -> None:
    keep = [[i] for i in range(5000)]
    gcwatch.settle()
    assert gc.get_freeze_count() >= len(keep)


def test_a_long_full_collection_freezes_its_survivors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcwatch, "_state", {"started": 0.0, "histogram": None,
                                            "installed": False})
    monkeypatch.setattr(gcwatch, "LONG_PAUSE", 0.0)
    keep = [[i] for i in range(5000)]
    gcwatch.install()
    try:
        gc.collect(1)  # a young collection leaves what it did not visit to the collector
        assert gc.get_freeze_count() == 0
        gc.collect()
    finally:
        gc.callbacks.remove(gcwatch._callback)
    assert gc.get_freeze_count() >= len(keep)


def test_a_base_let_go_of_is_freed_although_frozen() -> None:
    """Each full image freezes the builder's new base; the base it replaces must still be
    freed. `BasePieces` referred back to the denial index that holds it: a cycle, which
    the collector never frees once frozen, so every merge kept the dropped base's chain
    (its keys, its pieces map, the old version's nodes) for good (~25 MiB a merge at
    100k names)."""
    builder = ImageBuilder(max_share=1.0)
    snap = versions("nsec")[0]
    for _ in range(3):
        builder.merge(snap)  # a full image each time: the base before it is let go of
        assert gc.get_freeze_count() > 1000
    gc.collect()
    gc.unfreeze()  # list the frozen objects too (none collected yet)
    kinds = ("BasePieces", "DenialIndex")
    alive = [type(o).__name__ for o in gc.get_objects() if type(o).__name__ in kinds]
    assert sorted(alive) == sorted(kinds), f"dropped bases still alive: {alive}"


@pytest.mark.parametrize("how", ["full version", "overlay grown"])
def test_a_merge_lets_the_last_base_go_before_compiling_the_next(
        how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 (memory): the last base (~40-50 MiB at 100k names) was still referred to
    while the next was compiled, so a merge needed room for both: the heap's high-water
    mark, and the holes the old one left, stayed with the process."""
    from dataclasses import replace

    from node.server.compile import CompiledZone
    builder = ImageBuilder(max_share=-100.0 if how == "overlay grown" else 1.0)  # <0: merge
    snaps = versions("nsec")
    builder.build(snaps[0])
    alive: list[int] = []
    real = CompiledZone.build.__func__  # type: ignore[attr-defined]

    def counted(cls, snapshot):  # type: ignore[no-untyped-def]
        gc.unfreeze()  # frozen objects are not listed
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if type(o) is CompiledZone))
        return real(cls, snapshot)

    monkeypatch.setattr(CompiledZone, "build", classmethod(counted))
    nxt = snaps[1] if how == "overlay grown" else replace(snaps[1], changed=None)
    _, base = builder.build(nxt)
    assert base is None  # merged: a full image
    assert alive == [0], f"compiled zones alive while the next base was compiled: {alive}"
