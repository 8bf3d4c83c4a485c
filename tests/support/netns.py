"""Tests that must bind a wildcard address run inside a private network namespace
(`unshare -rn`: a user namespace with its own loopback and no other interface), where a
wildcard exposes nothing. A module has an outer test, which starts pytest in the namespace
on the module's `inner`-marked tests, and those inner tests, skipped outside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IN_NETNS = "DNSCLUSTER_TEST_IN_NETNS"  # set by the outer test inside the private namespace
# marks the tests that run inside the namespace only / the outer test that starts them
inner = pytest.mark.skipif(not os.environ.get(IN_NETNS),
                           reason="runs inside the private network namespace only")
outer = pytest.mark.skipif(bool(os.environ.get(IN_NETNS)), reason="already inside the namespace")


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    res = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30)
    return res.returncode == 0


def run_inner_tests(test_file: str, timeout: float) -> None:
    """Run `test_file`'s inner tests in a new namespace; all must pass, none be skipped."""
    if not can_unshare():
        pytest.skip("no user and network namespaces here (unshare -rn)")
    script = 'ip link set lo up && exec "$0" -m pytest -q -p no:cacheprovider "$1" -k inner'
    res = subprocess.run(["unshare", "-rn", "sh", "-c", script, sys.executable, test_file],
                         capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, IN_NETNS: "1"}, cwd=Path(__file__).parents[2])
    assert res.returncode == 0, f"inner tests failed:\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}"
    assert " passed" in res.stdout and "skipped" not in res.stdout, res.stdout[-2000:]
