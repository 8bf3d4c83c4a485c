"""The builder's lean compile of a forked full image is made after the image is sent.

Issue 10, load time: the control process's lean compile of a full image
(`basepieces.compile_base`, ~0.5 s of CPU at 100k names) is needed only by the
next overlay. It used to run while the forked child rendered the image, on the
same cores, on every node at once after an import; now `ImagePublisher` sends the
image to the workers first and then has the builder make it (`ImageBuilder.settle`,
in the builder's thread, before its next build). The workers are stood in for by
the broadcast function, as in `test_image_publisher_served`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dns.name
import pytest

from node.image import overlay
from node.server.compile import CompiledZone
from node.serving import protocol
from node.serving.images import ImagePublisher
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.wait import async_wait_until
from tests.support.zones import EXAMPLE

ORIGIN = b"\x07example\x04test\x00"


def _snap(serial: int, extra: str = "") -> ZoneSnapshot:
    return snapshot_from_text(EXAMPLE + extra, "example.test.", serial=serial, revision=serial)


async def test_the_lean_compile_runs_once_the_full_image_was_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real = overlay.compile_base

    def lean(snapshot: ZoneSnapshot) -> CompiledZone:
        order.append(f"lean {snapshot.serial}")
        return real(snapshot)

    def broadcast(kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        if kind == protocol.INSTALL:
            order.append("overlay" if b"\n" in payload else "full")
        return len(order), set()

    monkeypatch.setattr(overlay, "compile_base", lean)
    images = ImagePublisher(str(tmp_path), broadcast)
    assert images.fork, "full images are rendered by a forked child"
    images.open()
    try:
        images.publish(_snap(1))
        await async_wait_until(lambda: "lean 1" in order, 60,
                               message=f"no lean compile of the base: {order}")
        assert order == ["full", "lean 1"], "the lean compile ran before the image was sent"
        second = dataclasses.replace(
            _snap(2, "new 300 IN A 192.0.2.99\n"),
            changed=frozenset({dns.name.from_text("new.example.test.")}))
        images.publish(second)  # an overlay on the base the lean compile made
        await async_wait_until(lambda: "overlay" in order, 60,
                               message=f"the next version was not an overlay: {order}")
        assert order == ["full", "lean 1", "overlay"]
    finally:
        images.close()
