"""The logs of the processes tests start, shown when a fixture that started them fails.

`NodeProcess` and `EtcdProcess` call `started(name, path)` when they start a
process. A failing fixture (the hook in `tests/conftest.py`) or a failing
`make_cluster` writes the tail of every log started since its `mark()` to
stderr, which pytest shows under "Captured stderr setup", so a failure in CI
explains itself. Each log is written out once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

TAIL_LINES = 150

_started: list[tuple[str, Path]] = []
_dumped: set[tuple[str, Path]] = set()


def started(name: str, path: Path) -> None:
    """Record that a process called `name` writes its log to `path`."""
    if (name, path) not in _started:
        _started.append((name, path))


def mark() -> int:
    """A point to dump from: the logs of processes started after it."""
    return len(_started)


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def dump_since(start: int, stream: TextIO | None = None) -> None:
    """Write the log tail of each process started since `start` (not yet written)."""
    out = stream or sys.stderr
    for entry in _started[start:]:
        if entry in _dumped:
            continue
        _dumped.add(entry)
        name, path = entry
        out.write(f"---- {name} log ({path}, last {TAIL_LINES} lines) ----\n{tail(path)}\n")
    out.flush()
