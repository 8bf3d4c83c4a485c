"""Zones as compact, immutable images: one contiguous buffer per zone version.

* `build_image(snapshot) -> bytes`, `write_image(snapshot, directory) -> Path`:
  the builder (`node.image.builder`), for worker processes; imported on first
  use only, so a serving process that never builds does not load it.
* `ImageBuilder` (`node.image.overlay`): a zone's next versions as overlays
  on its last full image (`build(snapshot) -> (bytes, base revision | None)`).
* `ZoneImage` (`node.image.reader`): one mapped image, read-only.
* `ImageTable` (`node.image.table`): the serving side's zones and answer cache,
  with `ZoneTable`'s hot-path surface.

Format and invariants: `docs/image-format.md`.
"""

from __future__ import annotations

from typing import Any

from node.image.reader import ZoneImage
from node.image.table import ImageTable

__all__ = ["ImageBuilder", "ImageTable", "ZoneImage", "build_image", "write_image"]


def __getattr__(name: str) -> Any:
    if name in ("build_image", "write_image"):
        from node.image import builder

        return getattr(builder, name)
    if name == "ImageBuilder":
        from node.image import overlay

        return overlay.ImageBuilder
    raise AttributeError(name)
