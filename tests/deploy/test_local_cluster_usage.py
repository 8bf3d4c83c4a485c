"""deploy/local-cluster in a fresh clone (no .venv): usage and unknown verbs are answered
before the .venv check (main said "no .venv yet" to `--help` and `bogus`). Nothing here
runs `up`: it would bootstrap a venv and bind the cluster's fixed loopback addresses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A clone's deploy/ wrapper and script, with no .venv beside them."""
    (tmp_path / "deploy").mkdir()
    for name in ("local-cluster", "local_cluster.py"):
        shutil.copy2(DEPLOY / name, tmp_path / "deploy" / name)
    return tmp_path / "deploy" / "local-cluster"


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["up", "--help"]])
def test_help_without_a_venv_prints_the_usage(fresh: Path, args: list[str]) -> None:
    res = run(fresh, *args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: local-cluster") and "no .venv" not in res.stderr
    assert not (fresh.parent.parent / ".venv").exists()  # `up --help` bootstrapped nothing


@pytest.mark.parametrize("args", [["bogus"], []])
def test_a_bad_verb_without_a_venv_is_a_usage_error(fresh: Path, args: list[str]) -> None:
    res = run(fresh, *args)
    assert res.returncode == 2 and "usage: local-cluster" in res.stderr
    assert "no .venv" not in res.stderr


def test_a_real_verb_without_a_venv_still_says_run_up(fresh: Path) -> None:
    res = run(fresh, "status")
    assert res.returncode == 1 and "no .venv yet" in res.stderr
