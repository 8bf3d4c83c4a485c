"""A stand-in for `node.image` (branch feat-image) until it is merged: same surface, no format.

Used by `backend.py` only when `node.image` cannot be imported. An "image" here is
the pickled `ZoneSnapshot`, written atomically; opening one compiles it with
`CompiledZone` (the in-process answer data of today). Delete this module once
`node.image` is on the branch: nothing else imports it.
"""

from __future__ import annotations

import copyreg
import os
import pickle
import tempfile
import types
import uuid
from dataclasses import replace
from pathlib import Path

import dns.name

from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot


# the snapshot's read-only mappings pickle as what they wrap
def _proxy(wrapped: dict) -> types.MappingProxyType:  # type: ignore[type-arg]
    return types.MappingProxyType(wrapped)


copyreg.pickle(types.MappingProxyType, lambda m: (_proxy, (dict(m),)))


def write_image(snapshot: ZoneSnapshot, directory: str | Path) -> Path:
    """Write `snapshot` as a file in `directory` (atomically); its path."""
    directory = Path(directory)
    name = f"{snapshot.origin.to_text().rstrip('.') or 'root'}-{snapshot.serial}-" \
           f"{uuid.uuid4().hex[:8]}.img"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(replace(snapshot, changed=None), f, protocol=pickle.HIGHEST_PROTOCOL)
    path = directory / name
    os.replace(tmp, path)
    return path


class ZoneImage:
    """One opened image: the compiled zone."""

    def __init__(self, zone: CompiledZone) -> None:
        self.zone = zone
        self.origin = zone.origin

    @classmethod
    def open(cls, path: str | Path) -> ZoneImage:
        with open(path, "rb") as f:
            snapshot = pickle.load(f)  # our own file, from write_image
        return cls(CompiledZone.build(snapshot))


class ImageTable(ZoneTable):
    """`ZoneTable` fed with opened images instead of snapshots."""

    __slots__ = ()

    def install(self, image: ZoneImage) -> None:
        self._install(image.zone)

    def remove(self, origin: dns.name.Name | bytes) -> bool:  # type: ignore[override]
        return super().remove(_name(origin))

    def hold(self, origin: dns.name.Name | bytes) -> None:  # type: ignore[override]
        super().hold(_name(origin))


def _name(origin: dns.name.Name | bytes) -> dns.name.Name:
    if isinstance(origin, bytes):
        return dns.name.from_wire(origin, 0)[0]
    return origin


__all__ = ["ImageTable", "ZoneImage", "name_wire", "write_image"]
