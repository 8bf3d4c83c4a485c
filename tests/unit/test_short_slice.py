"""`request_short_slice` gives the calling thread the 0.1 ms slice, and only that thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from node.priority import SERVING_SLICE_NS, request_short_slice


def _slice() -> int | None:
    """The calling thread's time slice, as /proc shows it (EEVDF kernels)."""
    try:
        text = Path("/proc/thread-self/sched").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    return None


def test_the_calling_thread_gets_the_short_slice_and_others_keep_theirs() -> None:
    before = _slice()
    if before is None:
        pytest.skip("this kernel shows no se.slice (EEVDF with custom slices: Linux 6.12+)")
    seen: dict[str, object] = {}

    def run() -> None:
        seen["granted"] = request_short_slice()
        seen["slice"] = _slice()

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert seen == {"granted": True, "slice": SERVING_SLICE_NS}
    assert _slice() == before
