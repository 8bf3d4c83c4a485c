"""Serving processes let go of the zone images they no longer serve (node/image/table.py).

Every `ZoneImage` was a reference cycle (its `apex` node tuples name the image),
so only the cyclic collector freed one, and with it the mapping of its file,
which the control process has already unlinked. The serving worker freezes what
is alive after each full image, the control process (`LocalImages`) after each
full image build (`node/gcwatch.py`), and frozen objects are never collected:
each superseded full version of a zone stayed mapped (memory, and the disk
space of the deleted file) for good. The table now breaks the cycle of what
it stops serving (`ZoneImage.release`).
"""

from __future__ import annotations

import gc
import os
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.image.builder import write_image
from node.image.table import ImageTable
from node.serving.local import LocalImages
from node.serving.worker import Worker
from node.zones.model import snapshot_from_text


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.collect()


def _version(serial: int) -> str:
    return "\n".join(["$TTL 300", f"@ SOA ns1 h {serial} 7200 3600 1209600 300", "@ NS ns1",
                      "ns1 A 192.0.2.1", *(f"h{i} A 192.0.2.{serial}" for i in range(50))])


def _mapped(directory: Path) -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if str(directory) in line)


def test_superseded_full_images_are_unmapped(tmp_path: Path) -> None:
    worker = types.SimpleNamespace(_bases={}, table=ImageTable())  # what _install uses
    previous: Path | None = None
    for serial in range(1, 7):
        path = write_image(snapshot_from_text(_version(serial), "example.", revision=serial),
                           tmp_path)
        Worker._install(worker, str(path))  # type: ignore[arg-type]
        if previous is not None:
            os.unlink(previous)  # as the control process does once the worker acknowledged
        previous = path
        gc.collect()
    assert _mapped(tmp_path) <= 2, (
        f"{_mapped(tmp_path)} image files still mapped after 6 full versions "
        f"(frozen objects: {gc.get_freeze_count()})")


def test_the_control_process_unmaps_superseded_images_too(tmp_path: Path) -> None:
    """The control process maps the same images (`LocalImages`) and freezes after every full
    image build (`paused_gc(full=True)`), while the version being replaced is still served."""
    local = LocalImages()
    previous: Path | None = None
    for serial in range(1, 7):
        # the build (and its freeze) happens while the previous version is served
        path = write_image(snapshot_from_text(_version(serial), "example.", revision=serial),
                           tmp_path)
        local.install(path, None)
        if previous is not None:
            os.unlink(previous)
        previous = path
        gc.collect()
    assert _mapped(tmp_path) <= 2, (
        f"{_mapped(tmp_path)} image files still mapped after 6 full versions "
        f"(frozen objects: {gc.get_freeze_count()})")
