"""A benchmark run's scratch space: a temporary work directory and the processes started in
it, both gone when the run ends (`scratch_run`), and the load average as reports print it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import ProcessSet


@contextmanager
def scratch_run(prefix: str) -> Iterator[ProcessSet]:
    """A `ProcessSet` in a new temporary directory named `prefix`...; on exit, whatever
    happened, its processes are stopped and the directory removed."""
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        yield ps
    finally:
        ps.close()
        shutil.rmtree(ps.workdir, ignore_errors=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, two decimals each."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
