"""The image directory's files, for `node.serving.images`: an image written by the builder
thread (`write`), the INSTALL payload naming it (`install`), deletion of an image file and of
the temporary image directories left by node processes that are gone."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from node.events import Event, emit
from node.image import ImageBuilder
from node.malloc import trim
from node.zones.model import ZoneSnapshot

TEMP = "dnscluster-images-"  # prefix of a temporary image directory (then the node's pid)


def prune_temp_dirs() -> None:
    """Delete the temporary image directories of node processes that are gone (kill -9)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP}*-*"):
        pid = path.name[len(TEMP):].partition("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def write(builder: ImageBuilder, snapshot: ZoneSnapshot,
          directory: Path) -> tuple[Path, int | None]:
    """`builder.write`; after a full image, the freed build heap goes back to the kernel."""
    started, cpu = time.perf_counter(), time.thread_time()
    path, base_revision = builder.write(snapshot, directory)
    if base_revision is None:
        trim()
        emit(Event.SERVING_IMAGE_BUILT, zone=snapshot.origin, serial=snapshot.serial,
             bytes=path.stat().st_size, seconds=round(time.perf_counter() - started, 3),
             cpu_s=round(time.thread_time() - cpu, 3),
             child_cpu_s=round(builder.timing.get("child_cpu", 0.0), 3),
             fork_ms=round(builder.timing.get("fork_s", 0.0) * 1000, 1),
             gate_s=round(builder.timing.get("gate_s", 0.0), 1))
    return path, base_revision


def install(files: tuple[Path, Path | None]) -> bytes:
    """An INSTALL payload: the full image, or the overlay and (after a newline) its base."""
    full, overlay = files
    return str(full).encode() if overlay is None else f"{overlay}\n{full}".encode()
