"""Which private journal directories a starting node removes (`journalstore.private_dir`).

Only those no live node holds: a node in another PID namespace sharing the
temporary directory (two containers, one /tmp or /var/tmp volume) has a pid
that means nothing here, so "its pid is not in /proc" must not make its live
directory go; and a directory of a node killed -9 goes even when its pid is
now another process's (pid reuse).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from node.server import journalstore
from node.server.journal import Journals

ROOT = Path(__file__).resolve().parents[3]


def _in_own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def test_a_live_node_in_another_pid_namespace_keeps_its_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _unshare_works():
        pytest.skip("needs unshare --pid (root or user namespaces)")
    _in_own_tmp(tmp_path, monkeypatch)
    j = Journals("")
    mine = j._dir
    assert mine is not None and mine.parent == tmp_path
    started = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
         "from node.server.journal import Journals; Journals('')"],
        env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=ROOT, capture_output=True,
        timeout=120, check=False)
    assert started.returncode == 0, started.stderr.decode()
    assert mine.exists(), "a node started in another PID namespace deleted the live " \
        "journal directory of this one"
    del j


def test_a_dead_nodes_directory_goes_though_its_pid_is_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _in_own_tmp(tmp_path, monkeypatch)
    dead = tmp_path / f"{journalstore.TEMP}1-abandoned"  # pid 1 is always some live process
    dead.mkdir()
    (dead / "example.ixfr").write_bytes(b"x" * 100)
    j = Journals("")
    assert j._dir is not None and j._dir.exists()
    assert not dead.exists(), "the directory of a node killed -9 is kept while another " \
        "process has its pid"
