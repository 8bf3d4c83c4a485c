"""Which zone image implementation serving uses: `node.image`, or `standin.py` until it exists.

The control process writes images with `write_image` (in a niced process pool);
workers open them with `ZoneImage.open` and serve them from an `ImageTable`.
"""

from __future__ import annotations

try:
    from node.image import ImageTable, ZoneImage, write_image  # type: ignore[import-not-found]
except ImportError:  # branch feat-image not merged yet
    from node.serving.standin import ImageTable, ZoneImage, write_image  # type: ignore[assignment]

__all__ = ["ImageTable", "ZoneImage", "write_image"]
