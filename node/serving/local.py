"""The control process's own mapping of the zone images: what its responder answers from.

With serving workers, the control process answers only what they hand to
it (TSIG-signed messages, UPDATE, NOTIFY, queries on adopted TCP
connections and on its DNS over TLS listener). It answers them from the
same image files the workers map, through its own `ImageTable`, instead of
a compiled zone of Python objects per RRset: the pages are the workers'
pages (PSS divides them), so the zone costs the control process nearly
nothing here. `ImagePublisher` applies every operation here when it sends
it to the workers, in the same order, so the control process and the
workers answer the same version.
"""

from __future__ import annotations

import logging
from pathlib import Path

from node.image import ImageTable, ZoneImage

log = logging.getLogger(__name__)


class LocalImages:
    """An `ImageTable` fed with the publisher's install / hold / remove operations."""

    __slots__ = ("_bases", "table")

    def __init__(self) -> None:
        self.table = ImageTable()
        self._bases: dict[bytes, ZoneImage] = {}  # the full image each zone's overlays apply to

    def install(self, full: Path, overlay: Path | None) -> None:
        """Answer from `full`, or from `overlay` applied to `full`; an image that cannot be
        opened leaves the zone's current version in place (as a worker does)."""
        try:
            base = next((b for b in self._bases.values() if b.path == full), None)
            if base is None:
                base = ZoneImage.open(full)
                self._bases[base.origin] = base
            image = base if overlay is None else ZoneImage.open(overlay, base=base)
        except Exception:
            log.exception("control process: zone image %s cannot be opened", overlay or full)
            return
        if not self.table.install(image):  # older than served (and released): keep the base
            served = self.table.get(image.origin)
            if served is not None:
                self._bases[image.origin] = served.full

    def hold(self, origin: bytes) -> None:
        self.table.hold(origin)

    def remove(self, origin: bytes) -> None:
        self.table.remove(origin)
        self._bases.pop(origin, None)

