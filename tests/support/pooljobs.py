"""Jobs for tests of the worker pool (node/work/procpool.py): module-level functions a
worker process imports by name, so this module imports nothing heavy."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

HOLD_SECONDS = 60.0  # at most this long a held job waits for its release


def hold(started: str, release: str) -> int:
    """Write this process's pid to `started`, then return it once `release` exists (or after
    `HOLD_SECONDS`: a test that fails never leaves a worker waiting for good)."""
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + HOLD_SECONDS
    while not os.path.exists(release) and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


class TwoArgError(Exception):
    """Pickles, but does not unpickle: `__reduce__` gives `args` (one), `__init__` wants two."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def fail_unreadably() -> None:
    raise TwoArgError("job", "failed")


def unpicklable() -> object:
    return threading.Lock()


def modules() -> list[str]:
    return sorted(sys.modules)


def leave() -> None:
    os._exit(3)


def interpreter_options() -> tuple[bool, list[str]]:
    """This process's `-X dev` and `-W` options."""
    return sys.flags.dev_mode, list(sys.warnoptions)
