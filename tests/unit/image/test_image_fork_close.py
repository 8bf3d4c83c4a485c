"""Closing the image publisher while a forked image child renders (`node.image.forked`).

On shutdown (`ImagePublisher.close`) the control process must not wait for a
full image it will never send, nor build one in-process: the builder thread is
joined when the interpreter exits (after the shutdown watchdog is done), so a
child left running holds the node's exit for its whole build. Under systemd
(KillMode=control-group) or Ctrl-C the node's SIGTERM/SIGINT reaches the child
too: it must not make the builder fall back to an in-process build then.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from node.image import forked
from node.server.answer import name_wire
from node.serving.images import ImagePublisher
from tests.support.wait import async_wait_until
from tests.unit.image.test_overlay_growing import versions


def _children() -> list[int]:
    out: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def _builders() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("image-builder")}


@pytest.mark.parametrize("group_signal", [False, True])
async def test_close_stops_the_child_and_builds_nothing_in_process(
        group_signal: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forked.FAULT_ENV, "hang")  # a child still rendering
    monkeypatch.setattr(forked, "STALL_AFTER", 600.0)
    before, threads = set(_children()), _builders()
    images = ImagePublisher(str(tmp_path), lambda kind, payload: (1, set()))
    images.open()
    with caplog.at_level(logging.INFO, logger="node.events"):
        images.publish(versions("nsec", count=1)[0])
        (child,) = await async_wait_until(lambda: set(_children()) - before, 60)
        if group_signal:
            os.kill(child, signal.SIGTERM)
        images.close()
        await async_wait_until(lambda: not _builders() - threads, 20,
                               message="the builder thread still waits for its child")
    assert child not in _children()  # reaped: no zombie left
    names = [json.loads(r.message)["name"] for r in caplog.records if r.name == "node.events"]
    assert "SERVING_IMAGE_FORK_FAILED" not in names
    assert "SERVING_IMAGE_BUILT" not in names


@pytest.mark.parametrize("cut", ["hold", "remove"])
async def test_a_held_or_removed_zone_stops_its_child(
        cut: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its image would be thrown away: the child must not render on (nor make a later
    shutdown wait for it: `close` no longer sees that builder)."""
    monkeypatch.setenv(forked.FAULT_ENV, "hang")
    monkeypatch.setattr(forked, "STALL_AFTER", 600.0)
    before = set(_children())
    images = ImagePublisher(str(tmp_path), lambda kind, payload: (1, set()))
    images.open()
    with caplog.at_level(logging.INFO, logger="node.events"):
        snap = versions("nsec", count=1)[0]
        images.publish(snap)
        (child,) = await async_wait_until(lambda: set(_children()) - before, 60)
        getattr(images, cut)(name_wire(snap.origin))
        await async_wait_until(lambda: child not in _children(), 20,
                               message="the child of a zone cut still renders")
        await async_wait_until(images.idle, 20)
    names = [json.loads(r.message)["name"] for r in caplog.records if r.name == "node.events"]
    assert not {"SERVING_IMAGE_FORK_FAILED", "SERVING_IMAGE_FAILED"} & set(names), names
    images.close()
