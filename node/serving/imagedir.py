"""The image directory's files, for `node.serving.images`: deletion of an image file and of
the temporary image directories left by node processes that are gone."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

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
