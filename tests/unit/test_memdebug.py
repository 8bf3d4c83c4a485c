"""node/memdebug.py (debug-only): off without its variable; on SIGUSR2 a breakdown is written."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path

import pytest

from node import memdebug


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memdebug.ENV_PATH, raising=False)
    assert memdebug.install() is False


def test_sigusr2_writes_the_breakdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mem.txt"
    monkeypatch.setenv(memdebug.ENV_PATH, str(out))
    monkeypatch.setenv(memdebug.ENV_TRACE, "4")
    before = signal.getsignal(signal.SIGUSR2)
    try:
        assert memdebug.install()
        kept = [bytes(100) + bytes([i % 256]) for i in range(1000)]  # noqa: F841
        os.kill(os.getpid(), signal.SIGUSR2)
        text = out.read_text()
    finally:
        signal.signal(signal.SIGUSR2, before)
        tracemalloc.stop()
    assert "# pymalloc:" in text and "# objects by type" in text
    assert "builtins.bytes" in text and "# traced:" in text
