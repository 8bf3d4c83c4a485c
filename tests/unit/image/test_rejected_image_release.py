"""A zone image older than the version served is rejected, and let go of at once.

`ImageTable.install` ignores an image whose revision is older than the one it
serves. The serving worker froze (`gcwatch.settle`) every full image it opened
before the install, and kept it as the zone's base: a rejected one was never
released (`ZoneImage.release`) and stayed mapped for good, and the next
overlay on the served base no longer found it among the bases.
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


def _image(directory: Path, serial: int) -> Path:
    text = "\n".join(["$TTL 300", f"@ SOA ns1 h {serial} 7200 3600 1209600 300", "@ NS ns1",
                      "ns1 A 192.0.2.1", *(f"h{i} A 192.0.2.{serial}" for i in range(20))])
    return write_image(snapshot_from_text(text, "example.", revision=serial), directory)


def _mapped(path: Path) -> bool:
    with open("/proc/self/maps") as maps:
        return any(str(path) in line for line in maps)


def test_worker_releases_an_image_older_than_served(tmp_path: Path) -> None:
    worker = types.SimpleNamespace(_bases={}, table=ImageTable())  # what _install uses
    served = _image(tmp_path, 5)
    Worker._install(worker, str(served))  # type: ignore[arg-type]
    older = _image(tmp_path, 3)
    Worker._install(worker, str(older))  # type: ignore[arg-type]
    assert worker.table.get(b"\x07example\x00").revision == 5
    os.unlink(older)  # as the control process does once the worker acknowledged
    gc.collect()
    assert not _mapped(older), (
        f"rejected image still mapped (frozen objects: {gc.get_freeze_count()})")
    assert [b.revision for b in worker._bases.values()] == [5], \
        "the served full image is no longer the base of the next overlay"


def test_control_process_releases_an_image_older_than_served(tmp_path: Path) -> None:
    local = LocalImages()
    local.install(_image(tmp_path, 5), None)
    older = _image(tmp_path, 3)
    gc.freeze()  # the control process freezes after full image builds (node/gcwatch.py)
    local.install(older, None)
    gc.freeze()
    os.unlink(older)
    gc.collect()
    assert not _mapped(older), "rejected image still mapped in the control process"
    assert [b.revision for b in local._bases.values()] == [5]
