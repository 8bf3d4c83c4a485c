"""node/memdebug.py (debug-only): off without its variable; on SIGUSR2 a breakdown is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node import memdebug

ROOT = Path(__file__).resolve().parents[2]


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memdebug.ENV_PATH, raising=False)
    assert memdebug.install() is False


# In a child process: the dump walks every live object (with tracemalloc tracing each
# allocation it makes), so in a pytest worker that has imported and kept what hundreds of
# other tests built it took up to a minute; a fresh interpreter holds what a node's
# control process would at start, and the same sections are checked.
SIGUSR2_SCRIPT = """
import os, signal, sys
from pathlib import Path
from node import memdebug
assert memdebug.install()
kept = [bytes(100) + bytes([i % 256]) for i in range(1000)]
os.kill(os.getpid(), signal.SIGUSR2)
sys.stdout.write(Path(os.environ[memdebug.ENV_PATH]).read_text())
"""


def test_sigusr2_writes_the_breakdown(tmp_path: Path) -> None:
    out = tmp_path / "mem.txt"
    env = {**os.environ, memdebug.ENV_PATH: str(out), memdebug.ENV_TRACE: "4",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", SIGUSR2_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert text == out.read_text()
    assert "# pymalloc:" in text and "# objects by type" in text
    assert "builtins.bytes" in text and "# traced:" in text


class _Cycle:
    """An object that refers to itself (cyclic garbage once dropped)."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_garbage_is_freed_despite_a_freezing_collector_callback() -> None:
    """In a node, gcwatch's callback freezes every object after a long full collection;
    the report's own full collection is one: the garbage it found was frozen again with
    it, never freed ("RSS x -> x once collected")."""
    import gc

    def freeze_after_full(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()  # as gcwatch._callback after a pause of LONG_PAUSE or more

    cycle = _Cycle()  # (a weak reference would not tell: the collection clears it anyway)
    gc.freeze()
    del cycle
    gc.callbacks.append(freeze_after_full)
    try:
        report = memdebug.frozen_garbage()
    finally:
        gc.callbacks.remove(freeze_after_full)
        gc.unfreeze()
    assert "unreachable objects in frozen cycles" in report
    left = sum(type(o) is _Cycle for o in gc.get_objects())
    assert left == 0, "the frozen garbage was frozen again, not freed"


class Replica:
    """Stands for the owner `by_root` starts from (matched by type name)."""

    def __init__(self) -> None:
        self.owned = {i: i for i in range(memdebug.BIG)}


class _Holder:
    def __init__(self) -> None:
        self.names = {i: str(i) for i in range(memdebug.BIG)}  # untracked: atomic items


def test_large_containers_outside_the_owners_are_listed_with_their_holder() -> None:
    owner, holder = Replica(), _Holder()
    memdebug.by_root()
    lines = memdebug.outside_roots(top=50)
    held = [ln for ln in lines if "_Holder" in ln]
    assert held and f"{memdebug.BIG:>10}  builtins.dict" in held[0]
    owned = [ln for ln in lines if ln.split("held by ", 1)[1].split("[", 1)[0].endswith(".Replica")]
    assert not owned  # reached from the owner: not listed
    assert owner.owned and holder.names


def test_large_containers_are_listed_with_their_holder_in_a_frozen_process() -> None:
    """In a node, gcwatch has frozen the heap: the holders must still be found (the
    collector's referrer search does not look in the permanent generation)."""
    import gc

    owner, holder = Replica(), _Holder()
    gc.freeze()
    try:
        memdebug.by_root()
        lines = memdebug.outside_roots(top=50)
        assert gc.get_freeze_count() > 0  # frozen again, as it was
    finally:
        gc.unfreeze()
    held = [ln for ln in lines if "_Holder" in ln]
    assert held and f"{memdebug.BIG:>10}  builtins.dict" in held[0]
    assert owner.owned and holder.names
