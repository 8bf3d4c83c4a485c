"""The forked image child in a process with many open descriptors (`node.image.forked`).

The control process raises its open-files limit past 1,024 for its TCP connection cap
(`node.server.openfiles`), so the pipe the parent reads the child's result from can be
numbered 1,024 or more: `select.select` refuses such a descriptor (FD_SETSIZE). The image
must still come from the child, and never leave a child behind.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.image import build_image
from node.image.overlay import ImageBuilder
from tests.unit.image.test_overlay_growing import versions


@pytest.fixture
def high_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the hard open-files limit is below 1,200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    held = []
    try:
        while True:  # fill every descriptor below 1,030: the next ones are numbered above
            fd = os.open(os.devnull, os.O_RDONLY)
            held.append(fd)
            if fd >= 1030:
                break
        os.close(held.pop())
        os.close(held.pop())
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_high_numbered_pipe_still_gives_the_forked_image(high_fds: None,
                                                           tmp_path: Path) -> None:
    snap = versions("nsec", count=1)[0]
    builder = ImageBuilder(fork=True)
    path, base = builder.write(snap, tmp_path)
    assert base is None
    assert path.read_bytes() == build_image(snap)
    assert builder.timing.get("child_cpu", 0) > 0, "the image was not the child's"
